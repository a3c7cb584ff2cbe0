"""baking.digest: the digest follows everything inside the image, and nothing else."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from bake_fixtures import PACKER_DIR
from baking import digest, layout, varfiles


def copy_template(tmp_path: Path) -> tuple[Path, Path]:
    packer_dir, app_dir = tmp_path / "packer", tmp_path / "app"
    shutil.copytree(
        PACKER_DIR, packer_dir, ignore=shutil.ignore_patterns("__pycache__", "*.py", "baking")
    )
    shutil.copytree(layout.APP_DIR, app_dir, ignore=shutil.ignore_patterns("__pycache__"))
    return packer_dir, app_dir


def test_digest_follows_content_not_placement(tmp_path):
    packer_dir, app_dir = copy_template(tmp_path)
    content = dict(varfiles.CONTENT_DEFAULTS)

    def of(values=content):
        return digest.template_digest(digest.template_files(packer_dir, app_dir), values)

    base = of()
    assert re.fullmatch(r"[0-9a-f]{64}", base) and base == of(), "the digest is stable"
    for name, other in [
        ("runtime", "nodejs"),
        ("source_ami_name", "debian-12-arm64-*"),
        ("source_ami_owners", ["111111111111"]),
        ("app_port", "9090"),  # the port is written into the image: another image
        ("ssh_username", "debian"),
        ("keep_sshd", "true"),  # 95-remove-sshd.sh keeps sshd: another image
    ]:
        assert of({**content, name: other}) != base, name
    (packer_dir / "prod.pkrvars.hcl").write_text('kms_key_id = "alias/other"\n')
    assert of() == base, "var files are read through their values, not their text"
    script = packer_dir / "scripts" / "20-cis-sshd.sh"
    original = script.read_text()
    script.write_text(original + "\n# changed\n")
    assert of() != base
    script.write_text(original)
    (app_dir / "server.py").write_text((app_dir / "server.py").read_text() + "\n")
    assert of() != base


def test_every_template_script_and_app_file_is_covered_and_python_is_not():
    names = [name for name, _ in digest.template_files()]
    assert "packer/source.amazon-ebs.pkr.hcl" in names and "packer/build.pkr.hcl" in names
    assert "packer/scripts/99-image-tests.sh" in names and "app/server.py" in names
    assert not [n for n in names if n.startswith("packer/baking/") or n == "packer/bake.py"]
    assert len(names) == len(set(names))
