"""Recovery points: when they went cold, their cold copy's id, and who held them and why.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26

Adds to ``recovery_points``: ``cold_since`` and ``cold_point_id`` (the lifecycle runner's
record of a move to the cold tier) and ``legal_hold_reason``, ``legal_hold_by`` and
``legal_hold_at`` (a legal hold keeps its reason with the point, not only in the event
feed). Every column is nullable: existing rows need no values.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = ("cold_since", "cold_point_id", "legal_hold_reason", "legal_hold_by", "legal_hold_at")


def upgrade() -> None:
    with op.batch_alter_table("recovery_points") as batch:
        batch.add_column(sa.Column("cold_since", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("cold_point_id", sa.String(length=128), nullable=True))
        batch.add_column(sa.Column("legal_hold_reason", sa.Text(), nullable=True))
        batch.add_column(sa.Column("legal_hold_by", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("legal_hold_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("recovery_points") as batch:
        for column in reversed(_COLUMNS):
            batch.drop_column(column)
