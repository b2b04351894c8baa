"""What the ``mysql`` source records about a database, its users, and how a restore is checked.

Facts of a database (:func:`gather`): default character set and collation; per base table
the engine, the row count (``COUNT(*)``) and, unless switched off, the ``CHECKSUM TABLE``
value; the names of views, routines, triggers and events. Read inside a ``START
TRANSACTION WITH CONSISTENT SNAPSHOT`` transaction, InnoDB counts and checksums describe
that snapshot (``CHECKSUM TABLE`` reads through the transaction's read view).

``CHECKSUM TABLE`` depends on the storage format, so a restore test compares on a server
of the same version; system-versioned tables get a count only (their history is not in
the dump), as do tables above ``full_limit`` bytes in ``auto`` mode.

Users (:func:`capture_users`): for each account outside :data:`SYSTEM_ACCOUNTS`, ``SHOW
CREATE USER`` (made ``IF NOT EXISTS``) or ``CREATE ROLE IF NOT EXISTS``, then its ``SHOW
GRANTS``; one block per account, headed by a ``-- account:`` line, all creations first,
then all grants (:func:`split_phases` separates them).
"""

from __future__ import annotations

import re
from typing import Any, Final, Literal

import pymysql

from strongroom.sources.base import Check, JsonObject
from strongroom.sources.mysql.server import Connection, quote_name

ChecksumMode = Literal["auto", "full", "off"]

SYSTEM_DATABASES: Final = frozenset({"information_schema", "performance_schema", "mysql", "sys"})
SYSTEM_ACCOUNTS: Final = frozenset(
    {
        "root",
        "mysql",
        "mariadb.sys",
        "mysql.sys",
        "mysql.session",
        "mysql.infoschema",
        "debian-sys-maint",
        "PUBLIC",
        "",
    }
)
"""Accounts every server creates for itself; never captured or restored."""

ACCOUNT_HEADER: Final = "-- account: "
ACCOUNTS_PHASE: Final = "-- strongroom: accounts"
GRANTS_PHASE: Final = "-- strongroom: grants"
_CREATE_USER: Final = re.compile(r"^CREATE USER ", re.I)


def rows(connection: Connection, query: str, args: Any = None) -> list[tuple[Any, ...]]:
    """Run a query and return all its rows."""
    with connection.cursor() as cursor:
        cursor.execute(query, args)
        return list(cursor.fetchall())


def start_snapshot(connection: Connection) -> JsonObject | None:
    """Begin a consistent-snapshot transaction; return its binary log position if known.

    MariaDB reports the position matching the snapshot (``binlog_snapshot_file`` and
    ``_position``); None when the binary log is off or the server does not say.
    """
    with connection.cursor() as cursor:
        cursor.execute("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        cursor.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
        cursor.execute("SHOW STATUS LIKE 'binlog_snapshot_%'")
        status = {str(name).lower(): str(value) for name, value in cursor.fetchall()}
    file = status.get("binlog_snapshot_file")
    position = status.get("binlog_snapshot_position")
    if not file or not position:
        return None
    return {"file": file, "position": int(position)}


def end_snapshot(connection: Connection) -> None:
    """End the snapshot transaction."""
    connection.rollback()


def binary_log_enabled(connection: Connection) -> bool:
    """Tell whether the server writes a binary log (so a dump can record its position)."""
    found = rows(connection, "SELECT @@log_bin")
    return bool(found and int(found[0][0]))


def gather(
    connection: Connection,
    database: str,
    mode: ChecksumMode,
    full_limit: int,
    recorded: JsonObject | None = None,
) -> JsonObject:
    """Read the facts of ``database`` (in the caller's transaction, if any).

    With ``recorded`` (the facts of a backup) a table is checksummed exactly when it was
    then, so a restore test computes comparable values.
    """
    recorded_tables: dict[str, JsonObject] = (recorded or {}).get("tables", {})
    schema = rows(
        connection,
        "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME "
        "FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s",
        (database,),
    )
    listing = rows(
        connection,
        "SELECT TABLE_NAME, TABLE_TYPE, ENGINE, COALESCE(DATA_LENGTH, 0) "
        "FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s ORDER BY TABLE_NAME",
        (database,),
    )
    tables: dict[str, JsonObject] = {}
    views: list[str] = []
    for name, kind, engine, size in listing:
        if kind == "VIEW":
            views.append(str(name))
            continue
        if kind not in ("BASE TABLE", "SYSTEM VERSIONED"):
            continue  # sequences: their value is dumped, their "rows" are not data
        table = f"{quote_name(database)}.{quote_name(str(name))}"
        count = rows(connection, f"SELECT COUNT(*) FROM {table}")  # noqa: S608 - quoted names
        facts: JsonObject = {"engine": engine, "rows": int(count[0][0])}
        if recorded is not None:
            wanted = recorded_tables.get(str(name), {}).get("checksum") is not None
        else:
            wanted = mode == "full" or (mode == "auto" and int(size) <= full_limit)
        if wanted and kind == "BASE TABLE":
            checksum = rows(connection, f"CHECKSUM TABLE {table}")
            facts["checksum"] = None if checksum[0][1] is None else int(checksum[0][1])
        tables[str(name)] = facts
    return {
        "character_set": schema[0][0] if schema else None,
        "collation": schema[0][1] if schema else None,
        "tables": tables,
        "views": views,
        "routines": _names(
            connection,
            "SELECT CONCAT(ROUTINE_TYPE, ' ', ROUTINE_NAME) FROM information_schema.ROUTINES "
            "WHERE ROUTINE_SCHEMA = %s",
            database,
        ),
        "triggers": _names(
            connection,
            "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = %s",
            database,
        ),
        "events": _names(
            connection,
            "SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = %s",
            database,
        ),
    }


def _names(connection: Connection, query: str, database: str) -> list[str]:
    return sorted(str(row[0]) for row in rows(connection, query, (database,)))


def changed_tables(first: JsonObject, second: JsonObject) -> list[str]:
    """Tables whose facts differ between two readings (before and after a dump), or that
    are in only one of them."""
    before: dict[str, JsonObject] = first["tables"]
    after: dict[str, JsonObject] = second["tables"]
    return sorted(
        name for name in before.keys() | after.keys() if before.get(name) != after.get(name)
    )


def capture_users(connection: Connection) -> tuple[str, list[str]]:
    """Return the users script (see the module docstring) and the accounts in it."""
    try:
        accounts = rows(
            connection, "SELECT User, Host, is_role FROM mysql.user ORDER BY is_role DESC, User"
        )
    except pymysql.err.OperationalError:  # MySQL: no is_role column (roles are accounts)
        accounts = [(*row, "N") for row in rows(connection, "SELECT User, Host FROM mysql.user")]
    creations: list[str] = []
    grants: list[str] = []
    names: list[str] = []
    for user, host, is_role in accounts:
        user, host = _text(user), _text(host)
        if user in SYSTEM_ACCOUNTS:
            continue
        if is_role == "Y":
            name = user
            creations.append(
                f"{ACCOUNT_HEADER}{name}\nCREATE ROLE IF NOT EXISTS {quote_name(user)};"
            )
            shown = rows(connection, "SHOW GRANTS FOR %s", (user,))
        else:
            name = f"{user}@{host}"
            created = rows(connection, "SHOW CREATE USER %s@%s", (user, host))[0][0]
            statement = _CREATE_USER.sub("CREATE USER IF NOT EXISTS ", _text(created), count=1)
            creations.append(f"{ACCOUNT_HEADER}{name}\n{statement};")
            shown = rows(connection, "SHOW GRANTS FOR %s@%s", (user, host))
        grantee = quote_name(user) if is_role == "Y" else f"{quote_name(user)}@{quote_name(host)}"
        # SHOW GRANTS of a role also lists the grants of the roles granted to it: keep
        # only what is granted to this account (and its default role).
        lines = [
            _text(row[0])
            for row in shown
            if f" TO {grantee}" in _text(row[0]) or f" FOR {grantee}" in _text(row[0])
        ]
        grants.append(f"{ACCOUNT_HEADER}{name}\n" + "".join(f"{line};\n" for line in lines))
        names.append(name)
    script = "\n".join([ACCOUNTS_PHASE, *creations, GRANTS_PHASE, *grants]) + "\n"
    return script, names


def split_phases(script: str) -> tuple[str, str]:
    """Split a users script into its account creations and its grants.

    Accounts go in before the databases (views and routines name them as definers), grants
    after (a table-level grant needs its table).
    """
    creations, _, grants = script.partition(GRANTS_PHASE + "\n")
    return creations, grants


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes | bytearray) else str(value)


def select_accounts(script: str, wanted: set[str] | None) -> str:
    """Keep the blocks of ``wanted`` accounts (all when None) of a users script."""
    if wanted is None:
        return script
    kept: list[str] = []
    keep = True
    for line in script.splitlines():
        if line in (ACCOUNTS_PHASE, GRANTS_PHASE):
            keep = True
        elif line.startswith(ACCOUNT_HEADER):
            keep = line.removeprefix(ACCOUNT_HEADER) in wanted
        if keep:
            kept.append(line)
    return "\n".join(kept) + "\n"


def compare(label: str, recorded: JsonObject, found: JsonObject) -> list[Check]:
    """Compare recorded facts of a database with those of its restored copy.

    Checks are named ``<database>: table <name> rows`` and so on; tables recorded as
    changed during the backup are not compared (the dump may hold them or not).
    """
    checks: list[Check] = []
    recorded_tables: dict[str, JsonObject] = recorded.get("tables", {})
    found_tables: dict[str, JsonObject] = found.get("tables", {})
    changed = set(recorded.get("changed_during_backup", []))
    checks.append(
        Check(
            f"{label}: tables present",
            sorted(set(recorded_tables) - changed),
            sorted(set(found_tables) - changed),
        )
    )
    for name, expected in recorded_tables.items():
        if name in changed:
            continue
        actual = found_tables.get(name, {})
        checks.append(Check(f"{label}: table {name} rows", expected["rows"], actual.get("rows")))
        if expected.get("checksum") is not None:
            checks.append(
                Check(
                    f"{label}: table {name} checksum", expected["checksum"], actual.get("checksum")
                )
            )
    for kind in ("views", "routines", "triggers", "events"):
        checks.append(Check(f"{label}: {kind}", recorded.get(kind), found.get(kind)))
    return checks
