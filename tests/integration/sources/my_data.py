"""A MariaDB database with real variety, and an independent description to compare with.

:func:`populate` builds tables of many types (a BLOB column holding every byte value, JSON,
DECIMAL, a generated column, utf8mb4 text, a table without a primary key, a MyISAM table),
thousands of rows, a view, a procedure, a function, a trigger, an event, and an account
and a role with grants. :func:`describe` reads a database back with plain SQL (no
strongroom code).
"""

from __future__ import annotations

import random
from typing import Any

from tests.support.services import MariaDBService

MARKER = "order-marker-0042"

_SCHEMA = [
    """CREATE TABLE customers (
        id INT AUTO_INCREMENT PRIMARY KEY,
        name VARCHAR(200) NOT NULL,
        email VARCHAR(200) UNIQUE,
        balance DECIMAL(14, 2),
        profile JSON,
        created DATETIME(6) NOT NULL,
        name_length INT AS (CHAR_LENGTH(name)) STORED
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
    """CREATE TABLE orders (
        id BIGINT AUTO_INCREMENT PRIMARY KEY,
        customer_id INT NOT NULL,
        amount DECIMAL(12, 2) NOT NULL,
        note TEXT,
        ordered_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
        FOREIGN KEY (customer_id) REFERENCES customers (id)
    ) ENGINE=InnoDB""",
    """CREATE TABLE attachments (
        id INT PRIMARY KEY,
        data LONGBLOB,
        digest BINARY(32)
    ) ENGINE=InnoDB""",
    "CREATE TABLE audit_log (at DATETIME, payload VARCHAR(100)) ENGINE=InnoDB",
    "CREATE TABLE counters (name VARCHAR(50) PRIMARY KEY, value INT) ENGINE=MyISAM",
    "CREATE TABLE order_audit (order_id BIGINT, amount DECIMAL(12, 2)) ENGINE=InnoDB",
    """CREATE VIEW big_orders AS
        SELECT o.id, c.name, o.amount FROM orders o JOIN customers c ON c.id = o.customer_id
        WHERE o.amount > 1000""",
    """CREATE PROCEDURE add_order(IN customer INT, IN value DECIMAL(12, 2))
        BEGIN INSERT INTO orders (customer_id, amount, note) VALUES (customer, value, 'proc'); END""",
    """CREATE FUNCTION with_tax(value DECIMAL(12, 2)) RETURNS DECIMAL(12, 2) DETERMINISTIC
        RETURN value * 1.2""",
    """CREATE TRIGGER orders_audit AFTER INSERT ON orders FOR EACH ROW
        INSERT INTO order_audit VALUES (NEW.id, NEW.amount)""",
    """CREATE EVENT nightly_cleanup ON SCHEDULE EVERY 1 DAY
        STARTS '2030-01-01 03:00:00' DO DELETE FROM audit_log WHERE at < '2000-01-01'""",
]


def blob(index: int) -> bytes:
    """Binary data with every byte value, quotes, backslashes and NULs."""
    generator = random.Random(index)
    return bytes(range(256)) + b"'\"\\\x00\n\r\x1a" + generator.randbytes(500 + index * 37)


def populate(service: MariaDBService, database: str, account: str, role: str) -> None:
    """Create and fill ``database``; create ``account``@'%' and ``role`` with grants."""
    connection = service.connect(autocommit=True)
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
            )
            cursor.execute(f"USE `{database}`")
            for statement in _SCHEMA:
                cursor.execute(statement)
            cursor.executemany(
                "INSERT INTO customers (name, email, balance, profile, created) "
                "VALUES (%s, %s, %s, %s, %s)",
                [
                    (
                        f"customer {i} é ✓ 🗄 \t'quoted' \\ back",
                        f"c{i}@example.org",
                        f"{i * 37.31:.2f}",
                        f'{{"level": {i % 5}, "tags": ["t{i % 7}"]}}',
                        f"2024-01-01 00:{i % 60:02d}:{i % 60:02d}.{i:06d}",
                    )
                    for i in range(1, 2001)
                ],
            )
            cursor.executemany(
                "INSERT INTO orders (customer_id, amount, note, ordered_at) VALUES (%s, %s, %s, %s)",
                [
                    (
                        1 + i % 2000,
                        f"{(i % 997) * 1.25:.2f}",
                        MARKER if i == 42 else (None if i % 10 == 0 else f"note {i}"),
                        f"2024-02-01 00:00:{i % 60:02d}.{i % 1000:03d}",
                    )
                    for i in range(1, 5001)
                ],
            )
            cursor.executemany(
                "INSERT INTO attachments VALUES (%s, %s, UNHEX(SHA2(%s, 256)))",
                [(i, blob(i), blob(i)) for i in range(1, 41)],
            )
            cursor.executemany(
                "INSERT INTO audit_log VALUES (%s, %s)",
                [(f"2024-03-01 00:00:{i % 50:02d}", f"same {i % 50}") for i in range(1500)],
            )
            cursor.executemany(
                "INSERT INTO counters VALUES (%s, %s)", [(f"c{i}", i) for i in range(30)]
            )
            cursor.execute(f"CREATE USER '{account}'@'%' IDENTIFIED BY 'pw-{account}'")
            cursor.execute(f"CREATE ROLE `{role}`")
            cursor.execute(f"GRANT SELECT ON `{database}`.* TO '{account}'@'%'")
            cursor.execute(f"GRANT INSERT, UPDATE ON `{database}`.`orders` TO `{role}`")
            cursor.execute(f"GRANT `{role}` TO '{account}'@'%'")
    finally:
        connection.close()


def describe(service: MariaDBService, database: str) -> dict[str, Any]:
    """Everything a faithful restore must reproduce; the database name is replaced by ``@db``."""
    result: dict[str, Any] = {}
    connection = service.connect(database)
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT TABLE_NAME, TABLE_TYPE, ENGINE FROM information_schema.TABLES "
                "WHERE TABLE_SCHEMA = %s ORDER BY 1",
                (database,),
            )
            tables = cursor.fetchall()
            result["tables"] = tables
            for name, kind, _engine in tables:
                cursor.execute(f"SHOW CREATE TABLE `{name}`")
                result[f"create {name}"] = cursor.fetchone()[1]
                if kind == "BASE TABLE":
                    cursor.execute(f"SELECT * FROM `{name}`")
                    result[f"rows {name}"] = sorted(cursor.fetchall(), key=repr)
            for kind in ("PROCEDURE", "FUNCTION"):
                cursor.execute(
                    "SELECT ROUTINE_NAME, ROUTINE_DEFINITION, DTD_IDENTIFIER, DEFINER "
                    "FROM information_schema.ROUTINES "
                    "WHERE ROUTINE_SCHEMA = %s AND ROUTINE_TYPE = %s ORDER BY 1",
                    (database, kind),
                )
                result[f"routines {kind}"] = cursor.fetchall()
            cursor.execute(
                "SELECT TRIGGER_NAME, EVENT_MANIPULATION, ACTION_TIMING, ACTION_STATEMENT "
                "FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = %s ORDER BY 1",
                (database,),
            )
            result["triggers"] = cursor.fetchall()
            cursor.execute(
                "SELECT EVENT_NAME, EVENT_DEFINITION, INTERVAL_VALUE, INTERVAL_FIELD, STARTS, "
                "STATUS FROM information_schema.EVENTS WHERE EVENT_SCHEMA = %s ORDER BY 1",
                (database,),
            )
            result["events"] = cursor.fetchall()
            cursor.execute(
                "SELECT TABLE_NAME, VIEW_DEFINITION FROM information_schema.VIEWS "
                "WHERE TABLE_SCHEMA = %s ORDER BY 1",
                (database,),
            )
            result["views"] = cursor.fetchall()
            cursor.execute("SELECT with_tax(10.00)")
            result["function result"] = cursor.fetchone()
    finally:
        connection.close()
    return _without_name(result, database)


def _without_name(value: Any, database: str) -> Any:
    if isinstance(value, str):
        return value.replace(f"`{database}`", "`@db`")
    if isinstance(value, tuple | list):
        return type(value)(_without_name(item, database) for item in value)
    if isinstance(value, dict):
        return {key: _without_name(item, database) for key, item in value.items()}
    return value


def grants(service: MariaDBService, account: str, role: str) -> dict[str, list[str]]:
    """``SHOW GRANTS`` of the account and the role, sorted."""
    connection = service.connect()
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"SHOW GRANTS FOR '{account}'@'%'")
            for_account = sorted(row[0] for row in cursor.fetchall())
            cursor.execute(f"SHOW GRANTS FOR `{role}`")
            for_role = sorted(row[0] for row in cursor.fetchall())
    finally:
        connection.close()
    return {"account": for_account, "role": for_role}
