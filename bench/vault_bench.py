"""Vault engine benchmark: strongroom vs borg vs restic (and zstd) on one generated dump.

    .venv/bin/python bench/vault_bench.py [--size-mb 500] [--big-gb 5] [--repeat 3] [--work DIR]

Generates a reproducible pg_dump-like stream of an orders table (see ``datasets.py``), then
runs, for each tool, in one run on the same data: the first backup, a second backup of the
same stream, a backup after 1% of the rows changed, and a restore to /dev/null. Prints wall
time, CPU time (user + system, from wait4), MB/s, stored size and peak RSS, and the ratios
that the vault issue targets. With ``--repeat N`` every tool runs N rounds (fresh
repositories, tools interleaved) and each row shows the fastest wall time, the least CPU
and the highest peak RSS: on a machine other work loads, wall time is noisy and CPU time
is the stable measure. With ``--big-gb`` it also streams that many GB of generated data
through a strongroom backup to show that peak memory does not grow with the size of the
stream. Every tool encrypts (borg repokey-blake2, restic's AES, strongroom's AEAD).
strongroom runs twice: with its default zstd level 3 (borg's setting) and on a vault
created with ``--compression-level 1`` ("strongroom zstd-1"), the trade the stored-size
target allows.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import datasets
import strongroom as strongroom_package
import tools
from compare import Row, human
from measure import Measurement, best, load_average, run, table, tree_size

PASSWORD = "bench-passphrase-not-secret"  # noqa: S105 - a throwaway benchmark repository
STRONGROOM = str(Path(sys.executable).parent / "strongroom")


class Tool:
    name = ""
    has_command_line = True

    def __init__(self, work: Path) -> None:
        self.repo = work / f"repo-{self.name.replace(' ', '-')}"
        shutil.rmtree(self.repo, ignore_errors=True)
        self.home = work / "strongroom-home"
        self.env: dict[str, str | None] = {
            "BORG_PASSPHRASE": PASSWORD,
            "RESTIC_PASSWORD": PASSWORD,
            "STRONGROOM_PASSPHRASE": PASSWORD,
            "STRONGROOM_HOME": str(self.home),
            "BORG_BASE_DIR": str(work / "borg-base"),
            "RESTIC_CACHE_DIR": str(work / "restic-cache"),
        }

    def init(self) -> None: ...
    def backup(self, source: Path, name: str) -> Measurement: ...
    def restore(self, name: str) -> Measurement: ...

    def list_points(self) -> Measurement:
        """List the repository's snapshots: a command's fixed start-up (imports, key
        derivation, opening the repository) with almost no work after it."""
        raise NotImplementedError

    def stored(self) -> int:
        return tree_size(self.repo)


class Borg(Tool):
    name = "borg"

    def init(self) -> None:
        run(["borg", "init", "--encryption", "repokey-blake2", str(self.repo)], env=self.env)

    def backup(self, source: Path, name: str) -> Measurement:
        return run(
            [
                "borg",
                "create",
                "--compression",
                "zstd,3",
                "--stdin-name",
                "orders.sql",
                f"{self.repo}::{name}",
                "-",
            ],
            env=self.env,
            stdin_path=source,
        )

    def restore(self, name: str) -> Measurement:
        return run(
            ["borg", "extract", "--stdout", f"{self.repo}::{name}"],
            env=self.env,
            stdout_to_null=True,
        )

    def list_points(self) -> Measurement:
        return run(["borg", "list", str(self.repo)], env=self.env, stdout_to_null=True)


class Restic(Tool):
    name = "restic"

    def init(self) -> None:
        run(["restic", "init", "--repo", str(self.repo)], env=self.env)

    def backup(self, source: Path, name: str) -> Measurement:
        return run(
            [
                "restic",
                "backup",
                "--repo",
                str(self.repo),
                "--stdin",
                "--stdin-filename",
                "orders.sql",
                "--tag",
                name,
                "--compression",
                "auto",
                "--quiet",
            ],
            env=self.env,
            stdin_path=source,
        )

    def restore(self, name: str) -> Measurement:
        return run(
            ["restic", "dump", "--repo", str(self.repo), "--tag", name, "latest", "orders.sql"],
            env=self.env,
            stdout_to_null=True,
        )

    def list_points(self) -> Measurement:
        return run(
            ["restic", "snapshots", "--repo", str(self.repo), "--no-lock"],
            env=self.env,
            stdout_to_null=True,
        )


class Kopia(Tool):
    """kopia with a filesystem repository and zstd (its default level) as the global policy;
    automatic maintenance is off so it does not run inside the measured commands."""

    name = "kopia"

    def __init__(self, work: Path) -> None:
        super().__init__(work)
        self.config = work / "kopia-config" / "repository.config"
        shutil.rmtree(self.config.parent, ignore_errors=True)
        self.env.update(
            {
                "KOPIA_PASSWORD": PASSWORD,
                "KOPIA_CHECK_FOR_UPDATES": "false",
                "KOPIA_CACHE_DIRECTORY": str(work / "kopia-cache"),
                "KOPIA_LOG_DIR": str(work / "kopia-logs"),
            }
        )
        self.roots: dict[str, str] = {}

    def _kopia(self, *arguments: str) -> list[str]:
        return ["kopia", *arguments, "--config-file", str(self.config)]

    def init(self) -> None:
        shutil.rmtree(self.env["KOPIA_CACHE_DIRECTORY"] or "", ignore_errors=True)
        run(
            self._kopia("repository", "create", "filesystem", "--path", str(self.repo)),
            env=self.env,
        )
        run(self._kopia("policy", "set", "--global", "--compression", "zstd"), env=self.env)
        run(
            self._kopia("maintenance", "set", "--enable-quick=false", "--enable-full=false"),
            env=self.env,
        )

    def backup(self, source: Path, name: str) -> Measurement:
        measured = run(
            self._kopia("snapshot", "create", "--stdin-file", "orders.sql", "-"),
            env=self.env,
            stdin_path=source,
        )
        listed = run(self._kopia("snapshot", "list", "--json", "--all"), env=self.env)
        self.roots[name] = json.loads(listed.stdout)[-1]["rootEntry"]["obj"]
        return measured

    def restore(self, name: str) -> Measurement:
        return run(
            self._kopia("show", f"{self.roots[name]}/orders.sql"),
            env=self.env,
            stdout_to_null=True,
        )

    def list_points(self) -> Measurement:
        return run(self._kopia("snapshot", "list", "--all"), env=self.env, stdout_to_null=True)


def python_env(work: Path) -> dict[str, str | None]:
    """Run strongroom with compiled bytecode, as an installed copy would: kept under the
    work folder (the first command, not measured, writes it) instead of being compiled on
    every start when the environment sets PYTHONDONTWRITEBYTECODE."""
    return {"PYTHONDONTWRITEBYTECODE": None, "PYTHONPYCACHEPREFIX": str(work / "pycache")}


class Strongroom(Tool):
    name = "strongroom"
    level = 3  # the default compression level, as borg's zstd,3

    def __init__(self, work: Path) -> None:
        super().__init__(work)
        self.env.update(python_env(work))

    def init(self) -> None:
        shutil.rmtree(self.home, ignore_errors=True)
        run(
            [
                STRONGROOM,
                "vault",
                "create",
                "bench",
                "--url",
                self.repo.as_uri(),
                "--passphrase-env",
                "STRONGROOM_PASSPHRASE",
                "--compression-level",
                str(self.level),
            ],
            env=self.env,
        )
        self.points: dict[str, str] = {}

    def backup(self, source: Path, name: str) -> Measurement:
        measured = run(
            [
                STRONGROOM,
                "vault",
                "backup",
                "bench",
                "-",
                "--stream",
                "orders.sql",
                "--tag",
                f"name={name}",
                "--passphrase-env",
                "STRONGROOM_PASSPHRASE",
            ],
            env=self.env,
            stdin_path=source,
        )
        self.points[name] = measured.stdout.strip().splitlines()[-1]
        return measured

    def restore(self, name: str) -> Measurement:
        return run(
            [
                STRONGROOM,
                "vault",
                "restore",
                "bench",
                self.points[name],
                "--stream",
                "orders.sql",
                "--to",
                "-",
                "--passphrase-env",
                "STRONGROOM_PASSPHRASE",
            ],
            env=self.env,
            stdout_to_null=True,
        )

    def list_points(self) -> Measurement:
        return run(
            [
                STRONGROOM,
                "vault",
                "points",
                "bench",
                "--passphrase-env",
                "STRONGROOM_PASSPHRASE",
            ],
            env=self.env,
            stdout_to_null=True,
        )


class StrongroomLevel1(Strongroom):
    """The same CLI on a vault created with ``--compression-level 1``: the stored-size
    target (<= 1.05x borg) leaves room to trade compression for speed."""

    name = "strongroom zstd-1"
    level = 1


class StrongroomEngine(Tool):
    """The vault engine through its Python API (``engine_run.py``): no CLI, no catalog."""

    name = "strongroom engine"
    has_command_line = False

    def __init__(self, work: Path) -> None:
        super().__init__(work)
        self.env.update(python_env(work))
        self.cache = work / "engine-cache"
        self.script = [sys.executable, str(Path(__file__).parent / "engine_run.py")]

    def init(self) -> None:
        shutil.rmtree(self.cache, ignore_errors=True)
        run([*self.script, "create", str(self.repo), str(self.cache)], env=self.env)
        self.points: dict[str, str] = {}

    def backup(self, source: Path, name: str) -> Measurement:
        measured = run(
            [*self.script, "backup", str(self.repo), str(self.cache), "orders.sql"],
            env=self.env,
            stdin_path=source,
        )
        self.points[name] = measured.stdout.strip().splitlines()[-1]
        return measured

    def restore(self, name: str) -> Measurement:
        return run(
            [
                *self.script,
                "restore",
                str(self.repo),
                str(self.cache),
                self.points[name],
                "orders.sql",
            ],
            env=self.env,
            stdout_to_null=True,
        )


TOOLS: dict[str, type[Tool]] = {
    "strongroom": Strongroom,
    "strongroom-zstd-1": StrongroomLevel1,
    "strongroom-engine": StrongroomEngine,
    "borg": Borg,
    "restic": Restic,
    "kopia": Kopia,
}


def compile_strongroom() -> None:
    """Compile strongroom's modules to bytecode (untimed), as installing a wheel does.

    An editable checkout has no bytecode until a run writes it, and none is ever written
    under ``PYTHONDONTWRITEBYTECODE``: every start-up would then compile ~150 modules
    (tens of milliseconds) that no installed strongroom ever compiles.
    """
    package = Path(strongroom_package.__file__).parent
    run([sys.executable, "-m", "compileall", "-q", str(package)])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mb", type=int, default=500)
    parser.add_argument("--big-gb", type=float, default=5.0, help="0 to skip the big stream")
    parser.add_argument("--work", type=Path, default=Path("/var/tmp/strongroom-bench"))
    parser.add_argument(
        "--tools",
        default=",".join(TOOLS),
        help=f"comma-separated, of {', '.join(TOOLS)} (zstd -3 -T2 always runs)",
    )
    parser.add_argument("--repeat", type=int, default=1, help="rounds; rows show the best")
    args = parser.parse_args()
    unknown = sorted(set(args.tools.split(",")) - set(TOOLS))
    if unknown:
        parser.error(f"unknown tools {', '.join(unknown)}; choose among {', '.join(TOOLS)}")
    chosen = args.tools.split(",")
    tools.prepare(restic="restic" in chosen, kopia="kopia" in chosen)
    compile_strongroom()
    args.work.mkdir(parents=True, exist_ok=True)
    base = datasets.orders_dump(args.work, args.size_mb)
    changed = datasets.orders_dump_changed(args.work, args.size_mb)
    size = base.stat().st_size
    compressed = base.with_suffix(".zst")
    if not compressed.exists():
        run(["zstd", "-3", "-T2", "-q", "-f", str(base), "-o", str(compressed)])

    loads = [load_average()]
    rounds: list[list[Row]] = []
    for _ in range(max(1, args.repeat)):
        rows: list[Row] = []
        zstd = run(["zstd", "-3", "-T2", "-q", "-c", str(base)], stdout_to_null=True)
        rows.append(Row("zstd -3 -T2", "compress only", zstd, size, None))
        unzstd = run(["zstd", "-d", "-q", "-c", str(compressed)], stdout_to_null=True)
        rows.append(Row("zstd -d", "decompress only", unzstd, size, None))
        for tool_name in chosen:
            tool = TOOLS[tool_name](args.work)
            tool.init()
            before = tool.stored()
            for phase, source, name in (
                ("first backup", base, "one"),
                ("same stream again", base, "two"),
                ("after 1% rows changed", changed, "three"),
            ):
                measured = tool.backup(source, name)
                after = tool.stored()
                rows.append(Row(tool.name, phase, measured, source.stat().st_size, after - before))
                before = after
            rows.append(Row(tool.name, "restore to /dev/null", tool.restore("one"), size, None))
            if tool.has_command_line:
                rows.append(Row(tool.name, "list points (start-up)", tool.list_points(), 0, None))
        rounds.append(rows)
        loads.append(load_average())
    rows = [
        Row(
            first.tool,
            first.phase,
            best([r[i].measurement for r in rounds]),
            first.logical_bytes,
            first.stored_bytes,
        )
        for i, first in enumerate(rounds[0])
    ]

    print("tools: " + "; ".join(f"{k} {v}" for k, v in tools.versions().items()))
    print(
        table(
            f"vault benchmark: {human(size)} orders dump, {os.cpu_count()} cores, "
            f"best of {len(rounds)} (load average {' -> '.join(loads)})",
            ["tool", "phase", "wall s", "CPU s", "MB/s", "stored (new)", "peak RSS MiB"],
            [
                [
                    row.tool,
                    row.phase,
                    f"{row.measurement.seconds:.2f}",
                    f"{row.measurement.cpu_seconds:.2f}",
                    f"{row.logical_bytes / row.measurement.seconds / 1e6:.0f}"
                    if row.logical_bytes
                    else "-",
                    human(row.stored_bytes) if row.stored_bytes is not None else "-",
                    f"{row.measurement.peak_rss_mib:.0f}",
                ]
                for row in rows
            ],
        )
    )
    print_ratios(rows)
    if args.big_gb > 0 and "strongroom" in args.tools:
        big_stream(args.work, args.big_gb)


def print_ratios(rows: list[Row]) -> None:
    def find(tool: str, phase: str) -> Row | None:
        return next((row for row in rows if row.tool == tool and row.phase == phase), None)

    checks = []
    for ours_name in ("strongroom", "strongroom zstd-1", "strongroom engine"):
        for phase in ("first backup", "same stream again", "restore to /dev/null"):
            ours, borg = find(ours_name, phase), find("borg", phase)
            if ours and borg:
                ratio = borg.measurement.seconds / ours.measurement.seconds
                cpu = borg.measurement.cpu_seconds / ours.measurement.cpu_seconds
                checks.append(
                    [
                        f"{ours_name}: {phase}, speed vs borg",
                        f"{ratio:.2f}x",
                        f"{cpu:.2f}x",
                        ">= 2x",
                        "met" if ratio >= 2 else "NOT met",
                    ]
                )
        restore = "restore to /dev/null"
        for other, target in (("restic", 1.5), ("kopia", None)):
            ours, theirs = find(ours_name, restore), find(other, restore)
            if ours and theirs:
                ratio = theirs.measurement.seconds / ours.measurement.seconds
                cpu = theirs.measurement.cpu_seconds / ours.measurement.cpu_seconds
                checks.append(
                    [
                        f"{ours_name}: restore, speed vs {other}",
                        f"{ratio:.2f}x",
                        f"{cpu:.2f}x",
                        f">= {target}x" if target else "(information)",
                        ("met" if ratio >= target else "NOT met") if target else "-",
                    ]
                )
        ours, zstd = find(ours_name, restore), find("zstd -d", "decompress only")
        if ours and zstd:
            ratio = ours.measurement.seconds / zstd.measurement.seconds
            checks.append(
                [
                    f"{ours_name}: restore wall vs zstd -d",
                    f"{ratio:.2f}x",
                    f"{ours.measurement.cpu_seconds / zstd.measurement.cpu_seconds:.2f}x",
                    "(information)",
                    "-",
                ]
            )
        ours = find(ours_name, "list points (start-up)")
        if ours:
            checks.append(
                [
                    f"{ours_name}: fixed start-up (vault points)",
                    f"{ours.measurement.seconds:.3f} s",
                    f"{ours.measurement.cpu_seconds:.3f} s",
                    "< 0.25 s",
                    "met" if ours.measurement.seconds < 0.25 else "NOT met",
                ]
            )
        ours, zstd = find(ours_name, "first backup"), find("zstd -3 -T2", "compress only")
        if ours and zstd:
            ratio = ours.measurement.seconds / zstd.measurement.seconds
            cpu = ours.measurement.cpu_seconds / zstd.measurement.cpu_seconds
            checks.append(
                [
                    f"{ours_name}: first backup, wall vs zstd -3 -T2",
                    f"{ratio:.2f}x",
                    f"{cpu:.2f}x",
                    "<= 1.25x",
                    "met" if ratio <= 1.25 else "NOT met",
                ]
            )
        ours, borg = find(ours_name, "first backup"), find("borg", "first backup")
        if ours and borg and ours.stored_bytes and borg.stored_bytes:
            ratio = ours.stored_bytes / borg.stored_bytes
            checks.append(
                [
                    f"{ours_name}: stored size vs borg",
                    f"{ratio:.3f}x",
                    "-",
                    "<= 1.05x",
                    "met" if ratio <= 1.05 else "NOT met",
                ]
            )
    print(
        table(
            "targets (verdicts on wall time; CPU: the same ratio in CPU seconds; "
            '"strongroom engine" is the vault engine without CLI start-up)',
            ["check", "measured", "CPU", "target", "verdict"],
            checks,
        )
    )


def big_stream(work: Path, gigabytes: float) -> None:
    tool = Strongroom(work)
    tool.init()
    total = int(gigabytes * 1e9)
    generator = f"{sys.executable} {Path(__file__).parent / 'stream.py'} {total}"
    command = (
        f"{generator} | {STRONGROOM} vault backup bench - --stream big.bin "
        "--passphrase-env STRONGROOM_PASSPHRASE"
    )
    generated = run(f"{generator} > /dev/null")
    measured = run(command, env=tool.env)
    print(
        table(
            f"strongroom backup of a {gigabytes:g} GB generated stream "
            f"(load average {load_average()})",
            [
                "wall s",
                "MB/s",
                "CPU s (backup + generator)",
                "generator alone CPU s",
                "peak RSS MiB",
                "target",
            ],
            [
                [
                    f"{measured.seconds:.1f}",
                    f"{total / measured.seconds / 1e6:.0f}",
                    f"{measured.cpu_seconds:.1f}",
                    f"{generated.cpu_seconds:.1f}",
                    f"{measured.peak_rss_mib:.0f}",
                    "< 256 MiB",
                ]
            ],
        )
    )


if __name__ == "__main__":
    main()
