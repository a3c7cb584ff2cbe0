"""Reads the running stack's config, the only place the program touches ``pulumi.Config``."""

from __future__ import annotations

import json
from typing import Any

from pulumi.runtime import config as runtime_config

from components.config import NAMESPACE, StackConfig, parse_stack_config


def _decode(value: Any) -> Any:
    # Structured values arrive JSON-encoded; plain strings may not be JSON at all.
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def read_stack_config() -> StackConfig:
    """Every ``golden-fleet:*`` key (so typos are refused, not ignored) plus ``aws:region``.

    The engine hands config to the program either through ``PULUMI_CONFIG`` or by setting it
    in-process; both are read.
    """
    values = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    wanted = {
        key: _decode(value)
        for key, value in values.items()
        if key.startswith(f"{NAMESPACE}:") or key == "aws:region"
    }
    # Which keys the engine holds as secrets, by the same two channels.
    secret_keys = set(runtime_config.get_config_secret_keys_env()) | {
        key for key in wanted if runtime_config.is_config_secret(key)
    }
    return parse_stack_config(wanted, secret_keys)
