"""Indexes for the API's lists: recovery points newest first, a resource's jobs newest first.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-08

``GET /api/v1/recovery-points`` (and ``list-recovery-points``) without a filter read the
newest points first: without an index on ``created_at`` every page sorted the whole table
(bench/api_bench.py: 100k points). A resource's jobs newest first likewise.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_recovery_points_created_at", "recovery_points", ["created_at"])
    op.create_index("ix_jobs_resource_id_created_at", "jobs", ["resource_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_jobs_resource_id_created_at", table_name="jobs")
    op.drop_index("ix_recovery_points_created_at", table_name="recovery_points")
