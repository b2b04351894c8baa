"""Turn a vault's key setting (a config model, never the key) into a key provider.

The catalog stores each vault's key *setting* exactly as the configuration declares it
(``provider: passphrase`` with a secret reference, ``key-file`` with a path, or ``env``
with a variable name); CLI options are translated into the same models, so there is one
representation wherever a vault was declared.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from strongroom.config.secrets import resolve_secret
from strongroom.config.vaults import EnvKey, KeyFileKey, KeyProvider, PassphraseKey
from strongroom.errors import ConfigError, SecretError
from strongroom.keys.material import write_key_file
from strongroom.keys.providers import (
    EnvKeyProvider,
    KeyFileProvider,
    PassphraseProvider,
)
from strongroom.keys.providers import (
    KeyProvider as KeyMaterialProvider,
)

_KEY_SETTING: TypeAdapter[PassphraseKey | KeyFileKey | EnvKey] = TypeAdapter(KeyProvider)


@dataclass(frozen=True)
class KeyOptions:
    """Key options as a user gives them on the command line: at most one of the two."""

    passphrase_env: str | None = None
    key_file: Path | None = None

    def setting(self) -> PassphraseKey | KeyFileKey | None:
        """Return the key setting these options name, or None when none was given."""
        if self.passphrase_env and self.key_file:
            raise ConfigError("give either --passphrase-env or --key-file, not both")
        if self.passphrase_env:
            return PassphraseKey(provider="passphrase", passphrase=f"env:{self.passphrase_env}")
        if self.key_file:
            return KeyFileKey(provider="key-file", path=str(self.key_file.expanduser().absolute()))
        return None


def parse_key_setting(data: Any) -> PassphraseKey | KeyFileKey | EnvKey:
    """Read a key setting back from the catalog's JSON; raises ``ConfigError`` if damaged."""
    try:
        return _KEY_SETTING.validate_python(data)
    except ValidationError as error:
        raise ConfigError(f"the catalog's key setting is not valid: {error}") from None


def key_provider(
    setting: PassphraseKey | KeyFileKey | EnvKey, *, create_key_file: bool = False
) -> KeyMaterialProvider:
    """Return the provider of key material a setting names.

    With ``create_key_file`` a missing key file is generated (mode 0600). Raises
    ``SecretError`` when the passphrase reference does not resolve or the key file is
    missing.
    """
    if isinstance(setting, PassphraseKey):
        passphrase = resolve_secret(setting.passphrase)
        return PassphraseProvider(passphrase, description=f"passphrase from {setting.passphrase}")
    if isinstance(setting, KeyFileKey):
        path = Path(setting.path)
        if not path.exists():
            if not create_key_file:
                raise SecretError(f"the vault key file {path} does not exist")
            path.parent.mkdir(parents=True, exist_ok=True)
            write_key_file(path)
        return KeyFileProvider(path)
    return EnvKeyProvider(setting.variable)
