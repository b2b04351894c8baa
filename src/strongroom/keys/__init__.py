"""Infrastructure layer: key providers that unwrap a vault master key (passphrase, key file, environment).

Public API:

- key material and providers: :class:`KeyMaterial`, :class:`KeyProvider`,
  :class:`PassphraseProvider`, :class:`KeyFileProvider`, :class:`EnvKeyProvider`,
  :class:`StaticKeyProvider`, :func:`generate_key_text`, :func:`write_key_file`;
- wrappings of a master key: :func:`wrap_master_key`, :func:`parse_wrapping`,
  :class:`KeyWrapping`, with :class:`KdfSettings` choosing how passphrases are stretched.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from strongroom.keys.kdf import KdfSettings
    from strongroom.keys.material import (
        KeyKind,
        KeyMaterial,
        generate_key_text,
        key_material_from_text,
        passphrase_material,
        write_key_file,
    )
    from strongroom.keys.providers import (
        EnvKeyProvider,
        KeyFileProvider,
        KeyProvider,
        PassphraseProvider,
        StaticKeyProvider,
    )
    from strongroom.keys.wrapping import (
        MASTER_KEY_BYTES,
        KeyWrapping,
        canonical_json,
        new_key_id,
        parse_aware_time,
        parse_wrapping,
        wrap_master_key,
    )

_HOMES = {
    "EnvKeyProvider": "strongroom.keys.providers",
    "KdfSettings": "strongroom.keys.kdf",
    "KeyFileProvider": "strongroom.keys.providers",
    "KeyKind": "strongroom.keys.material",
    "KeyMaterial": "strongroom.keys.material",
    "KeyProvider": "strongroom.keys.providers",
    "KeyWrapping": "strongroom.keys.wrapping",
    "MASTER_KEY_BYTES": "strongroom.keys.wrapping",
    "PassphraseProvider": "strongroom.keys.providers",
    "StaticKeyProvider": "strongroom.keys.providers",
    "canonical_json": "strongroom.keys.wrapping",
    "generate_key_text": "strongroom.keys.material",
    "key_material_from_text": "strongroom.keys.material",
    "new_key_id": "strongroom.keys.wrapping",
    "parse_aware_time": "strongroom.keys.wrapping",
    "parse_wrapping": "strongroom.keys.wrapping",
    "passphrase_material": "strongroom.keys.material",
    "wrap_master_key": "strongroom.keys.wrapping",
    "write_key_file": "strongroom.keys.material",
}
"""Where each public name lives: the package imports a module on first use of one of its
names, so ``strongroom.keys.derive`` can start a derivation before pydantic and
``cryptography`` are loaded."""


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


__all__ = [
    "MASTER_KEY_BYTES",
    "EnvKeyProvider",
    "KdfSettings",
    "KeyFileProvider",
    "KeyKind",
    "KeyMaterial",
    "KeyProvider",
    "KeyWrapping",
    "PassphraseProvider",
    "StaticKeyProvider",
    "canonical_json",
    "generate_key_text",
    "key_material_from_text",
    "new_key_id",
    "parse_aware_time",
    "parse_wrapping",
    "passphrase_material",
    "wrap_master_key",
    "write_key_file",
]
