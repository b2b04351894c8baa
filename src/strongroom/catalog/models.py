"""The catalog's tables as typed SQLAlchemy 2 models.

Every timestamp is a :class:`~strongroom.catalog.types.UTCDateTime` (aware UTC in and
out, on SQLite too) and is set by the caller from the engine's clock, never by a server
default, so that tests with a manual clock see the times they chose. JSON columns hold
plain JSON values only; connection settings hold secret *references*, never secrets.

The migrations in ``migrations/versions`` must describe exactly these tables; a test
compares them (``alembic`` autogenerate) on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from strongroom.catalog.types import (
    JobKind,
    JobKindType,
    JobState,
    JobStateType,
    PointState,
    PointStateType,
    Tier,
    TierType,
    UTCDateTime,
)

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JSONObject = dict[str, Any]
"""A JSON object as stored in a JSON column."""

# A 64-bit key on PostgreSQL; SQLite needs exactly INTEGER for an auto-incrementing rowid key.
_BIG_ID = BigInteger().with_variant(Integer(), "sqlite")

MISSED_RUN_ONCE: Final = "run-once-in-window"
"""The default missed-run policy of a rule (see ``docs/scheduling.md``)."""

_ONE_RUNNING_BACKUP = text(
    f"kind = '{JobKind.BACKUP.value}' AND state = '{JobState.RUNNING.value}'"
)


class Base(DeclarativeBase):
    """Declarative base of every catalog table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {  # noqa: RUF012 (SQLAlchemy reads this class attribute)
        datetime: UTCDateTime(),
        JSONObject: JSON(),
        list[Any]: JSON(),
    }


class Resource(Base):
    """One thing to protect: a type, connection settings (secret references only) and tags."""

    __tablename__ = "resources"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    type: Mapped[str] = mapped_column(String(32))
    tags: Mapped[JSONObject] = mapped_column(default=dict)
    connection: Mapped[JSONObject] = mapped_column(default=dict)
    config_hash: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Vault(Base):
    """Where recovery points live, with its lock settings and optional cold tier."""

    __tablename__ = "vaults"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    url: Mapped[str] = mapped_column(String(1024))
    settings: Mapped[JSONObject] = mapped_column(default=dict)
    lock_mode: Mapped[str | None] = mapped_column(String(16))
    lock_min_retention_days: Mapped[int | None]
    lock_max_retention_days: Mapped[int | None]
    lock_changeable_until: Mapped[datetime | None]
    cold_tier_url: Mapped[str | None] = mapped_column(String(1024))
    cold_tier_settings: Mapped[JSONObject] = mapped_column(default=dict)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Plan(Base):
    """A named set of rules plus the selection of resources it covers."""

    __tablename__ = "plans"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    selections: Mapped[JSONObject] = mapped_column(default=dict)
    config_hash: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    rules: Mapped[list[Rule]] = relationship(back_populates="plan", cascade="all, delete-orphan")


class Rule(Base):
    """A schedule with windows, a target vault, lifecycle, tags, copies and a retry policy."""

    __tablename__ = "rules"
    __table_args__ = (UniqueConstraint("plan_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    schedule: Mapped[str | None] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    start_window_minutes: Mapped[int | None]
    completion_window_minutes: Mapped[int | None]
    vault_id: Mapped[int] = mapped_column(ForeignKey("vaults.id"), index=True)
    lifecycle: Mapped[JSONObject] = mapped_column(default=dict)
    recovery_point_tags: Mapped[JSONObject] = mapped_column(default=dict)
    copy_actions: Mapped[list[Any]] = mapped_column(default=list)
    retry_policy: Mapped[JSONObject] = mapped_column(default=dict)
    allow_partial: Mapped[bool] = mapped_column(default=False)
    missed_run_policy: Mapped[str] = mapped_column(
        String(32), default=MISSED_RUN_ONCE, server_default=MISSED_RUN_ONCE
    )
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    plan: Mapped[Plan] = relationship(back_populates="rules")
    vault: Mapped[Vault] = relationship()


class RuleSchedule(Base):
    """The scheduler's memory of one rule: when it last fired and when it fires next.

    ``schedule`` and ``timezone`` are the expression ``next_fire_at`` was worked out for;
    when the rule's own differ, the rule was changed and the next fire time is worked out
    again. ``next_fire_at`` is ``None`` when the schedule never fires again. Firing
    advances the row with a conditional update on ``next_fire_at``, so of two schedulers
    only one fires each instant.
    """

    __tablename__ = "rule_schedules"

    rule_id: Mapped[int] = mapped_column(
        ForeignKey("rules.id", ondelete="CASCADE"), primary_key=True
    )
    schedule: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64))
    next_fire_at: Mapped[datetime | None]
    last_fired_at: Mapped[datetime | None]
    last_run_id: Mapped[str | None] = mapped_column(String(36))
    missed_firings: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[datetime]


class Lease(Base):
    """A named lease one process holds until ``expires_at`` (the scheduler's leadership).

    Taken and renewed with one conditional update (``WHERE holder = me OR expires_at <=
    now``), so at most one holder is current at any time.
    """

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    acquired_at: Mapped[datetime]
    renewed_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class Setting(Base):
    """One catalog-wide setting that ``apply`` declares, as JSON (e.g. ``concurrency``).

    Every worker sharing the catalog reads it, so one ``apply`` changes them all.
    """

    __tablename__ = "settings"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[JSONObject] = mapped_column(default=dict)
    updated_at: Mapped[datetime]


class Run(Base):
    """One firing of a rule over all its resources."""

    __tablename__ = "runs"
    __table_args__ = (
        Index("ix_runs_rule_id_fired_at", "rule_id", "fired_at"),
        Index("ix_runs_state", "state"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    plan_id: Mapped[int | None] = mapped_column(ForeignKey("plans.id", ondelete="SET NULL"))
    rule_id: Mapped[int | None] = mapped_column(ForeignKey("rules.id", ondelete="SET NULL"))
    fired_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    state: Mapped[JobState] = mapped_column(JobStateType())
    summary: Mapped[JSONObject] = mapped_column(default=dict)


class Job(Base):
    """One unit of work (backup, restore, verify, copy, delete) and its persisted state.

    ``attempt`` counts from 1 and grows on every retry; ``max_attempts`` counts all
    attempts, the first included. A worker holds a RUNNING job through a lease
    (``lease_owner`` until ``lease_expires_at``) that it renews while it works.
    """

    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_state_next_attempt_at", "state", "next_attempt_at"),
        Index("ix_jobs_state_lease_expires_at", "state", "lease_expires_at"),
        Index("ix_jobs_resource_id_state", "resource_id", "state"),
        Index("ix_jobs_resource_id_created_at", "resource_id", "created_at"),
        Index("ix_jobs_vault_id_state", "vault_id", "state"),
        Index("ix_jobs_created_at", "created_at"),
        Index("ix_jobs_run_id", "run_id"),
        # The database itself refuses a second RUNNING backup of one resource, whatever
        # process or thread tries: the claim's own checks are only the first line.
        Index(
            "uq_jobs_one_running_backup_per_resource",
            "resource_id",
            unique=True,
            sqlite_where=_ONE_RUNNING_BACKUP,
            postgresql_where=_ONE_RUNNING_BACKUP,
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[JobKind] = mapped_column(JobKindType())
    resource_id: Mapped[int | None] = mapped_column(ForeignKey("resources.id"))
    vault_id: Mapped[int | None] = mapped_column(ForeignKey("vaults.id"))
    rule_id: Mapped[int | None] = mapped_column(
        ForeignKey("rules.id", ondelete="SET NULL"), index=True
    )
    run_id: Mapped[str | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    state: Mapped[JobState] = mapped_column(JobStateType())
    params: Mapped[JSONObject] = mapped_column(default=dict)
    allow_partial: Mapped[bool] = mapped_column(default=False)
    attempt: Mapped[int] = mapped_column(default=1)
    max_attempts: Mapped[int]
    retry_interval_seconds: Mapped[float] = mapped_column(Float())
    retry_backoff_rate: Mapped[float] = mapped_column(Float())
    next_attempt_at: Mapped[datetime | None]
    start_by: Mapped[datetime | None]
    complete_by: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text())
    error_retryable: Mapped[bool | None] = mapped_column(Boolean())
    result: Mapped[JSONObject | None]
    progress: Mapped[JSONObject | None]
    cancel_requested_at: Mapped[datetime | None]
    cancel_reason: Mapped[str | None] = mapped_column(Text())
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[datetime | None]

    resource: Mapped[Resource | None] = relationship()
    vault: Mapped[Vault | None] = relationship()
    rule: Mapped[Rule | None] = relationship()
    transitions: Mapped[list[JobTransition]] = relationship(
        back_populates="job",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="JobTransition.id",
    )


class JobTransition(Base):
    """One recorded change of a job's state: from, to, when, why, at which attempt."""

    __tablename__ = "job_transitions"
    __table_args__ = (Index("ix_job_transitions_job_id_id", "job_id", "id"),)

    id: Mapped[int] = mapped_column(_BIG_ID, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    from_state: Mapped[JobState | None] = mapped_column(JobStateType())
    to_state: Mapped[JobState] = mapped_column(JobStateType())
    at: Mapped[datetime]
    reason: Mapped[str] = mapped_column(Text(), default="")
    attempt: Mapped[int]

    job: Mapped[Job] = relationship(back_populates="transitions")


class RecoveryPoint(Base):
    """One completed backup of one resource; ``id`` is the vault manifest's id.

    ``cold_since`` is when the point reached the cold tier; ``cold_point_id`` is the id of
    its copy in a separate-store cold tier (a vault of its own, so another manifest id).
    A legal hold keeps its reason, who placed it and when with the point itself.
    ``source_point_id`` is set on a copy: the id of the point it was copied from.
    """

    __tablename__ = "recovery_points"
    __table_args__ = (
        Index("ix_recovery_points_created_at", "created_at"),
        Index("ix_recovery_points_vault_id_created_at", "vault_id", "created_at"),
        Index("ix_recovery_points_resource_id_created_at", "resource_id", "created_at"),
        Index("ix_recovery_points_state_delete_at", "state", "delete_at"),
        Index("ix_recovery_points_state_move_to_cold_at", "state", "move_to_cold_at"),
        # Covers the storage totals per vault and tier (catalog/measures.py).
        Index("ix_recovery_points_storage_totals", "state", "vault_id", "tier", "stored_size"),
    )

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    vault_id: Mapped[int] = mapped_column(ForeignKey("vaults.id"))
    resource_id: Mapped[int] = mapped_column(ForeignKey("resources.id"))
    job_id: Mapped[str | None] = mapped_column(
        ForeignKey("jobs.id", ondelete="SET NULL"), index=True
    )
    state: Mapped[PointState] = mapped_column(PointStateType())
    created_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]
    logical_size: Mapped[int] = mapped_column(BigInteger(), default=0)
    stored_size: Mapped[int] = mapped_column(BigInteger(), default=0)
    tags: Mapped[JSONObject] = mapped_column(default=dict)
    move_to_cold_at: Mapped[datetime | None]
    delete_at: Mapped[datetime | None]
    tier: Mapped[Tier] = mapped_column(TierType(), default=Tier.WARM)
    cold_since: Mapped[datetime | None]
    cold_point_id: Mapped[str | None] = mapped_column(String(128))
    legal_hold: Mapped[bool] = mapped_column(default=False)
    legal_hold_reason: Mapped[str | None] = mapped_column(Text())
    legal_hold_by: Mapped[str | None] = mapped_column(String(200))
    legal_hold_at: Mapped[datetime | None]
    verification_result: Mapped[JSONObject | None]
    verified_at: Mapped[datetime | None]
    restore_test_result: Mapped[JSONObject | None]
    restore_tested_at: Mapped[datetime | None]
    metadata_: Mapped[JSONObject] = mapped_column("metadata", JSON(), default=dict)
    source_point_id: Mapped[str | None] = mapped_column(String(128), index=True)

    vault: Mapped[Vault] = relationship()
    resource: Mapped[Resource] = relationship()


class FailureRecord(Base):
    """Consecutive failed attempts of one component (kind/resource/rule), until a success.

    The engine bumps ``attempts`` on every failed attempt, sets ``escalated`` when it
    gives up, and marks the record resolved on the next success; the counts live here so
    they survive restarts.
    """

    __tablename__ = "failure_records"

    id: Mapped[int] = mapped_column(primary_key=True)
    component: Mapped[str] = mapped_column(String(500), unique=True)
    resource_id: Mapped[int | None] = mapped_column(
        ForeignKey("resources.id", ondelete="SET NULL"), index=True
    )
    rule_id: Mapped[int | None] = mapped_column(ForeignKey("rules.id", ondelete="SET NULL"))
    attempts: Mapped[int]
    last_job_id: Mapped[str | None] = mapped_column(String(36))
    last_error_code: Mapped[str | None] = mapped_column(String(64))
    last_error_message: Mapped[str | None] = mapped_column(Text())
    first_at: Mapped[datetime]
    last_at: Mapped[datetime]
    escalated: Mapped[bool] = mapped_column(default=False)
    escalated_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]


class EventRecord(Base):
    """One published event, kept as the audit feed (``id`` orders them)."""

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_type_id", "type", "id"),
        Index("ix_events_subject_id", "subject", "id"),
        Index("ix_events_at", "at"),
    )

    id: Mapped[int] = mapped_column(_BIG_ID, primary_key=True, autoincrement=True)
    at: Mapped[datetime]
    type: Mapped[str] = mapped_column(String(100))
    subject: Mapped[str] = mapped_column(String(200))
    payload: Mapped[JSONObject] = mapped_column(default=dict)


class AuditEntry(Base):
    """One entry of the audit trail: who did what, when, from where, with which outcome.

    Append-only and chained: ``entry_hash`` is the SHA-256 of the entry's canonical JSON,
    which includes ``previous_hash`` (the hash of entry ``seq - 1``). ``seq`` is assigned
    by the appender under a lock, never by a database sequence, so it has no gaps of its
    own: a gap is a deleted entry (see ``catalog/audit.py``).
    """

    __tablename__ = "audit_entries"
    __table_args__ = (
        Index("ix_audit_entries_at", "at"),
        Index("ix_audit_entries_action_seq", "action", "seq"),
        Index("ix_audit_entries_actor_seq", "actor", "seq"),
    )

    seq: Mapped[int] = mapped_column(_BIG_ID, primary_key=True, autoincrement=False)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(200))
    origin: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100))
    subject: Mapped[str] = mapped_column(String(300))
    outcome: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(Text())
    details: Mapped[JSONObject] = mapped_column(default=dict)
    previous_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64))


class EventDelivery(Base):
    """The outbox: one event owed to one target of one event rule, until delivered.

    The delivery loop creates these rows for every stored event its rules match (in the
    transaction that advances its cursor), claims due ones, delivers and marks them. A
    delivery that runs out of attempts, or whose event grew too old, ends ``dead``: the
    dead-letter record, kept with its last error.
    """

    __tablename__ = "event_deliveries"
    __table_args__ = (
        UniqueConstraint("event_id", "rule", "target"),
        Index("ix_event_deliveries_state_next_attempt_at", "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(_BIG_ID, primary_key=True, autoincrement=True)
    event_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"),
        ForeignKey("events.id", ondelete="CASCADE"),
        index=True,
    )
    rule: Mapped[str] = mapped_column(String(100))
    target: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime]
    next_attempt_at: Mapped[datetime]
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    claimed_until: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text())


class Escalation(Base):
    """One open or resolved page, by its stable dedup key (``rule/channel/component``).

    A page is sent only while no open escalation holds the key (repeats do not page
    again) and resolved only when one is open.
    """

    __tablename__ = "escalations"

    dedup_key: Mapped[str] = mapped_column(String(500), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    opened_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None]
    event_id: Mapped[int | None] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"))


class ApiToken(Base):
    """One API token: its public id, a name, a role and the SHA-256 of its secret.

    The secret itself is shown once when the token is made and never stored. A token is
    usable until ``expires_at`` (``None``: no expiry) unless ``revoked_at`` is set.
    """

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(32))
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    revoked_by: Mapped[str | None] = mapped_column(String(200))
    last_used_at: Mapped[datetime | None]


class ErasureRequest(Base):
    """One erasure request (GDPR Art. 17): a subject to erase from every restore of a resource.

    ``resource`` is the resource's name (no foreign key: the request outlives a resource
    removed from the configuration while its points remain). ``method`` holds how to erase
    (``statements``/``remaining``/``database`` for sql, ``patterns`` for keys and paths).
    ``state`` is ``open`` until cancelled; restores re-apply open requests only.
    """

    __tablename__ = "erasure_requests"
    __table_args__ = (Index("ix_erasure_requests_resource_state", "resource", "state"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    resource: Mapped[str] = mapped_column(String(200))
    subject: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(16))
    method: Mapped[JSONObject] = mapped_column(default=dict)
    reason: Mapped[str | None] = mapped_column(Text())
    requested_by: Mapped[str] = mapped_column(String(200))
    requested_at: Mapped[datetime]
    due_at: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(16))
    cancelled_by: Mapped[str | None] = mapped_column(String(200))
    cancelled_at: Mapped[datetime | None]
    cancel_reason: Mapped[str | None] = mapped_column(Text())


class ErasureApplication(Base):
    """One re-application of an erasure request to data a restore (or restore test) wrote:
    the evidence of what it affected (rows, keys, paths) and what its check found left."""

    __tablename__ = "erasure_applications"

    id: Mapped[int] = mapped_column(_BIG_ID, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(
        ForeignKey("erasure_requests.id", ondelete="CASCADE"), index=True
    )
    job_id: Mapped[str | None] = mapped_column(String(36), index=True)
    point_id: Mapped[str | None] = mapped_column(String(128))
    restore_test: Mapped[bool] = mapped_column(default=False)
    applied_at: Mapped[datetime]
    target: Mapped[str] = mapped_column(Text())
    affected: Mapped[int] = mapped_column(BigInteger())
    remaining: Mapped[int | None] = mapped_column(BigInteger())
    details: Mapped[JSONObject] = mapped_column(default=dict)
