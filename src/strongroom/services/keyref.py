"""Key references: how a vault's key is found, stored by reference and never by value.

A reference is ``passphrase-env:VAR`` (a passphrase in an environment variable) or
``key-file:/abs/path`` (a key file written by ``write_key_file``). The catalog stores the
reference a vault was created with, so later commands need no key option.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from strongroom.errors import ConfigError, SecretError
from strongroom.keys.material import write_key_file
from strongroom.keys.providers import KeyFileProvider, KeyProvider, PassphraseProvider
from strongroom.logs import register_secret

_PASSPHRASE_ENV = "passphrase-env:"  # noqa: S105 - a reference prefix, not a secret
_KEY_FILE = "key-file:"


@dataclass(frozen=True)
class KeyOptions:
    """Key options as a user gives them: at most one of the two."""

    passphrase_env: str | None = None
    key_file: Path | None = None

    def reference(self) -> str | None:
        """Return the reference these options name, or None when none was given."""
        if self.passphrase_env and self.key_file:
            raise ConfigError("give either --passphrase-env or --key-file, not both")
        if self.passphrase_env:
            return _PASSPHRASE_ENV + self.passphrase_env
        if self.key_file:
            return _KEY_FILE + str(self.key_file.expanduser().absolute())
        return None


def provider(reference: str, *, create_key_file: bool = False) -> KeyProvider:
    """Return the key provider a reference names.

    With ``create_key_file`` a missing key file is generated (mode 0600). Raises
    ``SecretError`` when the variable is unset or the key file is missing, ``ConfigError``
    for a malformed reference.
    """
    if reference.startswith(_PASSPHRASE_ENV):
        variable = reference.removeprefix(_PASSPHRASE_ENV)
        passphrase = os.environ.get(variable)
        if not passphrase:
            raise SecretError(
                f"the environment variable {variable} holding the vault passphrase is not set",
                hint=f"export {variable}=... (the vault's passphrase) and run the command again.",
            )
        register_secret(passphrase)
        return PassphraseProvider(passphrase, description=f"passphrase from ${variable}")
    if reference.startswith(_KEY_FILE):
        path = Path(reference.removeprefix(_KEY_FILE))
        if not path.exists():
            if not create_key_file:
                raise SecretError(f"the vault key file {path} does not exist")
            path.parent.mkdir(parents=True, exist_ok=True)
            write_key_file(path)
        return KeyFileProvider(path)
    raise ConfigError(f"unknown key reference {reference!r}")
