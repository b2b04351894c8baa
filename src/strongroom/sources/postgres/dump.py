"""The dump side of the ``postgres`` source: ``pg_dumpall`` globals and ``pg_dump`` archives.

* Globals (roles, memberships, tablespaces): ``pg_dumpall --globals-only``, small, read
  whole and written as one stream. Without read access to ``pg_authid`` (not a superuser,
  e.g. on a managed service) it is retried with ``--no-role-passwords``.
* ``jobs == 1``: a custom-format archive (``pg_dump -Fc``) streamed from pg_dump's stdout
  straight into the sink, no copy on disk.
* ``jobs > 1``: ``pg_dump -Fd --jobs N`` writes one file per table into a folder under
  the scratch folder. While it runs, every file that no process holds open any more (told
  by ``/proc/*/fd``; pg_dump writes each file once, from open to close) is streamed into
  the sink and deleted, so the folder holds only what is being written and what waits
  for the sink; ``toc.dat`` comes last. Without ``/proc`` the files go after pg_dump
  ends. The folder is removed on every path out.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from strongroom.errors import AccessDeniedError
from strongroom.sources.base import JsonObject, SourceContext, StreamSink
from strongroom.sources.postgres.server import PgServer, classifier
from strongroom.sources.tool_streams import ToolRunner

BLOCK_SIZE: Final = 1024 * 1024
_POLL_SECONDS: Final = 0.2
_CREATE_ROLE: Final = re.compile(r'^CREATE ROLE ("(?:[^"]|"")+"|[^\s;"]+);$', re.M)


def unquote_identifier(text: str) -> str:
    """``"My Role"`` -> ``My Role``; an unquoted name stays as written."""
    if text.startswith('"') and text.endswith('"'):
        return text[1:-1].replace('""', '"')
    return text


def role_names(script: str) -> list[str]:
    """The roles a ``pg_dumpall`` globals script creates, in order."""
    return [unquote_identifier(match) for match in _CREATE_ROLE.findall(script)]


def dump_globals(server: PgServer, context: SourceContext, timeout: float | None) -> JsonObject:
    """Run ``pg_dumpall --globals-only``; return ``script`` (bytes) and ``role_passwords``.

    Retries once with ``--no-role-passwords`` when ``pg_authid`` is not readable.
    """
    argv = [
        server.tool("pg_dumpall"),
        "--no-password",
        "--globals-only",
        f"--database={server.maintenance_database}",
    ]
    doing = f"pg_dumpall --globals-only on {server.address}"
    tools = ToolRunner(server, classifier, context.cancel, timeout)
    options: dict[str, object] = {}
    try:
        _, script = tools.run(argv, doing)
        options["role_passwords"] = True
    except AccessDeniedError as exc:
        if "pg_authid" not in str(exc):
            raise
        _, script = tools.run([*argv, "--no-role-passwords"], doing)
        options["role_passwords"] = False
    options["script"] = script
    return options


def open_paths_under(folder: Path) -> set[str] | None:
    """Names of files below ``folder`` that some process holds open; None without /proc."""
    prefix = f"{folder}{os.sep}"
    found: set[str] = set()
    try:
        processes = [entry for entry in Path("/proc").iterdir() if entry.name.isdigit()]
    except OSError:
        return None
    for process in processes:
        try:
            descriptors = list((process / "fd").iterdir())
        except OSError:
            continue
        for descriptor in descriptors:
            try:
                target = str(descriptor.readlink())
            except OSError:
                continue
            if target.startswith(prefix):
                found.add(target[len(prefix) :])
    return found


class DirectoryDump:
    """Runs a directory-format ``pg_dump`` and drains its files into the sink as they finish.

    ``folder`` must not exist (pg_dump creates it); it is removed when :meth:`run` returns
    or raises. Streams are named ``<prefix><file>``.
    """

    def __init__(
        self,
        argv: Sequence[str],
        server: PgServer,
        doing: str,
        folder: Path,
        sink: StreamSink,
        prefix: str,
        context: SourceContext,
        timeout: float | None,
    ) -> None:
        self.argv = list(argv)
        self.server = server
        self.doing = doing
        self.folder = folder
        self.sink = sink
        self.prefix = prefix
        self.context = context
        self.timeout = timeout
        self.streams: dict[str, JsonObject] = {}
        self.peak_bytes = 0

    def run(self) -> dict[str, JsonObject]:
        """Dump and drain; return ``size`` and ``sha256`` per stream name."""
        stop = threading.Event()
        outcome: dict[str, BaseException] = {}

        def work() -> None:
            try:
                tools = ToolRunner(self.server, classifier, stop, self.timeout)
                tools.run_to_file(self.argv, self.doing)
            except BaseException as exc:  # noqa: BLE001 - handed to the calling thread below
                outcome["error"] = exc

        thread = threading.Thread(target=work, name="pg_dump-directory", daemon=True)
        thread.start()
        try:
            while thread.is_alive():
                if self.context.cancel.is_set():
                    stop.set()
                thread.join(_POLL_SECONDS)
                if thread.is_alive():
                    self._drain(final=False)
            if "error" in outcome:
                raise outcome["error"]
            self._drain(final=True)
        finally:
            stop.set()
            thread.join()
            shutil.rmtree(self.folder, ignore_errors=True)
        return self.streams

    def _drain(self, *, final: bool) -> None:
        try:
            names = sorted(entry.name for entry in os.scandir(self.folder) if entry.is_file())
        except FileNotFoundError:
            return
        self.peak_bytes = max(self.peak_bytes, _folder_size(self.folder))
        if final:
            ready = [name for name in names if name != "toc.dat"]
            ready += [name for name in names if name == "toc.dat"]
        else:
            busy = open_paths_under(self.folder)
            if busy is None:
                return
            ready = [name for name in names if name not in busy and name != "toc.dat"]
        for name in ready:
            self.context.check_cancelled()
            self._send(self.folder / name)

    def _send(self, path: Path) -> None:
        name = f"{self.prefix}{path.name}"
        digest = hashlib.sha256()
        size = 0
        with path.open("rb") as handle, self.sink.open_stream(name) as stream:
            while block := handle.read(BLOCK_SIZE):
                stream.write(block)
                digest.update(block)
                size += len(block)
                self.context.progress(len(block))
        path.unlink()
        self.streams[name] = {"size": size, "sha256": digest.hexdigest()}


def _folder_size(folder: Path) -> int:
    total = 0
    try:
        for entry in os.scandir(folder):
            try:
                total += entry.stat().st_size
            except FileNotFoundError:
                continue
    except FileNotFoundError:
        return 0
    return total
