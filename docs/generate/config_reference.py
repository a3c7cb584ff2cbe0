"""docs/reference/configuration.md: every key of the stack configuration, read from the model
the program and the release command validate with (components/config.py): its type, default,
rule (the field's constraints, description and attribute docstring) and the values the
repository's stack files give it."""

from __future__ import annotations

import ast
import enum
import inspect
import json
import re
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from ruamel.yaml import YAML

from components import config
from docs.generate.markdown import code, header, prose, table

ROOT = Path(__file__).resolve().parents[2]
STACK_FILES = ("staging", "prod")

INTRO = """\
# Stack configuration

Everything is under the `golden-fleet` namespace of `Pulumi.<stack>.yaml`, plus `aws:region`.
The whole config is validated before a single resource is registered, by the model the program
and `python -m release` share (`components/config.py`); each fault is reported as
`<key path>: <rule>` (e.g. `golden-fleet:fleets.green.capacity.min: must be at least 1 because
green receives 10% of traffic (traffic.green)`), all faults at once. Unknown keys (typos) are
refused, at the top level and inside every object. Validation is strict: `true`, `"60"` or
`60.0` where an integer belongs is refused, naming the key.

`Pulumi.staging.yaml` bakes (small capacity, HTTP, cold standby, access logs into its own
bucket, WAF off); `Pulumi.prod.yaml` promotes what staging baked (larger capacity, HTTPS,
deletion protection, access logs into a given bucket, WAF on, warm standby, stricter alarms:
1 % errors, 0.5 % load-balancer 5xx, 1 s p99, and a 90-minute refresh wait for its 3 x 600 s
checkpoints). Their comments show what an operator edits. The *example* column quotes them.

Each table lists the keys of one object of the config; *rule* gathers the constraints the model
checks and what the field's documentation says. How `image.app` and `app` are used:
[Bake your own service](../guides/bake-your-service.md); `release.*` is written by
[`python -m release`](release-command.md); `health.*` sets the
[health gate](../explanation/health-gate.md)'s alarms and waits.
"""


# ---------------------------------------------------------------------------------------------
# What the model says about a field
# ---------------------------------------------------------------------------------------------
def _attribute_docstrings() -> dict[str, dict[str, str]]:
    """class name -> field name -> the string literal right after the field (its docstring)."""
    tree = ast.parse(inspect.getsource(config))
    found: dict[str, dict[str, str]] = {}
    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            continue
        for stmt, after in zip(node.body, [*node.body[1:], None], strict=True):
            if (
                isinstance(stmt, ast.AnnAssign)
                and isinstance(stmt.target, ast.Name)
                and isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)
            ):
                found.setdefault(node.name, {})[stmt.target.id] = inspect.cleandoc(
                    after.value.value
                )
    return found


DOCSTRINGS = _attribute_docstrings()


def _docstring(model: type[BaseModel], name: str) -> str:
    for klass in model.__mro__:
        if name in DOCSTRINGS.get(klass.__name__, {}):
            return DOCSTRINGS[klass.__name__][name]
    return ""


def _strip_optional(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _metadata(annotation: Any) -> tuple[Any, list[Any]]:
    """An Annotated type's base and its constraint objects."""
    if typing.get_origin(annotation) is typing.Annotated:
        base, *extra = typing.get_args(annotation)
        inner_base, inner = _metadata(base)
        found = list(inner)
        for item in extra:
            found += item.metadata if isinstance(item, FieldInfo) else [item]
        return inner_base, found
    return annotation, []


def type_name(annotation: Any) -> str:
    annotation, _ = _metadata(_strip_optional(annotation))
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return "one of " + ", ".join(code(v) for v in typing.get_args(annotation))
    if inspect.isclass(annotation) and issubclass(annotation, enum.Enum):
        return "one of " + ", ".join(code(m.value) for m in annotation)
    if origin is list:
        return "list of " + type_name(typing.get_args(annotation)[0])
    if origin is dict:
        key, value = typing.get_args(annotation)
        return f"map of {type_name(key)} to {type_name(value)}"
    if annotation is bool:
        return "boolean"
    if annotation is int:
        return "integer"
    if annotation is float:
        return "number"
    if annotation is str:
        return "string"
    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        return "object"
    return str(annotation)


_BOUNDS = (
    (annotated_types.Ge, "ge", ">="),
    (annotated_types.Gt, "gt", ">"),
    (annotated_types.Le, "le", "<="),
    (annotated_types.Lt, "lt", "<"),
)


def constraints(annotation: Any, metadata: list[Any], item: bool = False) -> list[str]:
    """The checks the model's types make, in words: bounds, lengths, patterns."""
    annotation, inner = _metadata(_strip_optional(annotation))
    said = []
    for constraint in [*metadata, *inner]:
        for kind, attr, sign in _BOUNDS:
            if isinstance(constraint, kind):
                said.append(f"{sign} {getattr(constraint, attr)}")
        if isinstance(constraint, annotated_types.MinLen):
            said.append(f"at least {constraint.min_length} {'characters' if item else 'items'}")
        if isinstance(constraint, annotated_types.MaxLen):
            said.append(f"at most {constraint.max_length} items")
        pattern = getattr(constraint, "pattern", None)
        if isinstance(pattern, str):
            said.append(f"matches {code(pattern)}")
    if typing.get_origin(annotation) is list:
        inner_said = constraints(typing.get_args(annotation)[0], [], item=True)
        said += [f"each {c}" for c in inner_said]
    return said


def _constants(text: str) -> str:
    """``{NAME}`` in a field's documentation stands for the config module's constant NAME (a
    tuple of allowed values, a bound), so the page quotes the value the validator uses."""

    def value(match: re.Match[str]) -> str:
        found = getattr(config, match[1])
        if isinstance(found, tuple | list):
            return ", ".join(str(v) for v in found)
        return str(found)

    return re.sub(r"\{([A-Z][A-Z0-9_]*)\}", value, text)


def rule_text(checks: list[str], said: list[str]) -> str:
    """The checks the types make, then what the field's documentation says, as sentences."""
    said = [_constants(s) for s in said]
    joined = ", ".join(checks)
    sentences = [joined[:1].upper() + joined[1:] + "."] if checks else []
    sentences += [prose(s) if s.endswith(".") else prose(s) + "." for s in said]
    return " ".join(sentences)


def default_text(info: FieldInfo) -> str:
    if info.is_required():
        return "required"
    if info.default_factory is not None:
        value = info.default_factory()  # type: ignore[call-arg]
        return "" if isinstance(value, BaseModel) else code(json.dumps(value))
    value = info.default
    if value is None or value is PydanticUndefined:
        return "none"
    if isinstance(value, enum.Enum):
        value = value.value
    return code(value if isinstance(value, str) and value else json.dumps(value))


# ---------------------------------------------------------------------------------------------
# The stack files' values, as examples
# ---------------------------------------------------------------------------------------------
def _flatten(value: Any, path: str, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            _flatten(inner, f"{path}.{key}" if path else str(key), out)
    else:
        out[path] = value


def stack_values() -> dict[str, dict[str, Any]]:
    """key path (``golden-fleet:fleets.blue.version``, ``aws:region``) -> stack -> value."""
    values: dict[str, dict[str, Any]] = {}
    for stack in STACK_FILES:
        document = YAML(typ="safe").load((ROOT / f"Pulumi.{stack}.yaml").read_text())
        flat: dict[str, Any] = {}
        for key, value in (document.get("config") or {}).items():
            _flatten(value, str(key), flat)
        for path, value in flat.items():
            values.setdefault(path, {})[stack] = value
    return values


def in_mode(examples: dict[str, dict[str, Any]], key: str, mode: str) -> dict[str, dict[str, Any]]:
    """The examples of the stacks whose ``key`` is ``mode`` (image: bake or promote) only."""
    stacks = {stack for stack, value in examples.get(key, {}).items() if value == mode}
    return {
        path: {s: v for s, v in values.items() if s in stacks} for path, values in examples.items()
    }


def example_text(examples: dict[str, Any]) -> str:
    def show(value: Any) -> str:
        return code(value if isinstance(value, str) else json.dumps(value))

    values = list(examples.values())
    if len(examples) == len(STACK_FILES) and all(v == values[0] for v in values):
        return show(values[0])
    return "; ".join(f"{stack}: {show(value)}" for stack, value in examples.items())


# ---------------------------------------------------------------------------------------------
# Walking the model
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Section:
    title: str
    intro: str
    rows: list[tuple[str, ...]]


def _model_of(annotation: Any) -> type[BaseModel] | None:
    annotation, _ = _metadata(_strip_optional(annotation))
    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _variants(annotation: Any) -> list[type[BaseModel]]:
    """The models of a discriminated union (image: bake or promote)."""
    annotation, _ = _metadata(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        models = [m for a in typing.get_args(annotation) if (m := _model_of(a))]
        return models if len(models) > 1 else []
    return []


def _key(name: str, info: FieldInfo) -> str:
    return info.alias or name


def sections(
    model: type[BaseModel],
    path: str,
    examples: dict[str, dict[str, Any]],
    title: str,
    field_words: str = "",
) -> Iterator[Section]:
    """One section per object: its scalar keys as rows, then each nested object's section."""
    rows: list[tuple[str, ...]] = []
    nested: list[tuple[type[BaseModel], str, str, str]] = []
    for name, info in model.model_fields.items():
        key = f"{path}.{_key(name, info)}"
        if _variants(info.annotation):
            raise ValueError(f"{key}: a union below the top level is not rendered yet")
        if (inner := _model_of(info.annotation)) is not None:
            own = [w for w in (info.description, _docstring(model, name)) if w]
            nested.append((inner, key, code(key), " ".join(_constants(w) for w in own)))
            continue
        said = [w for w in (info.description, _docstring(model, name)) if w]
        rows.append(
            (
                code(key),
                type_name(info.annotation),
                default_text(info),
                rule_text(constraints(info.annotation, info.metadata), said),
                example_text(examples.get(key, {})),
            )
        )
    intro = inspect.cleandoc(model.__doc__ or "") if model.__doc__ else ""
    if intro.startswith(("A base class", "Usage docs")):  # pydantic's own docstring
        intro = ""
    intro = prose("\n\n".join(part for part in (intro, field_words) if part))
    if rows:
        yield Section(title, intro, rows)
    for inner, key, inner_title, words in nested:
        yield from sections(inner, key, examples, inner_title, words)


def render() -> str:
    examples = stack_values()
    region = config.StackConfig.model_fields["region"]
    parts = [header("components/config.py and Pulumi.staging.yaml / Pulumi.prod.yaml"), INTRO]
    head = ("key", "type", "default", "rule", "example")
    parts.append("\n## `aws:region`\n\n")
    parts.append(
        table(
            head,
            [
                (
                    code("aws:region"),
                    type_name(region.annotation),
                    "required",
                    rule_text(
                        constraints(str, region.metadata),
                        [_docstring(config.StackConfig, "region")],
                    ),
                    example_text(examples.get("aws:region", {})),
                )
            ],
        )
    )
    for key, field_name in config.CONFIG_KEYS.items():
        info = config.StackConfig.model_fields[field_name]
        path = f"{config.NAMESPACE}:{key}"
        models = _variants(info.annotation) or [_model_of(info.annotation)]
        for model in models:
            assert model is not None, key
            title, shown = code(path), examples
            if "mode" in model.model_fields:
                mode = typing.get_args(model.model_fields["mode"].annotation)[0]
                title = f"{code(path)} with `mode: {mode}`"
                shown = in_mode(examples, f"{path}.mode", mode)
            for section in sections(model, path, shown, title):
                parts.append(f"\n## {section.title}\n\n")
                if section.intro:
                    parts.append(section.intro + "\n\n")
                parts.append(table(head, section.rows))
    return "".join(parts)
