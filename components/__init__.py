"""golden-fleet components and the validated stack-config model.

The names below load on first use (PEP 562 ``__getattr__``), so importing one light module such
as ``components.image_contract`` or ``components.alarm_names`` does not pull in pulumi and
pydantic: the bake and the release command import the image contract on their own.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "BlueGreenService": "components.blue_green_service",
    "BlueGreenServiceArgs": "components.blue_green_service",
    "ColorArgs": "components.blue_green_service",
    "Color": "components.config",
    "ConfigError": "components.config",
    "StackConfig": "components.config",
    "parse_stack_config": "components.config",
    "Fleet": "components.fleet",
    "FleetArgs": "components.fleet",
    "GoldenImage": "components.golden_image",
    "GoldenImageArgs": "components.golden_image",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'components' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
