"""One Kubernetes API server, reached through the official client, its errors translated.

The official ``kubernetes`` package loads the kubeconfig (or the in-cluster service
account) and makes the HTTPS requests (``ApiClient.call_api``). Objects travel as plain
JSON: the typed models and the dynamic client's ``ResourceInstance`` wrappers would turn
every object into Python objects and back, which costs more than the backup itself.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from strongroom.config.resources import KubernetesResource
from strongroom.errors import (
    AccessDeniedError,
    ConfigError,
    ConflictError,
    InternalServerError,
    NetworkError,
    NotFoundError,
    ServiceUnavailableError,
    StrongroomError,
    ThrottlingError,
    TimeoutError_,
)
from strongroom.sources.base import JsonObject

POOL_SIZE = 16
"""Connections kept to the API server: restores send objects from several threads."""


class KubeError(Exception):
    """An API error kept as the server said it: status code, reason and message."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message


class KubeApi:
    """Requests to one API server; ``address`` names it in messages.

    Given an ``ApiClient`` of the official client (already configured) and the seconds a
    request may take.
    """

    def __init__(self, api_client: Any, *, address: str, timeout: float) -> None:
        self.api_client = api_client
        self.address = address
        self.timeout = timeout

    def raw(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: JsonObject | None = None,
        content_type: str = "application/json",
    ) -> JsonObject:
        """Send one request and return the JSON answer.

        Raises :class:`KubeError` for an answer of 400 or above (the caller decides what
        it means there) and ``NetworkError`` when the server cannot be reached.
        """
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            prepared = self.api_client.param_serialize(
                method,
                path,
                query_params=list((query or {}).items()),
                header_params={"Accept": "application/json", "Content-Type": content_type},
                body=body,
                auth_settings=["BearerToken"],
            )
            response = self.api_client.call_api(*prepared, _request_timeout=self.timeout)
            data = response.read()
        except ApiException as exc:
            raise _api_error(exc.status, exc.reason, exc.body) from exc
        except (HTTPError, OSError) as exc:
            raise NetworkError(
                f"the Kubernetes API server {self.address} cannot be reached: {exc}",
                hint="Check the server address of the kubeconfig context and that it runs.",
            ) from exc
        if response.status >= 400:
            raise _api_error(response.status, response.reason, data)
        answer: JsonObject = json.loads(data)
        return answer

    def request(
        self,
        method: str,
        path: str,
        doing: str,
        *,
        query: Mapping[str, str] | None = None,
        body: JsonObject | None = None,
    ) -> JsonObject:
        """Like :meth:`raw`, with every API error translated into the error tree.

        ``doing`` says what was asked (e.g. "listing apps/v1 deployments"); the error names
        it with the server's own message.
        """
        try:
            return self.raw(method, path, query=query, body=body)
        except KubeError as exc:
            raise translate(exc, doing, self.address) from exc

    def close(self) -> None:
        """Close the connections of the underlying client."""
        self.api_client.close()


def _api_error(status: Any, reason: Any, body: Any) -> KubeError:
    """The status, reason and message of an error answer (a ``Status`` object as JSON)."""
    message = reason = str(reason or "")
    try:
        status_object = json.loads(body or b"{}")
        message = str(status_object.get("message") or message)
        reason = str(status_object.get("reason") or reason)
    except (ValueError, AttributeError):
        pass
    return KubeError(int(status or 0), reason, message)


def translate(exc: KubeError, doing: str, address: str) -> StrongroomError:
    """Map an API error onto the error tree, naming what was being done."""
    text = f"{doing} on {address}: {exc.message or exc.reason}"
    if exc.status == 401:
        return AccessDeniedError(
            f"{text} (the credentials were refused: expired or wrong)",
            hint="Renew the kubeconfig's token or certificate, or pick another context.",
        )
    if exc.status == 403:
        return AccessDeniedError(text, hint="Grant the account that verb in an RBAC role.")
    if exc.status == 404:
        return NotFoundError(text)
    if exc.status == 409:
        return ConflictError(text)
    if exc.status == 429:
        return ThrottlingError(text)
    if exc.status == 504:
        return TimeoutError_(text)
    if exc.status in (502, 503):
        return ServiceUnavailableError(text)
    if exc.status >= 500:
        return InternalServerError(text)
    if exc.status == 0:
        return NetworkError(text)
    return ConfigError(text, hint="The server refused the request as invalid.")


def connect(settings: KubernetesResource, *, timeout: float) -> KubeApi:
    """Build a :class:`KubeApi` from the resource's kubeconfig and context.

    With no kubeconfig set: the in-cluster service account when running in a pod, else
    ``~/.kube/config``. Raises ``ConfigError`` when the kubeconfig is missing or invalid or
    names no such context.
    """
    from kubernetes import client, config

    configuration = client.Configuration()
    try:
        if settings.kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        else:
            path = Path(settings.kubeconfig or Path.home() / ".kube" / "config")
            if not path.is_file():
                raise ConfigError(f"the kubeconfig {path} does not exist")
            config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=str(path),
                context=settings.context,
                client_configuration=configuration,
                persist_config=False,
            )
    except config.ConfigException as exc:
        raise ConfigError(
            f"the Kubernetes client configuration is unusable: {exc}",
            hint="Check the kubeconfig file and the context name.",
        ) from exc
    configuration.connection_pool_maxsize = POOL_SIZE
    # One retry at most: a down server is reported at once, the job's policy retries.
    configuration.retries = 1
    api_client = client.ApiClient(configuration)
    return KubeApi(api_client, address=str(configuration.host), timeout=timeout)
