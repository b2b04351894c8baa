"""Rendering console pages: one Jinja2 environment (autoescaped) and the filters its
templates use to show sizes, ages and times the same way everywhere."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.responses import HTMLResponse

_UNITS: Final = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def size(value: int | float | None) -> str:
    """Bytes as ``1.5 MiB`` (``-`` for None)."""
    if value is None:
        return "-"
    amount = float(value)
    for unit in _UNITS:
        if abs(amount) < 1024 or unit == _UNITS[-1]:
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{amount:.1f} PiB"  # pragma: no cover - the loop returns at the last unit


def duration(seconds: float | None) -> str:
    """Seconds as ``45 s``, ``12 min``, ``3.5 h`` or ``2.0 d`` (``-`` for None)."""
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86_400:.1f} d"


def when(value: datetime | str | None) -> str:
    """A time (or its ISO 8601 text, as JSON shapes carry it) as ``2026-12-08 00:31:05 UTC``
    (``-`` for None)."""
    if value is None:
        return "-"
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.strftime("%Y-%m-%d %H:%M:%S %Z").strip()


def percent(value: float | None) -> str:
    """A ratio as ``97.5 %`` (``-`` for None)."""
    return "-" if value is None else f"{value * 100:.1f} %"


def short(identifier: str | None) -> str:
    """The first 8 characters of an id, as the CLI shows them."""
    return (identifier or "-")[:8]


_environment = Environment(
    loader=PackageLoader("strongroom.api.console", "templates"),
    autoescape=select_autoescape(default=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_environment.filters.update(size=size, duration=duration, when=when, percent=percent, short=short)


def render(template: str, values: Mapping[str, Any], *, status: int = 200) -> HTMLResponse:
    """Return the HTML response of ``template`` rendered with ``values``."""
    page = _environment.get_template(template).render(**values)
    return HTMLResponse(page, status_code=status)
