"""``apply`` and ``create-plan``: make the catalog hold what a declaration says.

An apply runs in four steps:

1. compare the declaration with the catalog (a read-only transaction) — the diff;
2. prepare the vault stores that need it (new vaults, or a changed URL or key): each is
   created in its store, or adopted when the store holds one, with its configured key —
   outside any catalog transaction;
3. in ONE catalog transaction: compare again (refusing to go on if another writer changed
   what step 2 prepared), run the policy checks (:mod:`~strongroom.services.declare.checks`),
   write every change;
4. commit. If anything fails in step 3 the transaction rolls back and nothing is applied;
   vaults that step 2 created in their stores stay there and the next apply adopts them
   (the error says which).

``--dry-run`` stops after step 1 (plus the policy checks): no store is touched, nothing is
written. What apply removes is described in :mod:`~strongroom.services.declare.diff`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy.orm import Session

from strongroom.config.issues import ConfigIssue
from strongroom.config.load import LoadedConfig
from strongroom.errors import ChangedMeanwhileError, StrongroomError
from strongroom.services.audit.trail import record, record_refusal
from strongroom.services.context import AppContext
from strongroom.services.declare.checks import POLICY_CHECKS, ApplyCheck, PendingApply, run_checks
from strongroom.services.declare.diff import Change, Changes, Declared, compute_changes
from strongroom.services.declare.documents import PlanDocument
from strongroom.services.declare.records import selected_resources
from strongroom.services.declare.references import check_plans_against_catalog
from strongroom.services.declare.vaults import (
    PreparedVault,
    prepare_vault_stores,
    reworded,
    use_declared_catalog,
)
from strongroom.services.declare.write import write_changes

Verify = Callable[[Session], list[ConfigIssue]]


@dataclass
class ApplyReport:
    """What an apply changed (or, on a dry run, would change)."""

    source: str
    catalog: str
    dry_run: bool
    changes: list[Change]
    selections: dict[str, list[str]] = field(default_factory=dict)
    """For each plan applied: the resources its selections select once applied."""
    warnings: list[ConfigIssue] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """How many things are (or would be) created, updated, removed and kept."""
        return {
            action: sum(1 for change in self.changes if change.action == action)
            for action in ("create", "update", "remove", "keep")
        }

    @property
    def changed(self) -> bool:
        """True when something is (or would be) created, updated or removed."""
        counts = self.counts()
        return bool(counts["create"] or counts["update"] or counts["remove"])

    def as_json(self) -> dict[str, Any]:
        """The report as JSON."""
        return {
            "source": self.source,
            "catalog": self.catalog,
            "dry_run": self.dry_run,
            "applied": not self.dry_run and self.changed,
            "summary": self.counts(),
            "changes": [change.as_json() for change in self.changes if change.action != "keep"],
            "kept": [change.as_json() for change in self.changes if change.action == "keep"],
            "selections": self.selections,
            "warnings": [
                {
                    "path": issue.path,
                    "line": issue.line,
                    "message": issue.message,
                    "code": issue.code,
                }
                for issue in self.warnings
            ],
        }


def _with_store_notes(
    changes: Changes, prepared: dict[str, PreparedVault], dry_run: bool
) -> list[Change]:
    noted: list[Change] = []
    for change in changes.items:
        if change.kind == "vault" and change.name in changes.store_vaults:
            vault = prepared.get(change.name)
            if dry_run or vault is None:
                note = "its store is opened with the key, and the vault created there if absent"
            elif vault.created:
                note = f"created in its store ({vault.vault_id[:12]})"
            else:
                note = f"adopted the vault already in its store ({vault.vault_id[:12]})"
            change = replace(change, note=note)
        noted.append(change)
    return noted


class ApplyService:
    """Applies configuration files and plan documents to the catalog of one context."""

    def __init__(self, context: AppContext, *, checks: Sequence[ApplyCheck] | None = None):
        self.context = context
        self.checks: Sequence[ApplyCheck] = POLICY_CHECKS if checks is None else checks

    def apply(
        self, loaded: LoadedConfig, *, dry_run: bool = False, prune: bool = False
    ) -> ApplyReport:
        """Apply a loaded configuration: concurrency limits, vaults, resources, plans, rules.

        The file's ``catalog`` section is used when the context names no catalog. Raises
        ``SecretError`` naming the vault and the reference when a new vault's key does not
        resolve, ``ServiceUnavailableError`` (retryable) when the catalog does not answer,
        ``PolicyError`` when a policy check refuses, ``ConflictError`` when another writer
        changed the catalog meanwhile; in each case nothing is written to the catalog.
        """
        use_declared_catalog(self.context, loaded.config.catalog)
        declared = Declared.from_config(loaded.config)
        return self._run(
            declared,
            source=loaded.source,
            warnings=list(loaded.warnings),
            dry_run=dry_run,
            prune=prune,
        )

    def create_plans(
        self, document: PlanDocument, *, replace: bool = False, dry_run: bool = False
    ) -> ApplyReport:
        """Create the plans of a plan document (rules and selections) in one transaction.

        Their vaults and the resources they name must be registered. Raises
        ``ConflictError`` when a plan exists (unless ``replace``), ``NotFoundError`` for an
        unregistered vault or resource (naming the rule or selection), ``PolicyError``.
        """

        def verify(session: Session) -> list[ConfigIssue]:
            return check_plans_against_catalog(
                session, document.source, document.plans, replace=replace
            )

        return self._run(
            Declared.plans_only(document.plans),
            source=document.source,
            warnings=list(document.warnings),
            dry_run=dry_run,
            prune=False,
            verify=verify,
        )

    def _run(
        self,
        declared: Declared,
        *,
        source: str,
        warnings: list[ConfigIssue],
        dry_run: bool,
        prune: bool,
        verify: Verify | None = None,
    ) -> ApplyReport:
        catalog = self.context.catalog
        with catalog.session(readonly=True) as session:
            found = verify(session) if verify is not None else []
            changes = compute_changes(session, declared, prune=prune)
            if dry_run:
                run_checks(
                    self.checks, PendingApply(session, declared, changes, self.context.now())
                )
                return self._report(source, declared, changes, {}, warnings + found, dry_run)
        vaults = declared.vaults or {}
        prepared = prepare_vault_stores(
            self.context, {name: vaults[name] for name in changes.store_vaults}
        )
        try:
            with catalog.session() as session:
                found = verify(session) if verify is not None else []
                changes = compute_changes(session, declared, prune=prune)
                if not changes.store_vaults <= prepared.keys():
                    raise ChangedMeanwhileError(
                        "the catalog changed while apply prepared the vault stores",
                        hint="Run the command again.",
                    )
                run_checks(
                    self.checks, PendingApply(session, declared, changes, self.context.now())
                )
                write_changes(session, declared, changes, self.context.now())
                record(
                    session,
                    actor=self.context.actor,
                    at=self.context.now(),
                    action="config.apply",
                    subject=source,
                    details={
                        "changes": [
                            change.as_json() for change in changes.of("create", "update", "remove")
                        ],
                        "prune": prune,
                    },
                )
        except StrongroomError as error:
            record_refusal(self.context, action="config.apply", subject=source, error=error)
            created = sorted(name for name, vault in prepared.items() if vault.created)
            kept = (
                f" (created in their stores, adopted by the next apply: {', '.join(created)})"
                if created
                else ""
            )
            raise reworded(error, f"nothing was applied{kept}: {error.message}") from error
        return self._report(source, declared, changes, prepared, warnings + found, dry_run)

    def _report(
        self,
        source: str,
        declared: Declared,
        changes: Changes,
        prepared: dict[str, PreparedVault],
        warnings: list[ConfigIssue],
        dry_run: bool,
    ) -> ApplyReport:
        return ApplyReport(
            source=source,
            catalog=self.context.catalog.display_url,
            dry_run=dry_run,
            changes=_with_store_notes(changes, prepared, dry_run),
            selections={
                name: selected_resources(plan.selections, changes.resources_after)
                for name, plan in sorted(declared.plans.items())
            },
            warnings=warnings
            + [ConfigIssue("", message, None, "warning", "apply") for message in changes.warnings],
        )
