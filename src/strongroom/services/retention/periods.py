"""Points in time as operators type them: ISO 8601, or a duration back from now.

``--since 24h``, ``--since 7d``, ``--since 2030-01-01T00:00:00+01:00``. A duration is a
number followed by ``s``, ``m``, ``h``, ``d`` or ``w`` (or several, ``1d12h``). An ISO
time without a zone is read as UTC (and says so in the docs: timestamps in strongroom
are always UTC).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Final

from strongroom.errors import ConfigError

_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_PART: Final = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_DURATION: Final = re.compile(r"(?:\d+(?:\.\d+)?[smhdw])+")


def parse_duration(text: str) -> timedelta:
    """Return the duration ``text`` names (``90s``, ``15m``, ``24h``, ``7d``, ``1d12h``).

    Raises ``ConfigError`` for anything else (including a zero duration).
    """
    value = text.strip().lower()
    if not _DURATION.fullmatch(value):
        raise ConfigError(
            f"{text!r} is not a duration",
            hint="Write a number and a unit: 90s, 15m, 24h, 7d, 2w (or 1d12h).",
        )
    seconds = sum(float(number) * _UNITS[unit] for number, unit in _PART.findall(value))
    if seconds <= 0:
        raise ConfigError(f"the duration {text!r} is zero")
    return timedelta(seconds=seconds)


def parse_since(text: str, now: datetime, *, future: bool = False) -> datetime:
    """Return the instant ``text`` names: a duration back from ``now``, or an ISO 8601 time.

    The result is aware (UTC). Raises ``ConfigError`` for text that is neither, or for a
    time in the future unless ``future`` allows it (the end of a period).
    """
    value = text.strip()
    if _DURATION.fullmatch(value.lower()):
        return now - parse_duration(value)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(
            f"{text!r} is neither a duration nor an ISO 8601 time",
            hint="Examples: 24h, 7d, 2030-01-31, 2030-01-31T08:00:00+01:00.",
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    if moment > now and not future:
        raise ConfigError(f"{text!r} lies in the future ({moment.isoformat()})")
    return moment
