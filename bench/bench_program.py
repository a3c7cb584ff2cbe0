"""Evaluation time of the golden-fleet program on the mock engine, against the engine's floor.

Measured in one run, interleaved, best of N, all through the same harness (config, mocks,
recording) that the tests use:

- program:  the real ``__main__.py`` on a real stack file;
- floor:    a trivial program registering the same number of plain resources (the issue's floor);
- payload:  the same resources (types, names and inputs as the program registered them) as
            generic resources, with no config, validation, components, lookups or helpers;
- own code: the share of the program's time spent in this project's files (profiler), i.e.
            what validation, lookups and helpers cost, as opposed to the Pulumi SDK.

    python bench/bench_program.py [--rounds 15]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from harness import load_stack_config, run_program, stack_file  # noqa: E402

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


def best_of(rounds: int, action: Callable[[], object]) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return min(times)


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
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
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
            t_program = best_of(args.rounds, program)
            t_floor = best_of(args.rounds, plain)
            t_payload = best_of(args.rounds, same_payload)
            share = own_code_share(config, stack)
            print(
                f"{stack:8} resources={count}  program={t_program * 1e3:6.1f} ms  "
                f"floor={t_floor * 1e3:6.1f} ms  payload={t_payload * 1e3:6.1f} ms  "
                f"ratio program/floor={t_program / t_floor:4.2f}  "
                f"program/payload={t_program / t_payload:4.2f}  own code={share:5.1%}  "
                f"(best of {args.rounds}; goal program/floor <= 1.5)"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
