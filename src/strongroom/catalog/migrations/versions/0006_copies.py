"""Recovery points: the point a copy was made from.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07

Adds ``recovery_points.source_point_id``: set on a copy (a point a copy job or a rule's
copy action wrote into another vault) to the id of the point it was copied from, so that
a copy keeps its link to its source and replication lag can be computed per copy pair.
No foreign key: the source may be deleted (or live only in another catalog) while its
copy stays. Nullable: existing rows are not copies.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("recovery_points") as batch:
        batch.add_column(sa.Column("source_point_id", sa.String(length=128), nullable=True))
        batch.create_index(
            batch.f("ix_recovery_points_source_point_id"), ["source_point_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("recovery_points") as batch:
        batch.drop_index(batch.f("ix_recovery_points_source_point_id"))
        batch.drop_column("source_point_id")
