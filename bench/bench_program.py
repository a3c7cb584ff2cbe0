"""Evaluation time of the golden-fleet program on the mock engine, against the engine's floor.

Measured interleaved, all through the same harness (config, mocks, recording) that the tests use:

- program:  the real ``__main__.py`` on a real stack file;
- floor:    a trivial program registering the same number of plain resources (the issue's floor);
- payload:  the same resources (types, names and inputs as the program registered them) as
            generic resources, with no config, validation, components, lookups or helpers;
- own code: the share of the program's time spent in this project's files (profiler), i.e.
            what validation, lookups and helpers cost, as opposed to the Pulumi SDK.

Each of N runs times every side `rounds` times, round-robin, and takes each side's median; the
ratios of those medians are reported as min / median / max over the N runs, and the goal
(program / floor <= 1.5) is judged on the median.

    python bench/bench_program.py [--runs 5] [--rounds 5]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from harness import load_stack_config, run_program, stack_file  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from spread import report, spread  # noqa: E402

FLOOR_PROGRAM = """
import pulumi

for index in range({count}):
    pulumi.CustomResource("bench:index:Plain", f"plain-{{index}}", {{"value": index}})
"""

PAYLOAD_PROGRAM = """
import json
import pulumi

for token, name, inputs in json.loads({payload!r}):
    if token.startswith("pulumi:providers:"):
        pulumi.ProviderResource(token.split(":")[-1], name, inputs)
    else:
        pulumi.CustomResource(token, name, inputs) if ":index:" not in token or token.startswith(
            "command:") else pulumi.ComponentResource(token, name, inputs)
"""


def one_run(rounds: int, sides: dict[str, Callable[[], object]]) -> dict[str, float]:
    """Each side's median time over `rounds`, taken round-robin so that a burst of load on the
    machine falls on every side alike rather than on whichever ran during it."""
    times: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(rounds):
        for name, action in sides.items():
            start = time.perf_counter()
            action()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def own_code_share(config: dict, stack: str) -> float:
    """Fraction of the program's profiled time spent in this project's own source files."""
    own = (str(ROOT / "components"), str(ROOT / "__main__.py"))
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(5):
        run_program(config, stack)
    profile.disable()
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    total = sum(entry[2] for entry in stats.values())
    mine = sum(entry[2] for (filename, _, _), entry in stats.items() if filename.startswith(own))
    return mine / total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="repeated runs reported (>= 1)")
    parser.add_argument("--rounds", type=int, default=5, help="timings per side in each run")
    args = parser.parse_args()
    if args.runs < 1 or args.rounds < 1:
        parser.error("--runs and --rounds must be at least 1")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for stack in ("staging", "prod"):
            config = load_stack_config(stack_file(stack))
            run = run_program(config, stack)  # also warms imports for every side
            count = len(run.resources)
            floor = workdir / f"floor_{stack}.py"
            floor.write_text(FLOOR_PROGRAM.format(count=count))
            payload = workdir / f"payload_{stack}.py"
            records = [[r.type_, r.name, r.inputs] for r in run.resources.values()]
            payload.write_text(PAYLOAD_PROGRAM.format(payload=json.dumps(records)))

            def program(config=config, stack=stack):
                return run_program(config, stack)

            def plain(config=config, floor=floor):
                return run_program(config, "bench", images=[], main=floor)

            def same_payload(config=config, payload=payload):
                return run_program(config, "bench", images=[], main=payload)

            plain()
            same_payload()
            sides = {"program": program, "floor": plain, "payload": same_payload}
            runs = [one_run(args.rounds, sides) for _ in range(args.runs)]
            shares = [own_code_share(config, stack) for _ in range(args.runs)]
            print(f"{stack}: {count} resources, {args.runs} runs of {args.rounds} rounds")
            for side in sides:
                times_ms = spread([r[side] * 1e3 for r in runs])
                print("  " + report(f"{side:8} time", times_ms, " ms"))
            print(
                "  "
                + report(
                    "program / floor", spread([r["program"] / r["floor"] for r in runs]), goal=1.5
                )
            )
            print(
                "  "
                + report("program / payload", spread([r["program"] / r["payload"] for r in runs]))
            )
            print("  " + report("own code share", spread([s * 100 for s in shares]), " %"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
