"""A PostgreSQL database with real variety, and an independent description to compare with.

:func:`populate` builds several schemas, thousands of rows of many types, a partitioned
table, a table without a primary key, advanced sequences, pgcrypto, a large object, a
materialized view and grants to a role. :func:`describe` reads a database back with plain
SQL (no strongroom code), so a restore is judged by what is really in the database.
"""

from __future__ import annotations

from typing import Any

from psycopg import sql

from tests.support.services import PostgresService

MARKER = "order-marker-0042"
LARGE_OBJECT = bytes(range(256)) * 300 + b"\x00end"

_SCHEMA = """
CREATE EXTENSION pgcrypto;
CREATE SCHEMA sales;
CREATE SCHEMA inventory;
CREATE TABLE sales.customers (
    id serial PRIMARY KEY,
    name text NOT NULL,
    email text UNIQUE,
    balance numeric(14, 2),
    tags text[],
    profile jsonb,
    created timestamptz NOT NULL
);
CREATE TABLE sales.orders (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id int NOT NULL REFERENCES sales.customers (id),
    amount numeric(12, 2) NOT NULL,
    note text,
    ordered_at timestamptz NOT NULL
);
CREATE TABLE inventory.items (
    sku text PRIMARY KEY,
    quantity int NOT NULL,
    picture bytea,
    fingerprint bytea,
    price double precision,
    span interval
);
CREATE TABLE inventory.moves (
    id int NOT NULL,
    moved_on date NOT NULL,
    quantity int NOT NULL,
    PRIMARY KEY (id, moved_on)
) PARTITION BY RANGE (moved_on);
CREATE TABLE inventory.moves_2023 PARTITION OF inventory.moves
    FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');
CREATE TABLE inventory.moves_2024 PARTITION OF inventory.moves
    FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE public.audit_log (at timestamptz, payload text);
CREATE TABLE public.documents (id int PRIMARY KEY, title text, content oid);
CREATE SEQUENCE sales.invoice_numbers START 1000 INCREMENT 7;
"""

_DATA = (
    """
INSERT INTO sales.customers (name, email, balance, tags, profile, created)
SELECT 'customer ' || i || E' \\u00e9\\t"quoted"\\n',
       'c' || i || '@example.org',
       (i * 37.31)::numeric(14, 2),
       ARRAY['t' || (i % 7), NULL],
       jsonb_build_object('level', i % 5, 'notes', repeat('x', i % 50)),
       timestamptz '2024-01-01 00:00:00+00' + i * interval '37 minutes'
  FROM generate_series(1, 2000) AS i;
INSERT INTO sales.orders (customer_id, amount, note, ordered_at)
SELECT 1 + (i % 2000), (i % 997) * 1.25,
       CASE WHEN i = 42 THEN '"""
    + MARKER
    + """' WHEN i % 10 = 0 THEN NULL ELSE md5(i::text) END,
       timestamptz '2024-02-01 00:00:00+00' + i * interval '5 minutes'
  FROM generate_series(1, 6000) AS i;
INSERT INTO inventory.items
SELECT 'sku-' || lpad(i::text, 5, '0'), i % 100, decode(md5(i::text), 'hex'),
       digest('item ' || i, 'sha256'), i / 3.0, i * interval '1 hour 3 seconds'
  FROM generate_series(1, 700) AS i;
INSERT INTO inventory.moves
SELECT i, date '2023-06-01' + (i % 400), i % 13 FROM generate_series(1, 3000) AS i;
INSERT INTO public.audit_log
SELECT timestamptz '2024-03-01 00:00:00+00' + (i % 50) * interval '1 second', 'same ' || (i % 50)
  FROM generate_series(1, 1500) AS i;
SELECT setval('sales.customers_id_seq', 5000);
SELECT nextval('sales.invoice_numbers') FROM generate_series(1, 37);
CREATE MATERIALIZED VIEW sales.customer_totals AS
SELECT customer_id, count(*) AS orders, sum(amount) AS total
  FROM sales.orders GROUP BY customer_id;
"""
)


def populate(service: PostgresService, database: str, role: str) -> None:
    """Fill ``database`` (which exists and is empty) and grant ``role`` some privileges."""
    with service.connect(database, autocommit=True) as connection:
        connection.execute(_SCHEMA)
        connection.execute(_DATA)
        connection.execute(
            "INSERT INTO public.documents VALUES (1, 'manual', lo_from_bytea(0, %s))",
            (LARGE_OBJECT,),
        )
        connection.execute(
            sql.SQL(
                "GRANT USAGE ON SCHEMA sales TO {role}; "
                "GRANT SELECT, INSERT ON sales.orders TO {role}; "
                "GRANT SELECT ON sales.customer_totals TO {role}"
            ).format(role=sql.Identifier(role))
        )


def describe(service: PostgresService, database: str) -> dict[str, Any]:
    """Everything a faithful restore must reproduce, read with plain SQL."""
    result: dict[str, Any] = {}
    with service.connect(database) as connection:
        connection.execute("SET TimeZone = 'UTC'; SET extra_float_digits = 3")
        tables = connection.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_type = 'BASE TABLE' AND table_schema NOT IN "
            "('pg_catalog', 'information_schema') ORDER BY 1, 2"
        ).fetchall()
        for schema, table in tables:
            query = sql.SQL("SELECT t::text FROM ONLY {} AS t ORDER BY 1").format(
                sql.Identifier(schema, table)
            )
            result[f"rows {schema}.{table}"] = [row[0] for row in connection.execute(query)]
        result["columns"] = connection.execute(
            "SELECT table_schema, table_name, column_name, data_type, column_default, "
            "is_nullable, is_identity FROM information_schema.columns "
            "WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2, 3"
        ).fetchall()
        result["sequences"] = connection.execute(
            "SELECT schemaname, sequencename, last_value, increment_by FROM pg_sequences "
            "ORDER BY 1, 2"
        ).fetchall()
        result["large_objects"] = connection.execute(
            "SELECT oid, lo_get(oid) FROM pg_largeobject_metadata ORDER BY oid"
        ).fetchall()
        result["extensions"] = connection.execute(
            "SELECT extname, extversion FROM pg_extension ORDER BY 1"
        ).fetchall()
        result["matviews"] = connection.execute(
            "SELECT schemaname, matviewname, ispopulated, definition FROM pg_matviews ORDER BY 1, 2"
        ).fetchall()
        result["matview rows"] = connection.execute(
            "SELECT t::text FROM sales.customer_totals AS t ORDER BY 1"
        ).fetchall()
        result["grants"] = connection.execute(
            "SELECT grantee, table_schema, table_name, privilege_type "
            "FROM information_schema.role_table_grants "
            "WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2, 3, 4"
        ).fetchall()
        result["constraints"] = connection.execute(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
            "FROM pg_constraint WHERE connamespace::regnamespace::text "
            "NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2"
        ).fetchall()
        result["partitions"] = connection.execute(
            "SELECT inhrelid::regclass::text, inhparent::regclass::text FROM pg_inherits ORDER BY 1"
        ).fetchall()
    return result
