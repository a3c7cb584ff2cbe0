"""How the release command writes a length of time: ``45s``, ``3m00s``, ``1h05m00s`` (whole
seconds, cut, not rounded: a bake 0.6 s short of its time is not shown as done)."""

from __future__ import annotations


def duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m{seconds % 60:02d}s"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"
