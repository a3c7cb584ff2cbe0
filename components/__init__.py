"""golden-fleet components and the validated stack-config model."""

from components.blue_green_service import (
    BlueGreenService,
    BlueGreenServiceArgs,
    ColorArgs,
)
from components.config import Color, ConfigError, StackConfig, parse_stack_config
from components.fleet import Fleet, FleetArgs
from components.golden_image import GoldenImage, GoldenImageArgs

__all__ = [
    "BlueGreenService",
    "BlueGreenServiceArgs",
    "Color",
    "ColorArgs",
    "ConfigError",
    "Fleet",
    "FleetArgs",
    "GoldenImage",
    "GoldenImageArgs",
    "StackConfig",
    "parse_stack_config",
]
