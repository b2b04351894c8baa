"""Scheduling: each rule's missed-run policy and fire state, the leadership lease, runs by state.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26

Adds ``rules.missed_run_policy`` (existing rules get the default, ``run-once-in-window``),
the ``rule_schedules`` table (per rule: the next and last fire time the scheduler worked
out), the ``leases`` table (the scheduler's exclusive leadership) and an index on
``runs.state`` (the scheduler looks for unfinished runs every tick).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _time(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    with op.batch_alter_table("rules") as batch:
        batch.add_column(
            sa.Column(
                "missed_run_policy",
                sa.String(length=32),
                nullable=False,
                server_default="run-once-in-window",
            )
        )
    op.create_table(
        "rule_schedules",
        sa.Column("rule_id", sa.Integer(), nullable=False),
        sa.Column("schedule", sa.String(length=200), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        _time("next_fire_at", nullable=True),
        _time("last_fired_at", nullable=True),
        sa.Column("last_run_id", sa.String(length=36), nullable=True),
        sa.Column("missed_firings", sa.Integer(), nullable=False),
        _time("updated_at"),
        sa.ForeignKeyConstraint(
            ["rule_id"],
            ["rules.id"],
            name=op.f("fk_rule_schedules_rule_id_rules"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("rule_id", name=op.f("pk_rule_schedules")),
    )
    op.create_table(
        "leases",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=False),
        _time("acquired_at"),
        _time("renewed_at"),
        _time("expires_at"),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_leases")),
    )
    op.create_index("ix_runs_state", "runs", ["state"])


def downgrade() -> None:
    op.drop_index("ix_runs_state", table_name="runs")
    op.drop_table("leases")
    op.drop_table("rule_schedules")
    with op.batch_alter_table("rules") as batch:
        batch.drop_column("missed_run_policy")
