"""Drive one strongroom PostgreSQL backup or restore through the library API, for timing.

    pg_strongroom.py backup  --vault DIR --cache DIR --scratch DIR --database NAME --jobs N
    pg_strongroom.py restore --vault DIR --cache DIR --scratch DIR --point ID --new NAME

``pg_bench.py`` runs this as a subprocess so that its wall time, CPU seconds and peak RSS
are measured like any other tool's. The server comes from ``BENCH_PG_HOST``, ``_PORT`` and
``_USER``; the password is the secret reference ``env:BENCH_PG_PASSWORD``, the vault
passphrase ``BENCH_VAULT_PASSPHRASE``. ``backup`` creates the vault when ``--create`` is
given (else opens it), backs up one database (``PostgresSource`` with ``jobs``) and
commits; ``restore`` restores a point's database under a new name. Each prints one JSON
object: the point id, seconds per phase, and what the source and the vault reported.
``--profile FILE`` writes a cProfile of the whole run (all threads are not profiled: the
main thread only; use py-spy for the others).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from strongroom.config.resources import PostgresResource
from strongroom.keys.providers import PassphraseProvider
from strongroom.services.jobs.handlers.streams import PointStreams
from strongroom.sources.base import SourceContext
from strongroom.sources.postgres.source import PostgresSource
from strongroom.storage.open import open_store
from strongroom.vault import Vault


def _source(database: str, jobs: int, checksum: str) -> PostgresSource:
    settings = PostgresResource(
        type="postgres",
        host=os.environ["BENCH_PG_HOST"],
        port=int(os.environ["BENCH_PG_PORT"]),
        user=os.environ["BENCH_PG_USER"],
        password="env:BENCH_PG_PASSWORD",  # noqa: S106 - a secret reference, not a secret
        databases=[database],
        jobs=jobs,
    )
    return PostgresSource(settings, checksum=checksum)  # type: ignore[arg-type]


def _vault(path: Path, cache: Path, create: bool) -> Vault:
    store = open_store(path.as_uri())
    key = PassphraseProvider(os.environ["BENCH_VAULT_PASSPHRASE"], "env:BENCH_VAULT_PASSPHRASE")
    if create:
        return Vault.create(store, key, cache_dir=cache)
    return Vault.open(store, key, cache_dir=cache)


def backup(args: argparse.Namespace) -> dict[str, Any]:
    """Back up one database into the vault; return the timings and reports."""
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    vault = _vault(args.vault, args.cache, args.create)
    seconds["open vault"] = time.perf_counter() - started
    source = _source(args.database, args.jobs, args.checksum)
    with vault:
        with vault.writer() as writer:
            mark = time.perf_counter()
            result = source.backup(SourceContext(scratch=args.scratch), writer)
            seconds["source backup"] = time.perf_counter() - mark
            mark = time.perf_counter()
            point_id = writer.commit(metadata=result.metadata, tags={"bench": "pg"})
            seconds["commit"] = time.perf_counter() - mark
        stats = vault.point(point_id).manifest.stats
    database = result.metadata["databases"][args.database]
    return {
        "point": point_id,
        "seconds": seconds,
        "failed_parts": result.failed_parts,
        "format": database.get("format"),
        "logical_bytes": stats.logical_size,
        "new_stored_bytes": stats.new_stored_size,
        "tables": {
            name: {key: facts.get(key) for key in ("rows", "checksum_mode")}
            for name, facts in database.get("tables", {}).items()
        },
        "scratch_peak_bytes": database.get("scratch_peak_bytes"),
    }


def restore(args: argparse.Namespace) -> dict[str, Any]:
    """Restore the point's database under ``--new``; return the timings and the report."""
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    vault = _vault(args.vault, args.cache, create=False)
    seconds["open vault"] = time.perf_counter() - started
    with vault:
        point = vault.point(args.point)
        metadata = point.metadata
        (database,) = metadata["databases"]
        source = _source(database, args.jobs, "auto")
        target: dict[str, Any] = {"database": args.new, "roles": False, "checks": args.checks}
        if args.jobs > 1:
            target["jobs"] = args.jobs
        mark = time.perf_counter()
        with vault.reader(args.point) as reader:
            report = source.restore(
                SourceContext(scratch=args.scratch), PointStreams(reader), metadata, target
            )
        seconds["source restore"] = time.perf_counter() - mark
    if not report.ok:
        failures = [
            f"{check.name}: {check.expected!r} != {check.actual!r}" for check in report.failures
        ]
        raise SystemExit(f"restore checks failed: {failures}")
    return {"seconds": seconds, "checks": len(report.checks), "notes": report.notes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("command", choices=("backup", "restore"))
    parser.add_argument("--vault", type=Path, required=True)
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("--scratch", type=Path, required=True)
    parser.add_argument("--create", action="store_true", help="create the vault first")
    parser.add_argument("--database", help="database to back up")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--checksum", default="auto", choices=("auto", "full", "sampled", "off"))
    parser.add_argument("--point", help="recovery point to restore")
    parser.add_argument("--new", help="name of the database to restore into")
    parser.add_argument("--checks", default="counts", choices=("none", "counts", "full"))
    parser.add_argument("--profile", type=Path, help="write a cProfile here")
    args = parser.parse_args()
    args.scratch.mkdir(parents=True, exist_ok=True)
    action = backup if args.command == "backup" else restore
    if args.profile:
        profiler = cProfile.Profile()
        outcome = profiler.runcall(action, args)
        profiler.dump_stats(args.profile)
    else:
        outcome = action(args)
    json.dump(outcome, sys.stdout, default=str)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
