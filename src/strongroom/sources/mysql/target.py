"""Where and how a ``mysql`` restore writes: the keys of ``strongroom restore --target``.

Imported by the source registry without the source itself (no database driver), so the
CLI can list and check the keys before a job runs.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from strongroom.config.types import ConfigModel


class MysqlRestoreTarget(ConfigModel):
    """How a MySQL restore writes (the ``target`` of ``MysqlSource.restore``)."""

    database: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="Restore the (single selected) database under this new name.",
    )
    database_map: dict[str, str] = Field(
        default_factory=dict, description="New names for some databases: {old: new}."
    )
    databases: list[str] = Field(
        default_factory=list, description="Databases of the backup to restore; empty: all."
    )
    users: bool | list[str] = Field(
        default=True,
        description="Replay users.sql first: true for every account, or a list of "
        "'user@host' (and role) names.",
    )
    checks: Literal["none", "counts", "full"] = Field(
        default="counts",
        description="Verify after restoring: row counts, or also CHECKSUM TABLE values.",
    )
