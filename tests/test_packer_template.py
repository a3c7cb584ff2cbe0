"""The Packer template: formatted, valid for Packer 1.6.6 through the generated variant, home region
only, and in step with the image contract."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from bake_fixtures import PACKER_DIR, REPO, require
from baking import legacy, varfiles

from components import image_contract

VARS = ["-var", "service=checkout", "-var", "version=1.4.0"]


@pytest.fixture(scope="module")
def packer() -> str:
    require("packer")
    return "packer"


@pytest.fixture(scope="module")
def legacy_template(tmp_path_factory) -> Path:
    """The directory Packer 1.6.6 builds: what the wrapper assembles."""
    return legacy.assemble_legacy_template(tmp_path_factory.mktemp("legacy"))


def run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        argv, cwd=cwd, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120
    )


def test_templates_are_formatted(packer):
    """Every template file, including the current-Packer-only ones, is as `packer fmt` writes it."""
    result = run([packer, "fmt", "-check", "-diff", "."], PACKER_DIR)
    assert result.returncode == 0, f"packer fmt -check:\n{result.stdout}{result.stderr}"


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
    template = legacy.assemble_legacy_template(tmp_path)
    (template / "source.amazon-ebs.pkr.hcl").write_text(
        (PACKER_DIR / "source.amazon-ebs.pkr.hcl").read_text()
    )
    result = run([packer, "validate", "-syntax-only", *VARS, "."], template)
    assert result.returncode == 0, f"packer validate -syntax-only:\n{result.stdout}{result.stderr}"


def test_legacy_source_is_the_current_one_minus_what_1_6_6_rejects(legacy_template):
    """Generated at bake time: the current source with imds_support and deprecate_at dropped and
    nothing else changed; no plugins block; no hand copy left in the repository."""
    current = (PACKER_DIR / "source.amazon-ebs.pkr.hcl").read_text().splitlines()
    generated = (legacy_template / "source.amazon-ebs.pkr.hcl").read_text().splitlines()
    dropped = [line for line in current if re.match(r"\s*(imds_support|deprecate_at)\s*=", line)]
    assert len(dropped) == 2, "the current source must set imds_support and deprecate_at"
    assert generated[0].startswith("# Generated from packer/source.amazon-ebs.pkr.hcl")
    assert generated[1:] == [line for line in current if line not in dropped]
    assert not (legacy_template / "plugins.pkr.hcl").exists()
    for name in ("build.pkr.hcl", "variables.pkr.hcl", "locals.pkr.hcl", "sources.pkr.hcl"):
        assert (legacy_template / name).read_bytes() == (PACKER_DIR / name).read_bytes(), name
    assert (legacy_template / "scripts").resolve() == PACKER_DIR / "scripts"
    assert not (PACKER_DIR / "compat").exists()


@pytest.mark.parametrize(
    "text, message",
    [
        ('source "x" "y" {\n  imds_support = "v2.0"\n}\n', "deprecate_at 0 times"),
        (
            'source "x" "y" {\n  imds_support = "v2.0"\n  imds_support = "v2.0"\n'
            '  deprecate_at = "x"\n}\n',
            "imds_support 2 times",
        ),
        (
            'source "x" "y" {\n  imds_support = "v2.0"\n  deprecate_at = timeadd(\n'
            '    timestamp(), "1h")\n}\n',
            "deprecate_at spans several lines",
        ),
    ],
    ids=["missing", "repeated", "multi-line"],
)
def test_legacy_generation_refuses_what_it_cannot_drop_safely(text, message):
    """A renamed or reshaped option fails the bake loudly instead of drifting silently."""
    with pytest.raises(ValueError, match=message):
        legacy.legacy_source(text, ("imds_support", "deprecate_at"), "packer/x.pkr.hcl")


def test_legacy_packer_is_detected():
    assert legacy.packer_is_legacy("Packer v1.6.6")
    assert not legacy.packer_is_legacy("Packer v1.11.2\n\nYour version of Packer is out of date!")
    assert not legacy.packer_is_legacy("no version here")


def test_the_bake_builds_in_the_home_region_only():
    """Sharing and copies are Pulumi resources (components/golden_image.py), not the bake's."""
    for path in PACKER_DIR.glob("*.pkr*.hcl"):
        text = path.read_text()
        for option in ("ami_users", "ami_regions", "region_kms_key_ids", "ami_groups"):
            assert not re.search(rf"^\s*{option}\s*=", text, re.M), f"{path.name}: {option}"
    variables = (PACKER_DIR / "variables.pkr.hcl").read_text()
    assert 'variable "kms_key_id"' in variables
    assert re.search(
        r"kms_key_id\s*=\s*var\.kms_key_id", (PACKER_DIR / "source.amazon-ebs.pkr.hcl").read_text()
    )


def test_undeclared_sharing_variables_from_the_environment_are_ignored(packer, legacy_template):
    """A caller still passing PKR_VAR_ami_users/ami_regions does not break the bake."""
    import os

    env = dict(os.environ, PKR_VAR_ami_users='["222222222222"]', PKR_VAR_ami_regions="[]")
    result = subprocess.run(
        [packer, "validate", *VARS, "."],
        cwd=legacy_template,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, f"packer validate:\n{result.stdout}{result.stderr}"


@pytest.mark.parametrize(
    "service, valid", [("a" * image_contract.SERVICE_NAME_MAX, True), ("a" * 15, False)]
)
def test_template_service_limit_is_the_contracts(packer, legacy_template, service, valid):
    result = run(
        [packer, "validate", "-var", f"service={service}", "-var", "version=1.4.0", "."],
        legacy_template,
    )
    assert (result.returncode == 0) is valid, result.stdout + result.stderr


def test_template_refuses_build_metadata(packer, legacy_template):
    result = run(
        [packer, "validate", "-var", "service=checkout", "-var", "version=1.0.0+b.1", "."],
        legacy_template,
    )
    assert result.returncode != 0 and "build metadata" in result.stdout + result.stderr


def test_image_tags_are_the_contracts():
    """local.common_tags (every image of either layer) and each layer's own tags have exactly the
    contract's keys, in its order."""
    text = (PACKER_DIR / "locals.pkr.hcl").read_text()
    block = re.search(r"\n  common_tags = \{\n(.*?)\n  \}", text, re.S)
    assert block
    keys = tuple(re.findall(r"^\s*([A-Za-z]+)\s*=", block.group(1), re.M))
    assert keys == image_contract.COMMON_TAG_KEYS
    assert f'ManagedBy      = "{image_contract.MANAGED_BY}"' in block.group(1)
    for layer, expected in (
        ("foundation", image_contract.FOUNDATION_TAG_KEYS),
        ("application", image_contract.APPLICATION_TAG_KEYS),
    ):
        layer_block = re.search(rf"\n    {layer} = \{{\n(.*?)\n    \}}", text, re.S)
        assert layer_block, layer
        keys = tuple(re.findall(r"^\s*([A-Za-z][A-Za-z0-9]*)\s*=", layer_block.group(1), re.M))
        assert keys == expected, layer
    assert "tags = merge(local.common_tags, local.layer_tags[var.layer])" in text


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
    for name, value in varfiles.CONTENT_DEFAULTS.items():
        block = re.search(rf'variable "{name}" {{(.*?)\n}}', text, re.S)
        assert block, name
        default = re.search(r"default\s*=\s*(.+)", block.group(1)).group(1).strip()
        assert varfiles.parse_hcl_value(default) == value, name


def layer_scripts(layer: str) -> list[str]:
    """The scripts of one layer's list in locals.pkr.hcl, in order."""
    text = (PACKER_DIR / "locals.pkr.hcl").read_text()
    block = re.search(rf"\n  {layer}_scripts = \[\n(.*?)\n  \]", text, re.S)
    assert block, f"local.{layer}_scripts not found"
    return re.findall(r'"\$\{path.root\}/scripts/([^"]+)"', block.group(1))


def test_build_runs_every_script_once_in_one_layer_and_image_tests_last():
    """Each script on disk runs in exactly one layer: the foundation ends with its own clean-up;
    the application layer starts with the package, ends with the clean-up, sshd's removal and the
    image's own tests; the build runs the layer's list."""
    foundation, application = layer_scripts("foundation"), layer_scripts("application")
    listed = foundation + application
    on_disk = sorted(p.name for p in (PACKER_DIR / "scripts").glob("*.sh"))
    assert sorted(listed) == on_disk and len(set(listed)) == len(listed)
    assert foundation[0] == "10-baseline.sh" and foundation[-1] == "45-foundation-cleanup.sh"
    assert all(name < "50" for name in foundation) and all(name >= "50" for name in application)
    assert application[0] == "50-app.sh" and application[-1] == "99-image-tests.sh"
    assert application[-5:] == [
        "90-cleanup.sh",
        "95-remove-sshd.sh",
        "96-cis-audit-privileged.sh",
        "97-cis-aide-init.sh",
        "99-image-tests.sh",
    ]
    build = (PACKER_DIR / "build.pkr.hcl").read_text()
    assert "scripts = local.scripts" in build
    assert not re.findall(r'"\$\{path.root\}/scripts/', build)
    locals_text = (PACKER_DIR / "locals.pkr.hcl").read_text()
    assert (
        'scripts = var.layer == "foundation" ? local.foundation_scripts : local.application_scripts'
        in locals_text
    )


@pytest.mark.parametrize(
    "layer, extra",
    [
        ("foundation", []),
        (
            "application",
            [
                "-var",
                "foundation_ami=ami-0123",
                "-var",
                "foundation_name=golden-foundation-python-20260101T000000Z",
                "-var",
                "service=checkout",
                "-var",
                "version=1.0.0",
            ],
        ),
    ],
)
def test_each_layer_validates_on_packer_1_6_6(packer, legacy_template, layer, extra):
    """The per-layer maps and the conditional over the two script lists evaluate in Packer 1.6.6;
    an unknown layer is refused by the variable's validation."""
    result = run([packer, "validate", "-var", f"layer={layer}", *extra, "."], legacy_template)
    assert result.returncode == 0, result.stdout + result.stderr


def test_unknown_layer_is_refused(packer, legacy_template):
    result = run([packer, "validate", "-var", "layer=base", "."], legacy_template)
    assert result.returncode != 0 and "foundation or application" in result.stdout + result.stderr


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
