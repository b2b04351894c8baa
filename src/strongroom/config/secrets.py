"""Secret references: how configuration names a secret without containing it.

A secret field holds a *reference*, never the secret itself:

- ``env:NAME``: the value of the environment variable ``NAME``;
- ``file:/absolute/path``: the content of that file, without its trailing newline(s).

References are checked when the configuration is validated (:func:`parse_secret_reference`)
and resolved only when the secret is needed (:func:`resolve_secret`). Every resolved value is
registered with :func:`strongroom.logs.register_secret`, so no log line ever shows it. Errors
name the reference, never the secret.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Final, Literal

from strongroom.errors import ConfigError, SecretError
from strongroom.logs import register_secret

SECRET_REFERENCE_PATTERN: Final = r"^(env:[A-Za-z_][A-Za-z0-9_]*|file:/.+)$"  # noqa: S105 - a pattern
"""The JSON Schema pattern of a secret reference (the checks below are the authority)."""

_ENV_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_HOW_TO_REFER: Final = (
    "write a reference instead: env:NAME (an environment variable) "
    "or file:/absolute/path (a file holding only the secret)"
)


@dataclass(frozen=True, slots=True)
class SecretReference:
    """A parsed reference: ``kind`` is ``env`` or ``file``, ``target`` the variable or path."""

    kind: Literal["env", "file"]
    target: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.target}"


def parse_secret_reference(value: str) -> SecretReference:
    """Parse ``env:NAME`` or ``file:/path``.

    Raises :class:`~strongroom.errors.ConfigError` for anything else, including a literal
    secret; the message never repeats the value, which may be the secret itself.
    """
    if value.startswith("env:"):
        name = value.removeprefix("env:")
        if not _ENV_NAME.fullmatch(name):
            raise ConfigError(
                "an env: reference needs a variable name made of letters, digits and '_' "
                "(for example env:PGPASSWORD)"
            )
        return SecretReference("env", name)
    if value.startswith("file:"):
        path = value.removeprefix("file:")
        if not path.startswith("/"):
            raise ConfigError(
                "a file: reference needs an absolute path (for example file:/run/secrets/db)"
            )
        return SecretReference("file", str(PurePosixPath(path)))
    raise ConfigError(f"a literal secret is not allowed in the configuration; {_HOW_TO_REFER}")


def is_secret_reference(value: str) -> bool:
    """Tell whether ``value`` is a well-formed secret reference."""
    try:
        parse_secret_reference(value)
    except ConfigError:
        return False
    return True


def resolve_secret(reference: str) -> str:
    """Return the secret a reference names, registered for masking in logs.

    Given ``env:NAME`` or ``file:/path``; a file's trailing newlines are removed. Raises
    :class:`~strongroom.errors.SecretError` (naming the reference, not the value) when the
    variable is unset or empty, or the file is missing, unreadable, not UTF-8 or empty, and
    :class:`~strongroom.errors.ConfigError` when ``reference`` is not a reference at all.
    """
    parsed = parse_secret_reference(reference)
    if parsed.kind == "env":
        value = os.environ.get(parsed.target)
        if value is None:
            raise SecretError(f"secret reference {parsed}: environment variable is not set")
    else:
        try:
            value = Path(parsed.target).read_text(encoding="utf-8").rstrip("\r\n")
        except FileNotFoundError as exc:
            raise SecretError(f"secret reference {parsed}: file does not exist") from exc
        except UnicodeDecodeError as exc:
            raise SecretError(f"secret reference {parsed}: file is not UTF-8 text") from exc
        except OSError as exc:
            raise SecretError(
                f"secret reference {parsed}: file cannot be read ({exc.strerror or 'error'})"
            ) from exc
    if not value:
        raise SecretError(f"secret reference {parsed}: the secret is empty")
    register_secret(value)
    return value
