"""POSTing JSON to webhooks and to PagerDuty's Events API v2 (httpx), errors translated.

A connection problem or a 5xx/429 answer is retryable (``NetworkError``,
``ServiceUnavailableError``); any other non-2xx answer is not (``ConfigError``: a wrong
URL or key will not fix itself). Messages never include header values (secrets).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import httpx

from strongroom.errors import ConfigError, NetworkError, ServiceUnavailableError

TIMEOUT_SECONDS: Final = 10.0


def post_json(
    url: str, document: Mapping[str, Any], *, headers: Mapping[str, str] | None = None
) -> int:
    """POST ``document`` as JSON to ``url``; return the HTTP status (2xx).

    Raises NetworkError (no connection, timeout), ServiceUnavailableError (5xx, 429) or
    ConfigError (another refusal).
    """
    try:
        response = httpx.post(
            url, json=dict(document), headers=dict(headers or {}), timeout=TIMEOUT_SECONDS
        )
    except httpx.HTTPError as error:
        raise NetworkError(f"could not POST to {url}: {type(error).__name__}") from error
    if response.is_success:
        return response.status_code
    detail = response.text[:200]
    if response.status_code >= 500 or response.status_code == 429:
        raise ServiceUnavailableError(f"{url} answered {response.status_code}: {detail}")
    raise ConfigError(
        f"{url} refused the message with {response.status_code}: {detail}",
        hint="Check the URL, the headers and the key the channel uses.",
    )
