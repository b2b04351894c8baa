"""``strongroom audit list|verify|export``: reading and checking the audit trail."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from strongroom.catalog.audit import ChainCheck, EntryFilter, canonical_time, check_chain
from strongroom.catalog.audit import iter_entries as catalog_iter_entries
from strongroom.catalog.audit import list_entries as catalog_list_entries
from strongroom.catalog.models import AuditEntry
from strongroom.services.context import AppContext


def entry_json(entry: AuditEntry) -> dict[str, Any]:
    """One entry as JSON (the shape of ``audit list --output json`` and ``audit export``)."""
    return {
        "seq": entry.seq,
        "at": canonical_time(entry.at),
        "actor": entry.actor,
        "origin": entry.origin,
        "action": entry.action,
        "subject": entry.subject,
        "outcome": entry.outcome,
        "reason": entry.reason,
        "details": entry.details,
        "previous_hash": entry.previous_hash,
        "entry_hash": entry.entry_hash,
    }


def check_json(check: ChainCheck) -> dict[str, Any]:
    """The result of a chain check as JSON."""
    return {
        "intact": check.intact,
        "entries": check.entries,
        "head_seq": check.head_seq,
        "head_hash": check.head_hash,
        "problems": [
            {"kind": problem.kind, "seq": problem.seq, "message": problem.message}
            | ({"last_seq": problem.last_seq} if problem.last_seq is not None else {})
            for problem in check.problems
        ],
    }


class AuditService:
    """Lists, exports and verifies the audit trail of one context's catalog."""

    def __init__(self, context: AppContext) -> None:
        self.context = context

    def list(
        self, where: EntryFilter | None = None, *, limit: int | None = 100
    ) -> list[dict[str, Any]]:
        """The entries ``where`` selects, oldest first, at most ``limit`` (None: all) of
        the newest ones."""
        with self.context.catalog.session(readonly=True) as session:
            entries = catalog_list_entries(session, where)
        if limit is not None:
            entries = entries[-limit:] if limit > 0 else []
        return [entry_json(entry) for entry in entries]

    def export(self, where: EntryFilter) -> Iterator[str]:
        """Yield the selected entries as JSON lines (one object per line, no newline),
        oldest first."""
        with self.context.catalog.session(readonly=True) as session:
            for entry in catalog_iter_entries(session, where):
                yield json.dumps(entry_json(entry), sort_keys=True, ensure_ascii=False)

    def verify(self) -> ChainCheck:
        """Check the whole chain (see :func:`strongroom.catalog.audit.check_chain`)."""
        with self.context.catalog.session(readonly=True) as session:
            return check_chain(session)
