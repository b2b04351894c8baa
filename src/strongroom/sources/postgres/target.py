"""Where and how a ``postgres`` restore writes: the keys of ``strongroom restore --target``.

Imported by the source registry without the source itself (no database driver), so the
CLI can list and check the keys before a job runs.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from strongroom.config.types import ConfigModel


class PostgresRestoreTarget(ConfigModel):
    """How a PostgreSQL restore writes (the ``target`` of ``PostgresSource.restore``)."""

    database: str | None = Field(
        default=None,
        min_length=1,
        description="Restore the (single selected) database under this new name.",
    )
    databases: list[str] = Field(
        default_factory=list, description="Databases of the backup to restore; empty: all."
    )
    roles: bool = Field(default=True, description="Replay globals.sql (roles) first.")
    tablespaces: bool = Field(
        default=False, description="Also replay tablespace statements (their folders must exist)."
    )
    no_owner: bool = Field(default=False, description="Do not restore object owners.")
    no_acl: bool = Field(default=False, description="Do not restore privileges (GRANT/REVOKE).")
    owner: str | None = Field(
        default=None, min_length=1, description="Make this role own every restored object."
    )
    jobs: int | None = Field(default=None, ge=1, le=64, description="pg_restore --jobs.")
    checks: Literal["none", "counts", "full"] = Field(
        default="counts", description="Verify after restoring: row counts, or also checksums."
    )
