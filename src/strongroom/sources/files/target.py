"""Where and how a ``files`` restore writes: the keys of ``strongroom restore --target``.

Imported by the source registry without the source itself (no database driver), so the
CLI can list and check the keys before a job runs.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from strongroom.config.types import AbsolutePath, ConfigModel


class FilesRestoreTarget(ConfigModel):
    """Where and how a files restore writes (the ``target`` of :meth:`FilesSource.restore`)."""

    path: AbsolutePath | None = Field(
        default=None,
        description="Restore below this folder, keeping recorded paths: <path>/home/ada/notes.txt.",
    )
    original: bool = Field(
        default=False, description="Restore every entry to the place it was backed up from."
    )
    overwrite: bool = Field(
        default=False,
        description="Replace files and links that exist (a folder is never replaced by a file).",
    )
    only: list[str] = Field(
        default_factory=list,
        description="Recorded paths to restore, with what is below them; empty restores all.",
    )
    owner: bool | None = Field(
        default=None, description="Restore uid/gid; None: only when running as root."
    )

    @model_validator(mode="after")
    def _one_place(self) -> FilesRestoreTarget:
        if (self.path is None) == (not self.original):
            raise ValueError("give exactly one of 'path' (a folder) or 'original: true'")
        return self
