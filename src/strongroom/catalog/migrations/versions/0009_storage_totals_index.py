"""A covering index for the storage totals: live points' stored bytes per vault and tier.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08

The console's overview and the metrics sum ``stored_size`` of the live points per vault and
tier. With (state, vault_id, tier, stored_size) the database reads that index alone, not
every row of ``recovery_points`` (bench/console_bench.py: 100k points, half the time).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_recovery_points_storage_totals",
        "recovery_points",
        ["state", "vault_id", "tier", "stored_size"],
    )


def downgrade() -> None:
    op.drop_index("ix_recovery_points_storage_totals", table_name="recovery_points")
