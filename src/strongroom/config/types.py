"""Building blocks shared by the configuration models.

The strict base model (unknown keys are errors, inputs never echoed in error text), the
constrained string types (names, tags, absolute paths, secret references) and the checks
of blob-store URLs. Each type carries its JSON Schema so that the generated schema says
what the validators check.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Final
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    StringConstraints,
    ValidationError,
    WithJsonSchema,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from strongroom.config.secrets import SECRET_REFERENCE_PATTERN, parse_secret_reference
from strongroom.errors import ConfigError


class ConfigModel(BaseModel):
    """Base of every configuration model: unknown keys are errors, instances are immutable.

    ``hide_input_in_errors`` keeps values (which may be mistyped secrets) out of the text
    of validation errors.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


def _pattern(pattern: str, error_type: str, message: str) -> AfterValidator:
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise PydanticCustomError(error_type, message)
        return value

    return AfterValidator(check)


NAME_PATTERN: Final = r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}"

Name = Annotated[
    str,
    _pattern(
        NAME_PATTERN,
        "name",
        "a name is 1 to 63 letters, digits, '.', '_' or '-', starting with a letter or digit",
    ),
    WithJsonSchema({"type": "string", "pattern": f"^{NAME_PATTERN}$", "maxLength": 63}),
]
"""The name of a vault, resource, plan or selection."""

RULE_NAME_PATTERN: Final = r"[A-Za-z0-9._-]{1,50}"

RuleName = Annotated[
    str,
    _pattern(
        RULE_NAME_PATTERN,
        "rule_name",
        "a rule name is 1 to 50 letters, digits, '.', '_' or '-' (as in AWS Backup)",
    ),
    WithJsonSchema({"type": "string", "pattern": f"^{RULE_NAME_PATTERN}$", "maxLength": 50}),
]
"""The name of a rule inside a plan (AWS Backup's RuleName pattern)."""

TagKey = Annotated[str, StringConstraints(min_length=1, max_length=128)]
TagValue = Annotated[str, StringConstraints(max_length=256)]
TagMap = dict[TagKey, TagValue]
"""Tags: keys 1-128 characters, values up to 256 (the limits AWS Backup uses)."""


def _check_secret_reference(value: str) -> str:
    try:
        parse_secret_reference(value)
    except ConfigError as exc:
        raise PydanticCustomError("secret_reference", str(exc)) from None
    return value


SecretRef = Annotated[
    str,
    AfterValidator(_check_secret_reference),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": SECRET_REFERENCE_PATTERN,
            "examples": ["env:PGPASSWORD", "file:/run/secrets/db-password"],
        }
    ),
]
"""A reference to a secret (``env:NAME`` or ``file:/path``); a literal secret is refused."""


def _check_absolute_path(value: str) -> str:
    if not value.startswith("/"):
        raise PydanticCustomError(
            "absolute_path", "an absolute path is required (it must start with '/')"
        )
    return value


AbsolutePath = Annotated[
    str,
    AfterValidator(_check_absolute_path),
    WithJsonSchema({"type": "string", "pattern": "^/"}),
]
"""A filesystem path that does not depend on the working directory of the daemon."""

STORE_SCHEMES: Final = ("file", "s3", "memory")
_BUCKET: Final = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def check_store_url(url: str) -> str:
    """Check a blob-store URL: ``file:///abs/path``, ``s3://bucket[/prefix]`` or ``memory://name``.

    Returns the URL unchanged; raises :class:`PydanticCustomError` (type ``store_url``)
    naming what is wrong. Credentials in the URL are refused: they go in secret references.
    """
    try:
        parts = urlsplit(url)
        has_credentials = parts.username is not None or parts.password is not None
    except ValueError:
        raise PydanticCustomError("store_url", "not a valid URL") from None
    if parts.scheme not in STORE_SCHEMES:
        raise PydanticCustomError(
            "store_url",
            "unsupported store URL scheme; use file:///absolute/path, s3://bucket/prefix "
            "or memory://name",
        )
    if has_credentials:
        raise PydanticCustomError(
            "store_url",
            "credentials are not allowed in a store URL; use secret references in the "
            "store's settings",
        )
    if parts.query or parts.fragment:
        raise PydanticCustomError(
            "store_url", "a store URL takes no query or fragment; use the store's settings"
        )
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise PydanticCustomError(
                "store_url", "a file URL needs an absolute path: file:///absolute/path"
            )
    elif parts.scheme == "s3":
        if not _BUCKET.fullmatch(parts.netloc):
            raise PydanticCustomError(
                "store_url",
                "an s3 URL needs a bucket name (3-63 lowercase letters, digits, '.', '-'): "
                "s3://bucket/prefix",
            )
    elif not parts.netloc:
        raise PydanticCustomError("store_url", "a memory URL needs a name: memory://name")
    return url


StoreUrl = Annotated[
    str,
    AfterValidator(check_store_url),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": "^(file|s3|memory)://",
            "examples": ["file:///var/lib/strongroom/vault", "s3://bucket/prefix", "memory://t"],
        }
    ),
]
"""Where a vault (or its cold tier) stores blobs."""


def repeats(items: Sequence[str]) -> list[tuple[int, str]]:
    """Return ``(index, item)`` for each item that repeats an earlier one."""
    seen: set[str] = set()
    found: list[tuple[int, str]] = []
    for index, item in enumerate(items):
        if item in seen:
            found.append((index, item))
        seen.add(item)
    return found


Location = tuple[str | int, ...]
"""A position inside the configuration: keys and list indexes from the root of a model."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem a model validator found: where (relative to the model), a code, a message."""

    location: Location
    code: str
    message: str


def raise_problems(title: str, problems: Sequence[Problem]) -> None:
    """Raise one :class:`ValidationError` carrying every problem at its own location.

    Used by model validators so that cross-field errors point at the field to fix (pydantic
    prefixes the locations with the model's own position when the model is nested).
    Does nothing when ``problems`` is empty.
    """
    if problems:
        raise ValidationError.from_exception_data(
            title,
            [
                InitErrorDetails(
                    type=PydanticCustomError(problem.code, problem.message),
                    loc=problem.location,
                    input=None,
                )
                for problem in problems
            ],
        )
