"""Before a deployment: does the live weighted listener hold the commit's weights?

    python -m deploy.live_weights --org ORG --stack STACK

Reads ``golden-fleet:traffic`` from Pulumi.<stack>.yaml (the commit being deployed) and each
color's share on the stack's weighted listener in AWS (release.live.listener_weights). Equal:
exit 0. Different (a `rollback --now` or a hand change not yet committed, or a rollout's push
that did not land): exit 1 with both, so the deployment does not put the file's weights back
over what is live without anyone deciding it. No listener yet (a new stack): exit 0.
Exit 2: the stack file cannot be read.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def difference(file: Mapping[str, int], live: Mapping[str, int]) -> str | None:
    """One line naming both when they differ; None when equal or nothing is live."""
    if not live or dict(file) == dict(live):
        return None
    show = lambda w: ", ".join(f"{c} {w.get(c, 0)}" for c in ("blue", "green"))  # noqa: E731
    return f"the commit says {show(file)}, the live listener serves {show(live)}"


def file_weights(stack: str, root: Path = ROOT) -> tuple[dict[str, int], str, str]:
    """(traffic, region, service name) from Pulumi.<stack>.yaml."""
    from ruamel.yaml.error import YAMLError

    from components import bounded_yaml

    path = root / f"Pulumi.{stack}.yaml"
    try:  # within the bounds every reader of a stack file keeps: size, aliases, depth
        config = bounded_yaml.safe_load(bounded_yaml.read_text(path), path.name)["config"]
    except YAMLError as error:
        raise ValueError(f"not valid YAML: {' '.join(str(error).split())[:200]}") from None
    traffic = config["golden-fleet:traffic"]
    return ({c: int(traffic[c]) for c in ("blue", "green")}, config["aws:region"],
            config["golden-fleet:service"]["name"])  # fmt: skip


def live_weights(stack: str, region: str, service: str) -> dict[str, int]:
    from release import live

    try:
        found = live.listener_weights(live.Clients.for_region(region), {}, stack, service)
    except live.NoWeightedListener:
        return {}
    return {color.value: share for color, share in found.items()}


def main(
    argv: list[str] | None = None,
    read_live: Callable[[str, str, str], Mapping[str, int]] = live_weights,
) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--org", required=True)
    parser.add_argument("--stack", required=True, choices=("staging", "prod"))
    args = parser.parse_args(argv)
    try:
        weights, region, service = file_weights(args.stack)
    except (OSError, KeyError, TypeError, ValueError) as error:
        from components.bounded_yaml import InputLimitError

        named = "" if isinstance(error, InputLimitError) else f"Pulumi.{args.stack}.yaml: "
        print(f"error: {named}{error}", file=sys.stderr)
        return 2
    live = read_live(f"{args.org}/golden-fleet/{args.stack}", region, service)
    problem = difference(weights, live)
    if problem:
        print(
            f"error: {args.stack}: {problem}. Commit the live weights to Pulumi.{args.stack}.yaml "
            "(after `rollback --now`: the rolled-back file), or shift on purpose with "
            "`python -m release shift`; this deployment does not overwrite live traffic.",
            file=sys.stderr,
        )
        return 1
    print(f"{args.stack}: live weights match the commit ({weights or 'no listener yet'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
