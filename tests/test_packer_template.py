"""The Packer template: formatted, valid for Packer 1.6.6, its amazon-ebs variants in step."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from bake_fixtures import PACKER_DIR, REPO, bake, require

VARS = ["-var", "service=checkout", "-var", "version=1.4.0"]


@pytest.fixture(scope="module")
def packer() -> str:
    require("packer")
    return "packer"


@pytest.fixture(scope="module")
def legacy_template(tmp_path_factory) -> Path:
    """The directory Packer 1.6.6 builds: what the wrapper assembles."""
    return bake.assemble_legacy_template(tmp_path_factory.mktemp("legacy"))


def run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        argv, cwd=cwd, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120
    )


@pytest.mark.parametrize("directory", [PACKER_DIR, PACKER_DIR / "compat"], ids=["packer", "compat"])
def test_templates_are_formatted(packer, directory):
    """Every template file, including the current-Packer-only ones, is as `packer fmt` writes it."""
    result = run([packer, "fmt", "-check", "-diff", "."], directory)
    assert result.returncode == 0, f"packer fmt -check {directory}:\n{result.stdout}{result.stderr}"


@pytest.mark.parametrize("var_file", [None, "staging.pkrvars.hcl", "prod.pkrvars.hcl"])
def test_legacy_template_validates(packer, legacy_template, var_file):
    """Packer 1.6.6 validates all four sources, the build and each environment's variables."""
    extra = ["-var-file", str(PACKER_DIR / var_file)] if var_file else []
    result = run([packer, "validate", *VARS, *extra, "."], legacy_template)
    assert result.returncode == 0, f"packer validate ({var_file}):\n{result.stdout}{result.stderr}"


def test_legacy_template_refuses_latest(packer, legacy_template):
    """The template itself also refuses `latest`, whoever runs Packer directly."""
    result = run(
        [packer, "validate", "-var", "service=checkout", "-var", "version=latest", "."],
        legacy_template,
    )
    assert result.returncode != 0 and "never latest" in result.stdout + result.stderr


def test_current_amazon_source_passes_syntax_check(packer, tmp_path):
    """The current amazon-ebs source (imds_support, deprecate_at) passes 1.6.6's syntax-only check.

    plugins.pkr.hcl cannot: 1.6.6 rejects the required_plugins block even there, so fmt (which
    parses it) is all 1.6.6 can check of it; `packer init` + `packer validate` on current Packer
    checks the rest (packer/README.md)."""
    template = bake.assemble_legacy_template(tmp_path)
    (template / "source.amazon-ebs.pkr.hcl").write_text(
        (PACKER_DIR / "source.amazon-ebs.pkr.hcl").read_text()
    )
    result = run([packer, "validate", "-syntax-only", *VARS, "."], template)
    assert result.returncode == 0, f"packer validate -syntax-only:\n{result.stdout}{result.stderr}"


def test_compat_source_is_the_current_one_minus_current_only_options():
    """The compat amazon-ebs source differs from the current one only by what 1.6.6 lacks."""

    def body(path: Path) -> list[str]:
        return [
            line
            for line in path.read_text().splitlines()
            if line.strip() and not line.startswith("#")
        ]

    current = body(PACKER_DIR / "source.amazon-ebs.pkr.hcl")
    compat = body(PACKER_DIR / "compat" / "source.amazon-ebs.pkr.hcl")
    current_only = [
        line for line in current if re.match(r"^\s*(imds_support|deprecate_at)\s*=", line)
    ]
    assert len(current_only) == 2, "the current source must set imds_support and deprecate_at"
    assert [line for line in current if line not in current_only] == compat


def test_current_source_requires_imdsv2_and_encryption():
    text = (PACKER_DIR / "source.amazon-ebs.pkr.hcl").read_text()
    assert re.search(r'imds_support\s*=\s*"v2.0"', text)
    assert re.search(r"encrypt_boot\s*=\s*true", text)
    assert re.search(r"most_recent\s*=\s*true", text)


def test_plugins_are_pinned():
    """Each of the four plugins has an exact version."""
    text = (PACKER_DIR / "plugins.pkr.hcl").read_text()
    for plugin in ("amazon", "docker", "azure", "googlecompute"):
        assert re.search(
            rf'{plugin} = {{\s*source\s*=\s*"github.com/hashicorp/{plugin}"'
            r'\s*version\s*=\s*"= \d+\.\d+\.\d+"',
            text,
        ), plugin


def test_content_defaults_match_the_template():
    """The digest's defaults are the template's defaults (else a default change would not show)."""
    text = (PACKER_DIR / "variables.pkr.hcl").read_text()
    for name, value in bake.CONTENT_DEFAULTS.items():
        block = re.search(rf'variable "{name}" {{(.*?)\n}}', text, re.S)
        assert block, name
        default = re.search(r"default\s*=\s*(.+)", block.group(1)).group(1).strip()
        assert bake.parse_hcl_value(default) == value, name


def test_build_runs_every_script_once_and_image_tests_last():
    build = (PACKER_DIR / "build.pkr.hcl").read_text()
    listed = re.findall(r'"\$\{path.root\}/scripts/([^"]+)"', build)
    on_disk = sorted(p.name for p in (PACKER_DIR / "scripts").glob("*.sh"))
    assert sorted(listed) == on_disk and len(set(listed)) == len(listed)
    assert listed[-1] == "99-image-tests.sh" and listed[-2] == "90-cleanup.sh"


@pytest.mark.parametrize(
    "script", sorted((PACKER_DIR / "scripts").glob("*.sh")), ids=lambda p: p.name
)
def test_scripts_follow_the_conventions(script):
    """Shebang, a two-line header saying what it does, strict mode; no mirror host names."""
    lines = script.read_text().splitlines()
    assert lines[0] == "#!/usr/bin/env bash"
    assert lines[1].startswith("# ") and lines[2].startswith("# ")
    assert "set -euo pipefail" in lines[:6]
    assert not re.search(
        r"deb\.debian\.org|security\.debian\.org|pypi\.org|ftp\.[a-z]+\.debian", script.read_text()
    )
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0


def test_no_mirror_host_names_anywhere_in_the_image_code():
    for path in [*PACKER_DIR.rglob("*"), *(REPO / "app").rglob("*")]:
        if path.is_file() and path.suffix in {".hcl", ".py", ".sh", ".service", ".md"}:
            assert not re.search(
                r"deb\.debian\.org|security\.debian\.org|pypi\.org", path.read_text()
            ), path
