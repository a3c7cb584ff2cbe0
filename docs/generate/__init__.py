"""Reference pages generated from the code: ``python -m docs.generate`` writes them,
``python -m docs.generate --check`` exits 1 naming each page that is out of date.

Why here, inside docs/ and excluded from the site by mkdocs.yml's ``exclude_docs``: the program
writes pages of this directory and nothing else uses it, so it sits beside them (as
terraform-docs' configuration sits beside a module's README) rather than in bench/ or tests/,
which are neither; and as a package of the repository's root it imports the code's own parsers
and models (``release.cli.build_parser``, ``baking.cli.build_parser``, the config model, the
policy pack, ``iam_documents.role_actions``), so a renamed flag or key changes its page, and
tests/test_docs.py fails until the page is regenerated.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from docs.generate import commands, config_reference, iam, policies
from docs.generate.markdown import COMMAND

__all__ = ["COMMAND", "PAGES", "render_all", "stale_pages", "write_all"]

DOCS = Path(__file__).resolve().parent.parent
ROOT = DOCS.parent

# page (relative to docs/) -> the function that renders it
PAGES: dict[str, Callable[[], str]] = {
    "reference/configuration.md": config_reference.render,
    "reference/release-command.md": commands.render_release,
    "reference/bake-command.md": commands.render_bake,
    "reference/policies.md": policies.render,
    "reference/iam.md": iam.render,
}


def render_all() -> dict[str, str]:
    return {page: render() for page, render in PAGES.items()}


def stale_pages(rendered: dict[str, str] | None = None) -> list[str]:
    """The generated pages whose file differs from what the code renders now."""
    rendered = render_all() if rendered is None else rendered
    return [
        page
        for page, text in rendered.items()
        if not (DOCS / page).is_file() or (DOCS / page).read_text(encoding="utf-8") != text
    ]


def write_all() -> list[str]:
    """Write every page that changed; returns them."""
    rendered = render_all()
    changed = stale_pages(rendered)
    for page in changed:
        (DOCS / page).parent.mkdir(parents=True, exist_ok=True)
        (DOCS / page).write_text(rendered[page], encoding="utf-8")
    return changed
