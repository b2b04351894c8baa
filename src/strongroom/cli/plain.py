"""Output helpers that need neither Typer nor Rich, shared by both command-line paths.

The lean path of the hottest vault commands (:mod:`strongroom.cli.lean`) runs without
importing Typer or Rich; what it prints goes through these helpers, and the Typer commands
use the same ones, so both paths print the same bytes.
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from typing import Any


class OutputFormat(StrEnum):
    """How a read command prints its result."""

    table = "table"
    json = "json"


def print_json(data: Any) -> None:
    """Print data as indented JSON on stdout (no colour, machine-readable)."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def echo_error_stream(text: str) -> None:
    """Print one line of text on stderr (what ``typer.echo(text, err=True)`` prints)."""
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def human_size(size: float) -> str:
    """Format a byte count with a binary unit (``1.5 MiB``)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"
