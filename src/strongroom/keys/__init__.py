"""Infrastructure layer: key providers that unwrap a vault master key (passphrase, key file, environment).

Public API:

- key material and providers: :class:`KeyMaterial`, :class:`KeyProvider`,
  :class:`PassphraseProvider`, :class:`KeyFileProvider`, :class:`EnvKeyProvider`,
  :class:`StaticKeyProvider`, :func:`generate_key_text`, :func:`write_key_file`;
- wrappings of a master key: :func:`wrap_master_key`, :func:`parse_wrapping`,
  :class:`KeyWrapping`, with :class:`KdfSettings` choosing how passphrases are stretched.
"""

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
