"""Every interleaving of a GC and a writer over a model store, checked exhaustively.

The actors run the lease protocol's own steps (:mod:`strongroom.vault.lease_protocol`,
the generators the vault runs against real stores) around the points where a GC and a
writer act: a writer *syncs* its index after taking its lease and *commits* its manifest
at the end; a GC *marks* (reads the manifests) after taking its lease and *deletes*
later. The model store answers each step; its listings may lag behind puts and deletes
(changes show in order, as soon as the environment "publishes" them, at any moment).
The environment may also *pause* any actor once for longer than a lease: every lease
object it holds turns stale, and it resumes later (except in the documented residual
window, between its last check and its action, docs/vault-format.md §13.4).

The explorer enumerates every order of every step of every actor and of the
environment, merging states that are equal (same store, same results handed to each
actor): a depth-first search with a visited set, so every reachable state is checked.
Bounds: one GC and one writer (two writers and a GC have too many states for a unit
test), two rounds of each retry loop, one pause per actor.

Safety: no writer commits while tainted, where a writer is tainted when a GC deletes
after that writer synced and the writer's commit did not come before that GC's mark.
The same explorer finds the race of the previous protocol (a lease object that vanished
between listing and reading counted as "no conflict").
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from strongroom.errors import ConflictError
from strongroom.vault import lease_protocol as protocol
from strongroom.vault.lease_protocol import (
    CheckFresh,
    DeleteLease,
    Holding,
    LeaseExists,
    LeaseView,
    ListLeases,
    Pause,
    ReadLease,
    Settle,
    WriteLease,
)


@dataclass(frozen=True, slots=True)
class Ghost:
    """A point where an actor acts on the vault (not a lease step)."""

    what: str


Script = Generator[Any, Any, str]


@dataclass(frozen=True, slots=True)
class Protocol:
    """The lease steps the actors use."""

    acquire: Callable[[Holding], protocol.Steps]
    renew: Callable[[Holding], protocol.Steps]
    confirm: Callable[[Holding], protocol.Steps]


CURRENT = Protocol(protocol.acquire, protocol.renew, protocol.confirm)


def writer(steps: Protocol, holder: str) -> Script:
    """A backup: lease, sync, (write), confirm and renew, commit, release."""
    holding = Holding("shared", holder)
    try:
        if (yield from steps.acquire(holding)):
            return "refused"
    except ConflictError:
        return "refused"
    yield Ghost("sync")
    try:
        yield from steps.confirm(holding)
        yield Ghost("final")
        yield from steps.renew(holding)
    except ConflictError:
        if holding.lost is None:
            yield DeleteLease(holding.name)
        return "failed"
    yield Ghost("commit")
    yield DeleteLease(holding.name)
    return "committed"


def garbage_collector(steps: Protocol, holder: str) -> Script:
    """A GC: lease, mark, confirm and renew, delete, release."""
    holding = Holding("exclusive", holder)
    try:
        if (yield from steps.acquire(holding)):
            return "refused"
    except ConflictError:
        return "refused"
    yield Ghost("mark")
    try:
        yield from steps.confirm(holding)
        yield Ghost("final")
        yield from steps.renew(holding)
    except ConflictError:
        if holding.lost is None:
            yield DeleteLease(holding.name)
        return "stopped"
    yield Ghost("delete")
    yield DeleteLease(holding.name)
    return "deleted"


@dataclass(frozen=True, slots=True)
class State:
    """Everything that decides what can happen next."""

    objects: frozenset[tuple[str, str, bool]]
    """(name, holder, stale) of every lease object in the store."""
    shown: frozenset[str]
    """What a listing shows now."""
    changes: tuple[tuple[str, bool], ...]
    """Puts (True) and deletes not yet shown by listings, oldest first."""
    histories: tuple[tuple[Any, ...], ...]
    """Per actor, every result handed to it so far (its position in its script)."""
    outcomes: tuple[str | None, ...]
    paused: tuple[bool, ...]
    final: tuple[bool, ...]
    window: tuple[bool, ...]
    synced: tuple[bool, ...]
    committed: tuple[bool, ...]
    after_mark: tuple[bool, ...]
    """The writer had not committed when the GC marked."""
    tainted: tuple[bool, ...]
    writes: tuple[int, ...]


@dataclass
class Model:
    """The explorer: actors, whether listings lag, and what it found."""

    steps: Protocol
    writers: int = 2
    lagging: bool = True
    pauses: bool = True
    holders: list[str] = field(default_factory=list)
    visited: dict[State, tuple[State | None, str]] = field(default_factory=dict)
    """Every state reached, with the state and move it was first reached from."""
    positions: dict[tuple[int, tuple[Any, ...]], Any] = field(default_factory=dict)
    """(actor, results so far) -> the step it takes next, or its outcome (a str)."""
    outcomes: set[tuple[str | None, ...]] = field(default_factory=set)
    violation: list[str] | None = None

    def __post_init__(self) -> None:
        self.holders = [f"w{index}" for index in range(self.writers)] + ["gc"]

    def script(self, actor: int) -> Script:
        if self.holders[actor] == "gc":
            return garbage_collector(self.steps, "gc")
        return writer(self.steps, self.holders[actor])

    def pending(self, state: State, actor: int) -> Any:
        """Return the step the actor waits to take, or its outcome (a str) if it ended.

        Scripts are deterministic: the results handed to an actor fix its position, so
        each position is computed once, by replaying the script from its start."""
        key = (actor, state.histories[actor])
        if key not in self.positions:
            script = self.script(actor)
            try:
                step = next(script)
                for result in state.histories[actor]:
                    step = script.send(result)
            except StopIteration as stop:
                step = stop.value
            self.positions[key] = step
        return self.positions[key]

    def explore(self) -> None:
        count = len(self.holders)
        start = State(
            objects=frozenset(),
            shown=frozenset(),
            changes=(),
            histories=((),) * count,
            outcomes=(None,) * count,
            paused=(False,) * count,
            final=(False,) * count,
            window=(False,) * count,
            synced=(False,) * count,
            committed=(False,) * count,
            after_mark=(False,) * count,
            tainted=(False,) * count,
            writes=(0,) * count,
        )
        self.visited[start] = (None, "start")
        stack = [start]
        while stack:
            state = stack.pop()
            moves = list(self.moves(state))
            if not moves:
                self.outcomes.add(state.outcomes)
            for label, successor in moves:
                if successor in self.visited:
                    continue
                self.visited[successor] = (state, label)
                if any(
                    c and t for c, t in zip(successor.committed, successor.tainted, strict=True)
                ):
                    self.violation = self.trace(successor)
                    return
                stack.append(successor)

    def trace(self, state: State) -> list[str]:
        """Return the moves that lead to ``state``."""
        labels: list[str] = []
        current: State | None = state
        while current is not None:
            parent, label = self.visited[current]
            labels.append(label)
            current = parent
        return labels[::-1]

    def moves(self, state: State) -> Iterator[tuple[str, State]]:
        if state.changes:
            name, present = state.changes[0]
            shown = state.shown | {name} if present else state.shown - {name}
            yield f"publish {name}", replace(state, shown=shown, changes=state.changes[1:])
        for actor, holder in enumerate(self.holders):
            if state.outcomes[actor] is not None:
                continue
            holds = any(owner == holder for _, owner, _ in state.objects)
            if self.pauses and holds and not state.paused[actor] and not state.window[actor]:
                objects = frozenset(
                    (name, owner, stale or owner == holder) for name, owner, stale in state.objects
                )
                paused = _set(state.paused, actor, True)
                yield f"{holder} pauses", replace(state, objects=objects, paused=paused)
            step = self.pending(state, actor)
            if isinstance(step, Pause) and state.changes:
                continue  # a pause waits for listings to catch up
            yield f"{holder}: {step}", self.take(state, actor, step)

    def take(self, state: State, actor: int, step: Any) -> State:
        holder = self.holders[actor]
        result: Any = None
        objects = {name: (owner, stale) for name, owner, stale in state.objects}
        changes = list(state.changes)
        writes = state.writes
        if isinstance(step, WriteLease):
            result = f"locks/{step.kind}-{holder}.{state.writes[actor]}"
            writes = _set(writes, actor, writes[actor] + 1)
            objects[result] = (holder, False)
            changes.append((result, True))
        elif isinstance(step, ListLeases):
            result = tuple(sorted(state.shown))
        elif isinstance(step, ReadLease):
            if step.name in objects:
                owner, stale = objects[step.name]
                kind = protocol.kind_of(step.name) or "shared"
                state_name = "stale" if stale else "live"
                result = LeaseView(step.name, kind, owner, state_name, f"{kind} lease {step.name}")
        elif isinstance(step, LeaseExists):
            result = step.name in objects
        elif isinstance(step, CheckFresh):
            newest = f"locks/{'exclusive' if holder == 'gc' else 'shared'}-{holder}."
            newest += str(state.writes[actor] - 1)
            result = newest in objects and not objects[newest][1]
            if result and state.final[actor]:
                state = replace(state, window=_set(state.window, actor, True))
        elif isinstance(step, DeleteLease):
            if objects.pop(step.name, None) is not None:
                changes.append((step.name, False))
        elif isinstance(step, Ghost):
            state = self.ghost(state, actor, step.what)
        else:
            assert isinstance(step, Settle | Pause), step
        shown = state.shown
        if not self.lagging:
            for name, present in changes:
                shown = shown | {name} if present else shown - {name}
            changes = []
        histories = _set(state.histories, actor, (*state.histories[actor], result))
        successor = replace(
            state,
            objects=frozenset((name, owner, stale) for name, (owner, stale) in objects.items()),
            shown=shown,
            changes=tuple(changes),
            histories=histories,
            writes=writes,
        )
        after = self.pending(successor, actor)
        if isinstance(after, str):
            successor = replace(successor, outcomes=_set(successor.outcomes, actor, after))
        elif self.invisible(successor, after):
            # A step no one else can observe: taking it at once loses no interleaving.
            return self.take(successor, actor, after)
        return successor

    def invisible(self, state: State, step: Any) -> bool:
        """Tell whether ``step`` changes nothing another actor could see: waiting out a
        listing delay, pausing while listings are up to date, marking the final renewal."""
        return (
            isinstance(step, Settle)
            or (isinstance(step, Pause) and not state.changes)
            or step == Ghost("final")
        )

    def ghost(self, state: State, actor: int, what: str) -> State:
        writers = range(self.writers)
        if what == "sync":
            return replace(state, synced=_set(state.synced, actor, True))
        if what == "commit":
            return replace(state, committed=_set(state.committed, actor, True))
        if what == "final":
            return replace(state, final=_set(state.final, actor, True))
        if what == "mark":
            after = tuple(
                state.after_mark[index] or (index in writers and not state.committed[index])
                for index in range(len(self.holders))
            )
            return replace(state, after_mark=after)
        assert what == "delete"
        tainted = tuple(
            state.tainted[index]
            or (
                index in writers
                and state.synced[index]
                and (not state.committed[index] or state.after_mark[index])
            )
            for index in range(len(self.holders))
        )
        return replace(state, tainted=tainted)


def _set(values: tuple[Any, ...], index: int, value: Any) -> tuple[Any, ...]:
    return (*values[:index], value, *values[index + 1 :])


@pytest.fixture
def bounded_rounds(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two rounds of each retry loop (listings until visible, scans, confirms) instead of
    4-12: enough to reach every kind of outcome, few enough to enumerate every state."""
    monkeypatch.setattr(protocol, "SCAN_ROUNDS", 2)
    monkeypatch.setattr(protocol, "CONFIRM_ROUNDS", 2)
    monkeypatch.setattr(protocol, "VISIBILITY_ROUNDS", 2)


@pytest.mark.usefixtures("bounded_rounds")
@pytest.mark.parametrize(
    ("lagging", "pauses"), [(False, True), (True, False)], ids=["pauses", "lagging-listings"]
)
def test_no_interleaving_lets_a_writer_commit_across_a_gc(lagging: bool, pauses: bool) -> None:
    model = Model(CURRENT, writers=1, lagging=lagging, pauses=pauses)
    model.explore()
    assert model.violation is None, "\n".join(model.violation)
    # Not vacuous: each side won, lost, and both completed in turn, in some interleaving.
    assert {("committed", "deleted"), ("refused", "deleted"), ("committed", "refused")} <= (
        model.outcomes
    )
    assert ("failed", "deleted") in model.outcomes  # a writer the GC overtook gave up
    assert len(model.visited) > 10_000


# The protocol before #12: no publishing, a vanished object counted as "no conflict",
# no listing barrier after removing a stale object, no confirm before acting.


def _old_scan(holding: Holding) -> protocol.Steps:
    for _round in range(protocol.SCAN_ROUNDS):
        names = yield ListLeases()
        conflicts, removed = [], False
        for name in sorted(names):
            if name == holding.name or not protocol.conflicts_with(
                holding.kind, protocol.kind_of(name)
            ):
                continue
            view = yield ReadLease(name)
            if view is None or view.holder == holding.holder:
                continue
            if view.state == "stale":
                yield DeleteLease(name)
                removed = True
                continue
            conflicts.append(view.description)
        if conflicts or not removed or holding.kind == "shared":
            return conflicts
    return ["kept changing"]


def _old_acquire(holding: Holding) -> protocol.Steps:
    holding.name = yield WriteLease(holding.kind, holding.holder)
    conflicts = yield from _old_scan(holding)
    if conflicts:
        yield DeleteLease(holding.name)
    return conflicts


def _old_renew(holding: Holding) -> protocol.Steps:
    old = holding.name
    new = yield WriteLease(holding.kind, holding.holder)
    if not (yield LeaseExists(old)):
        yield DeleteLease(new)
        holding.lost = "removed"
        raise protocol.lost_error(holding)
    holding.name = new
    yield DeleteLease(old)


def _no_confirm(holding: Holding) -> protocol.Steps:
    yield from ()


@pytest.mark.usefixtures("bounded_rounds")
def test_the_explorer_finds_the_race_of_the_previous_protocol() -> None:
    model = Model(
        Protocol(_old_acquire, _old_renew, _no_confirm), writers=1, lagging=False, pauses=False
    )
    model.explore()
    assert model.violation is not None
    trace = "\n".join(model.violation)
    assert "w0: ReadLease(name='locks/exclusive-gc.0')" in trace  # read after it vanished
