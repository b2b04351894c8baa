"""The difference between what a declaration asks for and what the catalog holds.

:func:`compute_changes` reads the catalog in the caller's session and returns one
:class:`Change` per vault, resource, plan and rule to create (``+``), update (``~``, with
the changed fields) or remove (``-``), plus the things the catalog holds that the
declaration does not name (``keep``). Nothing here writes.

What is removed: rules a declared plan no longer lists, always (a plan is declared whole).
Plans, resources and vaults the declaration does not name only with ``prune``, and
resources and vaults only when no recovery point or job refers to them (their history
would be lost); those are kept and reported with the reason. Vault data is never touched.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from sqlalchemy.orm import Session

from strongroom.catalog.jobs import list_jobs
from strongroom.catalog.models import Resource, Vault
from strongroom.catalog.outbox import METRICS, MONITOR, NOTIFICATIONS, REPORTS, read_section
from strongroom.catalog.points import list_recovery_points
from strongroom.catalog.resources import list_plans, list_resources, list_vaults
from strongroom.catalog.settings import ConcurrencyLimits, read_concurrency_limits
from strongroom.config.models import StrongroomConfig
from strongroom.config.notifications import MetricsConfig, MonitorConfig, NotificationsConfig
from strongroom.config.plans import PlanConfig, RetryPolicy
from strongroom.config.reports import ReportsConfig
from strongroom.config.vaults import VaultConfig
from strongroom.errors import ConfigError
from strongroom.services.declare.records import (
    UNSTORED_SETTINGS,
    JsonDict,
    PlanRecord,
    plan_record,
    plan_record_of_row,
)
from strongroom.services.declare.settings import (
    DAMAGED,
    concurrency_limits,
    default_limits,
    limits_as_config,
)
from strongroom.storage.open import redact_url

Action = Literal["create", "update", "remove", "keep"]
Kind = Literal["settings", "vault", "resource", "plan", "rule"]

CREATION_SETTINGS: Final = ("chunking", "compression", "pack_size_bytes")
"""Vault settings fixed when the vault is created in its store."""
_STORE_SETTINGS: Final = ("url", "key")
"""Vault settings that need the store opened again (a new place, or a new key to check)."""
SYMBOLS: Final[dict[Action, str]] = {"create": "+", "update": "~", "remove": "-", "keep": "!"}


@dataclass(frozen=True)
class Declared:
    """What a declaration asks for.

    ``vaults``, ``resources`` and ``concurrency`` are None when the declaration does not
    manage them (``create-plan``); ``whole`` says that things the catalog holds and the
    declaration does not name are reported (and, with ``prune``, removed).
    """

    vaults: Mapping[str, VaultConfig] | None
    resources: Mapping[str, Any] | None
    plans: Mapping[str, PlanConfig]
    records: Mapping[str, PlanRecord]
    whole: bool
    concurrency: ConcurrencyLimits | None = None
    notifications: Mapping[str, Any] | None = None
    metrics: Mapping[str, Any] | None = None
    monitor: Mapping[str, Any] | None = None
    reports: Mapping[str, Any] | None = None

    @classmethod
    def from_config(cls, config: StrongroomConfig) -> Declared:
        """Everything a configuration file declares; retry policies resolved per rule."""
        return cls(
            vaults=dict(config.vaults),
            resources=dict(config.resources),
            plans=dict(config.plans),
            records={
                name: plan_record(plan, _retry_resolver(config, name))
                for name, plan in config.plans.items()
            },
            whole=True,
            concurrency=concurrency_limits(config.concurrency),
            notifications=config.notifications.model_dump(mode="json"),
            metrics=config.metrics.model_dump(mode="json"),
            monitor=config.monitor.model_dump(mode="json"),
            reports=config.reports.model_dump(mode="json"),
        )

    @classmethod
    def plans_only(cls, plans: Mapping[str, PlanConfig]) -> Declared:
        """Plans alone (create-plan): retry overrides apply to the default policy."""

        def resolver(plan: PlanConfig) -> Callable[[str], RetryPolicy]:
            base = plan.retry.apply_to(RetryPolicy()) if plan.retry else RetryPolicy()

            def retry_for(rule_name: str) -> RetryPolicy:
                override = plan.rule(rule_name).retry
                return override.apply_to(base) if override else base

            return retry_for

        return cls(
            vaults=None,
            resources=None,
            plans=dict(plans),
            records={name: plan_record(plan, resolver(plan)) for name, plan in plans.items()},
            whole=False,
        )


def _retry_resolver(config: StrongroomConfig, plan: str) -> Callable[[str], RetryPolicy]:
    return lambda rule: config.retry_for(plan, rule)


@dataclass(frozen=True)
class Change:
    """One thing apply changes (or, for ``keep``, reports and leaves alone).

    Rules are named ``plan/rule``. ``fields`` lists the changed settings of an update
    (dotted paths); ``note`` says more (a vault created in its store, why a thing is kept).
    """

    action: Action
    kind: Kind
    name: str
    fields: tuple[str, ...] = ()
    note: str = ""

    def as_json(self) -> dict[str, Any]:
        """The change as JSON."""
        return {
            "action": self.action,
            "kind": self.kind,
            "name": self.name,
            "fields": list(self.fields),
            "note": self.note,
        }


@dataclass
class Changes:
    """Every change of one apply, in the order they are shown and written."""

    items: list[Change] = field(default_factory=list)
    store_vaults: set[str] = field(default_factory=set)
    """Vaults whose store is initialised (or opened with a new key) before the catalog is written."""
    warnings: list[str] = field(default_factory=list)
    resources_after: dict[str, tuple[str, dict[str, str]]] = field(default_factory=dict)
    """The resources the catalog holds once applied: name -> (type, tags)."""

    def of(self, *actions: Action) -> list[Change]:
        """The changes with one of ``actions``."""
        return [change for change in self.items if change.action in actions]


def changed_fields(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Return the dotted paths where two JSON values differ (mappings are compared by key)."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        paths: list[str] = []
        for key in sorted({*old, *new}, key=str):
            path = f"{prefix}.{key}" if prefix else str(key)
            paths += changed_fields(old.get(key), new.get(key), path)
        return paths
    return [] if old == new else [prefix or "(value)"]


def _usage(session: Session, kind: Kind, name: str, referenced: set[str]) -> str:
    """Why a vault or resource cannot be removed from the catalog ("" when it can)."""
    if kind == "vault" and name in referenced:
        return "rules target it"
    points = (
        list_recovery_points(session, vault=name, limit=1)
        if kind == "vault"
        else list_recovery_points(session, resource=name, limit=1)
    )
    if points:
        return "it has recovery points"
    jobs = (
        list_jobs(session, vault=name, limit=1)
        if kind == "vault"
        else list_jobs(session, resource=name, limit=1)
    )
    return "it has jobs" if jobs else ""


def _undeclared(
    session: Session,
    changes: Changes,
    kind: Kind,
    name: str,
    prune: bool,
    referenced: set[str],
) -> bool:
    """Report a thing the declaration does not name; return True when it is removed."""
    if not prune:
        changes.items.append(Change("keep", kind, name, note="not declared; --prune removes it"))
        return False
    reason = "" if kind == "plan" else _usage(session, kind, name, referenced)
    if reason:
        changes.items.append(Change("keep", kind, name, note=f"not declared; kept: {reason}"))
        return False
    return True


def _settings_changes(session: Session, declared: Declared, changes: Changes) -> None:
    """Add an update of the concurrency limits when they differ from the catalog's (a
    catalog that holds none counts as holding the defaults; see ``apply_settings``)."""
    if declared.concurrency is None:
        return
    try:
        before = read_concurrency_limits(session) or default_limits()
    except ConfigError:
        fields = [DAMAGED]
    else:
        fields = changed_fields(limits_as_config(before), limits_as_config(declared.concurrency))
    if fields:
        changes.items.append(Change("update", "settings", "concurrency", tuple(fields)))
    sections = (
        (NOTIFICATIONS, declared.notifications, NotificationsConfig),
        (METRICS, declared.metrics, MetricsConfig),
        (MONITOR, declared.monitor, MonitorConfig),
        (REPORTS, declared.reports, ReportsConfig),
    )
    for name, section, model in sections:
        if section is None:
            continue
        stored = read_section(session, name) or model().model_dump(mode="json")
        fields = changed_fields(stored, dict(section))
        if fields:
            changes.items.append(Change("update", "settings", name, tuple(fields)))


def _vault_changes(
    session: Session, declared: Declared, changes: Changes, prune: bool, referenced: set[str]
) -> None:
    if declared.vaults is None:
        return
    rows: dict[str, Vault] = {row.name: row for row in list_vaults(session)}
    for name, config in sorted(declared.vaults.items()):
        wanted = config.model_dump(mode="json")
        row = rows.get(name)
        if row is None:
            changes.items.append(Change("create", "vault", name))
            changes.store_vaults.add(name)
            continue
        fields = changed_fields(dict(row.settings), wanted)
        if not fields:
            continue
        changes.items.append(Change("update", "vault", name, tuple(fields)))
        if any(path.split(".")[0] in _STORE_SETTINGS for path in fields):
            changes.store_vaults.add(name)
        elif fixed := [path for path in fields if path.split(".")[0] in CREATION_SETTINGS]:
            changes.warnings.append(
                f"vault {name!r}: {', '.join(fixed)} take effect when a vault is created; "
                f"the vault at {redact_url(config.url)} keeps the settings it was created with"
            )
    if declared.whole:
        for name in sorted(rows.keys() - declared.vaults.keys()):
            if _undeclared(session, changes, "vault", name, prune, referenced):
                changes.items.append(Change("remove", "vault", name, note="its data is kept"))


def _resource_changes(session: Session, declared: Declared, changes: Changes, prune: bool) -> None:
    rows: dict[str, Resource] = {row.name: row for row in list_resources(session)}
    after = {name: (row.type, dict(row.tags)) for name, row in rows.items()}
    if declared.resources is not None:
        for name, model in sorted(declared.resources.items()):
            after[name] = (model.type, dict(model.tags))
            wanted = model.model_dump(mode="json")
            row = rows.get(name)
            if row is None:
                changes.items.append(Change("create", "resource", name, note=model.type))
            elif fields := changed_fields(dict(row.connection), wanted):
                changes.items.append(Change("update", "resource", name, tuple(fields)))
        if declared.whole:
            for name in sorted(rows.keys() - declared.resources.keys()):
                if _undeclared(session, changes, "resource", name, prune, set()):
                    changes.items.append(Change("remove", "resource", name))
                    del after[name]
    changes.resources_after = after


def _rule_changes(
    plan: str, old: Mapping[str, JsonDict], new: Mapping[str, JsonDict]
) -> list[Change]:
    found: list[Change] = []
    for rule, record in new.items():
        if rule not in old:
            found.append(Change("create", "rule", f"{plan}/{rule}", note=record["target_vault"]))
        elif fields := changed_fields(old[rule], record):
            found.append(Change("update", "rule", f"{plan}/{rule}", tuple(fields)))
    found += [
        Change("remove", "rule", f"{plan}/{rule}") for rule in sorted(old.keys() - new.keys())
    ]
    return found


def _rules(count: int) -> str:
    return f"{count} rule{'' if count == 1 else 's'}"


def _vaults_of(record: PlanRecord) -> set[str]:
    """The vaults a plan's rules write to: targets and copy destinations."""
    return {
        vault
        for rule in record.rules.values()
        for vault in [
            rule["target_vault"],
            *(action["destination_vault"] for action in rule["copy_actions"]),
        ]
    }


def _plan_changes(session: Session, declared: Declared, changes: Changes, prune: bool) -> set[str]:
    """Add the plan and rule changes; return the vaults the remaining rules target."""
    rows = {row.name: row for row in list_plans(session)}
    stored = {name: plan_record_of_row(row) for name, row in rows.items()}
    targets = {vault for record in declared.records.values() for vault in _vaults_of(record)}
    for name, record in sorted(declared.records.items()):
        old = stored.get(name)
        if old is None:
            changes.items.append(Change("create", "plan", name, note=_rules(len(record.rules))))
            changes.items += _rule_changes(name, {}, record.rules)
            continue
        rules = _rule_changes(name, old.rules, record.rules)
        fields = ["selections"] if old.selections != record.selections else []
        if rules:
            fields.append("rules")
        if old.config_hash != record.config_hash:
            fields.append(UNSTORED_SETTINGS)
        if fields:
            changes.items.append(Change("update", "plan", name, tuple(fields)))
            changes.items += rules
    if declared.whole:
        for name in sorted(stored.keys() - declared.records.keys()):
            if _undeclared(session, changes, "plan", name, prune, set()):
                note = _rules(len(stored[name].rules))
                changes.items.append(Change("remove", "plan", name, note=note))
            else:
                targets |= _vaults_of(stored[name])
    return targets


def compute_changes(session: Session, declared: Declared, *, prune: bool = False) -> Changes:
    """Compare ``declared`` with the catalog (read in ``session``); return the changes.

    The changes come in display order: settings (the concurrency limits), vaults,
    resources, then each plan followed by its rules. Plans are compared first because the
    vaults their rules target stay in use.
    """
    plan_changes = Changes()
    referenced = _plan_changes(session, declared, plan_changes, prune)
    changes = Changes()
    _settings_changes(session, declared, changes)
    _vault_changes(session, declared, changes, prune, referenced)
    _resource_changes(session, declared, changes, prune)
    changes.items += plan_changes.items
    changes.warnings += plan_changes.warnings
    return changes
