"""The vault lease protocol as plain steps, without input or output (docs/vault-format.md §13.3).

Each function here is a generator: it yields the store operations it needs, one at a time
(:class:`WriteLease`, :class:`ListLeases`, :class:`ReadLease`, :class:`LeaseExists`,
:class:`DeleteLease`, :class:`CheckFresh`, :class:`Settle`, :class:`Pause`), receives each operation's result,
and returns its outcome (or raises ``BusyError`` or ``ChangedMeanwhileError``). :class:`~strongroom.vault.leases.
HeldLease` runs them against a blob store; ``tests/unit/vault/test_lease_model.py`` runs
the very same generators against a model store with delayed listings and enumerates every
interleaving of a GC and two writers. Keeping the protocol free of input and output is
what makes that exhaustive check possible.

What the store is assumed to give: a put is atomic and, once it returned, a ``get`` or
``stat`` sees it (read-after-write for single objects); a *listing* may lag behind puts
and deletes, but either every listing that starts ``listing_delay`` after a change
reflects it, or listings are a consistent prefix of the changes in the order they were
made (so a listing that shows an object written at time *t* shows every change before
*t*). S3 today, local folders and the memory store give both with no delay at all.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from strongroom.errors import BusyError, ChangedMeanwhileError

LeaseKind = Literal["shared", "exclusive"]
LeaseState = Literal["live", "stale", "damaged"]

VISIBILITY_ROUNDS: Final = 12
"""Listings a holder takes, pausing between them, until its own new lease object shows."""
SCAN_ROUNDS: Final = 8
"""Listings a scan takes while objects keep vanishing or being removed as stale."""
CONFIRM_ROUNDS: Final = 4
"""Scans a holder takes before it acts, pausing between them, while a conflicting lease
shows: an acquirer that is about to back off leaves its object for a moment."""


@dataclass(frozen=True, slots=True)
class WriteLease:
    """Put a new lease object of ``kind`` for ``holder``; the result is its name."""

    kind: LeaseKind
    holder: str


@dataclass(frozen=True, slots=True)
class ListLeases:
    """List the lease objects; the result is a tuple of their names."""


@dataclass(frozen=True, slots=True)
class ReadLease:
    """Read lease object ``name``; the result is a :class:`LeaseView`, or None if it is
    gone."""

    name: str


@dataclass(frozen=True, slots=True)
class LeaseExists:
    """Tell whether lease object ``name`` exists (a stat, not a listing); the result is a
    bool."""

    name: str


@dataclass(frozen=True, slots=True)
class DeleteLease:
    """Delete lease object ``name`` (idempotent); the result is None."""

    name: str


@dataclass(frozen=True, slots=True)
class CheckFresh:
    """Tell whether the newest lease object this holder wrote is still young (written
    less than half a lease ago, by the monotonic and the wall clock); the result is a
    bool. A holder paused in the middle of a renewal learns so here."""


@dataclass(frozen=True, slots=True)
class Settle:
    """Wait out the store's listing delay after a change (no wait where it has none)."""


@dataclass(frozen=True, slots=True)
class Pause:
    """Wait a little before listing again (``attempt`` counts from 0, for a backoff)."""

    attempt: int


Operation = (
    WriteLease | ListLeases | ReadLease | LeaseExists | DeleteLease | CheckFresh | Settle | Pause
)
Steps = Generator[Operation, Any, Any]


@dataclass(frozen=True, slots=True)
class LeaseView:
    """What a reader of one lease object learns.

    ``state``: ``live`` (its lease runs), ``stale`` (its lease ended, its process is gone
    or it has been unreadable for longer than a lease: anyone may delete it) or
    ``damaged`` (unreadable, not yet aged out: counts as live). ``holder`` is empty for
    a damaged object.
    """

    name: str
    kind: LeaseKind
    holder: str
    state: LeaseState
    description: str


@dataclass(slots=True)
class Holding:
    """One holder's side of the protocol: its kind, its id, its current object."""

    kind: LeaseKind
    holder: str
    name: str = ""
    lost: str | None = None
    stale_removed: list[str] = field(default_factory=list)
    """Names of stale lease objects this holder removed."""


def kind_of(name: str) -> LeaseKind | None:
    """Return the kind a lease object's name carries (``locks/<kind>-<id>``), or None."""
    base = name.rpartition("/")[2]
    if base.startswith("shared-"):
        return "shared"
    if base.startswith("exclusive-"):
        return "exclusive"
    return None


def conflicts_with(kind: LeaseKind, other: LeaseKind | None) -> bool:
    """Tell whether a lease of ``other`` kind keeps a holder of ``kind`` away."""
    return other is not None and (kind == "exclusive" or other == "exclusive")


def acquire(holding: Holding) -> Steps:
    """Put a new lease object, wait until listings show it, then scan for conflicts.

    Returns the descriptions of the conflicting leases; on a conflict the new object is
    deleted again (the caller may retry). Returns [] when the lease is taken.
    """
    holding.name = yield WriteLease(holding.kind, holding.holder)
    try:
        yield Settle()
        yield from await_visible(holding.name)
        conflicts: list[str] = yield from scan(holding)
    except Exception:  # not GeneratorExit: a closed generator must not yield
        yield DeleteLease(holding.name)
        raise
    if conflicts:
        yield DeleteLease(holding.name)
    return conflicts


def await_visible(name: str) -> Steps:
    """List until ``name`` shows. Raises ``ConflictError`` (retryable) if it never does."""
    for attempt in range(VISIBILITY_ROUNDS):
        names = yield ListLeases()
        if name in names:
            return None
        yield Pause(attempt)
    raise ChangedMeanwhileError(
        f"the store did not list lease object {name} after {VISIBILITY_ROUNDS} listings",
        hint="The store's listings lag behind its writes more than expected; try again.",
    )


def scan(holding: Holding) -> Steps:
    """List the lease objects and read each one that conflicts with ``holding``.

    A stale one is deleted; a live or damaged one is a conflict. A listed object that
    is gone when read (its holder refreshed or released it meanwhile) means the listing
    is out of date: list again. After deleting stale objects, first make a listing
    barrier (renew this holder's own object and wait until it shows): a stale holder
    may have renewed its lease just before the deletion, and its new object must be in
    the next listing. Returns the conflicts ([] when there are none).
    """
    for _round in range(SCAN_ROUNDS):
        names = yield ListLeases()
        conflicts: list[str] = []
        vanished = removed = False
        for name in sorted(names):
            if name == holding.name or not conflicts_with(holding.kind, kind_of(name)):
                continue
            view: LeaseView | None = yield ReadLease(name)
            if view is None:
                vanished = True
            elif view.holder == holding.holder:
                continue  # an older object of this very holder, being replaced
            elif view.state == "stale":
                yield DeleteLease(name)
                holding.stale_removed.append(name)
                removed = True
            else:
                conflicts.append(view.description)
        if conflicts:
            return conflicts
        if removed:
            yield from renew(holding)
        elif not vanished:
            return []
    return [f"lease objects kept changing over {SCAN_ROUNDS} listings"]


def renew(holding: Holding) -> Steps:
    """Replace the holder's lease object by a new one without a gap.

    Put the new object, wait until listings show it, check that the old one still
    exists, and only then delete the old one. If the old object is gone, someone judged
    the lease stale (or an operator removed it): delete the new object, mark the holding
    lost and raise ``ConflictError``; a holder that was judged stale must stop. Last,
    check that the new object is still young: a holder paused during the renewal may hold
    an object that others already take for stale, and must stop too.
    """
    old = holding.name
    new = yield WriteLease(holding.kind, holding.holder)
    try:
        yield Settle()
        yield from await_visible(new)
        still_there = yield LeaseExists(old)
    except Exception:  # not GeneratorExit: a closed generator must not yield
        yield DeleteLease(new)
        raise
    if not still_there:
        yield DeleteLease(new)
        holding.lost = f"{old} was removed (its lease had ended or an operator removed it)"
        raise lost_error(holding)
    holding.name = new
    yield DeleteLease(old)
    if not (yield CheckFresh()):
        holding.lost = f"renewing it took more than half a lease (a pause?); {new} may be stale"
        raise lost_error(holding)
    return None


def confirm(holding: Holding) -> Steps:
    """Check, right before acting, that no conflicting lease shows.

    A GC runs this (then :func:`renew`) before each phase that deletes, a writer before
    it puts its manifest.
    Scans up to :data:`CONFIRM_ROUNDS` times, pausing between, while a conflict shows;
    then raises ``ConflictError`` (retryable) naming it.
    """
    conflicts: list[str] = []
    for attempt in range(CONFIRM_ROUNDS):
        conflicts = yield from scan(holding)
        if not conflicts:
            return None
        yield Pause(attempt)
    raise BusyError(
        f"another {'lease' if holding.kind == 'exclusive' else 'exclusive lease'} appeared "
        f"while this {holding.kind} lease was held: {'; '.join(conflicts)}",
        hint="Nothing was changed; run it again. If this repeats, a strongroom older than "
        "this one may be using the vault without honouring its leases.",
    )


def lost_error(holding: Holding) -> ChangedMeanwhileError:
    """Return the error for a lease that was lost."""
    return ChangedMeanwhileError(
        f"lost the vault lease: {holding.lost}",
        hint="Its lease ran out (a long pause?) and someone else removed it; run it again.",
    )
