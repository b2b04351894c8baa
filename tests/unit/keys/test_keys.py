"""Key material, providers and wrappings of the master key."""

from __future__ import annotations

import base64
import contextlib
import json
import secrets
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strongroom.errors import (
    ConfigError,
    ConflictError,
    IntegrityError,
    SecretError,
    UnsupportedError,
    WrongKeyError,
)
from strongroom.keys import (
    EnvKeyProvider,
    KdfSettings,
    KeyFileProvider,
    KeyMaterial,
    PassphraseProvider,
    StaticKeyProvider,
    parse_wrapping,
    passphrase_material,
    wrap_master_key,
    write_key_file,
)
from strongroom.logs import mask

FAST = KdfSettings(memory_kib=64, iterations=1, lanes=1)
VAULT_ID = "0123456789abcdef0123456789abcdef"


def test_passphrase_wrapping_round_trip() -> None:
    master = secrets.token_bytes(32)
    wrapping = wrap_master_key(
        master, passphrase_material("pw"), vault_id=VAULT_ID, label="ops", kdf=FAST
    )
    parsed = parse_wrapping(wrapping.to_bytes())
    assert parsed.unwrap(passphrase_material("pw")) == master
    assert parsed.document.label == "ops"
    assert parsed.created.tzinfo is not None


def test_wrong_passphrase_is_wrong_key() -> None:
    wrapping = wrap_master_key(
        secrets.token_bytes(32), passphrase_material("pw"), vault_id=VAULT_ID, kdf=FAST
    )
    with pytest.raises(WrongKeyError):
        parse_wrapping(wrapping.to_bytes()).unwrap(passphrase_material("other"))


def test_passphrase_is_unicode_normalised() -> None:
    master = secrets.token_bytes(32)
    composed, decomposed = "caf\u00e9", "cafe\u0301"
    wrapping = wrap_master_key(master, passphrase_material(composed), vault_id=VAULT_ID, kdf=FAST)
    assert wrapping.unwrap(passphrase_material(decomposed)) == master


def test_scrypt_wrapping_round_trip() -> None:
    master = secrets.token_bytes(32)
    kdf = KdfSettings(algorithm="scrypt", scrypt_n=1024, scrypt_r=8, scrypt_p=1)
    wrapping = wrap_master_key(master, passphrase_material("pw"), vault_id=VAULT_ID, kdf=kdf)
    parsed = parse_wrapping(wrapping.to_bytes())
    assert parsed.document.kdf.algorithm == "scrypt"
    assert parsed.unwrap(passphrase_material("pw")) == master


def test_key_material_uses_hkdf_and_kinds_do_not_mix() -> None:
    master = secrets.token_bytes(32)
    material = StaticKeyProvider(secrets.token_bytes(32)).material()
    wrapping = wrap_master_key(master, material, vault_id=VAULT_ID)
    assert wrapping.document.kdf.algorithm == "hkdf-sha256"
    assert parse_wrapping(wrapping.to_bytes()).unwrap(material) == master
    with pytest.raises(WrongKeyError):
        wrapping.unwrap(passphrase_material("pw"))


def test_altering_any_field_breaks_the_unwrap() -> None:
    wrapping = wrap_master_key(
        secrets.token_bytes(32), passphrase_material("pw"), vault_id=VAULT_ID, kdf=FAST
    )
    document = json.loads(wrapping.to_bytes())
    document["label"] = "changed"
    with pytest.raises(WrongKeyError):
        parse_wrapping(json.dumps(document).encode()).unwrap(passphrase_material("pw"))


def test_key_file_provider(tmp_path: Path) -> None:
    path = tmp_path / "vault.key"
    write_key_file(path)
    assert path.stat().st_mode & 0o777 == 0o600
    material = KeyFileProvider(path).material()
    assert material.kind == "key" and len(material.secret) == 32
    assert mask(path.read_text().strip()) == "***"
    with pytest.raises(ConflictError):
        write_key_file(path)


def test_key_file_problems(tmp_path: Path) -> None:
    with pytest.raises(SecretError):
        KeyFileProvider(tmp_path / "missing").material()
    short = tmp_path / "short"
    short.write_text(base64.b64encode(b"x" * 16).decode())
    with pytest.raises(SecretError, match="16 bytes"):
        KeyFileProvider(short).material()
    garbage = tmp_path / "garbage"
    garbage.write_text("not base64 at all!")
    with pytest.raises(SecretError) as caught:
        KeyFileProvider(garbage).material()
    assert "not base64 at all" not in str(caught.value)


def test_env_key_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    key = base64.b64encode(secrets.token_bytes(32)).decode()
    monkeypatch.setenv("SR_TEST_KEY", f"  {key}\n")
    assert EnvKeyProvider("SR_TEST_KEY").material().secret == base64.b64decode(key)
    monkeypatch.delenv("SR_TEST_KEY")
    with pytest.raises(SecretError, match="SR_TEST_KEY"):
        EnvKeyProvider("SR_TEST_KEY").material()


def test_empty_passphrase_is_refused() -> None:
    with pytest.raises(ConfigError):
        PassphraseProvider("").material()


def test_providers_do_not_show_secrets() -> None:
    assert "hunter2" not in repr(PassphraseProvider("hunter2"))
    assert "hunter2" not in repr(passphrase_material("hunter2"))


def test_out_of_bounds_kdf_parameters_are_refused_before_any_work() -> None:
    wrapping = wrap_master_key(
        secrets.token_bytes(32), passphrase_material("pw"), vault_id=VAULT_ID, kdf=FAST
    )
    document = json.loads(wrapping.to_bytes())
    document["kdf"]["memory_kib"] = 1 << 40
    with pytest.raises(IntegrityError):
        parse_wrapping(json.dumps(document).encode())
    document["kdf"] = {
        "algorithm": "scrypt",
        "salt": document["kdf"]["salt"],
        "n": 1 << 30,
        "r": 8,
        "p": 1,
    }
    with pytest.raises(IntegrityError):
        parse_wrapping(json.dumps(document).encode())


def test_newer_version_is_unsupported() -> None:
    wrapping = wrap_master_key(
        secrets.token_bytes(32), passphrase_material("pw"), vault_id=VAULT_ID, kdf=FAST
    )
    document = json.loads(wrapping.to_bytes())
    document["version"] = 2
    with pytest.raises(UnsupportedError):
        parse_wrapping(json.dumps(document).encode())


_VALID = wrap_master_key(
    bytes(32), passphrase_material("pw"), vault_id=VAULT_ID, kdf=FAST
).to_bytes()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_parse_wrapping_random_bytes(data: bytes) -> None:
    with contextlib.suppress(IntegrityError, UnsupportedError):
        parse_wrapping(data)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, len(_VALID) - 1), st.integers(1, 255), st.integers(0, len(_VALID) - 1))
def test_parse_wrapping_mutated(position: int, change: int, cut: int) -> None:
    """A wrapping with any byte changed, or cut short anywhere, never opens.

    (``tests/unit/vault/test_sealed_objects.py`` flips every bit and tries every cut.)
    """
    data = bytearray(_VALID)
    data[position] ^= change
    for candidate in (bytes(data), _VALID[:cut]):
        with pytest.raises((IntegrityError, UnsupportedError, WrongKeyError)):
            parse_wrapping(candidate).unwrap(passphrase_material("pw"))


_CONCURRENT_UNWRAPS = """
import secrets, sys, threading
from strongroom.keys import KdfSettings, parse_wrapping, passphrase_material, wrap_master_key
master = secrets.token_bytes(32)
kdf = KdfSettings(memory_kib=256, iterations=1, lanes=2)
wrapping = parse_wrapping(wrap_master_key(
    master, passphrase_material("pw"), vault_id="0123456789abcdef0123456789abcdef", kdf=kdf
).to_bytes())
failures = []
def unwrap():
    try:
        for _ in range(20):
            assert wrapping.unwrap(passphrase_material("pw")) == master
    except BaseException as exc:
        failures.append(repr(exc))
threads = [threading.Thread(target=unwrap, daemon=True) for _ in range(4)]
for thread in threads: thread.start()
for thread in threads: thread.join(60)
print(sum(thread.is_alive() for thread in threads), failures)
"""


def test_concurrent_argon2id_unwraps_neither_fail_nor_hang() -> None:
    # Unserialised, OpenSSL's Argon2id thread pool fails these with MemoryError or
    # deadlocks (more memory); a daemon opening two vaults at once would hang.
    result = subprocess.run(
        [sys.executable, "-c", _CONCURRENT_UNWRAPS],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "0 []"


def test_a_prefetched_derivation_is_what_the_unwrap_uses(monkeypatch: pytest.MonkeyPatch) -> None:
    from strongroom.keys import kdf

    master = secrets.token_bytes(32)
    wrapping = wrap_master_key(master, passphrase_material("pw"), vault_id=VAULT_ID, kdf=FAST)
    threads: list[str] = []
    real_derive = kdf._derive

    def derive(*args: object) -> bytes:
        threads.append(threading.current_thread().name)
        return real_derive(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(kdf, "_derive", derive)

    wrapping.prefetch(passphrase_material("pw"))
    assert wrapping.unwrap(passphrase_material("pw")) == master
    assert threads == ["kdf-prefetch"]  # derived once, in the background
    assert wrapping.unwrap(passphrase_material("pw")) == master
    assert threads == ["kdf-prefetch", "MainThread"]  # a prefetch serves one unwrap


def test_a_prefetch_of_the_wrong_passphrase_still_fails_the_unwrap() -> None:
    wrapping = wrap_master_key(
        secrets.token_bytes(32), passphrase_material("pw"), vault_id=VAULT_ID, kdf=FAST
    )

    wrapping.prefetch(passphrase_material("not it"))
    with pytest.raises(WrongKeyError):
        wrapping.unwrap(passphrase_material("not it"))
    key_material = KeyMaterial("key", bytes(32), "a key file")
    wrapping.prefetch(key_material)  # another kind: ignored
    with pytest.raises(WrongKeyError):
        wrapping.unwrap(key_material)


def test_errors_of_a_prefetched_derivation_reach_the_caller() -> None:
    from strongroom.keys import kdf

    params = KdfSettings().new_params("key")  # HKDF: for key material, not a passphrase
    material = passphrase_material("pw")

    kdf.prefetch_kek(params, material)
    with pytest.raises(ConfigError, match="wraps key material"):
        kdf.derive_kek(params, material)
