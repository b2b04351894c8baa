"""S3 benchmark: strongroom vs restic vs kopia, each backing up into the local S3 server.

    .venv/bin/python bench/s3_bench.py [--size-mb 500] [--repeat 1] [--work DIR]

Needs `dev/services up s3` (versitygw on loopback; the settings come from
`$STRONGROOM_SERVICES_DIR/services.json`). Generates the same pg_dump-like stream as
``vault_bench.py`` and runs, for each tool, in one run: the first backup, the unchanged
stream again, and a restore to /dev/null, every repository under a fresh prefix of the
primary bucket (versioned, Object Lock enabled, no lock set). Prints wall time, CPU time,
MB/s, the bytes stored in the bucket and peak RSS, then the ratios the issue targets:
strongroom at least 1.5x the faster of restic and kopia for the first backup and the
restore, at least as fast for the unchanged re-backup, peak RSS under 300 MiB.

strongroom reaches the server through the standard AWS settings alone
(``AWS_ENDPOINT_URL_S3``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY`` and an
``AWS_CONFIG_FILE`` with path-style addressing), as it would reach AWS S3; restic and
kopia get the same endpoint and keys on their command lines or environment. Tools:
restic v0.19.1 and kopia v0.23.1 built from the Go module proxy (``tools.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import boto3

import datasets
import tools
from measure import best, load_average, run, table
from vault_bench import STRONGROOM, Kopia, Restic, Row, Strongroom, Tool, human

SERVICES = Path(os.environ.get("STRONGROOM_SERVICES_DIR") or "/var/tmp/strongroom-services")


def s3_settings() -> dict[str, str]:
    """The S3 server's settings from `dev/services` (endpoint, keys, region, bucket)."""
    settings = json.loads((SERVICES / "services.json").read_text(encoding="utf-8"))
    prefix = "STRONGROOM_TEST_S3_"
    found = {
        key.removeprefix(prefix): value for key, value in settings.items() if key.startswith(prefix)
    }
    if "URL" not in found:
        sys.exit("no S3 server in services.json: run `dev/services up s3` first")
    return found


class OnS3:
    """Mix-in: a repository under a fresh prefix of the bucket; stored bytes from a listing."""

    s3: dict[str, str]
    prefix: str

    def place(self, s3: dict[str, str], name: str) -> None:
        self.s3 = s3
        self.prefix = f"bench-{name.replace(' ', '-')}-{uuid.uuid4().hex[:8]}"

    def client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.s3["URL"],
            region_name=self.s3["REGION"],
            aws_access_key_id=self.s3["USER"],
            aws_secret_access_key=self.s3["PASSWORD"],
        )

    def stored(self) -> int:
        total = 0
        pages = self.client().get_paginator("list_objects_v2")
        for page in pages.paginate(Bucket=self.s3["BUCKET"], Prefix=self.prefix + "/"):
            total += sum(entry["Size"] for entry in page.get("Contents", []))
        return total

    def remove(self) -> None:
        client = self.client()
        pages = client.get_paginator("list_object_versions")
        for page in pages.paginate(Bucket=self.s3["BUCKET"], Prefix=self.prefix + "/"):
            for entry in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]:
                client.delete_object(
                    Bucket=self.s3["BUCKET"], Key=entry["Key"], VersionId=entry["VersionId"]
                )


class StrongroomS3(OnS3, Strongroom):
    name = "strongroom"

    def __init__(self, work: Path, s3: dict[str, str]) -> None:
        super().__init__(work)
        self.place(s3, self.name)
        config = work / "aws-config"
        config.write_text(f"[default]\nregion = {s3['REGION']}\ns3 =\n  addressing_style = path\n")
        self.env.update(
            {
                "AWS_CONFIG_FILE": str(config),
                "AWS_ENDPOINT_URL_S3": s3["URL"],
                "AWS_ACCESS_KEY_ID": s3["USER"],
                "AWS_SECRET_ACCESS_KEY": s3["PASSWORD"],
            }
        )

    def init(self) -> None:
        shutil.rmtree(self.home, ignore_errors=True)
        run(
            [
                STRONGROOM,
                "vault",
                "create",
                "bench",
                "--url",
                f"s3://{self.s3['BUCKET']}/{self.prefix}",
                "--passphrase-env",
                "STRONGROOM_PASSPHRASE",
                "--compression-level",
                str(self.level),
            ],
            env=self.env,
        )
        self.points: dict[str, str] = {}


class ResticS3(OnS3, Restic):
    name = "restic"

    def __init__(self, work: Path, s3: dict[str, str]) -> None:
        super().__init__(work)
        self.place(s3, self.name)
        self.env.update(
            {
                "AWS_ACCESS_KEY_ID": s3["USER"],
                "AWS_SECRET_ACCESS_KEY": s3["PASSWORD"],
                "AWS_DEFAULT_REGION": s3["REGION"],
            }
        )
        # restic's repository is a location, not a path (str() of it is all Restic uses).
        self.repo = f"s3:{s3['URL']}/{s3['BUCKET']}/{self.prefix}"  # type: ignore[assignment]

    def init(self) -> None:
        run(["restic", "init", "--repo", str(self.repo)], env=self.env)


class KopiaS3(OnS3, Kopia):
    name = "kopia"

    def __init__(self, work: Path, s3: dict[str, str]) -> None:
        super().__init__(work)
        self.place(s3, self.name)

    def init(self) -> None:
        endpoint = self.s3["URL"].removeprefix("http://")
        run(
            self._kopia(
                "repository",
                "create",
                "s3",
                "--bucket",
                self.s3["BUCKET"],
                "--prefix",
                self.prefix + "/",
                "--endpoint",
                endpoint,
                "--disable-tls",
                "--region",
                self.s3["REGION"],
                "--access-key",
                self.s3["USER"],
                "--secret-access-key",
                self.s3["PASSWORD"],
            ),
            env=self.env,
        )
        run(self._kopia("policy", "set", "--global", "--compression", "zstd"), env=self.env)
        run(
            self._kopia("maintenance", "set", "--enable-quick=false", "--enable-full=false"),
            env=self.env,
        )


TOOLS: dict[str, type[Tool]] = {"strongroom": StrongroomS3, "restic": ResticS3, "kopia": KopiaS3}
PHASES = ("first backup", "same stream again", "restore to /dev/null")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mb", type=int, default=500)
    parser.add_argument("--work", type=Path, default=Path("/var/tmp/strongroom-bench"))
    parser.add_argument("--tools", default=",".join(TOOLS))
    parser.add_argument("--repeat", type=int, default=1, help="rounds; rows show the best")
    args = parser.parse_args()
    chosen = args.tools.split(",")
    s3 = s3_settings()
    tools.prepare(restic="restic" in chosen, kopia="kopia" in chosen)
    args.work.mkdir(parents=True, exist_ok=True)
    base = datasets.orders_dump(args.work, args.size_mb)
    size = base.stat().st_size

    loads = [load_average()]
    rounds: list[list[Row]] = []
    for _ in range(max(1, args.repeat)):
        rows: list[Row] = []
        for tool_name in chosen:
            tool = TOOLS[tool_name](args.work, s3)  # type: ignore[call-arg]
            try:
                tool.init()
                before = tool.stored()
                for phase, name in (("first backup", "one"), ("same stream again", "two")):
                    measured = tool.backup(base, name)
                    after = tool.stored()
                    rows.append(Row(tool.name, phase, measured, size, after - before))
                    before = after
                rows.append(Row(tool.name, PHASES[2], tool.restore("one"), size, None))
            finally:
                tool.remove()  # type: ignore[attr-defined]
        rounds.append(rows)
        loads.append(load_average())
    rows = [
        Row(
            r.tool,
            r.phase,
            best([each[i].measurement for each in rounds]),
            r.logical_bytes,
            r.stored_bytes,
        )
        for i, r in enumerate(rounds[0])
    ]
    print("tools: " + "; ".join(f"{k} {v}" for k, v in tools.versions().items()))
    print(f"server: {s3.get('SERVER', 'S3')} at {s3['URL']}")
    print(
        table(
            f"S3 benchmark: {human(size)} orders dump, {os.cpu_count()} cores, "
            f"best of {len(rounds)} (load average {' -> '.join(loads)})",
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
    print_ratios(rows)


def print_ratios(rows: list[Row]) -> None:
    """strongroom against the faster of restic and kopia, per phase, with the targets."""

    def find(tool: str, phase: str) -> Row | None:
        return next((row for row in rows if row.tool == tool and row.phase == phase), None)

    targets = {"first backup": 1.5, "same stream again": 1.0, "restore to /dev/null": 1.5}
    lines = []
    for phase, target in targets.items():
        ours = find("strongroom", phase)
        others = [row for row in (find("restic", phase), find("kopia", phase)) if row]
        if ours is None or not others:
            continue
        fastest = min(others, key=lambda row: row.measurement.seconds)
        ratio = fastest.measurement.seconds / ours.measurement.seconds
        verdict = "met" if ratio >= target else "NOT met"
        lines.append(
            [f"{phase}: speed vs {fastest.tool}", f"{ratio:.2f}x", f">= {target}x", verdict]
        )
    peak = max(
        (row.measurement.peak_rss_mib for row in rows if row.tool == "strongroom"), default=0
    )
    lines.append(
        ["strongroom peak RSS", f"{peak:.0f} MiB", "< 300 MiB", "met" if peak < 300 else "NOT met"]
    )
    print(table("targets (issue #13)", ["check", "measured", "target", ""], lines))


if __name__ == "__main__":
    main()
