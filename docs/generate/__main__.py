"""``python -m docs.generate [--check]``: write the reference pages, or check they are current."""

from __future__ import annotations

import argparse
import sys

from docs.generate import COMMAND, stale_pages, write_all


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.split(":", 1)[1].strip())
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 when a page is out of date"
    )
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_pages()
        for page in stale:
            print(f"docs/{page} is out of date: run `{COMMAND}`", file=sys.stderr)
        return 1 if stale else 0
    for page in write_all():
        print(f"wrote docs/{page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
