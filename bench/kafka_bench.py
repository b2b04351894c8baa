"""Kafka benchmark (issue #15): strongroom's kafka source vs kcat, side by side in one run.

    .venv/bin/python bench/kafka_bench.py [--records 2000000] [--size 1024] [--small 200000]
        [--work DIR]

Uses the broker of ``dev/services up kafka``. Fills a topic of 6 partitions with
``--records`` records of ``--size`` bytes (hex text, so about 2:1 compressible, each with
a key and two headers), then measures, each step a subprocess timed by ``measure.run``
(wall, CPU of the process tree, peak RSS from GNU time):

* backup: ``KafkaSource.backup`` into a new encrypted vault (compressed, deduplicated),
  the point recorded as the checkpoint; ``kcat -C -e`` to a file; ``kcat -C -e | zstd -3``
  to a file;
* incremental backup: 1 % more records written, then ``KafkaSource.backup`` again into the
  same vault (it reads from the checkpoint);
* restore: ``KafkaSource.restore`` of the full point into a new topic; ``kcat -P`` from
  the kcat file into a new topic;
* peak RSS at a second size: the backup of a topic of ``--small`` records (0: skipped).

Prints one table with records/s, MB/s and ratios against kcat, then every ratio the issue
sets a target for, with the target. The machine's load average is printed: on a shared
machine wall times are noisy, CPU seconds less so. Every topic the run makes is deleted at
the end.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import measure

PASSPHRASE = "strongroom kafka bench passphrase"  # noqa: S105 - a throwaway bench vault
PARTITIONS = 6


def bootstrap() -> str:
    """The PLAINTEXT listener of the dev/services broker."""
    folder = Path(os.environ.get("STRONGROOM_SERVICES_DIR") or "/var/tmp/strongroom-services")
    settings = json.loads((folder / "services.json").read_text())
    return f"{settings['STRONGROOM_TEST_KAFKA_HOST']}:{settings['STRONGROOM_TEST_KAFKA_PORT']}"


def _vault(path: Path, create: bool) -> Any:
    from strongroom.keys.providers import PassphraseProvider
    from strongroom.storage.open import open_store
    from strongroom.vault import Vault

    store = open_store(path.as_uri())
    key = PassphraseProvider(PASSPHRASE, "env:BENCH_VAULT_PASSPHRASE")
    cache = path.parent / (path.name + "-cache")
    if create:
        return Vault.create(store, key, cache_dir=cache)
    return Vault.open(store, key, cache_dir=cache)


def _source(topic: str, checkpoints: Path | None = None) -> Any:
    from strongroom.config.resources import KafkaResource
    from strongroom.sources.kafka.source import KafkaSource

    return KafkaSource(
        KafkaResource(type="kafka", bootstrap_servers=[bootstrap()], topics=[topic]),
        cache_path=checkpoints,
    )


def step(args: argparse.Namespace) -> dict[str, Any]:
    """Run one measured step in this process; return what it reports."""
    from strongroom.services.jobs.handlers.streams import PointStreams
    from strongroom.sources.base import SourceContext

    args.scratch.mkdir(parents=True, exist_ok=True)
    context = SourceContext(scratch=args.scratch)
    if args.step == "backup":
        source = _source(args.topic, args.out.parent / (args.out.name + "-checkpoints.sqlite"))
        create = not args.out.exists()
        with _vault(args.out, create=create) as vault, vault.writer() as writer:
            mark = time.perf_counter()
            result = source.backup(context, writer)
            point = writer.commit(metadata=result.metadata, tags={"bench": "kafka"})
            source.commit_checkpoint(result.metadata, point)
            work = time.perf_counter() - mark
        return {"point": point, "records": result.metadata["records"], "work": work}
    if args.step == "restore":
        with _vault(args.out, create=False) as vault:
            point = vault.point(args.point)
            mark = time.perf_counter()
            with vault.reader(args.point) as reader:
                report = _source(args.topic).restore(
                    context,
                    PointStreams(reader),
                    point.metadata,
                    {"topic_map": {args.topic: args.target}, "groups": False},
                )
        return {"ok": report.ok, "work": time.perf_counter() - mark}
    raise SystemExit(f"unknown step {args.step}")


def fill(topic: str, records: int, size: int, first: int = 0) -> None:
    """Write ``records`` keyed records with headers, numbered from ``first``, into ``topic``.

    ``first`` 0 creates the topic with 6 partitions first.
    """
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    if first == 0:
        admin = AdminClient({"bootstrap.servers": bootstrap()})
        admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)])[
            topic
        ].result(60)
    producer = Producer(
        {"bootstrap.servers": bootstrap(), "linger.ms": 50, "batch.size": 1_000_000,
         "compression.type": "lz4", "queue.buffering.max.kbytes": 262144}
    )  # fmt: skip
    generator = random.Random(15 + first)
    headers = [("source", b"bench"), ("trace", b"0123456789abcdef")]
    for number in range(first, first + records):
        while True:
            try:
                producer.produce(
                    topic,
                    key=f"key-{number:012d}".encode(),
                    value=generator.randbytes(size // 2).hex().encode(),
                    partition=number % PARTITIONS,
                    headers=headers,
                )
                break
            except BufferError:
                producer.poll(0.05)
        if number % 10_000 == 0:
            producer.poll(0)
    producer.flush(600)


def run_step(
    work: Path, name: str, topic: str, out: Path, **extra: str
) -> tuple[measure.Measurement, dict[str, Any]]:
    argv = [sys.executable, __file__, "step", name, "--topic", topic, "--out", str(out),
            "--scratch", str(work / "scratch")]  # fmt: skip
    for key, value in extra.items():
        argv += [f"--{key}", value]
    measured = measure.run(argv, env={"BENCH_VAULT_PASSPHRASE": PASSPHRASE})
    return measured, json.loads(measured.stdout.strip().splitlines()[-1])


def _row(name: str, measured: measure.Measurement, baseline: measure.Measurement,
         records: int, data_mb: float, stored: str) -> list[str]:  # fmt: skip
    return [
        name, f"{measured.seconds:.1f}", f"{measured.cpu_seconds:.1f}",
        f"{records / measured.seconds:,.0f}", f"{data_mb / measured.seconds:.1f}",
        f"{baseline.seconds / measured.seconds:.2f}x", f"{measured.peak_rss_mib:.0f}", stored,
    ]  # fmt: skip


def _speed(baseline: measure.Measurement, measured: measure.Measurement) -> str:
    """Speed of ``measured`` relative to ``baseline``, by wall time and by CPU time."""
    return (
        f"{baseline.seconds / measured.seconds:.2f}x / "
        f"{baseline.cpu_seconds / measured.cpu_seconds:.2f}x"
    )


def _mb(path: Path) -> str:
    return f"{path.stat().st_size / 1e6:.0f} MB"


def main_run(args: argparse.Namespace) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    measure.require("kcat", "zstd")
    work = Path(args.work or tempfile.mkdtemp(prefix="strongroom-kafka-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex[:8]
    topic, ours, theirs = (f"bench-{token}", f"bench-{token}-restored", f"bench-{token}-kcat")
    small = f"bench-{token}-small"
    admin = AdminClient({"bootstrap.servers": bootstrap()})
    broker = bootstrap()
    rows: list[list[str]] = []
    targets: list[list[str]] = []
    data_mb = args.records * args.size / 1e6
    added = max(1, args.records // 100)
    try:
        started = time.perf_counter()
        fill(topic, args.records, args.size)
        print(
            f"filled {args.records} records in {time.perf_counter() - started:.1f} s",
            file=sys.stderr,
        )
        backup, reported = run_step(work, "backup", topic, work / "vault")
        print(f"backup: {backup}", file=sys.stderr)
        kcat_file, zstd_file = work / "kcat.out", work / "kcat.out.zst"
        kcat = f"kcat -C -e -q -b {broker} -t {topic} -o beginning -K '\\t'"
        plain = measure.run(f"{kcat} > {kcat_file}")
        zstd = measure.run(f"{kcat} | zstd -q -3 > {zstd_file}")
        print(f"kcat: {plain}; kcat|zstd: {zstd}", file=sys.stderr)
        fill(topic, added, args.size, first=args.records)
        incremental, _ = run_step(work, "backup", topic, work / "vault")
        print(f"incremental backup: {incremental}", file=sys.stderr)
        restore, restored = run_step(
            work, "restore", topic, work / "vault", point=reported["point"], target=ours
        )
        assert restored["ok"], "the restore's checks failed"
        admin.create_topics([NewTopic(theirs, num_partitions=PARTITIONS, replication_factor=1)])[
            theirs
        ].result(60)
        produce = measure.run(f"kcat -P -b {broker} -t {theirs} -K '\\t' -l {kcat_file}")
        vault_mb = measure.tree_size(work / "vault") / 1e6
        rows = [
            _row("strongroom backup -> vault", backup, plain, args.records, data_mb, f"{vault_mb:.0f} MB"),
            _row("kcat -C -e > file", plain, plain, args.records, data_mb, _mb(kcat_file)),
            _row("kcat -C -e | zstd -3 > file", zstd, plain, args.records, data_mb, _mb(zstd_file)),
            _row(f"strongroom incremental (+{added:,})", incremental, plain, added, data_mb / 100, ""),
            _row("strongroom restore <- vault", restore, produce, args.records, data_mb, ""),
            _row("kcat -P < file", produce, produce, args.records, data_mb, ""),
        ]  # fmt: skip
        # Wall times on a shared machine follow its load; CPU seconds much less (a tool
        # that finishes sooner on an idle machine does so because it needs less CPU).
        targets = [
            ["backup speed / kcat -C -e", _speed(plain, backup), ">= 0.8x"],
            ["backup speed / kcat | zstd -3", _speed(zstd, backup), "> 1.0x"],
            ["restore speed / kcat -P", _speed(produce, restore), ">= 0.8x"],
            ["incremental (1 %) / full backup",
             f"{incremental.seconds / backup.seconds:.1%} / "
             f"{incremental.cpu_seconds / backup.cpu_seconds:.1%}", "<= 5 %"],
        ]  # fmt: skip
        if args.small:
            fill(small, args.small, args.size)
            small_backup, _ = run_step(work, "backup", small, work / "vault-small")
            targets.append([
                f"backup peak RSS, {args.records:,} / {args.small:,} records",
                f"{backup.peak_rss_mib:.0f} / {small_backup.peak_rss_mib:.0f} MiB = "
                f"{backup.peak_rss_mib / small_backup.peak_rss_mib:.2f}",
                "independent of size (~1.00)",
            ])  # fmt: skip
    finally:
        existing = set(admin.list_topics(timeout=30).topics)
        doomed = [name for name in (topic, ours, theirs, small) if name in existing]
        if doomed:
            for future in admin.delete_topics(doomed).values():
                future.result(60)
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    load = measure.load_average()
    print(
        measure.table(
            f"Kafka: {args.records:,} records x {args.size} B, {PARTITIONS} partitions, load {load}",
            ["step", "wall s", "cpu s", "records/s", "MB/s", "speed vs kcat", "peak RSS MiB", "stored"],
            rows,
        )
    )  # fmt: skip
    print(
        measure.table(
            f"Targets of #15 (wall / CPU time), load {load}",
            ["ratio", "wall / cpu", "target"],
            targets,
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    step_parser = sub.add_parser("step")
    step_parser.add_argument("step")
    step_parser.add_argument("--topic", required=True)
    step_parser.add_argument("--out", type=Path, required=True)
    step_parser.add_argument("--scratch", type=Path, required=True)
    step_parser.add_argument("--point", default="")
    step_parser.add_argument("--target", default="")
    parser.add_argument("--records", type=int, default=2_000_000)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument(
        "--small", type=int, default=200_000, help="records of the second size (peak RSS); 0: skip"
    )
    parser.add_argument("--work", default="")
    args = parser.parse_args()
    if args.command == "step":
        print(json.dumps(step(args)))
    else:
        main_run(args)


if __name__ == "__main__":
    main()
