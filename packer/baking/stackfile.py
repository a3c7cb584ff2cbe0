"""`--stack NAME`: the bake's service, region, var file, runtime, pinned foundation, package, health
check path and port read from the stack's own file (Pulumi.<NAME>.yaml), so a local bake makes
the image that stack would run.

Only the keys the bake needs are read, with the program's names for them (components/config.py
validates the whole file; this reads it without pulumi or pydantic, as the bake runs without
them). Explicit options on the command line win over the file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from baking.layout import REPO_DIR

_STACK = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


@dataclass(frozen=True)
class StackBake:
    service: str | None
    region: str | None
    var_file: Path | None
    runtime: str | None
    foundation: str | None
    # image.app and service.healthCheckPath: the package the program's bake command passes.
    package: str | None = None
    package_sha256_from: str | None = None
    package_unit: str | None = None
    health_check_path: str | None = None
    # service.port: where the image tests ask the service, as the load balancer will.
    port: int | None = None


def stack_file(stack: str, repo: Path = REPO_DIR) -> Path:
    if not _STACK.fullmatch(stack):
        raise ValueError(f"--stack {stack!r}: expected a stack name such as staging")
    path = repo / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        raise ValueError(f"--stack {stack}: {path.name} not found in {repo}")
    return path


def read_stack(stack: str, repo: Path = REPO_DIR) -> StackBake:
    """What the stack's file says about its image; ValueError naming the key on bad input."""
    from ruamel.yaml.error import YAMLError

    from components import bounded_yaml

    path = stack_file(stack, repo)
    try:
        # Within the bounds every reader of a stack file keeps (size, aliases, depth): an
        # InputLimitError is a ValueError naming the file and the rule.
        document = bounded_yaml.safe_load(bounded_yaml.read_text(path), path.name) or {}
    except UnicodeDecodeError as error:
        raise ValueError(f"{path.name}: byte {error.start} is not UTF-8") from None
    except YAMLError as error:
        raise ValueError(f"{path.name}: not YAML: {' '.join(str(error).split())[:160]}") from None
    config = document.get("config") if isinstance(document, dict) else None
    if not isinstance(config, dict):
        raise ValueError(f"{path.name}: no `config` mapping")

    def section(key: str) -> dict:
        value = config.get(key) or {}
        if not isinstance(value, dict):
            raise ValueError(f"{path.name}: {key} must be a mapping")
        return value

    def text(value: object, key: str) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            raise ValueError(f"{path.name}: {key} must be a non-empty string")
        return value

    service = section("golden-fleet:service")
    image = section("golden-fleet:image")
    var_file = text(image.get("varFile"), "golden-fleet:image.varFile")
    app = image.get("app") or {}
    if not isinstance(app, dict):
        raise ValueError(f"{path.name}: golden-fleet:image.app must be a mapping")
    return StackBake(
        service=text(service.get("name"), "golden-fleet:service.name"),
        region=text(config.get("aws:region"), "aws:region"),
        var_file=(repo / var_file).resolve() if var_file else None,
        runtime=text(image.get("runtime"), "golden-fleet:image.runtime"),
        foundation=text(image.get("foundation"), "golden-fleet:image.foundation"),
        package=text(app.get("package"), "golden-fleet:image.app.package"),
        package_sha256_from=text(app.get("sha256"), "golden-fleet:image.app.sha256"),
        package_unit=text(app.get("unit"), "golden-fleet:image.app.unit"),
        health_check_path=text(
            service.get("healthCheckPath"), "golden-fleet:service.healthCheckPath"
        ),
        port=_port(service.get("port"), path.name),
    )


def _port(value: object, file_name: str) -> int | None:
    """service.port as the program reads it: an integer (YAML's 8080; a bool is not one)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise ValueError(
            f"{file_name}: golden-fleet:service.port must be a port number 1-65535, not {value!r}"
        )
    return value
