"""The documentation site (mkdocs.yml, docs/) and the README that leads into it.

The reference pages are generated from the code (``python -m docs.generate``) and must match
what the code renders now; the site builds with ``mkdocs build --strict`` (no broken link or
anchor, no page outside the navigation) without reaching the network for fonts; the README
stays a front door of at most 250 lines whose links all land."""

from __future__ import annotations

import logging
import re
import tempfile
import time
from pathlib import Path

import pytest
from mkdocs.commands.build import build
from mkdocs.config import load_config

import docs.generate as generate
from docs.generate import config_reference

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = ROOT / "README.md"
README_MAX_LINES = 250


def _nav_pages(nav: list) -> list[str]:
    pages: list[str] = []
    for entry in nav:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        if isinstance(value, list):
            pages += _nav_pages(value)
        elif isinstance(value, str) and not re.match(r"[a-z]+://", value):
            pages.append(value)
    return pages


@pytest.fixture(scope="module")
def site_config():
    with tempfile.TemporaryDirectory(prefix="golden-fleet-site-") as site:
        yield load_config(config_file=str(ROOT / "mkdocs.yml"), strict=True, site_dir=site)


def test_the_generated_reference_pages_are_what_the_code_renders_now():
    """A flag, key, policy or permission changed in the code without regenerating its page
    fails here, naming the page and the command that regenerates it."""
    stale = generate.stale_pages()
    assert not stale, (
        f"out of date: {', '.join('docs/' + p for p in stale)}; run `{generate.COMMAND}` "
        "and commit the pages"
    )


def test_a_changed_flag_makes_its_page_stale(monkeypatch):
    """The command reference is read from the release command's own parser: a new flag there
    makes the checked-in page stale (so the check above can fail)."""
    from release import cli

    original = cli.build_parser

    def with_a_new_flag():
        parser = original()
        commands = next(a for a in parser._actions if a.dest == "command")
        commands.choices["status"].add_argument("--no-colors", action="store_true", help="x")
        return parser

    monkeypatch.setattr(cli, "build_parser", with_a_new_flag)
    assert "reference/release-command.md" in generate.stale_pages()
    assert "`--no-colors`" in generate.PAGES["reference/release-command.md"]()


def test_a_changed_rule_makes_the_configuration_page_stale(monkeypatch):
    """The configuration reference quotes each field's documentation from components/config.py:
    a changed rule there makes the checked-in page stale."""
    monkeypatch.setitem(config_reference.DOCSTRINGS["ServiceConfig"], "name", "a new rule")
    assert "reference/configuration.md" in generate.stale_pages()


def test_every_key_of_the_model_is_on_the_configuration_page():
    """Each leaf key of both stack files, bake and promote alike, has its row."""
    page = (DOCS / "reference" / "configuration.md").read_text(encoding="utf-8")
    for key in config_reference.stack_values():
        if key.startswith("golden-fleet:app.environment.") or key.startswith(
            "golden-fleet:app.secrets."
        ):
            continue  # the maps' own keys are the stack's, not the model's
        assert f"| `{key}` |" in page, f"{key} has no row in docs/reference/configuration.md"


def test_every_page_is_in_the_navigation(site_config):
    """No page is built but unreachable: every Markdown file under docs/ is in mkdocs.yml's nav
    (and every nav entry exists)."""
    in_nav = _nav_pages(site_config["nav"])
    on_disk = sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md"))
    assert sorted(in_nav) == on_disk, (
        f"not in nav: {sorted(set(on_disk) - set(in_nav))}; "
        f"in nav but missing: {sorted(set(in_nav) - set(on_disk))}"
    )


def test_the_site_builds_strictly_offline(site_config, caplog):
    """`mkdocs build --strict`: a broken link or anchor, or a page left out of the nav, is a
    warning and fails the build. No web font or stylesheet is fetched from another host."""
    assert site_config["theme"]["font"] is False, "theme.font must stay false (offline)"
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="mkdocs"):
        build(site_config)
    took = time.monotonic() - started
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert not warnings, warnings
    site = Path(site_config["site_dir"])
    assert (site / "index.html").is_file()
    diagrams = 0
    for page in site.rglob("*.html"):
        html = page.read_text(encoding="utf-8")
        assert not re.search(r'<link[^>]+href="(https?:)?//', html), f"{page}: remote link"
        assert not re.search(r'<script[^>]+src="(https?:)?//', html), f"{page}: remote script"
        if 'class="mermaid"' in html:  # drawn by the Mermaid served with the site
            diagrams += 1
            assert re.search(r'<script src="[./]*assets/javascripts/mermaid\.min\.js"', html), page
    assert diagrams >= 3, "the pages with diagrams were not found in the built site"
    assert (site / "assets/javascripts/mermaid.min.js").is_file()
    assert took < 30, f"the site took {took:.1f} s to build"


def test_the_mermaid_served_with_the_site_is_the_one_mkdocs_yml_names():
    """The vendored script is byte for byte the npm package's dist/mermaid.min.js whose version
    and digest mkdocs.yml records, it defines the global Material looks for, and its licence
    travels with it."""
    import hashlib

    script = DOCS / "assets" / "javascripts" / "mermaid.min.js"
    recorded = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    digest = re.search(r"sha256 ([0-9a-f]{64})", recorded)
    assert digest, "mkdocs.yml must record the sha256 of the Mermaid it serves"
    assert hashlib.sha256(script.read_bytes()).hexdigest() == digest.group(1)
    assert (
        script.read_bytes()
        .rstrip()
        .endswith(
            b'globalThis["mermaid"] = globalThis.__esbuild_esm_mermaid_nm["mermaid"].default;'
        )
    )
    assert "MIT License" in (script.parent / "mermaid.LICENSE").read_text(encoding="utf-8")


def test_the_readme_is_a_short_front_door_whose_links_land(site_config):
    """At most 250 lines; every relative link names a file of the repository, and each page of
    the site it links is in the navigation."""
    text = README.read_text(encoding="utf-8")
    lines = text.splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines"
    in_nav = set(_nav_pages(site_config["nav"]))
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    relative = [link for link in links if not re.match(r"[a-z]+:", link)]
    assert relative, "the README links into the site"
    for link in relative:
        assert (ROOT / link).exists(), f"README.md links to {link}, which does not exist"
        if link.startswith("docs/") and link.endswith(".md"):
            assert link.removeprefix("docs/") in in_nav, f"{link} is not in the site's nav"


def test_no_diagram_ends_a_statement_inside_its_text():
    """A `;` ends a Mermaid statement wherever it stands: inside a message's text it cut the
    release guide's sequence diagram in two, which then drew only "Syntax error" (seen in a
    browser). Diagrams here write one statement a line; only a quoted label or an entity may
    hold one."""
    sources = [README, *sorted(DOCS.rglob("*.md"))]
    for source in sources:
        blocks = re.findall(r"```mermaid\n(.*?)```", source.read_text(encoding="utf-8"), re.S)
        for block in blocks:
            for number, line in enumerate(block.splitlines(), 1):
                bare = re.sub(r'"[^"]*"', "", line)  # a quoted label may hold one
                bare = re.sub(r"&[a-z]+;|#\d+;", "", bare)  # and so may an entity
                assert ";" not in bare, f"{source.name}: diagram line {number}: {line.strip()}"
