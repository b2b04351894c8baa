"""Files benchmark: strongroom vs restic vs borg: first backup, unchanged re-backup, restore.

    .venv/bin/python bench/files_bench.py [--small 100000] [--large 3] [--repeat 2] [--work DIR]
        [--tools strongroom,restic,borg] [--keep] [--restore-only]

Generates (once; cached under ``<work>``) a reproducible tree of ``--small`` small files
and ``--large`` files of 200 MB (see ``files_dataset.py``). Then, ``--repeat`` times and
for each tool in turn, into a fresh repository: a first backup of the tree, a second
backup of the unchanged tree, and a restore of the second into a freshly made ext4
filesystem (a loop-mounted image, made again for every restore, so that no tool pays for
what an earlier one left in the filesystem: ext4 allocates inodes much more slowly for a
few minutes after many deletes; without the right to mount, the restore goes to a plain
folder and the table says so). strongroom runs ``FilesSource`` with its unchanged-file cache
through the library API (``files_strongroom.py``), restic ``restic backup`` (its parent
snapshot lets it skip unchanged files), borg ``borg create --compression zstd,3``
(repokey-blake2; its files cache does the same). Every tool encrypts.

Keeps the best wall time per tool and phase and prints wall seconds, MB/s (tree bytes /
wall), stored size (the repository after the first backup; what the second one added),
peak RSS, CPU seconds (user + sys from ``wait4``) of that run and the least over all
rounds, whether strongroom's second backup reused content (its files cache report), and
the target of issue #6 with a verdict. On a shared machine the wall time depends on what
else runs (restic spreads its work over every core, strongroom's walk is one thread): the
least CPU seconds are the steadier comparison, so they get a verdict too.
Repositories go to ``<work>/files-run`` and are removed at the end (``--keep`` keeps
them); the tree stays. ``--restore-only`` runs only the restores, ``--repeat`` times and
interleaved, from the repositories a ``--keep`` run left: the way to compare restore
changes (issue #12: files restore at least 1.3x restic's speed).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import tools as compared_tools
from files_dataset import ensure_tree
from pg_measure import Sample, human, run, table, tree_size

PASSWORD = "bench-passphrase-not-secret"  # noqa: S105 - a throwaway benchmark repository
DRIVER = Path(__file__).with_name("files_strongroom.py")
PHASES = ("first backup", "unchanged second backup", "restore")
BACKUPS = PHASES[:2]


@dataclass
class Result:
    """The best sample of one tool and phase, with what it stored and reported."""

    sample: Sample
    stored_bytes: int
    report: dict[str, Any] = field(default_factory=dict)
    least_cpu_seconds: float = float("inf")


class Tool:
    """One backup tool: a fresh repository, then backups of the tree into it."""

    name = ""

    def __init__(self, work: Path) -> None:
        self.work = work / self.name
        self.repo = self.work / "repo"
        self.env = {
            "BENCH_VAULT_PASSPHRASE": PASSWORD,
            "BORG_PASSPHRASE": PASSWORD,
            "RESTIC_PASSWORD": PASSWORD,
            "BORG_BASE_DIR": str(self.work / "borg-base"),
            "RESTIC_CACHE_DIR": str(self.work / "restic-cache"),
        }

    def fresh(self) -> None:
        """Remove the repository and every cache of the previous round; init (untimed)."""
        shutil.rmtree(self.work, ignore_errors=True)
        self.work.mkdir(parents=True)
        self.init()

    def init(self) -> None: ...

    def command(self, tree: Path, round_name: str) -> list[str]:
        raise NotImplementedError

    def backup(self, tree: Path, round_name: str) -> Sample:
        return run(self.command(tree, round_name), env=self.env)

    def restore_command(self, target: Path) -> list[str] | str:
        raise NotImplementedError

    def restore(self, target: Path) -> Sample:
        return run(self.restore_command(target), env=self.env)

    def stored(self) -> int:
        return tree_size(self.repo)


class Strongroom(Tool):
    name = "strongroom"

    def command(self, tree: Path, round_name: str) -> list[str]:
        first = round_name == "one"
        return [
            sys.executable,
            str(DRIVER),
            f"--vault={self.repo}",
            f"--cache={self.work / 'index-cache'}",
            f"--files-cache={self.work / 'files-cache.sqlite'}",
            f"--scratch={self.work / 'scratch'}",
            *(["--create"] if first else []),
            str(tree),
        ]

    def restore_command(self, target: Path) -> list[str]:
        return [
            sys.executable,
            str(DRIVER),
            f"--vault={self.repo}",
            f"--cache={self.work / 'index-cache'}",
            f"--scratch={self.work / 'scratch'}",
            f"--restore-to={target}",
        ]


class Restic(Tool):
    name = "restic"

    def init(self) -> None:
        run(["restic", "init", "--repo", str(self.repo)], env=self.env)

    def command(self, tree: Path, round_name: str) -> list[str]:
        return [
            "restic",
            "backup",
            "--repo",
            str(self.repo),
            "--quiet",
            "--tag",
            round_name,
            str(tree),
        ]

    def restore_command(self, target: Path) -> list[str]:
        return ["restic", "restore", "latest", "--repo", str(self.repo), "--target", str(target)]


class Borg(Tool):
    name = "borg"

    def init(self) -> None:
        run(["borg", "init", "--encryption", "repokey-blake2", str(self.repo)], env=self.env)

    def command(self, tree: Path, round_name: str) -> list[str]:
        return [
            "borg",
            "create",
            "--compression",
            "zstd,3",
            f"{self.repo}::{round_name}",
            str(tree),
        ]

    def restore_command(self, target: Path) -> str:
        return f"mkdir -p {target} && cd {target} && borg extract {self.repo}::two"


class RestoreTarget:
    """A fresh ext4 for every restore (a loop-mounted sparse image), or a plain folder
    when mounting is not allowed."""

    def __init__(self, work: Path, size: int) -> None:
        self.image = work / "restore.img"
        self.mount_point = work / "restore-mnt"
        self.size = size
        self.fresh_filesystem = True

    def fresh(self) -> Path:
        """Return an empty folder for the next restore."""
        self.clear()
        self.mount_point.mkdir(parents=True, exist_ok=True)
        if self.fresh_filesystem:
            self.image.unlink(missing_ok=True)
            with self.image.open("wb") as image:
                image.truncate(self.size)
            made = subprocess.run(
                ["mkfs.ext4", "-q", "-F", str(self.image)], capture_output=True, check=False
            )
            mounted = made.returncode == 0 and (
                subprocess.run(
                    ["mount", "-o", "loop", str(self.image), str(self.mount_point)],
                    capture_output=True,
                    check=False,
                ).returncode
                == 0
            )
            if not mounted:
                print("cannot mount a fresh ext4: restoring into a plain folder", flush=True)
                self.fresh_filesystem = False
        return self.mount_point / "restored"

    def clear(self) -> None:
        """Unmount and remove what the last restore left."""
        if self.fresh_filesystem and os.path.ismount(self.mount_point):
            subprocess.run(["umount", str(self.mount_point)], check=True)
        shutil.rmtree(self.mount_point, ignore_errors=True)
        self.image.unlink(missing_ok=True)


def warm(tree: Path) -> None:
    """Read every file of the tree (untimed), so that each tool's first backup finds it in
    the page cache, whatever ran before."""
    for path in tree.rglob("*"):
        if path.is_file() and not path.is_symlink():
            with path.open("rb") as file:
                while file.read(1 << 20):
                    pass


def measure_all(
    tools: list[Tool], tree: Path, repeat: int, target: RestoreTarget, *, restore_only: bool
) -> dict[tuple[str, str], Result]:
    """Run every tool ``repeat`` times (rounds interleaved); keep the best wall per phase.
    ``restore_only``: restore what an earlier ``--keep`` run left, without backing up."""
    best: dict[tuple[str, str], Result] = {}

    def keep(tool: Tool, phase: str, sample: Sample, stored: int) -> None:
        report = json.loads(sample.stdout.splitlines()[-1]) if tool.name == "strongroom" else {}
        key = (tool.name, phase)
        previous = best.get(key)
        least_cpu = sample.cpu_seconds
        if previous is not None:
            least_cpu = min(least_cpu, previous.least_cpu_seconds)
        if previous is None or sample.seconds < previous.sample.seconds:
            best[key] = Result(sample, stored, report)
        best[key].least_cpu_seconds = least_cpu

    for attempt in range(1, repeat + 1):
        for tool in tools:
            print(f"round {attempt}/{repeat}: {tool.name} ...", flush=True)
            if not restore_only:
                warm(tree)
                tool.fresh()
                before = tool.stored()
                for phase, round_name in zip(BACKUPS, ("one", "two"), strict=True):
                    sample = tool.backup(tree, round_name)
                    after = tool.stored()
                    keep(tool, phase, sample, after - before)
                    before = after
            elif not tool.repo.is_dir():
                raise SystemExit(f"--restore-only: no kept repository at {tool.repo}")
            restored = target.fresh()
            sample = tool.restore(restored)
            restored_bytes = tree_size(restored)
            target.clear()
            keep(tool, "restore", sample, restored_bytes)
    return best


def print_report(
    results: dict[tuple[str, str], Result], tree_bytes: int, files: int, tools: list[str]
) -> None:
    rows = []
    for tool in tools:
        for phase in PHASES:
            result = results.get((tool, phase))
            if result is None:
                continue
            sample = result.sample
            rows.append(
                [
                    tool,
                    phase,
                    f"{sample.seconds:.1f}",
                    f"{tree_bytes / sample.seconds / 1e6:.0f}",
                    human(result.stored_bytes) + (" restored" if phase == "restore" else ""),
                    f"{sample.peak_rss_mib:.0f}",
                    f"{sample.cpu_seconds:.1f}",
                    f"{result.least_cpu_seconds:.1f}",
                ]
            )
    print(
        table(
            f"files benchmark: {files} files, {human(tree_bytes)}, {os.cpu_count()} cores",
            [
                "tool",
                "phase",
                "wall s",
                "MB/s",
                "stored (new)",
                "peak RSS MiB",
                "CPU s",
                "least CPU s",
            ],
            rows,
        )
    )
    reports = []
    for phase in BACKUPS:
        result = results.get(("strongroom", phase))
        if result is None:
            continue
        report = result.report
        seconds = report.get("seconds", {})
        reports.append(
            [
                phase,
                str(report.get("writer_can_reuse")),
                str(report.get("cache", {}).get("used")),
                str(report.get("cache", {}).get("reused_streams")),
                human(report.get("cache", {}).get("bytes_read")),
                human(report.get("new_stored_bytes")),
                f"{seconds.get('open vault', 0.0):.1f}",
                f"{seconds.get('source backup', 0.0):.1f}",
                f"{seconds.get('commit', 0.0):.1f}",
            ]
        )
    if reports:  # none with --restore-only
        print_phases(reports)
    print_targets(results)


def print_phases(reports: list[list[str]]) -> None:
    """Print strongroom's files-cache report and phase timings of its backups."""
    print(
        table(
            "strongroom: files cache and phases (seconds, inside the driver)",
            [
                "phase",
                "writer can reuse",
                "cache used",
                "reused streams",
                "bytes read",
                "new stored",
                "open vault",
                "source backup",
                "commit",
            ],
            reports,
        )
    )


def print_targets(results: dict[tuple[str, str], Result]) -> None:
    """Print the targets of issues #6 and #12 with their verdicts."""
    checks = []
    ours = results.get(("strongroom", PHASES[1]))
    restic = results.get(("restic", PHASES[1]))
    if ours and restic:
        ratio = ours.sample.seconds / restic.sample.seconds
        checks.append(
            [
                "unchanged re-backup wall vs restic",
                f"{ratio:.2f}x",
                "<= 1.00x",
                "met" if ratio <= 1.0 else "NOT met",
            ]
        )
        cpu_ratio = ours.least_cpu_seconds / restic.least_cpu_seconds
        checks.append(
            [
                "unchanged re-backup least CPU (user+sys) vs restic",
                f"{cpu_ratio:.2f}x",
                "<= 1.00x",
                "met" if cpu_ratio <= 1.0 else "NOT met",
            ]
        )
    if ours:
        reused = ours.report.get("cache", {}).get("reused_streams", 0)
        checks.append(
            [
                "second backup reused content (files cache)",
                f"{reused} streams, {human(ours.report.get('cache', {}).get('bytes_read'))} read",
                "> 0 streams",
                "yes" if reused else "NO",
            ]
        )
    ours_restore = results.get(("strongroom", "restore"))
    restic_restore = results.get(("restic", "restore"))
    if ours_restore and restic_restore:
        # Speed ratios (restic's time over strongroom's): issue #12 asks for >= 1.3x.
        speed = restic_restore.sample.seconds / ours_restore.sample.seconds
        checks.append(
            [
                "restore speed vs restic (wall, #12)",
                f"{speed:.2f}x",
                ">= 1.30x",
                "met" if speed >= 1.3 else "NOT met",
            ]
        )
        cpu_speed = restic_restore.least_cpu_seconds / ours_restore.least_cpu_seconds
        checks.append(
            [
                "restore speed vs restic (least CPU, #12)",
                f"{cpu_speed:.2f}x",
                ">= 1.30x",
                "met" if cpu_speed >= 1.3 else "NOT met",
            ]
        )
    if ours_restore:
        seconds = ours_restore.report.get("seconds", {})
        if "restore thread CPU" in seconds:
            checks.append(
                [
                    "strongroom restore: CPU s of the thread that writes (information)",
                    f"{seconds['restore thread CPU']:.1f} of {ours_restore.sample.cpu_seconds:.1f}",
                    "-",
                    "-",
                ]
            )
        passed = ours_restore.report.get("ok")
        checks.append(
            [
                "strongroom restore: every check passed",
                str(passed),
                "True",
                "yes" if passed else "NO",
            ]
        )
    print(table("targets (issues #6, #12)", ["check", "measured", "target", "verdict"], checks))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--small", type=int, default=100_000, help="number of small files")
    parser.add_argument("--large", type=int, default=3, help="number of 200 MB files")
    parser.add_argument("--repeat", type=int, default=2, help="rounds per tool (best wall)")
    parser.add_argument("--work", type=Path, default=Path("/var/tmp/strongroom-bench"))
    parser.add_argument("--tools", default="strongroom,restic,borg")
    parser.add_argument("--keep", action="store_true", help="keep the repositories")
    parser.add_argument(
        "--restore-only",
        action="store_true",
        help="only restore, from the repositories an earlier --keep run left (implies --keep)",
    )
    args = parser.parse_args()
    compared_tools.prepare(restic="restic" in args.tools.split(","), kopia=False)  # restic v0.19.1
    print(f"preparing {args.small} small and {args.large} large files ...", flush=True)
    tree = ensure_tree(args.work, args.small, args.large)
    tree_bytes = tree_size(tree)
    files = sum(1 for entry in tree.rglob("*") if entry.is_file())
    run_dir = args.work / "files-run"
    if args.restore_only:
        args.keep = True
    else:
        shutil.rmtree(run_dir, ignore_errors=True)
    classes: dict[str, Callable[[Path], Tool]] = {
        "strongroom": Strongroom,
        "restic": Restic,
        "borg": Borg,
    }
    names = args.tools.split(",")
    tools = [classes[name](run_dir) for name in names]
    load_before = os.getloadavg()[0]
    # mkfs.ext4 gives an image one inode per 16 KiB: without large files, bytes alone
    # would leave too few inodes for the small ones.
    target = RestoreTarget(run_dir, max(2 * tree_bytes, 2 * files * 16 * 1024, 1 << 30))
    try:
        results = measure_all(tools, tree, args.repeat, target, restore_only=args.restore_only)
    finally:
        target.clear()
        if not args.keep:
            shutil.rmtree(run_dir, ignore_errors=True)
    print()
    print_report(results, tree_bytes, files, names)
    where = "a fresh ext4 each" if target.fresh_filesystem else "a plain folder"
    print(
        f"load average (1 min): {load_before:.1f} before, {os.getloadavg()[0]:.1f} after; "
        f"rows show the fastest of {args.repeat} rounds; restores went to {where}"
    )


if __name__ == "__main__":
    main()
