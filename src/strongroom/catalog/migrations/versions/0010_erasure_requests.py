"""Erasure requests (GDPR Art. 17) and their re-applications to restored data (issue #18).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08

Adds ``erasure_requests`` (a subject to erase from every restore of a resource: how, who
asked, when, by when; open until cancelled) and ``erasure_applications`` (one row per
request re-applied by a restore or restore test: the job, point, target, what it affected
and what its check found left).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "erasure_requests",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("resource", sa.String(length=200), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("method", sa.JSON(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("requested_by", sa.String(length=200), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("cancelled_by", sa.String(length=200), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancel_reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_erasure_requests")),
    )
    op.create_index("ix_erasure_requests_resource_state", "erasure_requests", ["resource", "state"])
    op.create_table(
        "erasure_applications",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("request_id", sa.String(length=36), nullable=False),
        sa.Column("job_id", sa.String(length=36), nullable=True),
        sa.Column("point_id", sa.String(length=128), nullable=True),
        sa.Column("restore_test", sa.Boolean(), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("affected", sa.BigInteger(), nullable=False),
        sa.Column("remaining", sa.BigInteger(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["erasure_requests.id"],
            name=op.f("fk_erasure_applications_request_id_erasure_requests"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_erasure_applications")),
    )
    op.create_index(
        op.f("ix_erasure_applications_request_id"), "erasure_applications", ["request_id"]
    )
    op.create_index(op.f("ix_erasure_applications_job_id"), "erasure_applications", ["job_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_erasure_applications_job_id"), table_name="erasure_applications")
    op.drop_index(op.f("ix_erasure_applications_request_id"), table_name="erasure_applications")
    op.drop_table("erasure_applications")
    op.drop_index("ix_erasure_requests_resource_state", table_name="erasure_requests")
    op.drop_table("erasure_requests")
