"""Foundation and application layers: which files and values each layer's digest covers, which
foundation an application image is built on, its lineage and description, and (local mode) the
foundation's provisioned root kept in the cache.

The foundation (Debian 12, upgrades, CIS hardening, agents, runtime) is rebuilt on its own
schedule; each release bakes only its package onto the newest foundation of its runtime (or the
one ``image.foundation`` pins). The application digest includes the foundation's own digest, so
a new foundation is new content for every application image built on it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from baking.layout import PACKER_DIR
from baking.processes import port_open
from components.image_contract import (
    LAYER_APPLICATION,
    LAYER_FOUNDATION,
    MANAGED_BY,
    foundation_name_filter,
    is_foundation_name,
    tag_map,
)

LAYERS = (LAYER_FOUNDATION, LAYER_APPLICATION)
# EC2 caps an AMI description at 255 characters.
DESCRIPTION_MAX = 255
FOUNDATIONS_DIR = "foundations"
ROOT_RECORD = "foundation.json"


@dataclass(frozen=True)
class Foundation:
    """A foundation image an application image is built on."""

    ami: str
    name: str
    build_time: str
    digest: str
    runtime: str


def layer_scripts(layer: str, packer_dir: Path = PACKER_DIR) -> list[str]:
    """The script names of one layer, in order, as locals.pkr.hcl lists them (the one copy)."""
    text = (packer_dir / "locals.pkr.hcl").read_text()
    block = re.search(rf"\n  {layer}_scripts = \[\n(.*?)\n  \]", text, re.S)
    if block is None:
        raise ValueError(f"locals.pkr.hcl has no {layer}_scripts list")
    return re.findall(r'"\$\{path\.root\}/scripts/([^"]+)"', block.group(1))


def layer_files(
    files: list[tuple[str, Path]], layer: str, packer_dir: Path = PACKER_DIR
) -> list[tuple[str, Path]]:
    """The part of ``template_files()`` that shapes ``layer``: the template itself, the layer's
    scripts, and for the application layer the app. The foundation's scripts are the
    application's through the foundation digest (:func:`application_content`)."""
    scripts = set(layer_scripts(layer, packer_dir))
    kept = []
    for name, path in files:
        if name.startswith("packer/scripts/"):
            if name.removeprefix("packer/scripts/") not in scripts:
                continue
        elif name.startswith("app/") and layer != LAYER_APPLICATION:
            continue
        kept.append((name, path))
    return kept


def foundation_content(content: dict[str, object]) -> dict[str, object]:
    """Content values of a foundation's digest."""
    return {**content, "layer": LAYER_FOUNDATION}


def application_content(content: dict[str, object], foundation: Foundation) -> dict[str, object]:
    """Content values of an application image's digest: its own plus its foundation's digest, so
    a foundation change is a new application digest."""
    return {**content, "layer": LAYER_APPLICATION, "foundation_digest": foundation.digest}


def is_usable_foundation(image: dict, runtime: str, now: datetime | None = None) -> bool:
    """A managed, available foundation of ``runtime``, not revoked and not yet deprecated (Packer
    sets every image's deprecation a year ahead; a revocation sets it to now)."""
    tags = tag_map(image)
    return (
        is_foundation_name(image.get("Name"), runtime)
        and tags.get("ManagedBy") == MANAGED_BY
        and tags.get("Layer") == LAYER_FOUNDATION
        and image.get("State") == "available"
        and not tags.get("Revoked")
        and not is_deprecated(image.get("DeprecationTime"), now)
    )


def is_deprecated(deprecation_time: str | None, now: datetime | None = None) -> bool:
    """True if EC2's ``DeprecationTime`` (ISO 8601, UTC) has passed."""
    if not deprecation_time:
        return False
    now = now or datetime.now(UTC)
    try:
        when = datetime.fromisoformat(deprecation_time.replace("Z", "+00:00"))
    except ValueError:
        return True  # unreadable: do not build on it
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when <= now


def newest_foundation(images: list[dict], runtime: str, now: datetime | None = None) -> dict | None:
    """The newest usable foundation of ``runtime`` among ``images`` (by name: its build time)."""
    usable = [i for i in images if is_usable_foundation(i, runtime, now)]
    return max(usable, key=lambda i: i["Name"], default=None)


def foundation_of(image: dict) -> Foundation:
    tags = tag_map(image)
    return Foundation(
        ami=image["ImageId"],
        name=image["Name"],
        build_time=tags.get("BuildTime", ""),
        digest=tags.get("TemplateDigest", ""),
        runtime=tags.get("Runtime", ""),
    )


def find_foundations(ec2, runtime: str, name: str | None = None) -> list[dict]:
    """This account's managed foundations of ``runtime`` (or the one called ``name``)."""
    return ec2.describe_images(
        Owners=["self"],
        Filters=[
            {"Name": "name", "Values": [name or foundation_name_filter(runtime)]},
            {"Name": "tag:ManagedBy", "Values": [MANAGED_BY]},
            {"Name": "tag:Layer", "Values": [LAYER_FOUNDATION]},
        ],
    )["Images"]


def pinned_foundation_problem(images: list[dict], name: str, runtime: str) -> str | None:
    """Why the foundation ``name`` (``image.foundation``) cannot be built on, or None."""
    if not is_foundation_name(name):
        return f"{name!r} is not a foundation name (golden-foundation-<runtime>-<YYYYMMDDThhmmssZ>)"
    if not is_foundation_name(name, runtime):
        return f"{name} is not a foundation of runtime {runtime}"
    named = [i for i in images if i.get("Name") == name]
    if not named:
        return f"no foundation image called {name} in this account and region"
    if not any(is_usable_foundation(i, runtime) for i in named):
        reason = tag_map(named[0]).get("Revoked")
        return f"{name} is revoked ({reason})" if reason else f"{name} is deprecated or unavailable"
    return None


def lineage_variables(foundation: Foundation) -> dict[str, str]:
    """The Packer variables of an application bake that name its foundation."""
    return {
        "foundation_ami": foundation.ami,
        "foundation_name": foundation.name,
        "foundation_build_time": foundation.build_time,
    }


def application_description(
    service: str, version: str, foundation: Foundation, extra: str = ""
) -> str:
    """The application image's description: the only lineage other accounts can read (tags are
    the owner's). ``extra`` (e.g. the package digest) comes after the foundation name. Raises
    ValueError past EC2's 255 characters rather than cutting the lineage off."""
    text = f"{service} {version} on {foundation.name}"
    if extra:
        text += f"; {extra}"
    if len(text) > DESCRIPTION_MAX:
        raise ValueError(
            f"the image description would be {len(text)} characters, EC2 takes {DESCRIPTION_MAX}"
        )
    return text


def foundation_description(runtime: str, build_time: str) -> str:
    return f"golden-fleet foundation ({runtime}): CIS-hardened Debian 12, built {build_time}"


# Local mode: a foundation's provisioned root, kept under the cache and keyed by its AMI id in the
# local EC2 API, so an application bake starts from a copy of it instead of provisioning again.


def foundation_root(cache: Path, ami: str) -> Path:
    return cache / FOUNDATIONS_DIR / ami / "rootfs"


def keep_foundation_root(root: Path, cache: Path, ami: str, endpoint: str) -> Path:
    """Move a foundation bake's provisioned root into the cache (a rename on one file system);
    its record names the API it belongs to, so another emulator's bake never prunes it."""
    entry = cache / FOUNDATIONS_DIR / ami
    partial = entry.with_name(f"{ami}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        try:
            root.rename(partial / "rootfs")
        except OSError:  # another file system: copy, then drop the original
            subprocess.run(["cp", "-a", str(root), str(partial / "rootfs")], check=True)
            shutil.rmtree(root, ignore_errors=True)
        (partial / ROOT_RECORD).write_text(json.dumps({"ami": ami, "endpoint": endpoint}) + "\n")
        shutil.rmtree(entry, ignore_errors=True)
        partial.rename(entry)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return entry / "rootfs"


def copy_root(source: Path, target: Path) -> None:
    """A full, independent copy of a root (--reflink=auto shares blocks on file systems that can,
    and copies elsewhere; never hard links, which would let the application bake write through
    into the foundation)."""
    # The resolved source: `cp -a` copies a symbolic link as a link, and a cache directory may
    # link the machine's cached tree in (the tests do); a build host that is a link would
    # provision that tree itself.
    subprocess.run(
        ["cp", "-a", "--reflink=auto", str(source.resolve()), str(target)],
        check=True,
        stdin=subprocess.DEVNULL,
    )


def kept_roots(cache: Path) -> dict[str, dict]:
    """The kept foundation roots: AMI id -> record (endpoint)."""
    records: dict[str, dict] = {}
    for record in sorted((cache / FOUNDATIONS_DIR).glob(f"*/{ROOT_RECORD}")):
        try:
            records[record.parent.name] = json.loads(record.read_text())
        except (OSError, ValueError):
            records[record.parent.name] = {}
    return records


def stale_roots(
    records: dict[str, dict],
    endpoint: str,
    existing: set[str],
    answers: Callable[[str], bool] = lambda endpoint: True,
) -> list[str]:
    """Kept roots whose image is gone: of ``endpoint``, those whose AMI it no longer has
    (deregistered, or the API restarted and lost its images); of another API, those whose API
    no longer ``answers`` (stopped: moto keeps its images in memory only, so they went with it)."""
    return [
        ami
        for ami, record in records.items()
        if (record.get("endpoint") == endpoint and ami not in existing)
        or (record.get("endpoint") != endpoint and not answers(str(record.get("endpoint"))))
    ]


def superseded_roots(
    records: dict[str, dict], endpoint: str, foundations: list[dict], newest: str
) -> list[str]:
    """Kept roots of ``endpoint`` whose image is one of ``foundations`` (one runtime's) other
    than ``newest``: an application bake builds on the newest, so only its root is kept (about
    0.45 GB each); pinning an older one locally means baking a foundation again."""
    of_runtime = {image["ImageId"] for image in foundations}
    return [
        ami
        for ami, record in records.items()
        if record.get("endpoint") == endpoint and ami in of_runtime and ami != newest
    ]


def endpoint_answers(endpoint: str) -> bool:
    """True if something listens on the loopback port of a local API's URL."""
    match = re.fullmatch(r"http://127\.0\.0\.1:([0-9]{1,5})/?", endpoint)
    if match is None:
        return True  # not a local API of ours: never judged
    return port_open(int(match.group(1)))


def remove_roots(cache: Path, amis: list[str] | None = None) -> list[Path]:
    """Remove the kept roots of ``amis`` (all of them for None) and any partial one."""
    base = cache / FOUNDATIONS_DIR
    removed = []
    for entry in sorted(base.glob("*")) if base.is_dir() else []:
        if amis is None or entry.name in amis or entry.name.endswith(".partial"):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed
