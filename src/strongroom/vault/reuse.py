"""Stream references: put a stream stored earlier into a new recovery point without its bytes.

A *stream reference* (docs/vault-format.md §14) is a JSON object naming the content of one
closed stream: its size, keyed stream hash and chunk list (inline ids or list-chunk ids),
bound to the vault and key generation, with a keyed BLAKE3 MAC so that a reference kept
outside the vault (the files source's cache) cannot be altered unnoticed::

    {"format": "strongroom-stream-reference", "version": 1, "vault_id": "…", "generation": 1,
     "size": 123, "hash": "64 hex", "chunk_count": 2, "chunks": ["64 hex", …] | null,
     "chunk_lists": ["64 hex", …] | null, "mac": "64 hex"}

Reusing one checks the MAC, the vault and the generation, then that every chunk (list
chunks included) is still in the index, in a pack of that generation, with plaintext
lengths adding up to the size; only then is the stream recorded, as an ordinary stream
record. Chunk ids are checked in batches, so memory stays bounded whatever the stream size.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Iterator, Mapping
from itertools import islice
from typing import Any, Final

from pydantic import ValidationError

from strongroom.errors import IntegrityError, NotFoundError
from strongroom.logs import get_logger
from strongroom.vault.cache import CacheSession
from strongroom.vault.crypto import GenerationKeys
from strongroom.vault.fetch import ChunkFetcher
from strongroom.vault.manifest import StreamRecord
from strongroom.vault.reader import stream_chunk_ids

REFERENCE_FORMAT: Final = "strongroom-stream-reference"
REFERENCE_VERSION: Final = 1
CHECK_BATCH: Final = 4096
_RECORD_FIELDS: Final = ("size", "hash", "chunk_count", "chunks", "chunk_lists")
_log = get_logger(__name__)


def _canonical(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def make_reference(keys: GenerationKeys, vault_id: str, record: StreamRecord) -> dict[str, Any]:
    """Return the reference of a closed stream ``record`` written under ``keys``."""
    body: dict[str, Any] = {
        "format": REFERENCE_FORMAT,
        "version": REFERENCE_VERSION,
        "vault_id": vault_id,
        "generation": keys.generation,
        **{field: getattr(record, field) for field in _RECORD_FIELDS},
    }
    body["mac"] = keys.reference_mac(_canonical(body)).hex()
    return body


def parse_reference(
    reference: object, keys: GenerationKeys, vault_id: str, name: str
) -> StreamRecord | str:
    """Return the stream record ``reference`` describes, named ``name``, or why it is not
    usable by a writer of this vault and generation (foreign, stale or altered)."""
    if not isinstance(reference, Mapping):
        return "it is not a JSON object"
    body = {key: value for key, value in reference.items() if key != "mac"}
    if body.get("format") != REFERENCE_FORMAT or body.get("version") != REFERENCE_VERSION:
        return "it is not a version 1 stream reference"
    if body.get("vault_id") != vault_id:
        return "it belongs to another vault"
    if body.get("generation") != keys.generation:
        return f"it was written under key generation {body.get('generation')!r}"
    mac = reference.get("mac")
    try:
        expected = keys.reference_mac(_canonical(body)).hex()
    except (TypeError, ValueError):
        return "it does not serialise"
    if not isinstance(mac, str) or not mac.isascii() or not hmac.compare_digest(mac, expected):
        return "its MAC does not match (altered)"
    try:
        return StreamRecord.model_validate(
            {"name": name, **{field: body.get(field) for field in _RECORD_FIELDS}}
        )
    except ValidationError as exc:
        return f"it does not describe a stream: {exc.errors()[0]['msg']}"


class StreamReuse:
    """Checks the chunks of a referenced stream and stages them in the writer's session."""

    def __init__(
        self, session: CacheSession, fetcher: ChunkFetcher | None, keys: GenerationKeys
    ) -> None:
        self._session = session
        self._fetcher = fetcher
        self._keys = keys

    def stage(self, record: StreamRecord) -> str | None:
        """Stage every chunk of the stream (list chunks included) for counting; return
        why they are not all usable, or None.

        Every chunk must be in the index, in a pack of this writer's generation, and the
        plaintext lengths must add up to the stream's size. The caller commits or clears
        the staged chunks (:meth:`CacheSession.take_staged`, :meth:`CacheSession.clear_staged`).
        """
        generation = self._keys.generation
        lists = [bytes.fromhex(list_id) for list_id in record.chunk_lists or []]
        facts = self._session.indexed(lists)
        if any(facts.get(list_id, (0, 0, 0))[2] != generation for list_id in lists):
            return "a chunk list is no longer in the vault"
        self._session.stage((list_id, facts[list_id][0]) for list_id in lists)
        total = 0
        try:
            ids = self._chunk_ids(record)
            while batch := list(islice(ids, CHECK_BATCH)):
                facts = self._session.indexed(batch)
                for chunk_id in batch:
                    fact = facts.get(chunk_id)
                    if fact is None or fact[2] != generation:
                        return f"chunk {chunk_id.hex()} is no longer in the vault"
                    total += fact[1]
                if total > record.size:
                    break
                self._session.stage((chunk_id, facts[chunk_id][0]) for chunk_id in batch)
        except (IntegrityError, NotFoundError) as exc:
            return str(exc)
        if total != record.size:
            return f"its chunks hold {total} bytes, not {record.size}"
        return None

    def _chunk_ids(self, record: StreamRecord) -> Iterator[bytes]:
        if record.chunks is not None:
            return (bytes.fromhex(chunk_id) for chunk_id in record.chunks)
        if self._fetcher is None:
            raise NotFoundError("this writer cannot read chunk lists")
        return stream_chunk_ids(
            self._fetcher, self._keys.generation, record, f"the reused stream {record.name!r}"
        )
