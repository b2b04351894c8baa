"""Audit head anchors: signed checkpoints of the audit trail kept as objects in a vault.

The hash chain shows an edited, deleted or reordered entry, but not the removal of the
newest entries: what is left is still a valid chain. An anchor records the head (its
``seq`` and hash), the entry count and the time, signed with the report signing key
(Ed25519, ``signing.py``), as the object ``audit-anchors/<seq>-<time>.json`` of a vault's
store, beside (never inside) the recovery points. On a locked S3 vault the object is
written under the vault lock's Object Lock retention, so the catalog's owner cannot
remove it either. ``audit verify`` compares the catalog's trail with the newest anchor of
each vault holding some: a trail shorter than an anchor, or whose entry at the anchored
``seq`` has another hash, fails naming the anchor.

``strongroom audit anchor --vault V`` writes one; ``strongroom serve --audit-anchor-vault V``
writes one at every lifecycle pass when the head moved.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from strongroom.catalog.audit import ChainCheck, ChainProblem, check_chain
from strongroom.catalog.models import AuditEntry
from strongroom.catalog.resources import list_vaults
from strongroom.errors import BlobNotFoundError, ConflictError, IntegrityError
from strongroom.services.context import AppContext
from strongroom.services.reports.signing import (
    default_key_path,
    load_private_key,
    load_public_key,
    public_key_path,
    sign_document,
    verify_document,
)
from strongroom.services.vaults.registry import vault_config
from strongroom.services.vaults.service import VaultService
from strongroom.services.vaults.stores import open_vault_store
from strongroom.storage.base import BlobStore

PREFIX: Final = "audit-anchors/"
FORMAT: Final = "strongroom-audit-anchor"
VERSION: Final = 1


@dataclass(frozen=True)
class Anchor:
    """One anchor as read back: where it is, what it recorded."""

    vault: str
    name: str
    head_seq: int
    head_hash: str
    entries: int
    at: str

    def to_json(self) -> dict[str, Any]:
        """The anchor as JSON."""
        return dataclasses.asdict(self)


def anchor_name(head_seq: int, at: datetime) -> str:
    """The object name of an anchor: sorts by ``seq``, then time."""
    return f"{PREFIX}{head_seq:012d}-{at:%Y%m%dT%H%M%S%fZ}.json"


class AnchorService:
    """Writes audit anchors into vaults and checks the trail against the newest ones."""

    def __init__(self, context: AppContext, *, signing_key: Path | None = None) -> None:
        self.context = context
        self.signing_key = signing_key or default_key_path(context.home)

    def _store(self, vault: str) -> BlobStore:
        config = vault_config(self.context, vault)
        retention = VaultService(self.context).store_retention(vault)
        if retention is not None:
            retention = dataclasses.replace(retention, prefixes=(PREFIX,))
        return open_vault_store(config.url, config.s3, retention=retention)

    def write_if_moved(self, vault: str) -> Anchor | None:
        """Write an anchor as :meth:`write` does unless the vault's newest one already
        records the trail's head (then None): the daemon's periodic anchoring."""
        with self.context.catalog.session(readonly=True) as session:
            head = check_chain(session).head_hash
        newest = self._newest(vault, self._store(vault), trusted=None)
        if newest is not None and newest.head_hash == head:
            return None
        return self.write(vault)

    def write(self, vault: str) -> Anchor:
        """Write an anchor of the trail's current head into ``vault`` and return it.

        Raises ``NotFoundError`` without a signing key or for an unknown vault,
        ``IntegrityError`` when the trail itself is broken (an anchor must not bless an
        altered trail), ``ConflictError`` for an empty trail, the store's errors.
        """
        key = load_private_key(self.signing_key)
        with self.context.catalog.session(readonly=True) as session:
            check = check_chain(session)
        if not check.intact:
            raise IntegrityError(
                f"the audit trail is altered ({len(check.problems)} problem(s)): no anchor "
                "is written over it",
                hint="Run 'strongroom audit verify' to see where.",
            )
        if check.head_seq is None or check.head_hash is None:
            raise ConflictError("the audit trail is empty: nothing to anchor")
        store = self._store(vault)
        now = self.context.now()
        at = now.isoformat()
        fields = {
            "format": FORMAT,
            "version": VERSION,
            "head_seq": check.head_seq,
            "head_hash": check.head_hash,
            "entries": check.entries,
            "at": at,
            "catalog": self.context.catalog.display_url,
        }
        name = anchor_name(check.head_seq, now)
        document = sign_document(fields, key)
        store.put(name, json.dumps(document, indent=2).encode(), exclusive=True)
        return Anchor(vault, name, check.head_seq, check.head_hash, check.entries, at)

    def newest(self, *, vault: str | None = None, public_key: Path | None = None) -> list[Anchor]:
        """The newest anchor of ``vault``, or of every vault holding one, signature checked
        with ``public_key`` (default: the one beside the signing key). Raises
        ``IntegrityError`` for an anchor whose signature does not hold (naming it),
        ``NotFoundError`` without the key."""
        trusted = load_public_key(public_key or public_key_path(self.signing_key))
        if vault is not None:
            names = [vault]
        else:
            with self.context.catalog.session(readonly=True) as session:
                names = [row.name for row in list_vaults(session)]
        found: list[Anchor] = []
        for name in names:
            anchor = self._newest(name, self._store(name), trusted=trusted)
            if anchor is not None:
                found.append(anchor)
        return found

    @staticmethod
    def _newest(vault: str, store: BlobStore, *, trusted: Any) -> Anchor | None:
        names = sorted(info.name for info in store.list(PREFIX) if info.name.endswith(".json"))
        if not names:
            return None
        name = names[-1]
        try:
            document = json.loads(store.get(name))
        except BlobNotFoundError:
            return None
        except json.JSONDecodeError as error:
            raise IntegrityError(f"anchor {name} of vault {vault} is not JSON: {error}") from error
        fields = document if trusted is None else _verified(document, trusted, vault, name)
        return Anchor(
            vault,
            name,
            int(fields["head_seq"]),
            str(fields["head_hash"]),
            int(fields["entries"]),
            str(fields["at"]),
        )

    def compare(self, check: ChainCheck, anchors: list[Anchor]) -> ChainCheck:
        """Return ``check`` with a problem for each anchor the catalog's trail does not
        extend: entries removed after it (the trail ends before its head) or an entry at
        its head with another hash."""
        problems = list(check.problems)
        for anchor in anchors:
            with self.context.catalog.session(readonly=True) as session:
                entry = session.get(AuditEntry, anchor.head_seq)
                found = None if entry is None else entry.entry_hash
            where = f"anchor {anchor.name} in vault {anchor.vault} (written {anchor.at})"
            if found is None and (check.head_seq or 0) < anchor.head_seq:
                first = (check.head_seq or 0) + 1
                problems.append(
                    ChainProblem(
                        kind="removed-newest",
                        seq=first,
                        last_seq=anchor.head_seq,
                        message=f"entries {first}..{anchor.head_seq} were removed: {where} "
                        f"recorded {anchor.entries} entries up to {anchor.head_seq} "
                        f"({anchor.head_hash[:16]}…), the catalog ends at {check.head_seq}",
                    )
                )
            elif found != anchor.head_hash:
                problems.append(
                    ChainProblem(
                        kind="differs-from-anchor",
                        seq=anchor.head_seq,
                        message=f"entry {anchor.head_seq} is not the one {where} recorded "
                        f"({anchor.head_hash[:16]}…)",
                    )
                )
        return dataclasses.replace(check, problems=problems)


def _verified(document: Any, trusted: Any, vault: str, name: str) -> dict[str, Any]:
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise IntegrityError(f"{name} of vault {vault} is not an audit anchor")
    try:
        return verify_document(document, trusted)
    except IntegrityError as error:
        raise IntegrityError(
            f"anchor {name} of vault {vault}: {error}",
            hint="An anchor nobody can trust proves nothing: find who wrote it.",
        ) from error
