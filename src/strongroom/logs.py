"""The one logging setup: text or JSON lines on stderr, with secrets masked.

Secrets are registered with :func:`register_secret` as soon as they are resolved; every
record that goes through the configured handler has each registered value replaced by
``***`` (message, arguments and extra fields alike).
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from datetime import UTC, datetime
from typing import Any, Final

MASK: Final = "***"
_SECRETS: set[str] = set()
_SECRETS_LOCK = threading.Lock()
_STANDARD_ATTRS: Final = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys() | {"message", "asctime"}
)


def register_secret(value: str | None) -> None:
    """Remember a secret value so that no log line ever shows it (short values are ignored)."""
    if value and len(value) >= 3:
        with _SECRETS_LOCK:
            _SECRETS.add(value)


def mask(text: str) -> str:
    """Return ``text`` with every registered secret replaced by ``***``."""
    with _SECRETS_LOCK:
        secrets = sorted(_SECRETS, key=len, reverse=True)
    for secret in secrets:
        text = text.replace(secret, MASK)
    return text


class _MaskingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = mask(record.getMessage())
        record.args = None
        for key, value in list(record.__dict__.items()):
            if key not in _STANDARD_ATTRS and isinstance(value, str):
                setattr(record, key, mask(value))
        return True


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS:
                payload[key] = value
        if record.exc_info:
            payload["exception"] = mask(self.formatException(record.exc_info))
        return json.dumps(payload, default=str)


def configure(level: str = "WARNING", json_lines: bool = False) -> None:
    """Install the one handler on the ``strongroom`` logger (idempotent)."""
    logger = logging.getLogger("strongroom")
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_MaskingFilter())
    if json_lines:
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level.upper())
    logger.propagate = False


def get_logger(name: str) -> logging.Logger:
    """Return a logger under the ``strongroom`` namespace."""
    return logging.getLogger(name if name.startswith("strongroom") else f"strongroom.{name}")
