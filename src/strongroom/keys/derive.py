"""Passphrase derivations started before the program knows it needs them.

Opening a vault with a passphrase costs one Argon2id derivation (about 0.2 s of one core
at the default parameters), and it cannot start before the wrapping's parameters are
known. A ``vault`` command can start it as its very first act, on a thread of its own,
from what is not secret: the parameters of the wrapping that opened the vault last time
(a *hint* kept in the cache folder, see :func:`remember`) and the passphrase the command
was told to read. The rest of the program imports meanwhile.

A started derivation is only ever taken by a request for exactly the same algorithm,
parameters, salt and secret (:func:`take`), so a stale, damaged or foreign hint costs CPU
time, never a wrong key. This module imports nothing heavy (``cryptography`` is loaded by
the derivation's own thread): it runs before the command line is parsed.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import threading
import unicodedata
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from pathlib import Path
from typing import Final

KEK_BYTES: Final = 32
MAX_ARGON2_MEMORY_KIB: Final = 4 * 1024 * 1024
MAX_ARGON2_WORK_KIB: Final = 4 * 1024 * 1024
"""memory_kib * iterations at most: bounds the time a (tampered) wrapping can cost."""
MAX_ARGON2_PASSES: Final = 64
MAX_ARGON2_LANES: Final = 64
HINTS_FILE: Final = "kdf-hints.json"
MAX_HINTS_BYTES: Final = 256 * 1024
_MAX_PREFETCHED: Final = 4
_ARGON2_NUMBERS: Final = ("memory_kib", "iterations", "lanes")

ARGON2_LOCK: Final = threading.Lock()
"""One Argon2id derivation at a time per process: with cryptography 50 (OpenSSL 4), two
derivations of more than one lane running at once in one process fail (``MemoryError``)
or deadlock in OpenSSL's thread pool (see tests/unit/keys/test_keys.py), e.g. in a daemon
opening two vaults at once."""

Derivation = tuple[object, ...]
"""What identifies one derivation: algorithm, its parameters and salt, the material's kind
and secret (see :func:`argon2id_derivation`)."""

_prefetch_lock: Final = threading.Lock()
_prefetched: dict[Derivation, Future[bytes]] = {}


def argon2id_derivation(
    salt: str, memory_kib: int, iterations: int, lanes: int, secret: bytes
) -> Derivation:
    """Return the identity of an Argon2id derivation of a passphrase (``salt``: base64)."""
    return ("argon2id", salt, memory_kib, iterations, lanes, "passphrase", secret)


def argon2id(secret: bytes, salt: bytes, memory_kib: int, iterations: int, lanes: int) -> bytes:
    """Derive 32 bytes with Argon2id (RFC 9106, version 0x13), one derivation at a time.

    Raises ``ImportError`` when this ``cryptography`` has no Argon2id (it needs >= 44).
    """
    from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

    with ARGON2_LOCK:
        return Argon2id(
            salt=salt, length=KEK_BYTES, iterations=iterations, lanes=lanes, memory_cost=memory_kib
        ).derive(secret)


def start(derivation: Derivation, run: Callable[[], bytes], thread_name: str) -> None:
    """Run ``run`` on a thread of its own; the next :func:`take` of ``derivation`` gets its
    result (or its error). At most a few derivations wait to be taken; more are ignored,
    as is a second start of one that waits."""
    with _prefetch_lock:
        if derivation in _prefetched or len(_prefetched) >= _MAX_PREFETCHED:
            return
        future: Future[bytes] = Future()
        _prefetched[derivation] = future

    def work() -> None:
        try:
            future.set_result(run())
        except BaseException as exc:  # noqa: BLE001 - handed to whoever takes the derivation
            future.set_exception(exc)

    threading.Thread(target=work, name=thread_name, daemon=True).start()


def take(derivation: Derivation) -> Future[bytes] | None:
    """Return the started derivation ``derivation`` (once), or None if none was started."""
    with _prefetch_lock:
        return _prefetched.pop(derivation, None)


def remember(cache_dir: Path, vault_name: str, kdf: Mapping[str, object], env: str | None) -> None:
    """Keep, for vault ``vault_name``, the derivation parameters of the wrapping that
    opened it (``kdf`` as stored in the wrapping: nothing secret) and the environment
    variable the passphrase came from, if any.

    Best effort: a hint is an optimisation, so a cache folder that cannot be written is
    ignored. The file is replaced atomically and never holds a secret.
    """
    hint = {"kdf": dict(kdf), "passphrase_env": env}
    hints = _read_hints(cache_dir)
    if json.dumps(hints.get(vault_name), sort_keys=True) == json.dumps(hint, sort_keys=True):
        return  # unchanged (compared as JSON: True == 1 in Python, not in a hint)
    hints[vault_name] = hint
    import tempfile  # here, not at the top: the early start of a derivation waits for less

    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            "w", dir=cache_dir, prefix=".kdf-hints-", delete=False, encoding="utf-8"
        ) as handle:
            json.dump(hints, handle, sort_keys=True)
        Path(handle.name).replace(cache_dir / HINTS_FILE)
    except OSError:
        return


def start_from_hint(cache_dir: Path, vault_name: str, passphrase_env: str | None) -> bool:
    """Start the Argon2id derivation vault ``vault_name``'s hint describes, with the
    passphrase in environment variable ``passphrase_env`` (else the one the hint names).

    Returns whether a derivation was started. Nothing is started for a missing or
    malformed hint, parameters out of the bounds a wrapping may have, or an unset or
    empty variable.
    """
    hint = _read_hints(cache_dir).get(vault_name)
    if not isinstance(hint, dict):
        return False
    variable = passphrase_env or hint.get("passphrase_env")
    kdf = hint.get("kdf")
    if not isinstance(variable, str) or not isinstance(kdf, dict):
        return False
    passphrase = os.environ.get(variable)
    params = _argon2id_params(kdf)
    if not passphrase or params is None:
        return False
    salt_text, salt, memory_kib, iterations, lanes = params
    secret = unicodedata.normalize("NFC", passphrase).encode("utf-8")
    start(
        argon2id_derivation(salt_text, memory_kib, iterations, lanes, secret),
        lambda: argon2id(secret, salt, memory_kib, iterations, lanes),
        "kdf-early",
    )
    return True


def _argon2id_params(kdf: Mapping[str, object]) -> tuple[str, bytes, int, int, int] | None:
    """Return (salt text, salt, memory, passes, lanes) of a hint's Argon2id parameters if
    they are within a wrapping's bounds, else None."""
    salt_text = kdf.get("salt")
    memory_kib, iterations, lanes = (_int(kdf.get(name)) for name in _ARGON2_NUMBERS)
    if kdf.get("algorithm") != "argon2id" or not isinstance(salt_text, str):
        return None
    if memory_kib is None or iterations is None or lanes is None:
        return None
    if not (
        1 <= iterations <= MAX_ARGON2_PASSES
        and 1 <= lanes <= MAX_ARGON2_LANES
        and 8 * lanes <= memory_kib <= MAX_ARGON2_MEMORY_KIB
        and memory_kib * iterations <= MAX_ARGON2_WORK_KIB
    ):
        return None
    try:
        salt = base64.b64decode(salt_text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return None
    if not 16 <= len(salt) <= 64:
        return None
    return salt_text, salt, memory_kib, iterations, lanes


def _int(value: object) -> int | None:
    """``value`` if it is an int (not a bool), else None."""
    return value if type(value) is int else None


def _read_hints(cache_dir: Path) -> dict[str, object]:
    """The hints file as a dict; empty when it is missing, too large or not a JSON object."""
    try:
        with (cache_dir / HINTS_FILE).open("rb") as handle:
            data = handle.read(MAX_HINTS_BYTES + 1)
        hints = json.loads(data) if len(data) <= MAX_HINTS_BYTES else None
    except (OSError, ValueError):
        return {}
    return hints if isinstance(hints, dict) else {}
