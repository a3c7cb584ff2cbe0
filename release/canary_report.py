"""What people look at after a rollout or ``analyze``: a Markdown report and a PNG timeline.

The Markdown goes to ``$GITHUB_STEP_SUMMARY`` when the caller passes it (GitHub shows it on the
run's page) and always to ``canary-report.md`` in the report directory; the PNG,
``canary-timeline.png``, is saved beside it (the rollout workflow uploads the directory). The
timeline has three panels over time: the canary's weight at each judged window, the error ratio
(target 5xx and connection errors over requests) of each color per minute, and each color's p99;
every window is shaded by its verdict.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from release import publication
from release.analysis import StepRecord
from release.durations import duration
from release.judge import Verdict
from release.metrics import COUNTS, REQUESTS, Series, whole_minutes

REPORT_DIR = Path("canary-report")  # relative to the working directory, as CI uploads it
MARKDOWN = "canary-report.md"
TIMELINE = "canary-timeline.png"
VERDICT_SHADE = {
    Verdict.PASS: "#2ca02c",
    Verdict.MARGINAL: "#ff7f0e",
    Verdict.FAIL: "#d62728",
    Verdict.INCONCLUSIVE: "#7f7f7f",
    Verdict.SHARED: "#9467bd",
}
LINE = {"blue": "#1f77b4", "green": "#2ca02c"}


def _number(value: float, digits: int = 4) -> str:
    if math.isnan(value):
        return "-"
    if math.isinf(value):
        return "∞"
    return f"{value:.{digits}g}"


def metric_rows(record: StepRecord) -> list[list[str]]:
    """metric, canary, baseline, effect, p-value, verdict (also the ``analyze`` table)."""
    rows = []
    for r in record.judgement.results:
        effect = "∞" if math.isinf(r.effect) else _number(r.effect * 100, 3) + " %"
        if not math.isnan(r.effect) and not math.isinf(r.effect) and r.effect > 0:
            effect = "+" + effect
        rows.append(
            [
                r.metric.label,
                _number(r.canary),
                _number(r.baseline),
                effect,
                _number(r.p_value, 2),
                r.verdict.value + ("" if r.verdict is Verdict.PASS else f" ({r.reason})"),
            ]
        )
    return rows


def _bounds(record: StepRecord) -> str:
    """``06:00-06:04``: the first and last minute with data (each minute by its start)."""
    seen = record.data_minutes()
    return f"{seen[0]:%H:%M}-{seen[-1]:%H:%M}" if seen else "none"


def judged(record: StepRecord) -> str:
    """What the window judged really held: its minutes with data against its whole minutes,
    how long the judge waited for CloudWatch, and the minutes it judged without."""
    first, stop = whole_minutes(record.start, record.end)
    whole = len(publication.minutes(first, stop))
    seen = record.data_minutes()
    text = (
        f"Judged the minutes {seen[0]:%H:%M}-{seen[-1]:%H:%M} UTC: {len(seen)} of the window's "
        f"{whole} whole minutes have requests."
        if seen
        else f"No minute of the window's {whole} whole minutes has requests."
    )
    waited = record.publication
    if waited is not None and waited.waited_s >= 1:
        text += f" Waited {duration(waited.waited_s)} for CloudWatch to publish its last minute."
    missing = publication.describe(waited)
    if missing:
        text += f" **{missing[0].upper()}{missing[1:]}.**"
    return text


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + [
        "| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows
    ]


def markdown(
    title: str,
    records: Sequence[StepRecord],
    canary: str,
    baseline: str,
    events: Sequence[tuple[datetime, str]] = (),
) -> str:
    lines = [f"## {title}", "", f"Canary **{canary}** judged against baseline **{baseline}**.", ""]
    if records:
        lines += _table(
            ["window", "UTC", "minutes with data", f"{canary} %", "verdict", "score", "action"],
            [
                [
                    r.label,
                    f"{r.start:%H:%M}-{r.end:%H:%M}",
                    _bounds(r),
                    str(r.percent),
                    r.judgement.verdict.value,
                    _number(r.judgement.score, 3),
                    r.action.value,
                ]
                for r in records
            ],
        )
        lines += ["", f"![canary timeline]({TIMELINE})", ""]
    for r in records:
        against = f"{baseline}'s last hour" if r.baseline_is_history else baseline
        lines += [f"### {r.label}, {canary} {r.percent} % against {against}", ""]
        lines += [f"{r.judgement.verdict.value}: {r.judgement.reason}", ""]
        lines += [judged(r), ""]
        lines += _table(
            ["metric", canary, baseline, "effect", "p-value", "verdict"], metric_rows(r)
        )
        lines.append("")
    if events:
        lines += ["### Timeline (UTC)", ""]
        lines += [f"- `{at:%H:%M:%S}` {what}" for at, what in events]
    return "\n".join(lines) + "\n"


def _error_ratio(series: Series) -> tuple[list[datetime], list[float]]:
    requests = dict(series.points.get(REQUESTS, ()))
    errors: dict[datetime, float] = {}
    for name in COUNTS:
        for at, value in series.points.get(name, ()):
            errors[at] = errors.get(at, 0.0) + value
    minutes = sorted(requests)
    return minutes, [100.0 * errors.get(m, 0.0) / requests[m] for m in minutes]


def timeline_png(path: Path, records: Sequence[StepRecord], canary: str, baseline: str) -> Path:
    """Weights per window, error ratio and p99 per color per minute, each window's verdict."""
    import matplotlib

    matplotlib.use("Agg")  # no display: CI runners and terminals
    from matplotlib import pyplot as plt

    figure, (weights, errors, p99) = plt.subplots(
        3, 1, sharex=True, figsize=(10, 7), constrained_layout=True
    )
    try:
        for r in records:
            for axis in (weights, errors, p99):
                axis.axvspan(r.start, r.end, color=VERDICT_SHADE[r.judgement.verdict], alpha=0.12)
            weights.plot([r.start, r.end], [r.percent, r.percent], color=LINE.get(canary, "k"))
            weights.text(
                r.end, r.percent, f" {r.judgement.verdict.value}", fontsize=8, va="bottom",
                ha="right", color=VERDICT_SHADE[r.judgement.verdict],
            )  # fmt: skip
            # The baseline first: the canary, dashed, is drawn over it and stays visible.
            shown = [] if r.baseline_is_history else [(baseline, r.baseline)]
            shown.append((canary, r.canary))
            for color, series in shown:
                # The canary dashed over the baseline: equal series stay visible as both.
                style = {
                    "color": LINE.get(color),
                    "label": color if r is records[0] else None,
                    "linestyle": "--" if color == canary else "-",
                    "marker": ".",
                }
                errors.plot(*_error_ratio(series), **style)
                p99_points = series.points.get("p99", ())
                p99.plot([t for t, _ in p99_points], [v for _, v in p99_points], **style)
        weights.set_ylabel(f"{canary} weight %")
        weights.set_ylim(0, 105)
        errors.set_ylabel("errors % of requests")
        p99.set_ylabel("p99 response time (s)")
        p99.set_xlabel("UTC")
        if records:
            errors.legend(loc="upper left")
        else:  # stopped before its first bake ended: the Markdown's timeline says why
            weights.text(0.5, 0.5, "no window was judged", ha="center", transform=weights.transAxes)
        weights.set_title(f"canary {canary} against {baseline}: shading is each window's verdict")
        figure.savefig(path, dpi=80)
    finally:
        plt.close(figure)
    return path


def step_summary() -> Path | None:
    """GitHub Actions' job summary file, when running there."""
    value = os.environ.get("GITHUB_STEP_SUMMARY")
    return Path(value) if value else None


def write(
    directory: Path,
    title: str,
    records: Sequence[StepRecord],
    canary: str,
    baseline: str,
    events: Sequence[tuple[datetime, str]] = (),
    step_summary: Path | None = None,
) -> tuple[Path, Path]:
    """The Markdown report and the PNG timeline in ``directory``; the Markdown also appended to
    ``step_summary`` ($GITHUB_STEP_SUMMARY) when given. Returns both paths."""
    directory.mkdir(parents=True, exist_ok=True)
    text = markdown(title, records, canary, baseline, events)
    report = directory / MARKDOWN
    report.write_text(text, encoding="utf-8")
    png = timeline_png(directory / TIMELINE, records, canary, baseline)
    if step_summary is not None:
        with step_summary.open("a", encoding="utf-8") as summary:
            summary.write(text)
    return report, png
