"""Options and helpers shared by the commands."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from strongroom.cli.plain import OutputFormat

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
