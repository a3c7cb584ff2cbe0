"""docs/reference/release-command.md and bake-command.md: every command and flag, read from
the argparse parsers the commands themselves build (release/cli.py build_parser,
packer/baking/cli.py build_parser and build_seed_parser)."""

from __future__ import annotations

import argparse
import inspect
import re
import textwrap

from docs.generate.importing import from_directory
from docs.generate.markdown import code, header, prose, table


def _help(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    """The help text as `--help` prints it (``%(default)s`` and ``%%`` expanded)."""
    if not action.help or action.help == argparse.SUPPRESS:
        return ""
    return prose(parser._get_formatter()._expand_help(action))  # argparse's own expansion


def _names(action: argparse.Action) -> str:
    if not action.option_strings:
        return code(action.metavar or action.dest)
    takes_value = action.nargs != 0
    metavar = action.metavar or (action.dest.upper() if takes_value else "")
    return ", ".join(
        code(f"{flag} {metavar}" if takes_value and metavar else flag)
        for flag in action.option_strings
    )


def _default(action: argparse.Action) -> str:
    if action.nargs == 0 or action.default in (None, argparse.SUPPRESS) or action.required:
        return ""
    value = action.default
    if isinstance(value, list | tuple):
        value = ",".join(map(str, value))
    return code(value)


def _exclusive(parser: argparse.ArgumentParser) -> dict[argparse.Action, list[str]]:
    together: dict[argparse.Action, list[str]] = {}
    for group in parser._mutually_exclusive_groups:
        for action in group._group_actions:
            others = [a.option_strings[0] for a in group._group_actions if a is not action]
            together[action] = others
    return together


def arguments(parser: argparse.ArgumentParser) -> str:
    exclusive = _exclusive(parser)
    rows = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
            continue
        notes = [_help(parser, action)]
        if action.choices and not isinstance(action.choices, dict):
            notes.append("one of " + ", ".join(code(c) for c in action.choices))
        if action.required and action.option_strings:
            notes.append("required")
        if action in exclusive:
            notes.append("not with " + ", ".join(code(o) for o in exclusive[action]))
        rows.append((_names(action), _default(action), "; ".join(n for n in notes if n)))
    return table(("argument", "default", "what it does"), rows) if rows else ""


def usage(parser: argparse.ArgumentParser) -> str:
    first, *rest = parser.format_usage().strip().splitlines()
    indent = len("usage: ")
    lines = [first.removeprefix("usage: "), *(line[indent:] for line in rest)]
    return "```text\n" + "\n".join(lines) + "\n```\n"


def subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, str, argparse.ArgumentParser]]:
    """(name, one-line help, parser) of each subcommand, in the order `--help` lists them."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, sub in action.choices.items():
                found.append((name, helps.get(name) or "", sub))
    return found


def _expand(text: str, prog: str) -> str:
    """As argparse formats a description or epilog: %-expanded only when it names %(prog)."""
    return text % {"prog": prog} if "%(prog)" in text else text


def render_release() -> str:
    from release import cli

    parser = cli.build_parser()
    parts = [
        header("release/cli.py (its argparse parser)"),
        "# `python -m release`\n\n",
        prose(parser.description or "") + "\n\n",
        "Run it from the project root. Errors are one line on stderr; a bad argument exits "
        f"{cli.USAGE_ERROR} with nothing read or written.\n\n",
        "```text\n" + _expand(parser.epilog or "", cli.PROG) + "\n```\n\n",
        table(
            ("command", "what it does"),
            [(f"[{code(name)}](#{name})", help_.replace("%%", "%"))
             for name, help_, _ in subcommands(parser)],
        ),
    ]  # fmt: skip
    for name, _, sub in subcommands(parser):
        parts.append(f"\n## {name}\n\n")
        parts.append(usage(sub) + "\n")
        if sub.description:
            parts.append(prose(_expand(sub.description, cli.PROG)) + "\n\n")
        parts.append(arguments(sub))
    return "".join(parts)


def render_bake() -> str:
    with from_directory("packer", "baking.cli", "baking.errors") as (bake_cli, errors):
        parser = bake_cli.build_parser()
        seed = bake_cli.build_seed_parser()
        # each EXIT_ constant's trailing comment says what the code means
        codes = [
            (code(value), prose(meaning))
            for value, meaning in re.findall(
                r"^EXIT_[A-Z_]+ = ([0-9]+)  # (.+)$", inspect.getsource(errors), re.MULTILINE
            )
        ]
        examples = bake_cli.USAGE
        # parse_args' docstring: its first paragraph is about the function, the rest about
        # the layers a user picks between
        layers = inspect.cleandoc(bake_cli.parse_args.__doc__ or "").split("\n\n", 1)[-1]
    return "".join(
        [
            header("packer/baking/cli.py (its argparse parsers) and packer/baking/errors.py"),
            "# `packer/bake.py`\n\n",
            examples.split("\n\n")[0] + " Only the AMI id goes to stdout; every message, "
            "Packer's progress included, goes to stderr.\n\n",
            "```text\n" + textwrap.dedent(examples.split("\n\n", 1)[1]).strip() + "\n```\n\n",
            "## Bake an image\n\n",
            prose(layers) + "\n\n",
            usage(parser) + "\n",
            arguments(parser),
            "\n## seed-base-image\n\n",
            (seed.description or "") + "\n\n",
            usage(seed) + "\n",
            arguments(seed),
            "\n## Exit codes\n\nEach failure prints one line on stderr and nothing on stdout.\n\n",
            table(("code", "meaning"), codes),
        ]
    )
