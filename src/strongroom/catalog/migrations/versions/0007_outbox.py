"""The event outbox: deliveries owed to event-rule targets, and open escalations.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07

Adds ``event_deliveries`` (one row per event and rule target: pending, delivered or
dead, with attempts, the next attempt's time and the claim of the worker delivering it)
and ``escalations`` (one row per page by dedup key: open until the next success
resolves it). The delivery loop's cursor and the declared notifications live in
``settings``.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "event_deliveries",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("event_id", _ID, nullable=False),
        sa.Column("rule", sa.String(length=100), nullable=False),
        sa.Column("target", sa.String(length=200), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_by", sa.String(length=100), nullable=True),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["events.id"],
            name=op.f("fk_event_deliveries_event_id_events"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_deliveries")),
        sa.UniqueConstraint(
            "event_id", "rule", "target", name=op.f("uq_event_deliveries_event_id_rule_target")
        ),
    )
    op.create_index(
        op.f("ix_event_deliveries_event_id"), "event_deliveries", ["event_id"], unique=False
    )
    op.create_index(
        "ix_event_deliveries_state_next_attempt_at",
        "event_deliveries",
        ["state", "next_attempt_at"],
        unique=False,
    )
    op.create_table(
        "escalations",
        sa.Column("dedup_key", sa.String(length=500), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("event_id", _ID, nullable=True),
        sa.PrimaryKeyConstraint("dedup_key", name=op.f("pk_escalations")),
    )


def downgrade() -> None:
    op.drop_table("escalations")
    op.drop_index("ix_event_deliveries_state_next_attempt_at", table_name="event_deliveries")
    op.drop_index(op.f("ix_event_deliveries_event_id"), table_name="event_deliveries")
    op.drop_table("event_deliveries")
