"""What the ``postgres`` source records about a database, and how a restore is checked.

:func:`gather` reads, inside the caller's transaction (at backup time: the snapshot that
``pg_dump --snapshot`` also uses), per table the row count and a content checksum, the
extensions with versions, the large objects, the materialized views and the privileges.
:func:`read_sequences` reads sequence values (sequences are not transactional, so it is
called before and after the dump: the restored value must lie between the two).
:func:`compare` turns recorded and restored facts into named checks.

Table checksum: every row is hashed twice into 64 bits and each of the two hashes is summed
over all rows exactly (as ``numeric``). The sums do not depend on row order, so no sort and
no primary key are needed, memory stays constant and the work stays in the server; they
change when a value, a row or a row count changes. The hash (the *algorithm*, recorded per
database, and per table where a table differs) is, by server version:

* ``record64x2`` (14 and later): ``hash_record_extended(t, 0)`` and ``(t, 1)``: each
  column's own extended hash function (the ones hash partitioning and hash joins use),
  combined in column order. No value is turned into text, so it costs about a third of
  the text form and does not depend on session settings. A table with a column type that
  has no extended hash function (``json``, ``xml``, geometric types …) is hashed with
  ``hash64x2`` instead, and its facts say so (``checksum_algorithm``).
* ``hash64x2`` (11 to 13): the row's text form (``t::text``, under the session settings
  of :data:`SESSION_SETTINGS`, so the text is the same on every server) hashed by
  ``hashtextextended`` with seeds 0 and 1;
* ``md5x2`` (before 11): the two halves of the ``md5`` of the text form.

The algorithm is recorded and a restore test uses the recorded one. These are
PostgreSQL's own hashes, usable on FIPS systems; like hash partitioning they may differ
between big- and little-endian machines. Hashes of values compare values, not their text:
``1.50`` and ``1.5`` in a ``numeric`` column hash alike (as they compare equal).

``sampled`` hashes only the first ``sample_rows`` rows in primary-key order (tables without
a primary key get a count only); ``off`` records counts only. ``auto`` uses ``full`` up to
``full_limit`` bytes of table heap and ``sampled`` above.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from typing import Any, Final, Literal

import psycopg
from psycopg import sql

from strongroom.errors import AbortedError
from strongroom.sources.base import Check, JsonObject
from strongroom.sources.postgres.server import Connection

ChecksumMode = Literal["auto", "full", "sampled", "off"]

SESSION_SETTINGS: Final = (
    ("DateStyle", "ISO, YMD"),
    ("IntervalStyle", "postgres"),
    ("TimeZone", "UTC"),
    ("extra_float_digits", "3"),
    ("bytea_output", "hex"),
    ("lc_monetary", "C"),
    ("search_path", "pg_catalog"),
    ("statement_timeout", "0"),
    ("idle_in_transaction_session_timeout", "0"),
)
"""Session settings that fix the text form of every value (and keep long reads alive)."""

BACKGROUND_SETTINGS: Final = (("max_parallel_workers_per_gather", "0"),)
"""Added while the facts are read beside a running pg_dump: one server process for the
checksums, so that parallel workers do not take CPU from the dump, the critical path."""

Algorithm = Literal["record64x2", "hash64x2", "md5x2"]

_ROW_VALUE: Final[dict[str, str]] = {
    "record64x2": "t",
    "hash64x2": "t::text",
    "md5x2": "t::text",
}
"""What each row of table ``t`` is turned into (``r``) before :data:`_ROW_SUMS` hash it."""
_ROW_SUMS: Final[dict[str, str]] = {
    "record64x2": "coalesce(sum(hash_record_extended(r, 0)), 0)::text, "
    "coalesce(sum(hash_record_extended(r, 1)), 0)::text",
    "hash64x2": "coalesce(sum(hashtextextended(r, 0)), 0)::text, "
    "coalesce(sum(hashtextextended(r, 1)), 0)::text",
    "md5x2": "coalesce(sum(('x' || substr(md5(r), 1, 16))::bit(64)::bigint), 0)::text, "
    "coalesce(sum(('x' || substr(md5(r), 17, 16))::bit(64)::bigint), 0)::text",
}
_OBJECT_TEXT: Final[dict[str, str]] = {
    "hash64x2": "oid::text || ':' || encode(sha256(lo_get(oid)), 'hex')",
    "md5x2": "oid::text || ':' || md5(lo_get(oid))",
}


def algorithm_for(server_version: int) -> Algorithm:
    """The cheapest checksum algorithm a server supports (``hash_record_extended`` came
    with 14, ``hashtextextended`` with 11)."""
    if server_version >= 140000:
        return "record64x2"
    return "hash64x2" if server_version >= 110000 else "md5x2"


def _text_algorithm(algorithm: Algorithm) -> Algorithm:
    """The algorithm for values that are text already (large objects) or must become text
    (a table ``record64x2`` cannot hash)."""
    return "hash64x2" if algorithm == "record64x2" else algorithm


_RELATIONS: Final = """
SELECT n.nspname, c.relname, c.relkind, pg_relation_size(c.oid), c.relacl::text, c.relispopulated,
       (SELECT array_agg(a.attname::text ORDER BY k.ord)
          FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
          JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum)
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary
 WHERE c.relkind IN ('r', 'm', 'S')
   AND n.nspname <> 'information_schema'
   AND n.nspname NOT LIKE 'pg\\_%'
   AND NOT EXISTS (SELECT 1 FROM pg_depend d
                    WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
 ORDER BY n.nspname, c.relname
"""


def apply_session_settings(connection: Connection, *, background: bool = False) -> None:
    """Set :data:`SESSION_SETTINGS` (and with ``background`` :data:`BACKGROUND_SETTINGS`)
    for the session (parameterised ``set_config``)."""
    for name, value in SESSION_SETTINGS + (BACKGROUND_SETTINGS if background else ()):
        connection.execute("SELECT set_config(%s, %s, false)", (name, value))


def _digest(first: str, second: str) -> str:
    return hashlib.sha256(f"{first}:{second}".encode()).hexdigest()


def _relations(connection: Connection) -> list[tuple[Any, ...]]:
    return connection.execute(_RELATIONS).fetchall()


def key(schema: str, name: str) -> str:
    """The name a relation is recorded under: ``schema.name``."""
    return f"{schema}.{name}"


def table_facts(
    connection: Connection,
    schema: str,
    name: str,
    mode: Literal["full", "sampled", "off"],
    sample_rows: int,
    primary_key: list[str] | None,
    algorithm: Algorithm,
) -> JsonObject:
    """Return ``rows``, ``checksum_mode`` and (unless off) ``checksum`` of one table.

    With ``record64x2``, a table whose column types cannot all be hashed so is hashed
    with ``hash64x2``; ``checksum_algorithm`` then says so.
    """
    table = sql.Identifier(schema, name)
    if mode == "off":
        count = connection.execute(
            sql.SQL("SELECT count(*) FROM ONLY {table}").format(table=table)
        ).fetchone()
        return {"rows": int(count[0]) if count else 0, "checksum_mode": "off"}
    if algorithm != "record64x2":
        return _hashed(connection, table, mode, sample_rows, primary_key, algorithm)
    try:
        # A savepoint: an unhashable column type fails the query, not the transaction.
        with connection.transaction():
            return _hashed(connection, table, mode, sample_rows, primary_key, algorithm)
    except psycopg.errors.UndefinedFunction:
        fallback = _text_algorithm(algorithm)
        facts = _hashed(connection, table, mode, sample_rows, primary_key, fallback)
        facts["checksum_algorithm"] = fallback
        return facts


def _hashed(
    connection: Connection,
    table: sql.Identifier,
    mode: Literal["full", "sampled"],
    sample_rows: int,
    primary_key: list[str] | None,
    algorithm: Algorithm,
) -> JsonObject:
    sums = sql.SQL(_ROW_SUMS[algorithm])
    value = sql.SQL(_ROW_VALUE[algorithm])
    if mode == "full":
        query = sql.SQL(
            "SELECT count(*), {sums} FROM (SELECT {value} AS r FROM ONLY {table} AS t) AS rows"
        ).format(sums=sums, value=value, table=table)
        row = connection.execute(query).fetchone()
        assert row is not None  # noqa: S101 - an aggregate returns one row
        return {"rows": int(row[0]), "checksum_mode": "full", "checksum": _digest(row[1], row[2])}
    count = connection.execute(
        sql.SQL("SELECT count(*) FROM ONLY {table}").format(table=table)
    ).fetchone()
    rows = int(count[0]) if count else 0
    if not primary_key:
        return {"rows": rows, "checksum_mode": "off"}
    order = sql.SQL(", ").join(sql.Identifier(column) for column in primary_key)
    query = sql.SQL(
        "SELECT {sums} FROM (SELECT {value} AS r FROM ONLY {table} AS t "
        "ORDER BY {order} LIMIT {limit}) AS rows"
    ).format(sums=sums, value=value, table=table, order=order, limit=sql.Literal(sample_rows))
    row = connection.execute(query).fetchone()
    assert row is not None  # noqa: S101 - an aggregate returns one row
    return {
        "rows": rows,
        "checksum_mode": "sampled",
        "sample_rows": sample_rows,
        "checksum": _digest(row[0], row[1]),
    }


def choose_mode(
    mode: ChecksumMode, heap_bytes: int, full_limit: int
) -> Literal["full", "sampled", "off"]:
    """Resolve ``auto`` by table size; the other modes stand as they are."""
    if mode == "auto":
        return "full" if heap_bytes <= full_limit else "sampled"
    return mode


def gather(
    connection: Connection,
    *,
    mode: ChecksumMode,
    full_limit: int,
    sample_rows: int,
    algorithm: Algorithm,
    recorded: JsonObject | None = None,
    stop: threading.Event | None = None,
) -> JsonObject:
    """Read the facts of the connected database in the current transaction.

    ``recorded`` (the recorded facts of a backup) makes each table use the mode it was
    recorded with, and large objects be hashed only if they were, so a restore test
    computes comparable values. ``stop`` is checked between tables (raises
    ``AbortedError`` once set).
    """
    recorded_tables: dict[str, JsonObject] = (recorded or {}).get("tables", {})
    tables: dict[str, JsonObject] = {}
    views: dict[str, JsonObject] = {}
    sequences: list[str] = []
    for schema, name, kind, heap_bytes, acl, populated, primary_key in _relations(connection):
        if stop is not None and stop.is_set():
            raise AbortedError("reading the table facts was stopped")
        name_key = key(schema, name)
        if kind == "S":
            sequences.append(name_key)
            continue
        if kind == "m":
            views[name_key] = {"populated": bool(populated)}
            continue
        earlier = recorded_tables.get(name_key)
        table_mode: Literal["full", "sampled", "off"]
        rows_sampled = sample_rows
        table_algorithm = algorithm
        if earlier is not None:
            table_mode = earlier.get("checksum_mode", "off")
            rows_sampled = int(earlier.get("sample_rows", sample_rows))
            table_algorithm = earlier.get("checksum_algorithm", algorithm)
        else:
            table_mode = choose_mode(mode, int(heap_bytes), full_limit)
        facts = table_facts(
            connection, schema, name, table_mode, rows_sampled, primary_key, table_algorithm
        )
        facts["acl"] = acl
        tables[name_key] = facts
    extensions: dict[str, str] = {
        str(row[0]): str(row[1])
        for row in connection.execute("SELECT extname, extversion FROM pg_extension").fetchall()
    }
    if recorded is None:
        hash_objects = mode != "off"
    else:
        hash_objects = recorded.get("large_objects", {}).get("checksum") is not None
    return {
        "tables": tables,
        "materialized_views": views,
        "sequence_names": sequences,
        "extensions": extensions,
        "large_objects": large_objects(connection, hash_objects, algorithm),
    }


def large_objects(connection: Connection, checksum: bool, algorithm: Algorithm) -> JsonObject:
    """Count the large objects and (with ``checksum``) hash their oids and bytes.

    The checksum is None when the objects cannot be read (missing privilege, too large for
    ``lo_get``); a savepoint keeps the surrounding transaction usable.
    """
    row = connection.execute("SELECT count(*) FROM pg_largeobject_metadata").fetchone()
    facts: JsonObject = {"count": int(row[0]) if row else 0}
    if not checksum:
        return facts
    text_algorithm = _text_algorithm(algorithm)
    query = sql.SQL(
        "SELECT {sums} FROM (SELECT {text} AS r FROM pg_largeobject_metadata) AS objects"
    ).format(sums=sql.SQL(_ROW_SUMS[text_algorithm]), text=sql.SQL(_OBJECT_TEXT[text_algorithm]))
    try:
        with connection.transaction():
            sums = connection.execute(query).fetchone()
    except psycopg.Error:
        facts["checksum"] = None
        return facts
    facts["checksum"] = _digest(sums[0], sums[1]) if sums else None
    return facts


def gather_sequence_names(connection: Connection) -> list[str]:
    """The ``schema.name`` of every sequence :func:`gather` would list."""
    return [key(row[0], row[1]) for row in _relations(connection) if row[2] == "S"]


def read_sequences(connection: Connection, names: list[str]) -> dict[str, JsonObject]:
    """Return ``last_value`` and ``is_called`` of each ``schema.name`` sequence, now."""
    values: dict[str, JsonObject] = {}
    rows = connection.execute(
        "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relkind = 'S'"
    ).fetchall()
    wanted = set(names)
    for schema, name in rows:
        if key(schema, name) not in wanted:
            continue
        query = sql.SQL("SELECT last_value, is_called FROM {sequence}").format(
            sequence=sql.Identifier(schema, name)
        )
        row = connection.execute(query).fetchone()
        if row is not None:
            values[key(schema, name)] = {"last_value": int(row[0]), "is_called": bool(row[1])}
    return values


def database_properties(connection: Connection) -> JsonObject:
    """Encoding, locale and owner of the connected database (to recreate it alike)."""
    version = connection.info.server_version
    locale_column = "datlocale" if version >= 170000 else "daticulocale"
    provider = (
        sql.SQL("datlocprovider::text, {column}").format(column=sql.Identifier(locale_column))
        if version >= 150000
        else sql.SQL("'c', NULL")
    )
    query = sql.SQL(
        "SELECT pg_encoding_to_char(encoding), datcollate, datctype, {provider}, "
        "pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()"
    ).format(provider=provider)
    row = connection.execute(query).fetchone()
    assert row is not None  # noqa: S101 - the current database exists
    return {
        "encoding": row[0],
        "collate": row[1],
        "ctype": row[2],
        "locale_provider": row[3],
        "locale": row[4],
        "owner": row[5],
    }


def _sequence_check(
    label: str, before: JsonObject, after: JsonObject | None, found: JsonObject | None
) -> Check:
    low = (int(before["last_value"]), bool(before["is_called"]))
    high = low if after is None else (int(after["last_value"]), bool(after["is_called"]))
    actual = None if found is None else (int(found["last_value"]), bool(found["is_called"]))
    if low == high:
        return Check(label, f"{low[0]} (is_called={low[1]})", _describe_sequence(actual))
    expected = f"between {low[0]} and {high[0]} (advanced during the dump)"
    lowest, highest = sorted((low[0], high[0]))
    inside = actual is not None and lowest <= actual[0] <= highest
    return Check(label, expected, expected if inside else _describe_sequence(actual))


def _describe_sequence(value: tuple[int, bool] | None) -> str | None:
    return None if value is None else f"{value[0]} (is_called={value[1]})"


def compare(
    database: str,
    recorded: JsonObject,
    found: JsonObject,
    found_sequences: dict[str, JsonObject],
    *,
    checksums: bool,
    privileges: bool,
) -> list[Check]:
    """Compare recorded facts of ``database`` with the facts of its restored copy.

    Every check is named ``<database>: <what> <schema.name> …`` so a failure says which
    table, sequence or view differs.
    """
    checks: list[Check] = []
    recorded_tables: dict[str, JsonObject] = recorded.get("tables", {})
    found_tables: dict[str, JsonObject] = found.get("tables", {})
    checks.append(
        Check(f"{database}: tables present", sorted(recorded_tables), sorted(found_tables))
    )
    for name, expected in recorded_tables.items():
        actual = found_tables.get(name, {})
        checks.append(Check(f"{database}: table {name} rows", expected["rows"], actual.get("rows")))
        if checksums and "checksum" in expected:
            checks.append(
                Check(
                    f"{database}: table {name} checksum ({expected['checksum_mode']})",
                    expected["checksum"],
                    actual.get("checksum"),
                )
            )
        if privileges:
            checks.append(
                Check(f"{database}: table {name} privileges", expected["acl"], actual.get("acl"))
            )
    for name, view in recorded.get("materialized_views", {}).items():
        actual_view = found.get("materialized_views", {}).get(name)
        checks.append(
            Check(
                f"{database}: materialized view {name} populated",
                view["populated"],
                None if actual_view is None else actual_view["populated"],
            )
        )
    before: dict[str, JsonObject] = recorded.get("sequences", {})
    after: dict[str, JsonObject] = recorded.get("sequences_after", {})
    for name, value in before.items():
        checks.append(
            _sequence_check(
                f"{database}: sequence {name} last value",
                value,
                after.get(name),
                found_sequences.get(name),
            )
        )
    checks.append(
        Check(f"{database}: extensions", recorded.get("extensions"), found.get("extensions"))
    )
    recorded_objects: JsonObject = recorded.get("large_objects", {})
    found_objects: JsonObject = found.get("large_objects", {})
    checks.append(
        Check(
            f"{database}: large objects count",
            recorded_objects.get("count"),
            found_objects.get("count"),
        )
    )
    if checksums and recorded_objects.get("checksum") is not None:
        checks.append(
            Check(
                f"{database}: large objects checksum",
                recorded_objects["checksum"],
                found_objects.get("checksum"),
            )
        )
    return checks


class Background:
    """Runs ``work`` (which uses ``connection``) on a thread while the caller dumps.

    ``work`` is given an event to check between queries. Use as a context manager around
    the dump: leaving the block with an exception sets that event, cancels the running
    query and waits for the thread. :meth:`result` waits for the facts,
    cancelling the query when ``cancel`` is set.
    """

    def __init__(
        self, connection: Connection, work: Callable[[threading.Event], JsonObject]
    ) -> None:
        self.connection = connection
        self._work = work
        self._stop = threading.Event()
        self._outcome: dict[str, Any] = {}
        self._thread = threading.Thread(target=self._run, name="postgres-facts", daemon=True)

    def _run(self) -> None:
        try:
            self._outcome["value"] = self._work(self._stop)
        except BaseException as exc:  # noqa: BLE001 - handed to the calling thread
            self._outcome["error"] = exc

    def __enter__(self) -> Background:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if kind is not None:
            self._stop.set()
            self.connection.cancel()
            self._thread.join()

    def result(self, cancel: threading.Event) -> JsonObject:
        """Wait for the facts; raise what the work raised, ``AbortedError`` on cancel."""
        while self._thread.is_alive():
            self._thread.join(0.2)
            if cancel.is_set():
                self._stop.set()
                self.connection.cancel()
                self._thread.join()
                raise AbortedError("the operation was cancelled")
        if "error" in self._outcome:
            raise self._outcome["error"]
        value: JsonObject = self._outcome["value"]
        return value
