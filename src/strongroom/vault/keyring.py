"""The keys of an open vault: the master key and its data-key generations.

``open_master_key`` tries every ``keys/*`` wrapping with the caller's key material;
:class:`Keyring` loads ``datakeys/*`` generations (docs/vault-format.md §5-6).
"""

from __future__ import annotations

import base64
import binascii
import secrets
import threading
from datetime import UTC, datetime
from typing import Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from strongroom.errors import (
    ConflictError,
    IntegrityError,
    NotFoundError,
    StrongroomError,
    UnsupportedError,
    WrongKeyError,
)
from strongroom.keys import KeyMaterial, KeyWrapping, parse_aware_time, parse_wrapping
from strongroom.logs import get_logger
from strongroom.storage.base import BlobStore
from strongroom.vault.crypto import GenerationKeys, open_sealed, seal
from strongroom.vault.format import (
    DATAKEYS_PREFIX,
    KEY_BYTES,
    KEYS_PREFIX,
    MAGIC_DATAKEYS,
    MAX_GENERATION,
    datakeys_generation,
    datakeys_name,
    key_id_of,
)
from strongroom.vault.keystate import KeyState

MAX_DATAKEYS_BYTES: Final = 64 * 1024
_log = get_logger(__name__)


class _GenerationDocument(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    generation: int = Field(ge=1, le=MAX_GENERATION)
    created: str
    data_key: str = Field(max_length=64)
    id_key: str = Field(max_length=64)

    @field_validator("created")
    @classmethod
    def _aware(cls, value: str) -> str:
        parse_aware_time(value)
        return value


def encode_generation(keys: GenerationKeys, master_key: bytes, vault_id: str) -> bytes:
    """Return the sealed ``datakeys/<generation>-<vault id>`` object holding ``keys``."""
    document = _GenerationDocument(
        generation=keys.generation,
        created=datetime.now(UTC).isoformat(),
        data_key=base64.b64encode(keys.data_key).decode("ascii"),
        id_key=base64.b64encode(keys.id_key).decode("ascii"),
    )
    return seal(
        MAGIC_DATAKEYS,
        keys.generation,
        master_key,
        document.model_dump_json().encode(),
        context=datakeys_name(keys.generation, vault_id).encode("ascii"),
        compress_level=None,
    )


def decode_generation(
    data: bytes, generation: int, master_key: bytes, vault_id: str
) -> GenerationKeys:
    """Open a ``datakeys/<generation>-<vault id>`` object with the master key.

    Raises ``IntegrityError`` when it is damaged, foreign or names another generation.
    """
    what = datakeys_name(generation, vault_id)
    if len(data) > MAX_DATAKEYS_BYTES:
        raise IntegrityError(f"{what} is larger than any key generation")
    header, payload = open_sealed(
        data, MAGIC_DATAKEYS, lambda _: master_key, what, context=what.encode("ascii")
    )
    try:
        document = _GenerationDocument.model_validate_json(payload)
        data_key = base64.b64decode(document.data_key, validate=True)
        id_key = base64.b64decode(document.id_key, validate=True)
    except (ValidationError, binascii.Error, ValueError) as exc:
        raise IntegrityError(f"{what} holds a malformed document") from exc
    if header.generation != generation or document.generation != generation:
        raise IntegrityError(f"{what} holds generation {document.generation}")
    if len(data_key) != KEY_BYTES or len(id_key) != KEY_BYTES:
        raise IntegrityError(f"{what} holds keys of the wrong length")
    return GenerationKeys(generation, data_key, id_key)


Wrappings = tuple[list[KeyWrapping], dict[str, str]]
"""The parseable key wrappings of a store, and why the other key objects are not."""


def list_wrappings(store: BlobStore) -> Wrappings:
    """Return the store's parseable key wrappings and, by object name, why others are not."""
    wrappings: list[KeyWrapping] = []
    damaged: dict[str, str] = {}
    for info in store.list(KEYS_PREFIX):
        key_id = key_id_of(info.name)
        if key_id is None:
            continue
        try:
            wrapping = parse_wrapping(store.get(info.name))
        except NotFoundError:
            continue
        except (IntegrityError, UnsupportedError) as exc:
            damaged[info.name] = str(exc)
            continue
        if wrapping.key_id != key_id:
            damaged[info.name] = f"holds key id {wrapping.key_id}"
            continue
        wrappings.append(wrapping)
    return wrappings, damaged


def prefetch_master_key(store: BlobStore, material: KeyMaterial) -> Wrappings | None:
    """Start the key derivation of the first wrapping ``material`` could open, so that a
    caller can import and prepare while it runs; :func:`open_master_key` then takes its
    result. Returns the wrappings it read, for ``open_master_key`` (``listed``), or None
    when they could not be read: problems are left for ``open_master_key`` to report."""
    try:
        listed = list_wrappings(store)
    except StrongroomError:
        return None
    for wrapping in listed[0]:
        if wrapping.kind == material.kind:
            wrapping.prefetch(material)
            break
    return listed


def open_master_key(
    store: BlobStore, material: KeyMaterial, vault_id: str, listed: Wrappings | None = None
) -> tuple[bytes, KeyWrapping]:
    """Unwrap the master key with ``material``; returns it and the wrapping that opened.
    ``listed`` is what :func:`list_wrappings` returned for ``store``, if the caller has it.

    Raises ``WrongKeyError`` if no wrapping of this vault opens, ``IntegrityError`` if
    the only wrappings that could have opened are damaged.
    """
    wrappings, damaged = listed if listed is not None else list_wrappings(store)
    candidates = [
        w for w in wrappings if w.kind == material.kind and w.document.vault_id == vault_id
    ]
    for wrapping in candidates:
        try:
            return wrapping.unwrap(material), wrapping
        except WrongKeyError:
            continue
    if not candidates and damaged:
        raise IntegrityError(
            f"no intact key object of this vault opens with a {material.kind}; damaged: "
            + ", ".join(sorted(damaged))
        )
    note = f" ({len(damaged)} key objects are damaged)" if damaged else ""
    if not candidates:
        raise WrongKeyError(f"this vault has no key that opens with a {material.kind}{note}")
    # An AEAD tag that fails says "wrong key material or altered wrapping", never which.
    secret = "passphrase" if material.kind == "passphrase" else "key"
    raise WrongKeyError(
        f"{material.source} opens none of the vault's keys: wrong {secret} or damaged key "
        f"wrapping (the two cannot be told apart){note}",
        hint=f"Check the {secret}; if it is right, a key wrapping is damaged: open the vault "
        "with another of its keys and run verify. Nothing was written.",
    )


class Keyring:
    """The master key and the data-key generations of one open vault (thread-safe)."""

    def __init__(self, store: BlobStore, master_key: bytes, vault_id: str) -> None:
        self._store = store
        self._master_key = master_key
        self._vault_id = vault_id
        self._lock = threading.Lock()
        self._generations: dict[int, GenerationKeys] = {}
        self.damaged: dict[int, str] = {}
        self._state = KeyState(store, master_key, vault_id)
        self._seen = 0
        """The newest generation this client saw before (its local cache remembers it)."""

    @property
    def master_key(self) -> bytes:
        """The vault master key."""
        return self._master_key

    def refresh(self) -> None:
        """Load every generation not loaded yet, and the key state; damaged ones are
        recorded, not raised."""
        for info in self._store.list(DATAKEYS_PREFIX):
            generation = datakeys_generation(info.name, self._vault_id)
            if generation is None or generation in self._generations:
                continue
            self._load(generation)
        self._state.refresh()

    def expect(self, generation: int) -> None:
        """Require generation ``generation`` (and every older one) to exist: this client
        saw it before, so its absence is a deletion, not a vault that never had it."""
        with self._lock:
            self._seen = max(self._seen, generation)

    def newest_known(self) -> int:
        """Return the newest generation known to exist: readable, damaged, recorded in
        the key state or seen before by this client."""
        with self._lock:
            return max(
                max(self._generations, default=0),
                max(self.damaged, default=0),
                self._state.newest_generation,
                self._seen,
            )

    def problems(self) -> dict[str, str]:
        """Return what is wrong with the vault's keys by object name: damaged or missing
        generations (every generation up to the newest known must be there: none is ever
        removed) and damaged key-state objects."""
        found = dict(self._state.damaged)
        newest = self.newest_known()
        with self._lock:
            for generation in range(1, newest + 1):
                if generation in self.damaged:
                    found[self.object_name(generation)] = self.damaged[generation]
                elif generation not in self._generations:
                    found[self.object_name(generation)] = self._missing(generation)
        return found

    def audit(self) -> dict[str, str]:
        """Read every generation and key-state object again from the store (nothing from
        memory) and return what is wrong, as :meth:`problems` does: a generation this
        keyring knows must still be there. Raises store errors."""
        fresh = Keyring(self._store, self._master_key, self._vault_id)
        fresh.expect(self.newest_known())
        fresh.refresh()
        return fresh.problems()

    def _missing(self, generation: int) -> str:
        if generation <= self._state.newest_generation:
            return "missing: the vault's key state records it (deleted, or a rotation rolled back)"
        if generation <= self._seen:
            return "missing: this client saw it before (deleted, or a rotation rolled back)"
        return "missing: a newer generation exists"

    def object_name(self, generation: int) -> str:
        """Return the object name of ``generation``."""
        return datakeys_name(generation, self._vault_id)

    def generations(self) -> list[int]:
        """Return the readable generations, oldest first."""
        with self._lock:
            return sorted(self._generations)

    def current(self) -> GenerationKeys:
        """Return the newest readable generation; raises ``IntegrityError`` if there is none
        or a newer one is damaged (new data must not go under a key meant to be retired)."""
        with self._lock:
            newest = max(self._generations, default=0)
            damaged = [number for number in self.damaged if number > newest]
        if damaged:
            raise IntegrityError(
                f"key generation {max(damaged)} is damaged: {self.damaged[max(damaged)]}"
            )
        expected = self.newest_known()
        if expected > newest:
            raise IntegrityError(
                f"key generation {expected} ({self.object_name(expected)}) is "
                f"{self._missing(expected)}; new data is not written under an older key",
                hint="Restore the data-key object from a copy of the vault, or rotate again "
                "after checking who deleted it.",
            )
        if not newest:
            raise IntegrityError("the vault has no readable data-key generation")
        return self.get(newest)

    def get(self, generation: int) -> GenerationKeys:
        """Return generation ``generation``; raises ``IntegrityError`` if it is missing or
        damaged."""
        with self._lock:
            keys = self._generations.get(generation)
        if keys is not None:
            return keys
        self._load(generation)
        with self._lock:
            keys = self._generations.get(generation)
            reason = self.damaged.get(generation, "missing")
        if keys is None:
            raise IntegrityError(f"key generation {generation} is unavailable: {reason}")
        return keys

    def data_key(self, generation: int) -> bytes:
        """Return the data key of ``generation`` (see :meth:`get` for errors)."""
        return self.get(generation).data_key

    def create(self, generation: int | None = None) -> GenerationKeys:
        """Create the next generation (or exactly ``generation``) with create-exclusive.

        Retries with the next number when another process created one first. Raises
        store errors as they come.
        """
        number = generation or max(self._known_numbers(), default=0) + 1
        while True:
            keys = GenerationKeys(number, secrets.token_bytes(KEY_BYTES), secrets.token_bytes(32))
            try:
                self._store.put(
                    datakeys_name(number, self._vault_id),
                    encode_generation(keys, self._master_key, self._vault_id),
                    exclusive=True,
                )
            except ConflictError:
                if generation is not None:
                    raise
                number += 1
                continue
            with self._lock:
                self._generations[number] = keys
            # After the generation exists: a crash in between leaves a state that records
            # an older generation, never one that is missing.
            self._state.record(number)
            _log.info("created data-key generation %d", number)
            return keys

    def _known_numbers(self) -> list[int]:
        numbers = [
            datakeys_generation(info.name, self._vault_id)
            for info in self._store.list(DATAKEYS_PREFIX)
        ]
        return [number for number in numbers if number is not None]

    def _load(self, generation: int) -> None:
        name = datakeys_name(generation, self._vault_id)
        try:
            keys = decode_generation(
                self._store.get(name), generation, self._master_key, self._vault_id
            )
        except NotFoundError:
            return
        except (IntegrityError, UnsupportedError) as exc:
            with self._lock:
                self.damaged[generation] = str(exc)
            _log.warning("key generation %s is damaged: %s", name, exc)
            return
        with self._lock:
            self._generations[generation] = keys
            self.damaged.pop(generation, None)
