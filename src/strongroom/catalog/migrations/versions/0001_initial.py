"""The initial catalog: resources, vaults, plans, rules, runs, jobs, recovery points, events.

Revision ID: 0001
Revises:
Create Date: 2026-11-26

Column types are spelled out plainly here (``DateTime(timezone=True)``, ``String(16)``)
rather than through the model's TypeDecorators, so this file keeps working whatever
becomes of ``strongroom.catalog.types``.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_ONE_RUNNING_BACKUP = "kind = 'backup' AND state = 'RUNNING'"


def _time(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _json(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.JSON(), nullable=nullable)


def _state(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.String(length=16), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "resources",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        _json("tags"),
        _json("connection"),
        sa.Column("config_hash", sa.String(length=64), nullable=True),
        _time("created_at"),
        _time("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_resources")),
        sa.UniqueConstraint("name", name=op.f("uq_resources_name")),
    )
    op.create_table(
        "vaults",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("url", sa.String(length=1024), nullable=False),
        _json("settings"),
        sa.Column("lock_mode", sa.String(length=16), nullable=True),
        sa.Column("lock_min_retention_days", sa.Integer(), nullable=True),
        sa.Column("lock_max_retention_days", sa.Integer(), nullable=True),
        _time("lock_changeable_until", nullable=True),
        sa.Column("cold_tier_url", sa.String(length=1024), nullable=True),
        _json("cold_tier_settings"),
        _time("created_at"),
        _time("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vaults")),
        sa.UniqueConstraint("name", name=op.f("uq_vaults_name")),
    )
    op.create_table(
        "plans",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        _json("selections"),
        sa.Column("config_hash", sa.String(length=64), nullable=True),
        _time("created_at"),
        _time("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plans")),
        sa.UniqueConstraint("name", name=op.f("uq_plans_name")),
    )
    op.create_table(
        "rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("schedule", sa.String(length=200), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("start_window_minutes", sa.Integer(), nullable=True),
        sa.Column("completion_window_minutes", sa.Integer(), nullable=True),
        sa.Column("vault_id", sa.Integer(), nullable=False),
        _json("lifecycle"),
        _json("recovery_point_tags"),
        _json("copy_actions"),
        _json("retry_policy"),
        sa.Column("allow_partial", sa.Boolean(), nullable=False),
        _time("created_at"),
        _time("updated_at"),
        sa.ForeignKeyConstraint(
            ["plan_id"], ["plans.id"], name=op.f("fk_rules_plan_id_plans"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["vault_id"], ["vaults.id"], name=op.f("fk_rules_vault_id_vaults")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rules")),
        sa.UniqueConstraint("plan_id", "name", name=op.f("uq_rules_plan_id_name")),
    )
    op.create_index(op.f("ix_rules_vault_id"), "rules", ["vault_id"])

    op.create_table(
        "runs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=True),
        sa.Column("rule_id", sa.Integer(), nullable=True),
        _time("fired_at"),
        _time("finished_at", nullable=True),
        _state("state"),
        _json("summary"),
        sa.ForeignKeyConstraint(
            ["plan_id"], ["plans.id"], name=op.f("fk_runs_plan_id_plans"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["rule_id"], ["rules.id"], name=op.f("fk_runs_rule_id_rules"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
    )
    op.create_index("ix_runs_rule_id_fired_at", "runs", ["rule_id", "fired_at"])

    op.create_table(
        "jobs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("resource_id", sa.Integer(), nullable=True),
        sa.Column("vault_id", sa.Integer(), nullable=True),
        sa.Column("rule_id", sa.Integer(), nullable=True),
        sa.Column("run_id", sa.String(length=36), nullable=True),
        _state("state"),
        _json("params"),
        sa.Column("allow_partial", sa.Boolean(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("retry_interval_seconds", sa.Float(), nullable=False),
        sa.Column("retry_backoff_rate", sa.Float(), nullable=False),
        _time("next_attempt_at", nullable=True),
        _time("start_by", nullable=True),
        _time("complete_by", nullable=True),
        _time("created_at"),
        _time("updated_at"),
        _time("started_at", nullable=True),
        _time("finished_at", nullable=True),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("error_retryable", sa.Boolean(), nullable=True),
        _json("result", nullable=True),
        _json("progress", nullable=True),
        _time("cancel_requested_at", nullable=True),
        sa.Column("cancel_reason", sa.Text(), nullable=True),
        sa.Column("lease_owner", sa.String(length=128), nullable=True),
        _time("lease_expires_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["resource_id"], ["resources.id"], name=op.f("fk_jobs_resource_id_resources")
        ),
        sa.ForeignKeyConstraint(
            ["rule_id"], ["rules.id"], name=op.f("fk_jobs_rule_id_rules"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_jobs_run_id_runs"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(["vault_id"], ["vaults.id"], name=op.f("fk_jobs_vault_id_vaults")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
    )
    op.create_index("ix_jobs_created_at", "jobs", ["created_at"])
    op.create_index("ix_jobs_resource_id_state", "jobs", ["resource_id", "state"])
    op.create_index(op.f("ix_jobs_rule_id"), "jobs", ["rule_id"])
    op.create_index("ix_jobs_run_id", "jobs", ["run_id"])
    op.create_index("ix_jobs_state_lease_expires_at", "jobs", ["state", "lease_expires_at"])
    op.create_index("ix_jobs_state_next_attempt_at", "jobs", ["state", "next_attempt_at"])
    op.create_index("ix_jobs_vault_id_state", "jobs", ["vault_id", "state"])
    op.create_index(
        "uq_jobs_one_running_backup_per_resource",
        "jobs",
        ["resource_id"],
        unique=True,
        sqlite_where=sa.text(_ONE_RUNNING_BACKUP),
        postgresql_where=sa.text(_ONE_RUNNING_BACKUP),
    )

    op.create_table(
        "job_transitions",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("job_id", sa.String(length=36), nullable=False),
        _state("from_state", nullable=True),
        _state("to_state"),
        _time("at"),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_job_transitions_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_transitions")),
    )
    op.create_index("ix_job_transitions_job_id_id", "job_transitions", ["job_id", "id"])

    op.create_table(
        "recovery_points",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("vault_id", sa.Integer(), nullable=False),
        sa.Column("resource_id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.String(length=36), nullable=True),
        _state("state"),
        _time("created_at"),
        _time("completed_at", nullable=True),
        sa.Column("logical_size", sa.BigInteger(), nullable=False),
        sa.Column("stored_size", sa.BigInteger(), nullable=False),
        _json("tags"),
        _time("move_to_cold_at", nullable=True),
        _time("delete_at", nullable=True),
        sa.Column("tier", sa.String(length=16), nullable=False),
        sa.Column("legal_hold", sa.Boolean(), nullable=False),
        _json("verification_result", nullable=True),
        _time("verified_at", nullable=True),
        _json("restore_test_result", nullable=True),
        _time("restore_tested_at", nullable=True),
        _json("metadata"),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["jobs.id"],
            name=op.f("fk_recovery_points_job_id_jobs"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["resource_id"], ["resources.id"], name=op.f("fk_recovery_points_resource_id_resources")
        ),
        sa.ForeignKeyConstraint(
            ["vault_id"], ["vaults.id"], name=op.f("fk_recovery_points_vault_id_vaults")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recovery_points")),
    )
    op.create_index(op.f("ix_recovery_points_job_id"), "recovery_points", ["job_id"])
    op.create_index(
        "ix_recovery_points_resource_id_created_at",
        "recovery_points",
        ["resource_id", "created_at"],
    )
    op.create_index("ix_recovery_points_state_delete_at", "recovery_points", ["state", "delete_at"])
    op.create_index(
        "ix_recovery_points_state_move_to_cold_at", "recovery_points", ["state", "move_to_cold_at"]
    )
    op.create_index(
        "ix_recovery_points_vault_id_created_at", "recovery_points", ["vault_id", "created_at"]
    )

    op.create_table(
        "failure_records",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("component", sa.String(length=500), nullable=False),
        sa.Column("resource_id", sa.Integer(), nullable=True),
        sa.Column("rule_id", sa.Integer(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_job_id", sa.String(length=36), nullable=True),
        sa.Column("last_error_code", sa.String(length=64), nullable=True),
        sa.Column("last_error_message", sa.Text(), nullable=True),
        _time("first_at"),
        _time("last_at"),
        sa.Column("escalated", sa.Boolean(), nullable=False),
        _time("escalated_at", nullable=True),
        _time("resolved_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["resource_id"],
            ["resources.id"],
            name=op.f("fk_failure_records_resource_id_resources"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["rule_id"],
            ["rules.id"],
            name=op.f("fk_failure_records_rule_id_rules"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_failure_records")),
        sa.UniqueConstraint("component", name=op.f("uq_failure_records_component")),
    )
    op.create_index(op.f("ix_failure_records_resource_id"), "failure_records", ["resource_id"])

    op.create_table(
        "events",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        _time("at"),
        sa.Column("type", sa.String(length=100), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        _json("payload"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
    )
    op.create_index("ix_events_at", "events", ["at"])
    op.create_index("ix_events_subject_id", "events", ["subject", "id"])
    op.create_index("ix_events_type_id", "events", ["type", "id"])


def downgrade() -> None:
    for table in (
        "events",
        "failure_records",
        "recovery_points",
        "job_transitions",
        "jobs",
        "runs",
        "rules",
        "plans",
        "vaults",
        "resources",
    ):
        op.drop_table(table)
