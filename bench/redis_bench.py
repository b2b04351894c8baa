"""Redis benchmark (issue #14): strongroom's redis source vs redis-cli and plain redis-py.

    .venv/bin/python bench/redis_bench.py [--keys 1000000] [--rss-keys 3000000] [--work DIR]

Starts two private redis-servers (Debian's binary, through the source's scratch-server
code: loopback, free ports, ``repl-diskless-sync-delay 0`` so no run waits 5 s for more
replicas), fills the first with ``--keys`` keys of mixed types (50 % strings of 200 B,
20 % hashes, 10 % lists, 10 % sets, 10 % sorted sets of four 50 B members; every tenth key
with a TTL), then measures in one run, each step a subprocess timed by ``measure.run``
(wall, CPU of the process tree, peak RSS from GNU time):

* snapshot: ``RedisSource`` (snapshot mode) into a new vault, and into plain files (the
  source's own cost); ``redis-cli --rdb FILE``;
* logical backup: ``RedisSource`` (logical mode) into a vault and into files; a plain
  redis-py loop (``scan_iter`` + a pipeline of ``DUMP``/``PTTL`` per 1000 keys, records
  written to a file);
* restore into the emptied second server: ``RedisSource.restore`` from the vault point
  and from the files; a plain redis-py loop (a pipeline of ``RESTORE … REPLACE`` per 1000
  keys from the plain file);
* peak RSS of the logical backup at ``--keys`` and at ``--rss-keys`` keys (the server is
  filled up to that many).

Prints one table with keys/s and ratios against the plain tools; ``work s`` is the time of
a strongroom step without its interpreter start, imports and vault opening (the ratio in
parentheses uses it): redis-cli is a small C program, so on a busy machine Python's start
alone can exceed the whole of ``redis-cli --rdb``. The machine's load
average is printed: on a shared machine wall times are noisy, CPU seconds less so.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import struct
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import measure

PASSPHRASE = "strongroom redis bench passphrase"  # noqa: S105 - a throwaway bench vault
VALUE = b"v" * 200
MEMBER = 50


# -- steps run as subprocesses -----------------------------------------------------------


class FileSink:
    """Streams as files in a folder (the source's own cost, without the vault)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @contextmanager
    def open_stream(self, name: str) -> Iterator[Any]:
        path = self.folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as handle:
            yield handle


class FileReader:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def stream_names(self) -> list[str]:
        return sorted(
            str(p.relative_to(self.folder)) for p in self.folder.rglob("*") if p.is_file()
        )

    @contextmanager
    def open_stream(self, name: str) -> Iterator[Any]:
        with (self.folder / name).open("rb") as handle:
            yield handle


def _source(port: int, mode: str) -> Any:
    from strongroom.config.resources import RedisResource
    from strongroom.sources.redis import RedisSource

    return RedisSource(
        RedisResource(
            type="redis",
            url=f"redis://127.0.0.1:{port}",
            password="env:BENCH_REDIS_PASSWORD",  # noqa: S106 - a reference, not a secret
            mode=mode,  # type: ignore[arg-type]
        )
    )


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


def step(args: argparse.Namespace) -> dict[str, Any]:
    """Run one measured step; return what it reports, with the seconds of its work proper
    (``work``: without the interpreter's start, imports and opening the vault)."""
    import redis  # noqa: F401 - imported before the clock starts

    import strongroom.services.jobs.handlers.streams
    import strongroom.sources.redis
    import strongroom.vault  # noqa: F401

    started = time.perf_counter()
    reported = _step(args, started)
    reported.setdefault("work", time.perf_counter() - started)
    return reported


def _step(args: argparse.Namespace, started: float) -> dict[str, Any]:
    from strongroom.sources.base import SourceContext

    context = SourceContext(scratch=args.scratch)
    args.scratch.mkdir(parents=True, exist_ok=True)
    if args.step in ("snapshot-vault", "logical-vault"):
        source = _source(args.port, args.step.split("-")[0])
        with _vault(args.out, create=True) as vault, vault.writer() as writer:
            mark = time.perf_counter()
            result = source.backup(context, writer)
            point = writer.commit(metadata=result.metadata, tags={"bench": "redis"})
            work = time.perf_counter() - mark
        return {"point": point, "keys": result.metadata.get("keys"), "work": work}
    if args.step in ("snapshot-files", "logical-files"):
        args.out.mkdir(parents=True, exist_ok=True)
        result = _source(args.port, args.step.split("-")[0]).backup(context, FileSink(args.out))
        (args.out / "metadata.json").write_text(json.dumps(result.metadata))
        return {"keys": result.metadata.get("keys")}
    if args.step == "restore-vault":
        from strongroom.services.jobs.handlers.streams import PointStreams

        with _vault(args.out, create=False) as vault:
            point = vault.point(args.point)
            mark = time.perf_counter()
            with vault.reader(args.point) as reader:
                report = _source(args.port, "logical").restore(
                    context, PointStreams(reader), point.metadata, _target(args.port)
                )
        return {"ok": report.ok, "notes": report.notes, "work": time.perf_counter() - mark}
    if args.step == "restore-files":
        metadata = json.loads((args.out / "metadata.json").read_text())
        report = _source(args.port, "logical").restore(
            context, FileReader(args.out), metadata, _target(args.port)
        )
        return {"ok": report.ok, "notes": report.notes}
    if args.step == "plain-logical":
        return {"keys": plain_backup(args.port, args.out)}
    if args.step == "plain-restore":
        return {"keys": plain_restore(args.port, args.out)}
    raise SystemExit(f"unknown step {args.step}")


def _target(port: int) -> dict[str, Any]:
    return {"url": f"redis://127.0.0.1:{port}", "password": "env:BENCH_REDIS_PASSWORD"}


def _client(port: int) -> Any:
    import redis

    return redis.Redis(port=port, password=os.environ["BENCH_REDIS_PASSWORD"])


def plain_backup(port: int, path: Path) -> int:
    """The loop a user would write: SCAN, then DUMP and PTTL per key in a pipeline."""
    client = _client(port)
    count = 0
    with path.open("wb") as out:
        keys: list[bytes] = []

        def flush() -> None:
            pipe = client.pipeline(transaction=False)
            for key in keys:
                pipe.dump(key)
                pipe.pttl(key)
            replies = pipe.execute()
            for index, key in enumerate(keys):
                payload, ttl = replies[2 * index], replies[2 * index + 1]
                if payload is None:
                    continue
                out.write(struct.pack(">IqI", len(key), ttl, len(payload)) + key + payload)
            keys.clear()

        for key in client.scan_iter(count=1000):
            keys.append(key)
            count += 1
            if len(keys) == 1000:
                flush()
        flush()
    return count


def plain_restore(port: int, path: Path) -> int:
    """RESTORE … REPLACE per key, 1000 per pipeline, from the plain loop's file."""
    client = _client(port)
    data = path.read_bytes()
    position = 0
    count = 0
    pipe = client.pipeline(transaction=False)
    while position < len(data):
        key_length, ttl, payload_length = struct.unpack_from(">IqI", data, position)
        position += 16
        key = data[position : position + key_length]
        position += key_length
        payload = data[position : position + payload_length]
        position += payload_length
        pipe.restore(key, max(ttl, 0), payload, replace=True)
        count += 1
        if count % 1000 == 0:
            pipe.execute()
    pipe.execute()
    return count


# -- the run ------------------------------------------------------------------------------


def fill(port: int, start: int, end: int) -> None:
    """Write keys ``start`` .. ``end - 1`` of the mixed data set."""
    from strongroom.sources.redis.client import pipeline

    client = _client(port)
    member = [bytes([ord("a") + index]) * MEMBER for index in range(4)]
    for first in range(start, end, 10_000):
        commands: list[list[Any]] = []
        for index in range(first, min(end, first + 10_000)):
            key = f"bench:{index:09d}".encode()
            kind = index % 10
            if kind < 5:
                commands.append(["SET", key, VALUE])
            elif kind < 7:
                commands.append(
                    [
                        "HSET",
                        key,
                        b"f1",
                        member[0],
                        b"f2",
                        member[1],
                        b"f3",
                        member[2],
                        b"f4",
                        member[3],
                    ]
                )
            elif kind < 8:
                commands.append(["RPUSH", key, *member])
            elif kind < 9:
                commands.append(["SADD", key, *member])
            else:
                commands.append(
                    ["ZADD", key, 1, member[0], 2, member[1], 3, member[2], 4, member[3]]
                )
            if index % 10 == 3:
                commands.append(["PEXPIRE", key, 86_400_000])
        pipeline(client, commands)


def run_step(
    work: Path, name: str, port: int, out: Path, point: str = ""
) -> tuple[measure.Measurement, dict[str, Any]]:
    argv = [
        sys.executable,
        __file__,
        "step",
        name,
        "--port",
        str(port),
        "--out",
        str(out),
        "--scratch",
        str(work / "scratch"),
    ]
    if point:
        argv += ["--point", point]
    measured = measure.run(argv)
    return measured, json.loads(measured.stdout.strip().splitlines()[-1])


def main_run(args: argparse.Namespace) -> None:
    from strongroom.sources.base import SourceContext
    from strongroom.sources.redis.scratch import scratch_server

    measure.require("redis-cli")
    work = Path(tempfile.mkdtemp(prefix="redis-bench-", dir=args.work))
    servers = work / "servers"
    servers.mkdir()
    settings = ["repl-diskless-sync-delay 0"]
    password = secrets.token_urlsafe(24)
    rows: list[list[str]] = []
    results: dict[str, tuple[measure.Measurement, int, float | None]] = {}
    try:
        with (
            scratch_server(
                SourceContext(scratch=servers), settings=settings, password=password
            ) as source,
            scratch_server(
                SourceContext(scratch=servers), settings=settings, password=password
            ) as target,
        ):
            os.environ["BENCH_REDIS_PASSWORD"] = password
            target_client = _client(target.port)
            started = time.perf_counter()
            fill(source.port, 0, args.keys)
            print(
                f"filled {args.keys} keys in {time.perf_counter() - started:.1f} s; load {measure.load_average()}",
                file=sys.stderr,
            )
            keys = args.keys

            def keep(
                name: str, run: measure.Measurement | tuple[measure.Measurement, dict[str, Any]]
            ) -> None:
                measured, work_seconds = (
                    (run, None)
                    if isinstance(run, measure.Measurement)
                    else (run[0], run[1].get("work"))
                )
                results[name] = (measured, keys, work_seconds)
                print(f"{name}: {measured.seconds:.2f} s", file=sys.stderr)

            rdb = work / "redis-cli.rdb"
            keep(
                "redis-cli --rdb",
                measure.run(
                    ["redis-cli", "-p", str(source.port), "--no-auth-warning", "--rdb", str(rdb)],
                    env={"REDISCLI_AUTH": source.password},
                ),
            )
            keep(
                "strongroom snapshot -> vault",
                run_step(work, "snapshot-vault", source.port, work / "vault-snapshot"),
            )
            keep(
                "strongroom snapshot -> files",
                run_step(work, "snapshot-files", source.port, work / "files-snapshot"),
            )
            keep(
                "plain redis-py SCAN+DUMP",
                run_step(work, "plain-logical", source.port, work / "plain.dump"),
            )
            logical_vault = run_step(work, "logical-vault", source.port, work / "vault-logical")
            keep("strongroom logical -> vault", logical_vault)
            point = logical_vault[1]["point"]
            keep(
                "strongroom logical -> files",
                run_step(work, "logical-files", source.port, work / "files-logical"),
            )
            target_client.flushall()
            keep(
                "plain redis-py RESTORE",
                run_step(work, "plain-restore", target.port, work / "plain.dump"),
            )
            target_client.flushall()
            keep(
                "strongroom restore <- vault",
                run_step(work, "restore-vault", target.port, work / "vault-logical", point),
            )
            target_client.flushall()
            keep(
                "strongroom restore <- files",
                run_step(work, "restore-files", target.port, work / "files-logical"),
            )
            target_client.flushall()
            if args.rss_keys > args.keys:
                fill(source.port, args.keys, args.rss_keys)
                keys = args.rss_keys
                shutil.rmtree(work / "files-logical")
                keep(
                    f"strongroom logical -> files ({args.rss_keys} keys)",
                    run_step(work, "logical-files", source.port, work / "files-logical"),
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    baselines = {
        "strongroom snapshot -> vault": "redis-cli --rdb",
        "strongroom snapshot -> files": "redis-cli --rdb",
        "strongroom logical -> vault": "plain redis-py SCAN+DUMP",
        "strongroom logical -> files": "plain redis-py SCAN+DUMP",
        "strongroom restore <- vault": "plain redis-py RESTORE",
        "strongroom restore <- files": "plain redis-py RESTORE",
    }
    for name, (measured, keys, work_seconds) in results.items():
        baseline = baselines.get(name)
        ratio = ""
        if baseline:
            ratio = f"{results[baseline][0].seconds / measured.seconds:.2f}x"
            if work_seconds:
                # Work against work; redis-cli (a small C program) against its wall time.
                base_measured, _, base_work = results[baseline]
                ratio += f" ({(base_work or base_measured.seconds) / work_seconds:.2f}x)"
        rows.append(
            [
                name,
                f"{keys:,}",
                f"{measured.seconds:.2f}",
                "" if work_seconds is None else f"{work_seconds:.2f}",
                f"{keys / measured.seconds:,.0f}",
                f"{measured.cpu_seconds:.2f}",
                f"{measured.peak_rss_mib:.0f}",
                ratio,
            ]
        )
    print(
        measure.table(
            f"Redis, {args.keys:,} keys of mixed types (load average {measure.load_average()})",
            [
                "run",
                "keys",
                "wall s",
                "work s",
                "keys/s",
                "CPU s",
                "peak RSS MiB",
                "speed vs plain (work)",
            ],
            rows,
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=("run", "step"), nargs="?", default="run")
    parser.add_argument("step", nargs="?")
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--rss-keys", type=int, default=3_000_000)
    parser.add_argument("--work", type=Path, default=Path("/var/tmp"))
    parser.add_argument("--port", type=int)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--point")
    parser.add_argument("--scratch", type=Path)
    args = parser.parse_args()
    if args.command == "step":
        print(json.dumps(step(args), default=str))
    else:
        main_run(args)


if __name__ == "__main__":
    main()
