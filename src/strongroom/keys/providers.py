"""Key providers: where the material that opens a vault comes from.

A provider is anything with a ``material()`` method; three ship here: a passphrase given
by the caller, a key file, and an environment variable holding key material. Resolved
secrets are registered with :func:`strongroom.logs.register_secret` so logs mask them.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Protocol, runtime_checkable

from strongroom.errors import SecretError
from strongroom.keys.material import KeyMaterial, key_material_from_text, passphrase_material
from strongroom.logs import register_secret


@runtime_checkable
class KeyProvider(Protocol):
    """Something that yields key material on demand."""

    @property
    def description(self) -> str:
        """Where the material comes from, fit for messages (never the secret)."""
        ...

    def material(self) -> KeyMaterial:
        """Return the key material; raises ``SecretError`` when it cannot be found."""
        ...


class PassphraseProvider:
    """A passphrase the caller already resolved (typed in, or from a secret reference)."""

    def __init__(self, passphrase: str, description: str = "passphrase") -> None:
        self._passphrase = passphrase
        self._description = description
        register_secret(passphrase)

    @property
    def description(self) -> str:
        """Where the passphrase came from."""
        return self._description

    def __repr__(self) -> str:
        return f"PassphraseProvider({self._description!r})"

    def material(self) -> KeyMaterial:
        """Return the passphrase's material; raises ``ConfigError`` if it is empty."""
        return passphrase_material(self._passphrase, self._description)


class KeyFileProvider:
    """Key material read from a file holding base64 text (see ``write_key_file``)."""

    def __init__(self, path: Path) -> None:
        self._path = path

    @property
    def description(self) -> str:
        """``file:<path>``."""
        return f"file:{self._path}"

    def __repr__(self) -> str:
        return f"KeyFileProvider({str(self._path)!r})"

    def material(self) -> KeyMaterial:
        """Read and decode the file; raises ``SecretError`` if it is missing or malformed."""
        try:
            text = self._path.read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as exc:
            raise SecretError(f"cannot read the key file {self._path}: {exc}") from exc
        register_secret(text.strip())
        return key_material_from_text(text, self.description)


class EnvKeyProvider:
    """Key material (base64 text) from an environment variable."""

    def __init__(self, variable: str) -> None:
        self._variable = variable

    @property
    def description(self) -> str:
        """``env:<variable>``."""
        return f"env:{self._variable}"

    def __repr__(self) -> str:
        return f"EnvKeyProvider({self._variable!r})"

    def material(self) -> KeyMaterial:
        """Decode the variable; raises ``SecretError`` if it is unset or malformed."""
        text = os.environ.get(self._variable)
        if text is None:
            raise SecretError(f"the environment variable {self._variable} is not set")
        register_secret(text.strip())
        return key_material_from_text(text, self.description)


class StaticKeyProvider:
    """Key material held in memory (tests, and callers that manage keys themselves)."""

    def __init__(self, key: bytes, description: str = "key") -> None:
        self._text = base64.b64encode(key).decode("ascii")
        self._description = description

    @property
    def description(self) -> str:
        """The description given at construction."""
        return self._description

    def __repr__(self) -> str:
        return f"StaticKeyProvider({self._description!r})"

    def material(self) -> KeyMaterial:
        """Return the key; raises ``SecretError`` if it is shorter than 32 bytes."""
        return key_material_from_text(self._text, self._description)
