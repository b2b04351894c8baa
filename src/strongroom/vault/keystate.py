"""The vault's key state: which data-key generation is the newest, authenticated.

Deleting the newest ``datakeys/`` object must not roll a rotation back (writers would
fall back to the older key without a word). So each rotation, after creating its
generation, records it in a ``keystate/<sequence>-<vault id>`` object sealed under the
master key (docs/vault-format.md §6). The newest generation any key-state object records
must then be readable; if it is not, the data key was deleted or the rotation rolled
back, and writers refuse to start (``Keyring.current``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from strongroom.errors import ConflictError, IntegrityError, NotFoundError, UnsupportedError
from strongroom.keys import parse_aware_time
from strongroom.storage.base import BlobStore
from strongroom.vault.crypto import open_sealed, seal
from strongroom.vault.format import (
    KEYSTATE_PREFIX,
    MAGIC_KEYSTATE,
    MAX_GENERATION,
    keystate_name,
    keystate_sequence,
)

MAX_KEYSTATE_BYTES: Final = 4096


class _StateDocument(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    format: str = Field(pattern="^strongroom-keystate$")
    version: int = Field(ge=1, le=1)
    sequence: int = Field(ge=1, le=MAX_GENERATION)
    newest_generation: int = Field(ge=1, le=MAX_GENERATION)
    created: str

    @field_validator("created")
    @classmethod
    def _aware(cls, value: str) -> str:
        parse_aware_time(value)
        return value


def encode_state(sequence: int, newest_generation: int, master_key: bytes, vault_id: str) -> bytes:
    """Return the sealed ``keystate/<sequence>-<vault id>`` object."""
    document = _StateDocument(
        format="strongroom-keystate",
        version=1,
        sequence=sequence,
        newest_generation=newest_generation,
        created=datetime.now(UTC).isoformat(),
    )
    return seal(
        MAGIC_KEYSTATE,
        newest_generation,
        master_key,
        document.model_dump_json().encode(),
        context=keystate_name(sequence, vault_id).encode("ascii"),
        compress_level=None,
    )


def decode_state(data: bytes, sequence: int, master_key: bytes, vault_id: str) -> int:
    """Open a key-state object; returns the newest generation it records.

    Raises ``IntegrityError`` when it is damaged, another vault's, or renamed.
    """
    what = keystate_name(sequence, vault_id)
    if len(data) > MAX_KEYSTATE_BYTES:
        raise IntegrityError(f"{what} is larger than any key state")
    header, payload = open_sealed(
        data, MAGIC_KEYSTATE, lambda _: master_key, what, context=what.encode("ascii")
    )
    try:
        document = _StateDocument.model_validate_json(payload)
    except ValidationError as exc:
        raise IntegrityError(f"{what} holds a malformed document") from exc
    if document.sequence != sequence or header.generation != document.newest_generation:
        raise IntegrityError(f"{what} disagrees with its name or header")
    return document.newest_generation


@dataclass(slots=True)
class KeyState:
    """What the key-state objects of a vault say, read incrementally by :meth:`refresh`."""

    store: BlobStore
    master_key: bytes
    vault_id: str
    newest_generation: int = 0
    """The newest generation any intact key-state object records (0: none records one,
    as in vaults written before key states existed)."""
    damaged: dict[str, str] = field(default_factory=dict)
    """Key-state objects that do not open (name -> reason)."""
    _read: set[str] = field(default_factory=set)

    def refresh(self) -> None:
        """Read the key-state objects not read yet. Raises store errors."""
        for info in self.store.list(KEYSTATE_PREFIX):
            sequence = keystate_sequence(info.name, self.vault_id)
            if sequence is None or info.name in self._read:
                continue
            try:
                data = self.store.get(info.name)
                newest = decode_state(data, sequence, self.master_key, self.vault_id)
            except NotFoundError:
                continue
            except (IntegrityError, UnsupportedError) as exc:
                self.damaged[info.name] = str(exc)
                continue
            self._read.add(info.name)
            self.damaged.pop(info.name, None)
            self.newest_generation = max(self.newest_generation, newest)

    def record(self, generation: int) -> None:
        """Record ``generation`` as created, in a new key-state object (create-exclusive,
        the next free sequence number). Raises store errors."""
        numbers = [
            keystate_sequence(info.name, self.vault_id) for info in self.store.list(KEYSTATE_PREFIX)
        ]
        sequence = max((number for number in numbers if number is not None), default=0) + 1
        while True:
            name = keystate_name(sequence, self.vault_id)
            try:
                self.store.put(
                    name,
                    encode_state(sequence, generation, self.master_key, self.vault_id),
                    exclusive=True,
                )
            except ConflictError:
                sequence += 1
                continue
            self._read.add(name)
            self.newest_generation = max(self.newest_generation, generation)
            return
