"""The tools of ``s3_bench.py``, each keeping its repository under a fresh prefix of the
local S3 server's primary bucket: strongroom, restic and kopia, on a stream and on a tree.

strongroom reaches the server through the standard AWS settings alone
(``AWS_ENDPOINT_URL_S3``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY`` and an
``AWS_CONFIG_FILE`` with path-style addressing), as it would reach AWS S3; restic and
kopia get the same endpoint and keys on their command lines or environment.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import uuid
from pathlib import Path
from typing import Any

import boto3

from measure import Measurement, run
from vault_bench import PASSWORD, STRONGROOM, Kopia, Restic, Strongroom, python_env

SERVICES = Path(os.environ.get("STRONGROOM_SERVICES_DIR") or "/var/tmp/strongroom-services")
TREE_DRIVER = Path(__file__).with_name("files_strongroom.py")


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

    def aws_env(self, work: Path) -> dict[str, str]:
        """The standard AWS settings that reach the server (strongroom reads no others)."""
        config = work / "aws-config"
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(
            f"[default]\nregion = {self.s3['REGION']}\ns3 =\n  addressing_style = path\n"
        )
        return {
            "AWS_CONFIG_FILE": str(config),
            "AWS_ENDPOINT_URL_S3": self.s3["URL"],
            "AWS_ACCESS_KEY_ID": self.s3["USER"],
            "AWS_SECRET_ACCESS_KEY": self.s3["PASSWORD"],
        }

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


def kopia_create_s3(kopia: Kopia, s3: dict[str, str], prefix: str) -> None:
    """Create kopia's repository under ``prefix`` (zstd, no automatic maintenance)."""
    run(
        kopia._kopia(
            "repository",
            "create",
            "s3",
            "--bucket",
            s3["BUCKET"],
            "--prefix",
            prefix + "/",
            "--endpoint",
            s3["URL"].removeprefix("http://"),
            "--disable-tls",
            "--region",
            s3["REGION"],
            "--access-key",
            s3["USER"],
            "--secret-access-key",
            s3["PASSWORD"],
        ),
        env=kopia.env,
    )
    run(kopia._kopia("policy", "set", "--global", "--compression", "zstd"), env=kopia.env)
    run(
        kopia._kopia("maintenance", "set", "--enable-quick=false", "--enable-full=false"),
        env=kopia.env,
    )


# -- the stream: one pg_dump-like file from standard input ------------------------------


class StrongroomS3(OnS3, Strongroom):
    name = "strongroom"

    def __init__(self, work: Path, s3: dict[str, str]) -> None:
        super().__init__(work)
        self.place(s3, self.name)
        self.env.update(self.aws_env(work))

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
        shutil.rmtree(self.env["KOPIA_CACHE_DIRECTORY"] or "", ignore_errors=True)
        kopia_create_s3(self, self.s3, self.prefix)


STREAM_TOOLS = {"strongroom": StrongroomS3, "restic": ResticS3, "kopia": KopiaS3}


# -- the tree: many small files ------------------------------------------------------------


class TreeTool(OnS3):
    """A tool backing up a folder into S3 and restoring its newest snapshot to a folder."""

    name = ""

    def __init__(self, work: Path, s3: dict[str, str]) -> None:
        self.work = work / f"tree-{self.name}"
        shutil.rmtree(self.work, ignore_errors=True)
        self.work.mkdir(parents=True)
        self.place(s3, f"{self.name}-tree")

    def init(self) -> None: ...
    def backup(self, tree: Path, round_name: str) -> Measurement: ...
    def restore(self, target: Path) -> Measurement: ...


class StrongroomTree(TreeTool):
    """``FilesSource`` with its unchanged-file cache, through the library API
    (``files_strongroom.py``), into an S3 vault."""

    name = "strongroom"

    def __init__(self, work: Path, s3: dict[str, str]) -> None:
        super().__init__(work, s3)
        self.env: dict[str, str | None] = {
            "BENCH_VAULT_PASSPHRASE": PASSWORD,
            **self.aws_env(self.work),
            **python_env(work),
        }
        self.common = [
            sys.executable,
            str(TREE_DRIVER),
            f"--vault-url=s3://{s3['BUCKET']}/{self.prefix}",
            f"--cache={self.work / 'index-cache'}",
            f"--scratch={self.work / 'scratch'}",
        ]

    def backup(self, tree: Path, round_name: str) -> Measurement:
        create = ["--create"] if round_name == "one" else []
        files_cache = f"--files-cache={self.work / 'files-cache.sqlite'}"
        return run([*self.common, files_cache, *create, str(tree)], env=self.env)

    def restore(self, target: Path) -> Measurement:
        measured = run([*self.common, f"--restore-to={target}"], env=self.env)
        if not json.loads(measured.stdout)["ok"]:
            raise RuntimeError(f"strongroom's restore checks failed: {measured.stdout}")
        return measured


class ResticTree(TreeTool):
    name = "restic"

    def __init__(self, work: Path, s3: dict[str, str]) -> None:
        super().__init__(work, s3)
        self.repo = f"s3:{s3['URL']}/{s3['BUCKET']}/{self.prefix}"
        self.env = {
            "RESTIC_PASSWORD": PASSWORD,
            "RESTIC_CACHE_DIR": str(self.work / "restic-cache"),
            "AWS_ACCESS_KEY_ID": s3["USER"],
            "AWS_SECRET_ACCESS_KEY": s3["PASSWORD"],
            "AWS_DEFAULT_REGION": s3["REGION"],
        }

    def init(self) -> None:
        run(["restic", "init", "--repo", self.repo], env=self.env)

    def backup(self, tree: Path, round_name: str) -> Measurement:
        command = ["restic", "backup", "--repo", self.repo, "--quiet", "--tag", round_name]
        return run([*command, str(tree)], env=self.env)

    def restore(self, target: Path) -> Measurement:
        command = ["restic", "restore", "latest", "--repo", self.repo, "--target", str(target)]
        return run(command, env=self.env, stdout_to_null=True)


class KopiaTree(TreeTool):
    name = "kopia"

    def __init__(self, work: Path, s3: dict[str, str]) -> None:
        super().__init__(work, s3)
        self.kopia = Kopia(self.work)

    def init(self) -> None:
        kopia_create_s3(self.kopia, self.s3, self.prefix)

    def backup(self, tree: Path, round_name: str) -> Measurement:
        return run(self.kopia._kopia("snapshot", "create", str(tree)), env=self.kopia.env)

    def restore(self, target: Path) -> Measurement:
        listed = run(self.kopia._kopia("snapshot", "list", "--json", "--all"), env=self.kopia.env)
        newest = json.loads(listed.stdout)[-1]["id"]
        command = self.kopia._kopia("snapshot", "restore", newest, str(target))
        return run(command, env=self.kopia.env, stdout_to_null=True)


TREE_TOOLS = {"strongroom": StrongroomTree, "restic": ResticTree, "kopia": KopiaTree}
