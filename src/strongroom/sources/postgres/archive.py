"""Archive helpers of the ``postgres`` source: stream names, globals replay, files, databases.

Globals are replayed with ``psql`` after one rewrite: each ``CREATE ROLE x;`` becomes a
``DO`` block that ignores ``duplicate_object``, so a role that already exists is the only
error let through (the ``ALTER ROLE`` that follows still sets its attributes); every
other error stops the script (``ON_ERROR_STOP``) and the restore. Tablespace statements
are left out unless asked for (their folders belong to the original machine). A
``\\restrict`` line, written by pg_dumpall 13.22/14.19/15.14/16.10/17.6 and later, is
dropped for an older psql that would refuse it.

Archives reach ``pg_restore`` without a copy when they can: a custom-format archive
restored with one job is fed through its stdin; a directory-format archive, or a parallel
restore, needs files, written into the scratch folder and removed afterwards. Every
stream's SHA-256 is compared with the one recorded at backup time.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Final
from urllib.parse import quote

from psycopg import sql

from strongroom.errors import IntegrityError
from strongroom.sources.base import Check, JsonObject, StreamReader
from strongroom.sources.postgres.server import Connection
from strongroom.sources.tool_streams import CheckedBlocks

BLOCK_SIZE: Final = 1024 * 1024
_CREATE_ROLE_LINE: Final = re.compile(r'^CREATE ROLE ("(?:[^"]|"")+"|[^\s;"]+);$')
_TABLESPACE_LINE: Final = re.compile(
    r"^(?:CREATE|ALTER|COMMENT ON|SECURITY LABEL (?:FOR \S+ )?ON) TABLESPACE\b"
    r"|^(?:GRANT|REVOKE) .* ON TABLESPACE\b"
)
_RESTRICT_LINE: Final = re.compile(r"^\\(?:un)?restrict\b")
_RESTRICT_SINCE: Final = {13: 22, 14: 19, 15: 14, 16: 10, 17: 6}


def stream_base(database: str) -> str:
    """The stream name part of a database: ``db/<percent-encoded name>``."""
    return f"db/{quote(database, safe='')}"


def psql_knows_restrict(version: tuple[int, int]) -> bool:
    """Tell whether a psql of this (major, minor) version understands ``\\restrict``."""
    major, minor = version
    if major >= 18:
        return True
    since = _RESTRICT_SINCE.get(major)
    return since is not None and minor >= since


def prepare_globals(
    script: str, *, tablespaces: bool, keep_restrict: bool
) -> tuple[str, list[str]]:
    """Rewrite a ``pg_dumpall --globals-only`` script for replay; return it and notes."""
    lines: list[str] = []
    notes: list[str] = []
    skipped_tablespaces = 0
    for line in script.splitlines():
        role = _CREATE_ROLE_LINE.match(line)
        if role is not None:
            tag = "$strongroom$"
            while tag in line:
                tag = tag.replace("$strongroom", "$strongroom_")
            lines.append(
                f"DO {tag} BEGIN CREATE ROLE {role.group(1)}; "
                f"EXCEPTION WHEN duplicate_object THEN NULL; END {tag};"
            )
        elif not tablespaces and _TABLESPACE_LINE.match(line):
            skipped_tablespaces += 1
        elif not keep_restrict and _RESTRICT_LINE.match(line):
            continue
        else:
            lines.append(line)
    if skipped_tablespaces:
        notes.append(
            f"left out {skipped_tablespaces} tablespace statement(s); "
            "restore them with tablespaces: true once their folders exist"
        )
    return "\n".join(lines) + "\n", notes


def materialize(
    reader: StreamReader, streams: dict[str, JsonObject], prefix: str, destination: Path
) -> list[Check]:
    """Write streams into files (``prefix`` stripped from their names) below ``destination``.

    For a custom archive ``streams`` holds one stream and ``destination`` is the file;
    for a directory archive ``destination`` is the folder. Returns one SHA-256 check per
    stream.
    """
    checks: list[Check] = []
    single = len(streams) == 1 and next(iter(streams)) == prefix
    if not single:
        destination.mkdir(parents=True)
    for name, recorded in sorted(streams.items()):
        path = destination if single else destination / name.removeprefix(prefix)
        if path.parent != destination and not single:
            raise IntegrityError(f"unexpected stream name {name!r} in a directory archive")
        blocks = CheckedBlocks(reader, name, recorded)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        with os.fdopen(os.open(path, flags, 0o600), "wb") as handle:
            for block in blocks:
                handle.write(block)
        checks.append(blocks.check())
    return checks


def remove_path(path: Path) -> None:
    """Remove a file or folder if it exists (cleanup on every path out)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def create_database(connection: Connection, name: str, properties: JsonObject) -> None:
    """``CREATE DATABASE`` from ``template0`` with the recorded encoding and locale."""
    options = [
        sql.SQL("TEMPLATE template0"),
        sql.SQL("ENCODING {}").format(sql.Literal(properties.get("encoding", "UTF8"))),
    ]
    if properties.get("collate"):
        options.append(sql.SQL("LC_COLLATE {}").format(sql.Literal(properties["collate"])))
    if properties.get("ctype"):
        options.append(sql.SQL("LC_CTYPE {}").format(sql.Literal(properties["ctype"])))
    if properties.get("locale_provider") == "i" and properties.get("locale"):
        options.append(sql.SQL("LOCALE_PROVIDER icu"))
        options.append(sql.SQL("ICU_LOCALE {}").format(sql.Literal(properties["locale"])))
    connection.execute(
        sql.SQL("CREATE DATABASE {name} {options}").format(
            name=sql.Identifier(name), options=sql.SQL(" ").join(options)
        )
    )


def drop_database(connection: Connection, name: str) -> None:
    """``DROP DATABASE IF EXISTS … WITH (FORCE)`` (sessions still connected are ended)."""
    connection.execute(
        sql.SQL("DROP DATABASE IF EXISTS {name} WITH (FORCE)").format(name=sql.Identifier(name))
    )


def database_exists(connection: Connection, name: str) -> bool:
    """Tell whether a database of this name exists on the connected server."""
    row = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    return row is not None


def missing_roles(connection: Connection, roles: list[str]) -> list[str]:
    """The roles of ``roles`` that do not exist on the connected server."""
    existing = {row[0] for row in connection.execute("SELECT rolname FROM pg_roles").fetchall()}
    return [role for role in roles if role not in existing]
