"""Catalog-wide settings that ``apply`` declares: the concurrency limits.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26

Adds the ``settings`` table (one JSON value per name). ``apply`` stores the
configuration's ``concurrency`` section there as ``concurrency``; every executor's claim
reads it. A catalog without the row runs jobs without limits, as before.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "settings",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_settings")),
    )


def downgrade() -> None:
    op.drop_table("settings")
