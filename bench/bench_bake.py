"""Application-layer bake on an existing foundation against a full bake, measured on the local bake.
Not a test; prints figures.

    python bench/bench_bake.py [--runs 5]

Each run starts from a cache directory of its own holding only the machine's cached Debian 12
tree (linked in), and a local EC2 API of its own:

1. full bake: `bake.py --version 1.0.<run> --local` with no foundation yet, so it bakes the
   foundation and then the application layer on it (everything a release baked before layers);
2. application bake: `bake.py --version 1.1.<run> --local` on the foundation the first one
   left (a copy of its kept root, only the application's scripts).

Ratio 2/1, goal <= 0.4 on the median. The foundation and application layers' own Packer times
(the wrapper's `packer build (...)` phases) are printed too. Every figure is min / median / max
over the runs; each run's local API is stopped and its kept roots removed before the next.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for _path in (str(REPO), str(REPO / "packer")):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from baking import layers, local_api  # noqa: E402
from baking.rootfs import pristine_rootfs  # noqa: E402

sys.path.insert(0, str(REPO / "bench"))
from spread import report, spread  # noqa: E402

_PHASE = re.compile(r"packer build \((foundation|application)\) ([0-9.]+)s")


def bake(args: list[str], env: dict[str, str]) -> tuple[float, dict[str, float]]:
    """Wall-clock seconds of one bake and its layers' Packer times."""
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, str(REPO / "packer" / "bake.py"), *args],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    elapsed = time.monotonic() - started
    if result.returncode != 0:
        sys.exit(f"bake {' '.join(args)} failed:\n{result.stderr[-4000:]}")
    phases = {layer: float(seconds) for layer, seconds in _PHASE.findall(result.stderr)}
    return elapsed, phases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="repeated runs reported (>= 1)")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    pristine = pristine_rootfs()  # the one-off debootstrap is not part of any figure
    fulls, apps, foundation_layers, application_layers = [], [], [], []
    for run in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="gf-bench-") as scratch:
            cache = Path(scratch) / "xdg" / "golden-fleet"
            cache.mkdir(parents=True)
            (cache / pristine.name).symlink_to(pristine)
            tmp = Path(scratch) / "tmp"
            tmp.mkdir()
            env = dict(
                os.environ,
                XDG_CACHE_HOME=str(cache.parent),
                TMPDIR=str(tmp),
                GOLDEN_FLEET_TIMINGS="1",
            )
            try:
                full, full_phases = bake(["--version", f"1.0.{run}", "--local"], env)
                app, app_phases = bake(["--version", f"1.1.{run}", "--local"], env)
            finally:
                local_api.stop(cache)
                layers.remove_roots(cache)
        fulls.append(full)
        apps.append(app)
        foundation_layers.append(full_phases.get("foundation", float("nan")))
        application_layers.append(app_phases.get("application", float("nan")))
        print(
            f"run {run + 1}: full bake {full:.1f} s (foundation layer "
            f"{foundation_layers[-1]:.1f} s, application layer "
            f"{full_phases.get('application', float('nan')):.1f} s), application bake on it "
            f"{app:.1f} s (its layer {application_layers[-1]:.1f} s), ratio {app / full:.2f}",
            flush=True,
        )
    print(report("full bake (foundation + application)", spread(fulls), " s"))
    print(report("application bake on an existing foundation", spread(apps), " s"))
    print(report("foundation layer (packer build)", spread(foundation_layers), " s"))
    print(report("application layer (packer build)", spread(application_layers), " s"))
    ratios = [a / f for a, f in zip(apps, fulls, strict=True)]
    print(report("application bake / full bake", spread(ratios), goal=0.4))


if __name__ == "__main__":
    main()
