"""Configuration problems as users see them: a dotted path, a message, a line.

:class:`Finding` is a problem at a location (keys and indexes from the document root);
:class:`ConfigIssue` is the same problem rendered for a file (``plans.prod.rules[1].
target_vault``) with its line. :func:`findings_from_validation_error` turns pydantic's
errors into findings whose locations follow the document (pydantic's union-tag segments
removed) and whose messages say what to change.
"""

from __future__ import annotations

import difflib
import json
import re
import types
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal, Union, get_args, get_origin

from pydantic import BaseModel, Tag, ValidationError

from strongroom.config.types import Location
from strongroom.errors import ConfigError, StrongroomError, UnsupportedError

Severity = Literal["error", "warning"]
UNSUPPORTED: Final = "unsupported"
"""The code of findings about features strongroom refuses (raised as UnsupportedError)."""

_PLAIN_KEY: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem at a location (keys and list indexes from the document root)."""

    location: Location
    code: str
    message: str
    severity: Severity = "error"


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One problem of a configuration file, ready to show.

    ``path`` is dotted (``plans.prod.rules[1].target_vault``, empty for the whole
    document), ``line`` is 1-based (None when unknown), ``code`` names the kind of problem
    (pydantic's error type, or strongroom's own such as ``duplicate_key``,
    ``unknown_vault``, ``unsupported``).
    """

    path: str
    message: str
    line: int | None = None
    severity: Severity = "error"
    code: str = "invalid"

    def render(self, source: str) -> str:
        """Return ``FILE:LINE: path: message`` (``warning:`` marks warnings)."""
        where = source if self.line is None else f"{source}:{self.line}"
        parts = [where]
        if self.path:
            parts.append(self.path)
        parts.append(f"warning: {self.message}" if self.severity == "warning" else self.message)
        return ": ".join(parts)


def format_path(location: Iterable[str | int]) -> str:
    """Render a location as ``plans.prod.rules[1].target_vault``.

    Keys that are not plain identifiers are quoted (``vaults["eu.prod"]``).
    """
    text = ""
    for segment in location:
        if isinstance(segment, int):
            text += f"[{segment}]"
        elif _PLAIN_KEY.fullmatch(segment):
            text += f".{segment}" if text else segment
        else:
            text += f"[{json.dumps(segment, ensure_ascii=False)}]"
    return text


def error_for(source: str, issues: Sequence[ConfigIssue]) -> StrongroomError:
    """Build the exception for a file with errors: every error on its own line.

    :class:`~strongroom.errors.UnsupportedError` when one of them refuses an unsupported
    feature, :class:`~strongroom.errors.ConfigError` otherwise.
    """
    errors = [issue for issue in issues if issue.severity == "error"]
    count = f"{len(errors)} error{'s' if len(errors) != 1 else ''}"
    message = "\n".join(
        [f"{source}: invalid configuration ({count})"] + [issue.render(source) for issue in errors]
    )
    if any(issue.code == UNSUPPORTED for issue in errors):
        return UnsupportedError(
            message, hint="Remove the fields strongroom cannot honour, then load the file again."
        )
    return ConfigError(message)


# -- pydantic errors --------------------------------------------------------------------

_GENERIC_MESSAGES: Final = {
    "model_type": "expected a mapping (key: value lines)",
    "model_attributes_type": "expected a mapping (key: value lines)",
    "dict_type": "expected a mapping (key: value lines)",
    "list_type": "expected a list (lines starting with '- ')",
}


def _unwrap(annotation: Any) -> Any:
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    return annotation


def _union_members(annotation: Any) -> list[Any]:
    if get_origin(annotation) in (Union, types.UnionType):
        return list(get_args(annotation))
    return []


def _member_for(members: list[Any], segment: str | int) -> Any | None:
    for member in members:
        if get_origin(member) is Annotated and any(
            isinstance(meta, Tag) and meta.tag == segment for meta in get_args(member)[1:]
        ):
            return get_args(member)[0]
        model = _unwrap(member)
        if isinstance(model, type) and issubclass(model, BaseModel):
            for field in model.model_fields.values():
                if get_origin(field.annotation) is Literal and get_args(field.annotation) == (
                    segment,
                ):
                    return model
    return None


def _step(annotation: Any, segment: str | int) -> tuple[Any | None, bool]:
    """Follow one location segment from ``annotation``.

    Returns the annotation reached (None when lost) and whether the segment was a union
    tag that pydantic inserts into locations (not a key of the document).
    """
    annotation = _unwrap(annotation)
    members = [m for m in _union_members(annotation) if _unwrap(m) is not type(None)]
    if len(members) > 1:
        chosen = _member_for(members, segment)
        return (chosen, True) if chosen is not None else (None, False)
    if len(members) == 1:
        annotation = _unwrap(members[0])
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        fields = {(field.alias or name): field for name, field in annotation.model_fields.items()}
        field = fields.get(str(segment))
        return (field.annotation if field is not None else None), False
    if get_origin(annotation) is dict:
        return get_args(annotation)[1], False
    if get_origin(annotation) is list:
        return get_args(annotation)[0], False
    return None, False


def _annotation_at(root: type[BaseModel], location: Sequence[str | int]) -> Any | None:
    """Follow a pydantic error location through the model classes; None when lost."""
    annotation: Any = root
    for segment in location:
        annotation, _ = _step(annotation, segment)
        if annotation is None:
            return None
    return _unwrap(annotation)


def _tags_at(root: type[BaseModel], location: Sequence[str | int], discriminator: str) -> list[str]:
    tags: list[str] = []
    for member in _union_members(_annotation_at(root, location)):
        model = _unwrap(member)
        if isinstance(model, type) and issubclass(model, BaseModel):
            field = model.model_fields.get(discriminator)
            if field is not None and get_origin(field.annotation) is Literal:
                tags += [str(value) for value in get_args(field.annotation)]
    return tags


def _allowed_keys(root: type[BaseModel], location: Sequence[str | int]) -> list[str]:
    annotation = _annotation_at(root, location)
    members = [_unwrap(m) for m in _union_members(annotation)] or [annotation]
    keys: list[str] = []
    for member in members:
        if isinstance(member, type) and issubclass(member, BaseModel):
            keys += [field.alias or name for name, field in member.model_fields.items()]
    return keys


def _document_location(
    location: Sequence[str | int], root: type[BaseModel]
) -> tuple[Location, bool]:
    """Map a pydantic location onto the document; tell whether it ends at a mapping key.

    The union tags pydantic inserts (``resources.db.postgres.port``) are dropped, found by
    following the location through the model classes.
    """
    path: list[str | int] = []
    annotation: Any | None = root
    for segment in location:
        if segment == "[key]":
            return tuple(path), True
        is_tag = False
        if annotation is not None:
            annotation, is_tag = _step(annotation, segment)
        if not is_tag:
            path.append(segment)
    return tuple(path), False


def _message(error: Mapping[str, Any], root: type[BaseModel], key_error: bool) -> str:
    kind = error["type"]
    context = error.get("ctx") or {}
    location = error["loc"]
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden":
        allowed = _allowed_keys(root, location[:-1])
        close = difflib.get_close_matches(str(location[-1]), allowed, n=1)
        return (
            "unknown key"
            + (f" (did you mean {close[0]!r}?)" if close else "")
            + (f"; allowed keys: {', '.join(allowed)}" if allowed and not close else "")
        )
    if kind == "union_tag_not_found":
        discriminator = str(context.get("discriminator", "")).strip("'")
        tags = _tags_at(root, location, discriminator)
        return f"the key {discriminator!r} is required: it says which kind this is" + (
            f" (one of {', '.join(tags)})" if tags else ""
        )
    if kind == "union_tag_invalid":
        discriminator = str(context.get("discriminator", "kind")).strip("'")
        return (
            f"unknown {discriminator} {context.get('tag')!r}; "
            f"expected one of {context.get('expected_tags')}"
        )
    if kind == "string_type" and isinstance(error.get("input"), bool):
        return (
            "expected a string, got a boolean: YAML reads true/false/yes/no/on/off as "
            "booleans; quote the value ('true')"
        )
    message = _GENERIC_MESSAGES.get(kind, str(error["msg"]))
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    return f"invalid key: {message}" if key_error else message


def findings_from_validation_error(exc: ValidationError, root: type[BaseModel]) -> list[Finding]:
    """Turn a pydantic error into findings located in the validated document.

    Given the model the document was validated against: it tells the union tags in
    pydantic's locations from document keys, and lists the allowed keys when one is unknown.
    """
    findings: list[Finding] = []
    for error in exc.errors():
        location, key_error = _document_location(error["loc"], root)
        findings.append(Finding(location, error["type"], _message(error, root, key_error)))
    return findings
