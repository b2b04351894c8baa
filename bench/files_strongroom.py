"""Drive one strongroom files backup through the library API, for timing.

    files_strongroom.py --vault DIR --cache DIR --files-cache FILE --scratch DIR [--create] PATH
    files_strongroom.py --vault DIR --cache DIR --scratch DIR --restore-to DIR

``--vault-url URL`` instead of ``--vault DIR`` names any store (``s3://bucket/prefix``,
reached through the standard AWS settings, for ``s3_bench.py``).


``files_bench.py`` runs this as a subprocess so that its wall time, CPU seconds and peak RSS
are measured like restic's and borg's. It creates the vault with ``--create`` (else opens
it; the vault passphrase is ``BENCH_VAULT_PASSPHRASE``), backs up ``PATH`` with
``FilesSource`` and its unchanged-file cache (``--files-cache``; the cache is used only
when the vault writer can reuse streams) and commits. Prints one JSON object: the point
id, seconds per phase, the source's cache report (``used``, ``reused_streams``,
``bytes_read``), the counts, and the bytes the point added to the vault. With
``--restore-to`` it restores the vault's newest point into that (new) folder instead and
prints the seconds and whether every check of the restore passed.
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

from strongroom.config.resources import FilesResource
from strongroom.keys.providers import PassphraseProvider
from strongroom.sources.base import SourceContext
from strongroom.sources.files.cache import ReusingSink
from strongroom.sources.files.source import FilesSource
from strongroom.storage.open import open_store
from strongroom.vault import Vault


def backup(args: argparse.Namespace) -> dict[str, Any]:
    """Back up ``args.path`` into the vault; return the timings and the source's report."""
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    store = open_store(args.vault_url or args.vault.as_uri())
    key = PassphraseProvider(os.environ["BENCH_VAULT_PASSPHRASE"], "env:BENCH_VAULT_PASSPHRASE")
    if args.create:
        vault = Vault.create(store, key, cache_dir=args.cache)
    else:
        vault = Vault.open(store, key, cache_dir=args.cache)
    seconds["open vault"] = time.perf_counter() - started
    source = FilesSource(
        FilesResource(type="files", paths=[str(args.path)]), cache_path=args.files_cache
    )
    with vault:
        with vault.writer() as writer:
            reusing = isinstance(writer, ReusingSink)
            mark = time.perf_counter()
            result = source.backup(SourceContext(scratch=args.scratch), writer)
            seconds["source backup"] = time.perf_counter() - mark
            mark = time.perf_counter()
            point_id = writer.commit(metadata=result.metadata, tags={"bench": "files"})
            seconds["commit"] = time.perf_counter() - mark
        stats = vault.point(point_id).manifest.stats
    return {
        "point": point_id,
        "seconds": seconds,
        "writer_can_reuse": reusing,
        "cache": result.metadata["cache"],
        "counts": result.metadata["counts"],
        "changed_count": result.metadata["changed_count"],
        "skipped_count": result.metadata["skipped_count"],
        "logical_bytes": stats.logical_size,
        "new_stored_bytes": stats.new_stored_size,
        "new_chunks": stats.new_chunk_count,
    }


def restore(args: argparse.Namespace) -> dict[str, Any]:
    """Restore the newest point of the vault into ``args.restore_to``; return the timings."""
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    store = open_store(args.vault_url or args.vault.as_uri())
    key = PassphraseProvider(os.environ["BENCH_VAULT_PASSPHRASE"], "env:BENCH_VAULT_PASSPHRASE")
    with Vault.open(store, key, cache_dir=args.cache) as vault:
        seconds["open vault"] = time.perf_counter() - started
        point = vault.points()[-1]
        source = FilesSource(FilesResource(type="files", paths=["/"]))
        mark = time.perf_counter()
        main_thread = time.thread_time()
        with vault.reader(point.id) as reader:
            report = source.restore(
                SourceContext(scratch=args.scratch),
                reader,
                point.metadata,
                {"path": str(args.restore_to)},
            )
        seconds["source restore"] = time.perf_counter() - mark
        # The restore's own thread (walk of the index, every file write) against the
        # reader threads: on a quiet machine its CPU time bounds the wall time from below.
        seconds["restore thread CPU"] = time.thread_time() - main_thread
    return {
        "point": point.id,
        "seconds": seconds,
        "ok": report.ok,
        "failures": [str(check) for check in report.failures][:5],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("path", type=Path, nargs="?")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--vault", type=Path, help="a vault in this folder")
    where.add_argument("--vault-url", help="a vault at this store URL (s3://bucket/prefix)")
    parser.add_argument("--cache", type=Path, required=True, help="the vault's index cache")
    parser.add_argument("--files-cache", type=Path)
    parser.add_argument("--restore-to", type=Path, help="restore the newest point here instead")
    parser.add_argument("--scratch", type=Path, required=True)
    parser.add_argument("--create", action="store_true", help="create the vault first")
    parser.add_argument("--profile", type=Path, help="write a cProfile (main thread) here")
    args = parser.parse_args()
    args.scratch.mkdir(parents=True, exist_ok=True)
    if args.restore_to is None and (args.path is None or args.files_cache is None):
        parser.error("a backup needs PATH and --files-cache")
    work = backup if args.restore_to is None else restore
    if args.profile:
        profiler = cProfile.Profile()
        outcome = profiler.runcall(work, args)
        profiler.dump_stats(args.profile)
    else:
        outcome = work(args)
    json.dump(outcome, sys.stdout, default=str)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
