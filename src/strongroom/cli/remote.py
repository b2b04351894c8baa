"""The CLI as a client of a remote server: ``strongroom --server URL COMMAND``.

The token comes from ``STRONGROOM_TOKEN`` or ``--token-file``; it is sent in the
``Authorization`` header only, never printed or logged. A command that supports a server
asks :func:`remote_client` and, given one, calls the API instead of the services; it
renders the same JSON documents with the same code, so its output is the local one. An
API error comes back as the same strongroom error (same message, hint and exit code).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import typer

from strongroom.errors import ConfigError, NetworkError, StrongroomError

if TYPE_CHECKING:
    import httpx  # imported when a client is made: every other command starts without it

TOKEN_VARIABLE: Final = "STRONGROOM_TOKEN"  # noqa: S105 (a variable's name)
_META_KEY: Final = "strongroom.remote"
WAIT_SLICE_SECONDS: Final = 30.0


@dataclass(frozen=True)
class RemoteServer:
    """Where the server is and the token to show it (never printed)."""

    url: str
    token: str = ""

    def __repr__(self) -> str:
        return f"RemoteServer({self.url!r})"


def remember_server(ctx: typer.Context, url: str | None, token_file: Path | None) -> None:
    """Record the root's ``--server`` and ``--token-file`` for the commands (nothing
    without ``--server``). Raises ConfigError when no token can be found."""
    if url is None:
        return
    if token_file is not None:
        try:
            token = token_file.read_text(encoding="utf-8").strip()
        except OSError as error:
            raise ConfigError(
                f"cannot read the token file {token_file}: {error.strerror}"
            ) from error
    else:
        token = os.environ.get(TOKEN_VARIABLE, "").strip()
    if not token:
        raise ConfigError(
            f"--server needs an API token: set {TOKEN_VARIABLE} or give --token-file",
            hint="An admin makes one on the server with 'strongroom token create --role R'.",
        )
    ctx.meta[_META_KEY] = RemoteServer(url.rstrip("/"), token)


def remote_client(ctx: typer.Context) -> RemoteClient | None:
    """The client of the server ``--server`` names, or None to work locally."""
    server = ctx.find_root().meta.get(_META_KEY)
    if not isinstance(server, RemoteServer):
        return None
    client = RemoteClient(server)
    ctx.call_on_close(client.close)
    return client


REMOTE_COMMANDS: Final = frozenset(
    {
        "start-backup",
        "restore",
        "verify",
        "list-backups",
        "list-recovery-points",
        "describe-job",
        "wait-job",
        "report summary",
        "report detailed",
    }
)
"""The commands that run against a server; any other is refused with ``--server``."""


def refuse_unsupported(ctx: typer.Context, command: str) -> None:
    """Raise ConfigError when ``--server`` was given to ``command`` (``report summary``)
    and it runs only locally: it is refused, never run on the local catalog instead."""
    if ctx.find_root().meta.get(_META_KEY) is None or command in REMOTE_COMMANDS:
        return
    raise ConfigError(
        f"'strongroom {command}' does not run against a server (--server); run it there",
        hint=f"--server supports: {', '.join(sorted(REMOTE_COMMANDS))}.",
    )


class RemoteClient:
    """Calls ``/api/v1`` of one server with one token."""

    def __init__(self, server: RemoteServer, *, timeout: float = 120.0) -> None:
        import httpx

        self.server = server
        self._http = httpx.Client(
            base_url=f"{server.url}/api/v1",
            headers={"Authorization": f"Bearer {server.token}"},
            timeout=timeout,
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """GET ``path`` and return its JSON. Raises the error the server answered with."""
        return self._json(self._send("GET", path, params=params))

    def post(
        self, path: str, body: Mapping[str, Any], params: Mapping[str, Any] | None = None
    ) -> Any:
        """POST ``body`` to ``path`` and return the JSON answer."""
        return self._json(self._send("POST", path, params=params, json=dict(body)))

    def get_list(self, path: str, params: Mapping[str, Any], limit: int) -> list[Any]:
        """GET a paged list, following its ``next`` links until ``limit`` items."""
        items: list[Any] = []
        response = self._send("GET", path, params={**params, "limit": min(limit, 1000)})
        while True:
            items += self._json(response)
            following = response.links.get("next", {}).get("url")
            if following is None or len(items) >= limit:
                return items[:limit]
            response = self._send("GET", following)

    def wait(self, job_id: str, on_update: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        """Wait for a job to end (``/jobs/{id}/wait`` in slices); return its description,
        also when it failed (the caller tells the outcome from it)."""
        while True:
            response = self._send(
                "GET", f"/jobs/{job_id}/wait", params={"timeout": WAIT_SLICE_SECONDS}, check=False
            )
            body = response.json() if response.content else {}
            # A failed job comes back as an error body carrying the job; a job as itself
            # (whose own "error" field is null or the job's error, never a "job").
            error = body.get("error") if isinstance(body, dict) else None
            document = error["job"] if isinstance(error, dict) and "job" in error else body
            if (response.status_code >= 400 and document is body) or not isinstance(document, dict):
                self._raise(response)
            on_update(document)
            if response.status_code != 202:
                return document

    def _send(
        self, method: str, path: str, *, check: bool = True, **options: Any
    ) -> httpx.Response:
        import httpx

        try:
            response = self._http.request(method, path, **options)
        except httpx.HTTPError as error:
            raise NetworkError(
                f"the server {self.server.url} did not answer: {type(error).__name__}",
                hint="Check --server and that 'strongroom serve --api-address' runs there.",
            ) from error
        if check and response.status_code >= 400:
            self._raise(response)
        return response

    def _json(self, response: httpx.Response) -> Any:
        return response.json()

    def _raise(self, response: httpx.Response) -> None:
        from strongroom.services.jobs.operations import error_class_of

        try:
            error = response.json()["error"]
            code, message, hint = str(error["code"]), str(error["message"]), str(error["hint"])
        except (ValueError, KeyError, TypeError):
            raise StrongroomError(
                f"the server {self.server.url} answered {response.status_code}"
            ) from None
        raise error_class_of(code)(
            message, hint=hint or None, retryable=bool(error.get("retryable"))
        )
