"""The template digest: sha256 over everything that shapes the image.

The template files, the provisioner scripts, the app and the effective content variables. Any
change to one of them is another digest, so another image; the same version with another digest
is refused (one version, one content).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from baking.layout import APP_DIR, PACKER_DIR


def template_files(
    packer_dir: Path = PACKER_DIR, app_dir: Path = APP_DIR
) -> list[tuple[str, Path]]:
    """Everything that shapes the image: the templates, the scripts, the files the image gets
    from the template (packer/files) and the app, by name.

    The Packer 1.6.6 variant is generated from these files (baking.legacy), so it is covered."""
    files: list[tuple[str, Path]] = []
    for path in sorted(packer_dir.glob("*.pkr.hcl")):
        files.append((f"packer/{path.name}", path))
    for base, prefix in (
        (packer_dir / "scripts", "packer/scripts"),
        (packer_dir / "files", "packer/files"),
        (app_dir, "app"),
    ):
        for path in sorted(
            p for p in base.rglob("*") if p.is_file() and "__pycache__" not in p.parts
        ):
            files.append((f"{prefix}/{path.relative_to(base).as_posix()}", path))
    return files


def template_digest(files: list[tuple[str, Path]], content_values: dict[str, object]) -> str:
    digest = hashlib.sha256()
    for name, path in files:
        data = path.read_bytes()
        digest.update(f"{name}\0{len(data)}\0".encode())
        digest.update(data)
    digest.update(json.dumps(content_values, sort_keys=True).encode())
    return digest.hexdigest()
