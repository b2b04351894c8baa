"""PostgreSQL benchmark: strongroom backup and restore vs pg_dump | borg and pg_restore.

    .venv/bin/python bench/pg_bench.py [--size-gb 1] [--jobs 2] [--repeat 2] [--work DIR]

Generates (once; cached in the server) a reproducible orders database of about
``--size-gb`` GB (see ``pg_dataset.py``), then in one run ``--repeat`` rounds of every
measurement below (rounds interleaved, each measurement into a fresh target), keeping for
each the round with the best wall time:

* backups: strongroom (``PostgresSource`` through the library API, ``pg_strongroom.py``)
  with ``jobs=1`` (custom format streamed) and ``jobs=N`` (directory format) into a new
  vault, and ``strongroom start-backup --wait`` of a declared resource when the CLI has it;
  ``pg_dump -Fc | borg create --compression zstd,3`` (repokey-blake2), also with
  ``pg_dump -Z0``; ``pg_dump -Fd -jN`` and ``pg_dump -Fc`` to local disk;
* restores into a new database, dropped after each run: strongroom from both points (and
  ``strongroom restore --wait``), and ``pg_restore -jN`` from the local directory and
  custom-format dumps.

Prints wall seconds, MB/s (database size on disk / wall), stored size, peak RSS, CPU
seconds of the tool's process tree (user + sys from ``wait4``) and the server CPU seconds
spent meanwhile (the postmaster's accounting; other clients of a shared server add to it),
strongroom's own phases, then the targets of issue #6 with verdicts. Work files go to
``<work>/pg-run`` and are removed at the end; the database stays for the next run.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from pg_dataset import Server, ensure_database
from pg_measure import Sample, human, require, run, table, tree_size

PASSWORD = "bench-passphrase-not-secret"  # noqa: S105 - a throwaway benchmark repository
DRIVER = Path(__file__).with_name("pg_strongroom.py")
STRONGROOM = Path(sys.executable).with_name("strongroom")
RESTORED = "strongroom_bench_restored"


@dataclass
class Row:
    tool: str
    phase: str
    sample: Sample
    stored_bytes: int | None = None
    extra: dict[str, Any] | None = None


def parse_report(stdout: str) -> dict[str, Any]:
    """The JSON object a driver prints on its last line, or the CLI's whole ``-o json``."""
    text = stdout.strip()
    try:
        report: dict[str, Any] = json.loads(text)
    except json.JSONDecodeError:
        report = json.loads(text.splitlines()[-1])
    return report


class Bench:
    """One benchmark run: the server, the database, the work folder and the rows so far."""

    def __init__(self, args: argparse.Namespace, server: Server, database: str) -> None:
        self.server = server
        self.database = database
        self.jobs = args.jobs
        self.work = args.work / "pg-run"
        shutil.rmtree(self.work, ignore_errors=True)
        self.work.mkdir(parents=True)
        self.postmaster = server.postmaster_pid()
        self.env = {
            **server.environment(),
            "BENCH_PG_HOST": server.host,
            "BENCH_PG_PORT": str(server.port),
            "BENCH_PG_USER": server.user,
            "BENCH_PG_PASSWORD": server.password,
            "BENCH_VAULT_PASSPHRASE": PASSWORD,
            "BORG_PASSPHRASE": PASSWORD,
            "BORG_BASE_DIR": str(self.work / "borg-base"),
        }
        self.best: dict[tuple[str, str], Row] = {}
        self.points: dict[int, tuple[Path, Path, str]] = {}
        self.cli_homes: dict[int, tuple[Path, str]] = {}

    def measure(self, command: list[str] | str) -> Sample:
        return run(command, env=self.env, server_pid=self.postmaster)

    def once(
        self,
        prepare: Callable[[], None],
        command: list[str] | str,
        done: Callable[[Sample], Row],
    ) -> None:
        """Prepare (untimed), measure ``command`` once, and keep the row if it is the
        fastest of its kind so far; ``done`` turns the sample into the row (untimed)."""
        prepare()
        sample = self.measure(command)
        row = done(sample)
        key = (row.tool, row.phase)
        if key not in self.best or sample.seconds < self.best[key].sample.seconds:
            self.best[key] = row

    @property
    def rows(self) -> list[Row]:
        """The best row of each measurement, in the order they were first measured."""
        return list(self.best.values())

    # -- backups ---------------------------------------------------------------------

    def strongroom_backup(self, jobs: int) -> None:
        vault, cache = self.work / f"vault-j{jobs}", self.work / f"cache-j{jobs}"

        def prepare() -> None:
            shutil.rmtree(vault, ignore_errors=True)
            shutil.rmtree(cache, ignore_errors=True)

        command = [
            sys.executable,
            str(DRIVER),
            "backup",
            "--create",
            f"--vault={vault}",
            f"--cache={cache}",
            f"--scratch={self.work / 'scratch'}",
            f"--database={self.database}",
            f"--jobs={jobs}",
        ]

        def done(sample: Sample) -> Row:
            report = parse_report(sample.stdout)
            self.points[jobs] = (vault, cache, report["point"])
            kind = "custom, streamed" if jobs == 1 else "directory"
            phase = f"backup jobs={jobs} ({kind})"
            return Row("strongroom", phase, sample, tree_size(vault), report)

        self.once(prepare, command, done)

    def borg_pipeline(self, compress: str | None) -> None:
        repo = self.work / "borg-repo"

        def prepare() -> None:
            shutil.rmtree(repo, ignore_errors=True)
            shutil.rmtree(self.work / "borg-base", ignore_errors=True)
            subprocess.run(
                ["borg", "init", "--encryption", "repokey-blake2", str(repo)],
                env={**os.environ, **self.env},
                check=True,
                capture_output=True,
            )

        dump = ["pg_dump", "-Fc", *([f"-Z{compress}"] if compress else []), self.database]
        borg = ["borg", "create", "--compression", "zstd,3", "--stdin-name", "db.dump"]
        command = f"{shlex.join(dump)} | {shlex.join([*borg, f'{repo}::bench', '-'])}"
        phase = "backup pg_dump -Fc" + (f" -Z{compress}" if compress else "") + " piped"
        self.once(prepare, command, lambda sample: Row("borg", phase, sample, tree_size(repo)))

    def pg_dump_local(self, kind: str) -> None:
        path = self.work / ("dump-dir" if kind == "d" else "dump.custom")

        def prepare() -> None:
            if path.is_dir():
                shutil.rmtree(path)
            path.unlink(missing_ok=True)

        jobs = [f"-j{self.jobs}"] if kind == "d" else []
        command = ["pg_dump", f"-F{kind}", *jobs, "-f", str(path), self.database]
        phase = " ".join(["backup", f"-F{kind}", *jobs, "to disk"])

        def done(sample: Sample) -> Row:
            stored = tree_size(path) if path.is_dir() else path.stat().st_size
            return Row("pg_dump", phase, sample, stored)

        self.once(prepare, command, done)

    # -- restores --------------------------------------------------------------------

    def drop_restored(self) -> None:
        self.server.drop_database(RESTORED)

    def pg_restore(self, kind: str) -> None:
        path = self.work / ("dump-dir" if kind == "d" else "dump.custom")
        command = (
            f"createdb -T template0 {RESTORED} && "
            f"pg_restore -j{self.jobs} -d {RESTORED} {shlex.quote(str(path))}"
        )
        phase = f"restore -j{self.jobs} from local -F{kind}"
        self.once(self.drop_restored, command, lambda sample: Row("pg_restore", phase, sample))
        self.drop_restored()

    def strongroom_restore(self, point_jobs: int, jobs: int) -> None:
        vault, cache, point = self.points[point_jobs]
        command = [
            sys.executable,
            str(DRIVER),
            "restore",
            f"--vault={vault}",
            f"--cache={cache}",
            f"--scratch={self.work / 'scratch'}",
            f"--point={point}",
            f"--new={RESTORED}",
            f"--jobs={jobs}",
        ]
        kind = "custom" if point_jobs == 1 else "directory"
        how = "streamed to pg_restore" if jobs == 1 else f"pg_restore -j{jobs}"

        def done(sample: Sample) -> Row:
            report = parse_report(sample.stdout)
            return Row("strongroom", f"restore {kind} point, {how}", sample, extra=report)

        self.once(self.drop_restored, command, done)
        self.drop_restored()

    # -- the CLI path: a declared resource, ``start-backup --wait`` and ``restore --wait`` --

    def cli_config(self, jobs: int, home: Path, vault: Path) -> Path:
        """Write a configuration declaring the vault and the resource; apply it (untimed)."""
        config = home.with_suffix(".yaml")
        config.write_text(
            "version: 1\n"
            "vaults:\n"
            f"  bench-j{jobs}:\n"
            f"    url: {vault.as_uri()}\n"
            "    key:\n"
            "      provider: passphrase\n"
            "      passphrase: env:BENCH_VAULT_PASSPHRASE\n"
            "resources:\n"
            f"  bench-pg-j{jobs}:\n"
            "    type: postgres\n"
            f"    host: {self.server.host}\n"
            f"    port: {self.server.port}\n"
            f"    user: {self.server.user}\n"
            "    password: env:BENCH_PG_PASSWORD\n"
            f"    databases: [{self.database}]\n"
            f"    jobs: {jobs}\n"
        )
        subprocess.run(
            [str(STRONGROOM), "apply", "-f", str(config)],
            env={**os.environ, **self.env, "STRONGROOM_HOME": str(home)},
            check=True,
            capture_output=True,
        )
        return config

    def cli_backup(self, jobs: int) -> None:
        home, vault = self.work / f"cli-home-j{jobs}", self.work / f"cli-vault-j{jobs}"

        def prepare() -> None:
            for path in (home, vault):
                shutil.rmtree(path, ignore_errors=True)
            self.cli_config(jobs, home, vault)

        command = [
            str(STRONGROOM),
            f"--home={home}",
            "start-backup",
            f"bench-pg-j{jobs}",
            f"--vault=bench-j{jobs}",
            "--wait",
            "--max-attempts=1",
            "--output=json",
        ]
        kind = "custom, streamed" if jobs == 1 else "directory"

        def done(sample: Sample) -> Row:
            self.cli_homes[jobs] = (home, parse_report(sample.stdout)["result"]["point_id"])
            phase = f"start-backup --wait jobs={jobs} ({kind})"
            return Row("strongroom CLI", phase, sample, tree_size(vault))

        self.once(prepare, command, done)

    def cli_restore(self, jobs: int) -> None:
        home, point = self.cli_homes[jobs]
        command = [
            str(STRONGROOM),
            f"--home={home}",
            "restore",
            point,
            f"--target=database={RESTORED}",
            "--target=roles=false",
            f"--target=jobs={jobs}",
            "--wait",
            "--max-attempts=1",
            "--output=json",
        ]
        kind = "custom" if jobs == 1 else "directory"
        how = "streamed to pg_restore" if jobs == 1 else f"pg_restore -j{jobs}"
        phase = f"restore --wait {kind} point, {how}"
        self.once(self.drop_restored, command, lambda sample: Row("strongroom CLI", phase, sample))
        self.drop_restored()

    def cleanup(self) -> None:
        self.drop_restored()
        shutil.rmtree(self.work, ignore_errors=True)


def find(rows: list[Row], tool: str, phase_start: str) -> Row | None:
    return next(
        (row for row in rows if row.tool == tool and row.phase.startswith(phase_start)), None
    )


def total_cpu(sample: Sample) -> float:
    """CPU seconds of the tool's processes plus those the server spent meanwhile."""
    return sample.cpu_seconds + (sample.server_cpu_seconds or 0.0)


def verdicts(rows: list[Row], jobs: int) -> list[list[str]]:
    """One check per strongroom row against its baseline: wall ratio, verdict, CPU ratio."""
    checks: list[list[str]] = []
    borg = find(rows, "borg", "backup pg_dump -Fc piped")
    restores = {
        "directory": find(rows, "pg_restore", f"restore -j{jobs} from local -Fd"),
        "custom": find(rows, "pg_restore", f"restore -j{jobs} from local -Fc"),
    }
    for row in rows:
        if not row.tool.startswith("strongroom"):
            continue
        if "backup" in row.phase:
            baseline, target, label = borg, 0.7, "pg_dump -Fc piped to borg"
        else:
            kind = "directory" if "directory point" in row.phase else "custom"
            baseline, target = restores[kind], 1.3
            label = f"pg_restore -j{jobs} from local -F{kind[0]}"
        if baseline is None:
            continue
        ratio = row.sample.seconds / baseline.sample.seconds
        checks.append(
            [
                f"{row.tool} {row.phase} vs {label}",
                f"{ratio:.2f}x",
                f"<= {target:.2f}x",
                "met" if ratio <= target else "NOT met",
                f"{total_cpu(row.sample) / total_cpu(baseline.sample):.2f}x",
            ]
        )
    return checks


def print_report(rows: list[Row], database: str, size: int, jobs: int) -> None:
    def server_cpu(sample: Sample) -> str:
        value = sample.server_cpu_seconds
        return "-" if value is None else f"{value:.1f}"

    print(
        table(
            f"PostgreSQL benchmark: {database}, {human(size)} on disk, {os.cpu_count()} cores",
            [
                "tool",
                "phase",
                "wall s",
                "MB/s",
                "stored",
                "peak RSS MiB",
                "CPU s",
                "server CPU s",
            ],
            [
                [
                    row.tool,
                    row.phase,
                    f"{row.sample.seconds:.1f}",
                    f"{size / row.sample.seconds / 1e6:.0f}",
                    human(row.stored_bytes),
                    f"{row.sample.peak_rss_mib:.0f}",
                    f"{row.sample.cpu_seconds:.1f}",
                    server_cpu(row.sample),
                ]
                for row in rows
            ],
        )
    )
    phases = []
    for row in rows:
        if row.tool != "strongroom" or not row.extra:
            continue
        seconds: dict[str, float] = row.extra["seconds"]
        work = seconds.get("source backup", seconds.get("source restore", 0.0))
        rest = row.sample.seconds - sum(seconds.values())
        phases.append(
            [
                row.phase,
                f"{seconds.get('open vault', 0.0):.1f}",
                f"{work:.1f}",
                f"{seconds.get('commit', 0.0):.1f}",
                f"{rest:.1f}",
            ]
        )
    print(
        table(
            "strongroom phases (seconds, inside the driver)",
            ["phase", "open vault (KDF)", "source backup/restore", "commit", "start + exit"],
            phases,
        )
    )
    print(
        table(
            "targets (issue #6): wall time ratios",
            ["check", "wall ratio", "target", "verdict", "CPU ratio (tool + server, info)"],
            verdicts(rows, jobs),
        )
    )


def cli_has(command: str) -> bool:
    """Whether the strongroom CLI of this checkout has ``command`` yet."""
    try:
        output = subprocess.run(
            [str(STRONGROOM), "--help"], capture_output=True, text=True, check=False
        ).stdout
    except OSError:
        return False
    return f" {command} " in output


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-gb", type=float, default=1.0)
    parser.add_argument("--jobs", type=int, default=2, help="parallel jobs (jobs=1 runs too)")
    parser.add_argument("--repeat", type=int, default=2, help="rounds (best wall per row)")
    parser.add_argument("--work", type=Path, default=Path("/var/tmp/strongroom-bench"))
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()
    require("borg", "zstd", "time")
    for tool in ("pg_dump", "pg_restore", "createdb"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not on PATH (install postgresql-client-15)")
    server = Server.from_services()
    print(f"preparing the {args.size_gb:g} GB orders database ...", flush=True)
    database = ensure_database(server, args.size_gb)
    size = server.database_size(database)
    bench = Bench(args, server, database)
    steps: list[tuple[str, Callable[[], None]]] = [
        ("strongroom backup jobs=1", lambda: bench.strongroom_backup(1)),
        (f"strongroom backup jobs={args.jobs}", lambda: bench.strongroom_backup(args.jobs)),
        ("pg_dump -Fc piped to borg", lambda: bench.borg_pipeline(None)),
        ("pg_dump -Fc -Z0 piped to borg", lambda: bench.borg_pipeline("0")),
        (f"pg_dump -Fd -j{args.jobs}", lambda: bench.pg_dump_local("d")),
        ("pg_dump -Fc", lambda: bench.pg_dump_local("c")),
        (f"pg_restore -j{args.jobs} -Fd", lambda: bench.pg_restore("d")),
        (f"pg_restore -j{args.jobs} -Fc", lambda: bench.pg_restore("c")),
        (
            f"strongroom restore directory point, jobs={args.jobs}",
            lambda: bench.strongroom_restore(args.jobs, args.jobs),
        ),
        ("strongroom restore custom point, streamed", lambda: bench.strongroom_restore(1, 1)),
        (
            f"strongroom restore custom point, jobs={args.jobs}",
            lambda: bench.strongroom_restore(1, args.jobs),
        ),
    ]
    if cli_has("start-backup") and cli_has("restore"):
        steps[2:2] = [
            ("strongroom CLI start-backup jobs=1", lambda: bench.cli_backup(1)),
            (
                f"strongroom CLI start-backup jobs={args.jobs}",
                lambda: bench.cli_backup(args.jobs),
            ),
        ]
        steps.append(
            (f"strongroom CLI restore jobs={args.jobs}", lambda: bench.cli_restore(args.jobs))
        )
    else:
        print("the CLI has no start-backup/restore yet: only the library path is timed")
    loads = [os.getloadavg()[0]]
    try:
        for attempt in range(1, args.repeat + 1):
            for label, step in steps:
                print(f"round {attempt}/{args.repeat}: {label} ...", flush=True)
                step()
                loads.append(os.getloadavg()[0])
    finally:
        if not args.keep:
            bench.cleanup()
    print()
    print_report(bench.rows, database, size, args.jobs)
    print(
        f"load average (1 min) during the run: {min(loads):.1f} to {max(loads):.1f}; "
        f"rows show the fastest of {args.repeat} rounds"
    )


if __name__ == "__main__":
    main()
