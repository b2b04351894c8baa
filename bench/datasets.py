"""Reproducible generated data for the benchmarks.

``orders_dump`` writes a stream that resembles ``pg_dump`` output of an orders table
(COPY lines with uuids, emails, amounts, timestamps and short JSON); zstd -3 shrinks it to
about 0.4 of its size, like real dumps of such tables. ``orders_dump_changed`` writes the
same dump after an update touched 1% of the rows: recent orders change status (rows near
the end of the table, as a busy shop's do) and new orders are appended.
"""

from __future__ import annotations

import base64
import hashlib
import random
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

_FIRST = [
    "anna",
    "ben",
    "chen",
    "dara",
    "emil",
    "fatima",
    "gus",
    "hana",
    "ivan",
    "jo",
    "kemal",
    "lea",
]
_LAST = ["smith", "garcia", "nguyen", "muller", "rossi", "kowalski", "tanaka", "dubois", "silva"]
_DOMAINS = ["example.com", "mail.test", "shop.invalid", "corp.example.org"]
_STATUS = ["pending", "paid", "shipped", "delivered", "refunded"]
_SKUS = [f"SKU-{index:05d}" for index in range(4000)]
_HEADER = (
    "--\n-- PostgreSQL database dump\n--\n\n"
    "CREATE TABLE public.orders (id uuid, email text, amount numeric(12,2), "
    "created_at timestamptz, status text, attributes jsonb);\n\n"
    "COPY public.orders (id, email, amount, created_at, status, attributes) FROM stdin;\n"
)


def _row(rng: random.Random, index: int, status_shift: int = 0) -> str:
    order_id = uuid.UUID(int=rng.getrandbits(128), version=4)
    email = f"{rng.choice(_FIRST)}.{rng.choice(_LAST)}{rng.randrange(1000)}@{rng.choice(_DOMAINS)}"
    amount = f"{rng.randrange(100, 500_000) / 100:.2f}"
    created = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(seconds=index * 3 + rng.randrange(3))
    status = _STATUS[(rng.randrange(len(_STATUS)) + status_shift) % len(_STATUS)]
    items = rng.randrange(1, 4)
    attributes = (
        '{"sku": "'
        + rng.choice(_SKUS)
        + '", "qty": '
        + str(items)
        + ', "gift": '
        + ("true" if rng.random() < 0.1 else "false")
        + ', "ip": "'
        + ".".join(str(octet) for octet in rng.randbytes(4))
        + '"'
        + ', "phone": "+'
        + str(rng.randrange(10**10, 10**11))
        + '"'
        + ', "cart": "'
        + base64.b64encode(rng.randbytes(9)).decode()
        + '"'
        + ', "payment_ref": "'
        + base64.b64encode(rng.randbytes(18)).decode()
        + '"}'
    )
    return f"{order_id}\t{email}\t{amount}\t{created.isoformat()}\t{status}\t{attributes}\n"


def _write(path: Path, rows: int, changed_from: int | None, appended: int, seed: int) -> Path:
    with path.open("w", buffering=8 * 1024 * 1024) as out:
        out.write(_HEADER)
        batch: list[str] = []
        for index in range(rows + appended):
            rng = random.Random(
                seed * 1_000_003 + index
            )  # per-row seed: a changed row changes alone
            shift = 1 if changed_from is not None and changed_from <= index < rows else 0
            batch.append(_row(rng, index, shift))
            if len(batch) >= 10_000:
                out.write("".join(batch))
                batch.clear()
        out.write("".join(batch))
        out.write("\\.\n\n--\n-- PostgreSQL database dump complete\n--\n")
    return path


def rows_for(size_mb: int) -> int:
    """Rows that make a dump of about ``size_mb`` megabytes (rows average ~268 bytes)."""
    return size_mb * 1_000_000 // 268


def orders_dump(folder: Path, size_mb: int, seed: int = 1) -> Path:
    """Return the path of the dump, generating it once per size and seed (cached)."""
    path = folder / f"orders-{size_mb}mb-s{seed}.sql"
    if not path.exists():
        partial = path.with_suffix(".partial")
        _write(partial, rows_for(size_mb), None, 0, seed).rename(path)
    return path


def orders_dump_changed(folder: Path, size_mb: int, seed: int = 1) -> Path:
    """The dump after 1% of the rows changed: the newest 0.8% updated, 0.2% appended."""
    path = folder / f"orders-{size_mb}mb-s{seed}-changed.sql"
    if not path.exists():
        rows = rows_for(size_mb)
        partial = path.with_suffix(".partial")
        _write(partial, rows, rows - rows * 8 // 1000, rows * 2 // 1000, seed).rename(path)
    return path


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, read in 8 MiB blocks."""
    hasher = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(8 * 1024 * 1024):
            hasher.update(block)
    return hasher.hexdigest()
