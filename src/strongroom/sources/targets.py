"""Restore targets: the options a restore is given, checked against the source's model.

Each source declares its restore-target model (a pydantic ``ConfigModel``: ``extra="forbid"``,
every field described) in its registry entry. :func:`parse_target` checks a target given
as a mapping (from ``strongroom restore --target KEY=VALUE`` or the API) against that
model, and :func:`target_keys` lists a model's keys for help texts and error messages.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from strongroom.errors import ConfigError

_Model = TypeVar("_Model", bound=BaseModel)


@dataclass(frozen=True)
class TargetKey:
    """One key of a restore target: its name, its type as a user writes it, what it does."""

    name: str
    kind: str
    description: str


def target_keys(model: type[BaseModel]) -> list[TargetKey]:
    """Return the keys of a restore-target model, in the order the model declares them."""
    schema = model.model_json_schema()
    properties: Mapping[str, Any] = schema.get("properties", {})
    return [
        TargetKey(name, _kind(properties.get(name, {})), field.description or "")
        for name, field in model.model_fields.items()
    ]


def _kind(schema: Mapping[str, Any]) -> str:
    """A short type name for a JSON Schema property: text, flag, number, list, mapping …"""
    if "enum" in schema:
        return "|".join(str(value) for value in schema["enum"])
    names = {"string": "text", "boolean": "flag", "integer": "number", "number": "number"}
    names |= {"array": "list", "object": "mapping"}
    options = schema.get("anyOf", [schema])
    kinds = [names.get(str(option.get("type")), "") for option in options if option]
    return " or ".join(kind for kind in dict.fromkeys(kinds) if kind) or "value"


def parse_target(model: type[_Model], target: Mapping[str, Any], type_name: str) -> _Model:
    """Check ``target`` against a source's restore-target model and return the model.

    Raises ``ConfigError`` naming each problem (``at 'key': message``) and, in its hint,
    every key the source allows.
    """
    try:
        return model.model_validate(dict(target))
    except ValidationError as exc:
        problems = "; ".join(
            f"at {'.'.join(str(part) for part in error['loc']) or 'target'!r}: "
            + ("unknown key" if error["type"] == "extra_forbidden" else error["msg"])
            for error in exc.errors()
        )
        allowed = ", ".join(model.model_fields)
        raise ConfigError(
            f"invalid {type_name} restore target: {problems} (the keys of a {type_name} "
            f"target are: {allowed})",
            hint=f"Give the target as KEY=VALUE options, e.g. --target "
            f"{next(iter(model.model_fields))}=…; 'strongroom restore --help' lists every key.",
        ) from exc
