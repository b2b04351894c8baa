"""Options and helpers shared by the commands."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from strongroom.cli.render import OutputFormat

if TYPE_CHECKING:
    from strongroom.services.context import AppContext

OutputOption = Annotated[
    OutputFormat, typer.Option("--output", "-o", help="table for people, json for scripts.")
]
PassphraseEnvOption = Annotated[
    str | None,
    typer.Option(help="Environment variable holding the vault passphrase.", show_default=False),
]
KeyFileOption = Annotated[
    Path | None, typer.Option(help="Key file of the vault.", show_default=False)
]


def app_context(ctx: typer.Context) -> AppContext:
    """Return the application context the root command built."""
    # Imported here, like every service: importing the CLI stays cheap (see test_startup.py).
    from strongroom.services.context import AppContext

    root = ctx.find_root()
    context = root.obj
    if not isinstance(context, AppContext):
        raise RuntimeError("the root command did not build an AppContext")
    return context


def human_size(size: float) -> str:
    """Format a byte count with a binary unit (``1.5 MiB``)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"
