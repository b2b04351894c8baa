"""A reproducible orders database for the PostgreSQL benchmark, generated in the server.

``ensure_database(server, size_gb)`` makes ``strongroom_bench_orders_<size>gb`` unless it
already exists with the right marker (its database comment), so the data is generated once
and reused by later runs. Everything is made server-side with ``INSERT … SELECT
generate_series`` and ``random()`` after a fixed ``setseed`` in one session with parallel
query off, so the same size always gives the same rows:

* ``customers``: id, uuid, email, name, country, signup time, opt-in flag;
* ``orders``: id from the ``orders_id_seq`` sequence, uuid, customer, email, amount,
  currency, status, created/updated timestamps and a ``jsonb`` of attributes (sku,
  quantity, gift flag, IP address, channel, sometimes a coupon or a free-text note);
* ``order_items``: 1 to 5 lines per order (sku, quantity, unit price, discount);
* primary keys, a foreign key, indexes on ``orders(customer_id)`` and
  ``orders(created_at)``.

About 1 GB on disk (``pg_database_size``) per ``size_gb``; ``pg_dump -Fc`` of it is about
a quarter of that. The load ends with ``VACUUM (FREEZE, ANALYZE)`` so hint bits are set and
the first dump does not pay for writing them.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import psycopg
from psycopg import sql

VERSION: Final = 1
SEED: Final = 0.20240601
_SERVICES_JSON: Final = Path("/var/tmp/strongroom-services/services.json")

# Rows per GB of database, tuned so that pg_database_size comes out near 1 GB per GB.
CUSTOMERS_PER_GB: Final = 200_000
ORDERS_PER_GB: Final = 1_650_000

_FIRST: Final = "('{anna,ben,chen,dara,emil,fatima,gus,hana,ivan,jo,kemal,lea}'::text[])"
_LAST: Final = "('{smith,garcia,nguyen,muller,rossi,kowalski,tanaka,dubois,silva}'::text[])"
_DOMAINS: Final = "('{example.com,mail.test,shop.invalid,corp.example.org}'::text[])"
_STATUS: Final = "('{pending,paid,shipped,delivered,refunded,cancelled}'::text[])"
_CHANNELS: Final = "('{web,ios,android,pos,partner}'::text[])"
_COUNTRIES: Final = "('{DE,FR,US,GB,NL,PL,IT,ES,SE,JP,BR,IN}'::text[])"
_CURRENCIES: Final = "('{EUR,USD,GBP,SEK,JPY}'::text[])"
_NOTES: Final = (
    "('{leave at the door,call before delivery,gift wrap please,"
    "fragile - handle with care,deliver to the neighbour if not home}'::text[])"
)


def _pick(array: str, count: int) -> str:
    return f"{array}[1 + floor(random() * {count})::int]"


SCHEMA: Final = """
CREATE TABLE bench_meta (key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE customers (
    id bigint PRIMARY KEY,
    customer_uuid uuid NOT NULL,
    email text NOT NULL,
    full_name text NOT NULL,
    country char(2) NOT NULL,
    created_at timestamptz NOT NULL,
    marketing_opt_in boolean NOT NULL
);
CREATE SEQUENCE orders_id_seq;
CREATE TABLE orders (
    id bigint PRIMARY KEY DEFAULT nextval('orders_id_seq'),
    order_uuid uuid NOT NULL,
    customer_id bigint NOT NULL,
    email text NOT NULL,
    amount numeric(12, 2) NOT NULL,
    currency char(3) NOT NULL,
    status text NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    attributes jsonb NOT NULL
);
ALTER SEQUENCE orders_id_seq OWNED BY orders.id;
CREATE TABLE order_items (
    order_id bigint NOT NULL,
    line integer NOT NULL,
    sku text NOT NULL,
    quantity integer NOT NULL,
    unit_price numeric(10, 2) NOT NULL,
    discount numeric(10, 2) NOT NULL,
    PRIMARY KEY (order_id, line)
);
"""

CUSTOMERS: Final = f"""
INSERT INTO customers
SELECT i,
       md5('customer' || i)::uuid,
       {_FIRST}[f] || '.' || {_LAST}[l] || i || '@' || {_DOMAINS}[d],
       initcap({_FIRST}[f]) || ' ' || initcap({_LAST}[l]),
       {_pick(_COUNTRIES, 12)},
       timestamptz '2019-01-01 00:00:00+00' + i * interval '7 minutes'
           + random() * interval '5 minutes',
       random() < 0.3
  FROM (SELECT i, 1 + floor(random() * 12)::int AS f, 1 + floor(random() * 9)::int AS l,
               1 + floor(random() * 4)::int AS d
          FROM generate_series(1, %(customers)s) AS i) AS picks
"""  # noqa: S608 - built from constants; the counts are bound parameters

ORDERS: Final = f"""
INSERT INTO orders
SELECT i,
       md5(random()::text || i)::uuid,
       customer,
       {_FIRST}[1 + customer %% 12] || '.' || {_LAST}[1 + customer %% 9] || customer || '@'
           || {_DOMAINS}[1 + customer %% 4],
       round((1 + random() * 4999)::numeric, 2),
       {_pick(_CURRENCIES, 5)},
       {_pick(_STATUS, 6)},
       created,
       created + random() * interval '30 days',
       jsonb_strip_nulls(jsonb_build_object(
           'sku', 'SKU-' || lpad(floor(random() * 4000)::int::text, 5, '0'),
           'qty', 1 + floor(random() * 5)::int,
           'gift', random() < 0.1,
           'ip', concat_ws('.', floor(random() * 256)::int, floor(random() * 256)::int,
                           floor(random() * 256)::int, floor(random() * 256)::int),
           'channel', {_pick(_CHANNELS, 5)},
           'coupon', CASE WHEN random() < 0.2
                          THEN upper(substr(md5(random()::text), 1, 10)) END,
           'note', CASE WHEN random() < 0.05 THEN {_pick(_NOTES, 5)} END))
  FROM (SELECT i, 1 + floor(random() * %(customers)s)::bigint AS customer,
               timestamptz '2022-01-01 00:00:00+00' + i * interval '20 seconds'
                   + random() * interval '15 seconds' AS created
          FROM generate_series(1, %(orders)s) AS i) AS picks
"""  # noqa: S608 - built from constants; the counts are bound parameters

ORDER_ITEMS: Final = """
INSERT INTO order_items
SELECT o, line,
       'SKU-' || lpad(floor(random() * 4000)::int::text, 5, '0'),
       1 + floor(random() * 4)::int,
       round((0.5 + random() * 250)::numeric, 2),
       CASE WHEN random() < 0.1 THEN round((random() * 10)::numeric, 2) ELSE 0 END
  FROM generate_series(1, %(orders)s) AS o, generate_series(1, 1 + o %% 5) AS line
"""

CONSTRAINTS: Final = """
ALTER TABLE orders ADD FOREIGN KEY (customer_id) REFERENCES customers (id);
ALTER TABLE order_items ADD FOREIGN KEY (order_id) REFERENCES orders (id);
CREATE INDEX orders_customer_id ON orders (customer_id);
CREATE INDEX orders_created_at ON orders (created_at);
"""


@dataclass(frozen=True)
class Server:
    """Where the benchmark's PostgreSQL server listens, and how to log in."""

    host: str
    port: int
    user: str
    password: str

    @classmethod
    def from_services(cls) -> Server:
        """Read ``STRONGROOM_TEST_POSTGRES_*`` from the environment, else services.json."""
        settings = dict(os.environ)
        if "STRONGROOM_TEST_POSTGRES_URL" not in settings:
            settings = json.loads(_SERVICES_JSON.read_text())
        return cls(
            host=settings["STRONGROOM_TEST_POSTGRES_HOST"],
            port=int(settings["STRONGROOM_TEST_POSTGRES_PORT"]),
            user=settings["STRONGROOM_TEST_POSTGRES_USER"],
            password=settings["STRONGROOM_TEST_POSTGRES_PASSWORD"],
        )

    def environment(self) -> dict[str, str]:
        """libpq variables for client tools (the password never goes into argv)."""
        return {
            "PGHOST": self.host,
            "PGPORT": str(self.port),
            "PGUSER": self.user,
            "PGPASSWORD": self.password,
        }

    def connect(self, database: str = "postgres") -> psycopg.Connection[tuple[object, ...]]:
        """An autocommit connection to ``database``."""
        return psycopg.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            dbname=database,
            autocommit=True,
        )

    def postmaster_pid(self) -> int | None:
        """The server's postmaster process id, when the server runs on this machine."""
        with self.connect() as connection:
            row = connection.execute("SHOW data_directory").fetchone()
        try:
            return int(Path(str(row[0]), "postmaster.pid").read_text().split()[0]) if row else None
        except (OSError, ValueError, IndexError):
            return None

    def database_size(self, database: str) -> int:
        """``pg_database_size`` of ``database`` in bytes."""
        with self.connect() as connection:
            row = connection.execute("SELECT pg_database_size(%s)", (database,)).fetchone()
        return int(row[0]) if row else 0

    def drop_database(self, database: str) -> None:
        """Drop ``database`` if it exists (its connections are ended first)."""
        with self.connect() as connection:
            connection.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
            )


def database_name(size_gb: float) -> str:
    """``strongroom_bench_orders_1gb``, ``…_0_05gb``: one database per size."""
    return f"strongroom_bench_orders_{size_gb:g}gb".replace(".", "_")


def marker(size_gb: float) -> str:
    """The database comment a finished generation leaves (what the cache check reads)."""
    return f"strongroom-bench orders size_gb={size_gb:g} seed={SEED} version={VERSION}"


def _current_marker(server: Server, name: str) -> str | None:
    with server.connect() as connection:
        row = connection.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
            (name,),
        ).fetchone()
    if row is None:
        return None
    return str(row[0]) if row[0] is not None else ""


def ensure_database(server: Server, size_gb: float, log: bool = True) -> str:
    """Return the name of the generated database of ``size_gb``, generating it if needed."""
    name = database_name(size_gb)
    if _current_marker(server, name) == marker(size_gb):
        return name
    started = time.perf_counter()
    server.drop_database(name)
    with server.connect() as connection:
        connection.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8'").format(
                sql.Identifier(name)
            )
        )
    counts = {
        "customers": max(1000, round(CUSTOMERS_PER_GB * size_gb)),
        "orders": max(10_000, round(ORDERS_PER_GB * size_gb)),
    }
    with server.connect(name) as connection:
        connection.execute("SET max_parallel_workers_per_gather = 0")
        connection.execute("SET maintenance_work_mem = '256MB'")
        connection.execute(SCHEMA)
        for step, statement in (("customers", CUSTOMERS), ("orders", ORDERS)):
            connection.execute("SELECT setseed(%s)", (SEED,))
            connection.execute(statement, counts)  # type: ignore[arg-type]
            if log:
                print(f"  generated {step} ({time.perf_counter() - started:.0f} s)", flush=True)
        connection.execute("SELECT setseed(%s)", (SEED,))
        connection.execute(ORDER_ITEMS, counts)  # type: ignore[arg-type]
        connection.execute("SELECT setval('orders_id_seq', %(orders)s)", counts)
        connection.execute(CONSTRAINTS)
        connection.execute(
            "INSERT INTO bench_meta VALUES ('size_gb', %s), ('seed', %s), ('version', %s)",
            (f"{size_gb:g}", str(SEED), str(VERSION)),
        )
        connection.execute("VACUUM (FREEZE, ANALYZE)")
    with server.connect() as connection:
        connection.execute(
            sql.SQL("COMMENT ON DATABASE {} IS {}").format(
                sql.Identifier(name), sql.Literal(marker(size_gb))
            )
        )
    if log:
        size = server.database_size(name)
        print(
            f"  generated {name}: {size / 1e9:.2f} GB in {time.perf_counter() - started:.0f} s",
            flush=True,
        )
    return name
