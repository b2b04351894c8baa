"""The audit trail's table: appending chained entries, listing them, checking the chain.

Each entry's ``entry_hash`` is the SHA-256 of its canonical JSON (keys sorted, no spaces,
UTF-8; see :func:`entry_hash`), which includes the previous entry's hash, so editing,
deleting or reordering a stored entry breaks the chain at that place.

Appends are serialised so that two writers never fork the chain (both reading the same
last entry and chaining on it): on PostgreSQL the appending transaction takes a
transaction-scoped advisory lock before it reads the last entry; on SQLite every write
transaction already holds the database's only write lock (``BEGIN IMMEDIATE``, see
``catalog/database.py``). The lock is held until the transaction commits, so the entry
should be the last write of its transaction.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import Select, select, text
from sqlalchemy.orm import Session

from strongroom.catalog.models import AuditEntry

GENESIS_HASH: Final = "0" * 64
"""The ``previous_hash`` of the first entry."""

# A fixed key of pg_advisory_xact_lock: "strongroom audit" in ASCII, folded into 63 bits.
_POSTGRES_LOCK_KEY: Final = int.from_bytes(b"sr-audit", "big") & 0x7FFFFFFFFFFFFFFF
_BATCH: Final = 1000


@dataclass(frozen=True)
class NewEntry:
    """What a caller records; the chain fields are added by :func:`append_entry`."""

    at: datetime
    actor: str
    origin: str
    action: str
    subject: str
    outcome: str
    reason: str | None = None
    details: Mapping[str, Any] | None = None


def canonical_time(at: datetime) -> str:
    """Return ``at`` as the chain hashes it: UTC ISO 8601 with microseconds.

    Raises ValueError for a naive datetime.
    """
    if at.tzinfo is None:
        raise ValueError("audit times must be timezone-aware")
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def entry_hash(
    *,
    previous_hash: str,
    at: datetime,
    actor: str,
    origin: str,
    action: str,
    subject: str,
    outcome: str,
    reason: str | None,
    details: Mapping[str, Any],
) -> str:
    """Return the hex SHA-256 of the canonical JSON of one entry.

    ``seq`` is left out on purpose: the order lives in the chain of hashes, so an entry
    moved to another place is reported as out of order, not as edited.
    """
    document = {
        "previous_hash": previous_hash,
        "at": canonical_time(at),
        "actor": actor,
        "origin": origin,
        "action": action,
        "subject": subject,
        "outcome": outcome,
        "reason": reason,
        "details": dict(details),
    }
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def hash_of(entry: AuditEntry) -> str:
    """Recompute the hash of a stored entry from its fields."""
    return entry_hash(
        previous_hash=entry.previous_hash,
        at=entry.at,
        actor=entry.actor,
        origin=entry.origin,
        action=entry.action,
        subject=entry.subject,
        outcome=entry.outcome,
        reason=entry.reason,
        details=entry.details,
    )


def append_entry(session: Session, new: NewEntry) -> AuditEntry:
    """Append ``new`` after the last entry and return the stored row (``seq`` set).

    Must run in a write session; takes the chain lock (see the module docstring) until
    the session's transaction ends. Raises ValueError for a naive time and JSON-unfit
    details (a TypeError from the encoder is turned into ValueError).
    """
    details = dict(new.details or {})
    try:
        # Round-trip once so the hash covers exactly what the JSON column gives back.
        details = json.loads(json.dumps(details, sort_keys=True))
    except TypeError as error:
        raise ValueError(f"audit details must be plain JSON: {error}") from error
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _POSTGRES_LOCK_KEY})
    last = session.execute(
        select(AuditEntry.seq, AuditEntry.entry_hash).order_by(AuditEntry.seq.desc()).limit(1)
    ).first()
    seq, previous = (1, GENESIS_HASH) if last is None else (int(last[0]) + 1, str(last[1]))
    entry = AuditEntry(
        seq=seq,
        at=new.at,
        actor=new.actor,
        origin=new.origin,
        action=new.action,
        subject=new.subject,
        outcome=new.outcome,
        reason=new.reason,
        details=details,
        previous_hash=previous,
    )
    entry.entry_hash = hash_of(entry)
    session.add(entry)
    session.flush()
    return entry


@dataclass(frozen=True)
class EntryFilter:
    """Which entries to list; every field left None matches all."""

    since: datetime | None = None
    until: datetime | None = None
    actor: str | None = None
    action: str | None = None
    subject: str | None = None
    outcome: str | None = None
    after_seq: int | None = None


def _filtered(where: EntryFilter) -> Select[AuditEntry]:
    statement = select(AuditEntry)
    if where.since is not None:
        statement = statement.where(AuditEntry.at >= where.since)
    if where.until is not None:
        statement = statement.where(AuditEntry.at < where.until)
    if where.actor is not None:
        statement = statement.where(AuditEntry.actor == where.actor)
    if where.action is not None:
        if where.action.endswith("*"):
            prefix = where.action[:-1].replace("\\", "\\\\").replace("%", "\\%")
            prefix = prefix.replace("_", "\\_")
            statement = statement.where(AuditEntry.action.like(prefix + "%", escape="\\"))
        else:
            statement = statement.where(AuditEntry.action == where.action)
    if where.subject is not None:
        statement = statement.where(AuditEntry.subject == where.subject)
    if where.outcome is not None:
        statement = statement.where(AuditEntry.outcome == where.outcome)
    if where.after_seq is not None:
        statement = statement.where(AuditEntry.seq > where.after_seq)
    return statement.order_by(AuditEntry.seq)


def list_entries(
    session: Session, where: EntryFilter | None = None, *, limit: int | None = None
) -> list[AuditEntry]:
    """Return the entries ``where`` selects (None: all), oldest (lowest ``seq``) first."""
    statement = _filtered(where or EntryFilter())
    if limit is not None:
        statement = statement.limit(limit)
    return list(session.scalars(statement))


def iter_entries(session: Session, where: EntryFilter | None = None) -> Iterator[AuditEntry]:
    """Yield the entries ``where`` selects (None: all) in ``seq`` order, in batches."""
    where = where or EntryFilter()
    after = where.after_seq
    while True:
        page = list(
            session.scalars(
                _filtered(
                    EntryFilter(
                        since=where.since,
                        until=where.until,
                        actor=where.actor,
                        action=where.action,
                        subject=where.subject,
                        outcome=where.outcome,
                        after_seq=after,
                    )
                ).limit(_BATCH)
            )
        )
        yield from page
        if len(page) < _BATCH:
            return
        after = page[-1].seq


@dataclass(frozen=True)
class ChainProblem:
    """One place where the chain does not hold.

    ``kind`` is ``edited`` (the entry's fields no longer give its hash), ``deleted``
    (entries ``first_seq``..``last_seq`` are missing), ``out-of-order`` (the entry
    follows another entry than the one before it) or ``broken-link`` (the entry follows
    no stored entry: its predecessor was edited with its hash, or removed and the rest
    renumbered).
    """

    kind: str
    seq: int
    message: str
    last_seq: int | None = None


@dataclass(frozen=True)
class ChainCheck:
    """The result of :func:`check_chain`: how many entries were read, the head, problems."""

    entries: int
    head_seq: int | None
    head_hash: str | None
    problems: Sequence[ChainProblem]

    @property
    def intact(self) -> bool:
        """True when no problem was found."""
        return not self.problems


def check_chain(session: Session) -> ChainCheck:
    """Read the whole trail in ``seq`` order and report every place the chain breaks.

    A trail whose *last* entries were removed still forms a valid chain: only an
    anchor kept elsewhere (a head hash printed in a signed report, say) can show that.
    """
    by_hash: dict[str, int] = {}
    links: list[tuple[int, str, str, bool]] = []
    for entry in iter_entries(session):
        stored = entry.entry_hash
        by_hash.setdefault(stored, entry.seq)
        links.append((entry.seq, entry.previous_hash, stored, hash_of(entry) == stored))
    problems: list[ChainProblem] = []
    expected_seq, previous_hash = 1, GENESIS_HASH
    for seq, link, stored, matches in links:
        if not matches:
            problems.append(
                ChainProblem(
                    "edited",
                    seq,
                    f"entry {seq} was changed after it was recorded: its "
                    "fields no longer give its hash",
                )
            )
        if seq != expected_seq:
            problems.append(
                ChainProblem(
                    "deleted",
                    expected_seq,
                    _deleted_message(expected_seq, seq - 1),
                    last_seq=seq - 1,
                )
            )
        if link != previous_hash:
            follows = by_hash.get(link)
            if link == GENESIS_HASH and seq != 1:
                problems.append(
                    ChainProblem("out-of-order", seq, f"entry {seq} claims to be the first entry")
                )
            elif follows is not None and follows != seq - 1:
                problems.append(
                    ChainProblem(
                        "out-of-order",
                        seq,
                        f"entry {seq} was recorded right after entry {follows}, "
                        f"not after entry {seq - 1}: entries were reordered",
                    )
                )
            elif seq == expected_seq:
                problems.append(
                    ChainProblem(
                        "broken-link",
                        seq,
                        f"entry {seq} does not follow the entry stored before it: an entry "
                        "before it was removed or rewritten",
                    )
                )
        expected_seq, previous_hash = seq + 1, stored
    head = links[-1] if links else None
    return ChainCheck(
        entries=len(links),
        head_seq=None if head is None else head[0],
        head_hash=None if head is None else head[2],
        problems=problems,
    )


def _deleted_message(first: int, last: int) -> str:
    if first == last:
        return f"entry {first} is missing: it was deleted"
    return f"entries {first} to {last} are missing: they were deleted"
