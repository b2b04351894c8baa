"""Rendering helpers shared by the commands: errors, tables, JSON output."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from strongroom.cli.plain import OutputFormat, print_json
from strongroom.logs import mask

__all__ = [
    "OutputFormat",
    "attempts_text",
    "print_error",
    "print_json",
    "print_result",
    "print_table",
    "stderr",
    "stdout",
]

stdout = Console(soft_wrap=True)
stderr = Console(stderr=True, soft_wrap=True)


def print_error(message: str, hint: str) -> None:
    """Print one error line and, if given, one hint line on stderr."""
    stderr.print(f"[bold red]error:[/] {escape(mask(message))}", highlight=False)
    if hint:
        stderr.print(f"[dim]hint:[/] {escape(hint)}", highlight=False)


def print_result(
    output: OutputFormat, data: Callable[[], Any], for_people: Callable[[], None]
) -> None:
    """Print a command's result the way ``--output`` asks: the JSON of ``data()`` for
    scripts, or what ``for_people()`` prints (tables, lines) for people.

    Every command with an ``--output`` option prints its result through this one helper.
    """
    if output is OutputFormat.json:
        print_json(data())
    else:
        for_people()


def attempts_text(attempt: int, max_attempts: int) -> str:
    """How every command shows a job's attempts: ``2 of 4`` (the first attempt counts)."""
    return f"{attempt} of {max_attempts}"


def print_table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    """Print a Rich table with the given columns and rows."""
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*[str(cell) for cell in row])
    stdout.print(table)
