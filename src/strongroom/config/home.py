"""Where the embedded default lives: ``STRONGROOM_HOME`` (default ``~/.strongroom``)."""

from __future__ import annotations

import os
from pathlib import Path


def resolve_home(explicit: Path | None = None) -> Path:
    """Return the home folder: the explicit path, else ``$STRONGROOM_HOME``, else ``~/.strongroom``."""
    if explicit is not None:
        return explicit.expanduser().resolve()
    from_env = os.environ.get("STRONGROOM_HOME")
    if from_env:
        return Path(from_env).expanduser().resolve()
    return (Path.home() / ".strongroom").resolve()


def cache_dir(home: Path) -> Path:
    """Where local caches (vault indexes, file caches, key-derivation hints) live."""
    return home / "cache"
