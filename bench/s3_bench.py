"""S3 benchmark: strongroom vs restic vs kopia, each backing up into the local S3 server.

    .venv/bin/python bench/s3_bench.py [--size-mb 500] [--files 100000] [--repeat 1] [--work DIR]

Needs `dev/services up s3` (versitygw on loopback; the settings come from
`$STRONGROOM_SERVICES_DIR/services.json`). Two cases, each tool in turn, every repository
under a fresh prefix of the primary bucket (versioned, Object Lock enabled, no lock set):

- **stream**: the same pg_dump-like stream as ``vault_bench.py`` (``--size-mb``): the
  first backup, the unchanged stream again, and a restore to /dev/null, each a command of
  its own (``strongroom vault backup|restore``, ``restic backup --stdin|dump``, ``kopia
  snapshot create -|show``);
- **tree**: a generated tree of ``--files`` small files (``files_dataset.py``, the files
  benchmark's): the first backup, the unchanged tree again (each tool's own way of
  skipping unchanged files), and a restore into a fresh ext4 (as ``files_bench.py``).
  strongroom runs its files source through the library API (``files_strongroom.py``).

Prints wall time, CPU time, MB/s, the bytes stored in the bucket and peak RSS, the load
average before and after, then the ratios the issue targets: strongroom at least 1.5x
the faster of restic and kopia for the first backup and the restore, at least as fast
for the unchanged backup, peak RSS under 300 MiB. Tools: restic v0.19.1 and kopia
v0.23.1 built from the Go module proxy (``tools.py``); see ``s3_tools.py`` for how each
reaches the server.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import datasets
import tools
from compare import Row, human, speed_ratio
from files_bench import RestoreTarget, warm
from files_dataset import ensure_tree
from measure import best, load_average, table, tree_size
from s3_tools import STREAM_TOOLS, TREE_TOOLS, s3_settings

PHASES = ("first backup", "unchanged again", "restore")
TARGETS = {"first backup": 1.5, "unchanged again": 1.0, "restore": 1.5}


def stream_round(work: Path, s3: dict[str, str], chosen: list[str], source: Path) -> list[Row]:
    """One round of the stream case: each tool backs up twice, then restores."""
    size = source.stat().st_size
    rows: list[Row] = []
    for tool_name in chosen:
        tool = STREAM_TOOLS[tool_name](work, s3)  # type: ignore[abstract]
        try:
            tool.init()
            before = tool.stored()
            for phase, name in ((PHASES[0], "one"), (PHASES[1], "two")):
                measured = tool.backup(source, name)
                after = tool.stored()
                rows.append(Row(tool.name, phase, measured, size, after - before))
                before = after
            rows.append(Row(tool.name, PHASES[2], tool.restore("one"), size, None))
        finally:
            tool.remove()
    return rows


def tree_round(work: Path, s3: dict[str, str], chosen: list[str], tree: Path) -> list[Row]:
    """One round of the tree case: each tool backs up twice, then restores to a new ext4."""
    size = tree_size(tree)
    files = sum(1 for path in tree.rglob("*") if path.is_file())
    # ext4 makes one inode per 16 KiB: a tree of small files needs room for its inodes.
    target = RestoreTarget(work / "tree-restore", max(size * 2, files * 32 * 1024) + (256 << 20))
    rows: list[Row] = []
    for tool_name in chosen:
        tool = TREE_TOOLS[tool_name](work, s3)
        try:
            tool.init()
            warm(tree)
            before = tool.stored()
            for phase, name in ((PHASES[0], "one"), (PHASES[1], "two")):
                measured = tool.backup(tree, name)
                after = tool.stored()
                rows.append(Row(tool.name, phase, measured, size, after - before))
                before = after
            rows.append(Row(tool.name, PHASES[2], tool.restore(target.fresh()), size, None))
        finally:
            target.clear()
            tool.remove()
    return rows


def measure_case(rounds: int, one_round: Callable[[], list[Row]]) -> tuple[list[Row], str]:
    """Run ``rounds`` rounds; return the best row of each tool and phase, and the load."""
    loads = [load_average()]
    results: list[list[Row]] = []
    for _ in range(rounds):
        results.append(one_round())
        loads.append(load_average())
    rows = [
        Row(
            row.tool,
            row.phase,
            best([each[index].measurement for each in results]),
            row.logical_bytes,
            row.stored_bytes,
        )
        for index, row in enumerate(results[0])
    ]
    return rows, " -> ".join(loads)


def print_case(title: str, rows: list[Row]) -> None:
    """The measurements of one case, then its ratios against the targets."""
    print(
        table(
            title,
            ["tool", "phase", "wall s", "CPU s", "MB/s", "stored (new)", "peak RSS MiB"],
            [
                [
                    row.tool,
                    row.phase,
                    f"{row.measurement.seconds:.2f}",
                    f"{row.measurement.cpu_seconds:.2f}",
                    f"{row.logical_bytes / row.measurement.seconds / 1e6:.0f}",
                    human(row.stored_bytes) if row.stored_bytes is not None else "-",
                    f"{row.measurement.peak_rss_mib:.0f}",
                ]
                for row in rows
            ],
        )
    )
    lines = [
        line
        for phase, target in TARGETS.items()
        if (line := speed_ratio(rows, phase, "strongroom", ["restic", "kopia"], target))
    ]
    peak = max(
        (row.measurement.peak_rss_mib for row in rows if row.tool == "strongroom"), default=0
    )
    verdict = "met" if peak < 300 else "NOT met"
    lines.append(["strongroom peak RSS", f"{peak:.0f} MiB", "-", "< 300 MiB", verdict])
    print(
        table(
            f"{title}: targets (issue #13; verdicts on wall time)",
            ["check", "wall", "CPU", "target", ""],
            lines,
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mb", type=int, default=500, help="the stream (0: skip)")
    parser.add_argument("--files", type=int, default=100_000, help="files in the tree (0: skip)")
    parser.add_argument("--work", type=Path, default=Path("/var/tmp/strongroom-bench"))
    parser.add_argument("--tools", default=",".join(STREAM_TOOLS))
    parser.add_argument("--repeat", type=int, default=1, help="rounds; rows show the best")
    args = parser.parse_args()
    chosen = args.tools.split(",")
    s3 = s3_settings()
    tools.prepare(restic="restic" in chosen, kopia="kopia" in chosen)
    args.work.mkdir(parents=True, exist_ok=True)
    rounds = max(1, args.repeat)
    print("tools: " + "; ".join(f"{k} {v}" for k, v in tools.versions().items()))
    print(f"server: {s3.get('SERVER', 'S3')} at {s3['URL']}; {os.cpu_count()} cores")
    if args.size_mb:
        source = datasets.orders_dump(args.work, args.size_mb)
        rows, loads = measure_case(rounds, lambda: stream_round(args.work, s3, chosen, source))
        size = human(source.stat().st_size)
        print_case(f"S3 stream: {size} orders dump, best of {rounds} (load {loads})", rows)
    if args.files:
        tree = ensure_tree(args.work, args.files, 0)
        rows, loads = measure_case(rounds, lambda: tree_round(args.work, s3, chosen, tree))
        title = f"S3 tree: {args.files} files, {human(tree_size(tree))}, best of {rounds}"
        print_case(f"{title} (load {loads})", rows)


if __name__ == "__main__":
    main()
