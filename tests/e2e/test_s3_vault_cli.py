"""A folder backed up into a vault on the real S3 server, restored, and found again from
the bucket alone, all through the CLI as a user would (issue #13).

1. ``apply -f`` declares an ``s3://`` vault (endpoint, path-style, credentials as ``env:``
   references), a ``files`` resource and a plan;
2. ``start-backup`` writes the point into the bucket, ``restore`` brings the folder back
   byte for byte;
3. a second home with an empty catalog declares the same vault, and ``catalog rebuild``
   finds the point in the bucket; a restore from there is byte-identical too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.data import make_tree, tree_digest
from tests.support.operations_flow import Cli
from tests.support.services import S3Service, unique_name

pytestmark = pytest.mark.e2e


def declaration(s3_service: S3Service, url: str, data: Path) -> dict[str, Any]:
    return {
        "vaults": {
            "offsite": {
                "url": url,
                "key": {"provider": "passphrase", "passphrase": "env:VAULT_PASS"},
                "s3": {
                    "endpoint_url": s3_service.url,
                    "region": s3_service.region,
                    "addressing_style": "path",
                    "access_key_id": "env:S3_KEY_ID",
                    "secret_access_key": "file:/run/never/used",
                },
            }
        },
        "resources": {"docs": {"type": "files", "paths": [str(data)]}},
        "plans": {
            "nightly": {
                "rules": [
                    {
                        "name": "daily",
                        "schedule": "rate(1 day)",
                        "target_vault": "offsite",
                        "lifecycle": {"delete_after_days": 30},
                    }
                ],
                "selections": [{"name": "this", "names": ["docs"]}],
            }
        },
    }


def test_a_folder_into_an_s3_vault_and_back_and_a_rebuild_from_the_bucket(
    s3_service: S3Service, tmp_path: Path
) -> None:
    data = make_tree(tmp_path / "data")
    (data / "large.bin").write_bytes(bytes(range(256)) * (24 * 1024 * 4))  # 24 MiB: multipart
    prefix = unique_name("e2e")
    secret = tmp_path / "s3-secret"
    secret.write_text(s3_service.password + "\n")
    document = declaration(s3_service, f"s3://{s3_service.bucket}/{prefix}/vault", data)
    document["vaults"]["offsite"]["s3"]["secret_access_key"] = f"file:{secret}"
    config = tmp_path / "strongroom.yaml"
    config.write_text(yaml.safe_dump(document))
    env = {"S3_KEY_ID": s3_service.user}
    try:
        cli = Cli(home=tmp_path / "home", env=env)
        applied = cli.json("apply", "-f", str(config))
        assert applied["selections"] == {"nightly": ["docs"]}, applied

        backup = cli.json("start-backup", "docs", "--rule", "nightly/daily", "--wait")
        assert backup["state"] == "COMPLETED", backup
        point_id = backup["result"]["point_id"]
        keys = [
            entry["Key"]
            for entry in s3_service.connect()
            .list_objects_v2(Bucket=s3_service.bucket, Prefix=f"{prefix}/vault/")
            .get("Contents", [])
        ]
        assert any(f"/vault/manifests/{point_id}" in key for key in keys), keys

        target = tmp_path / "restored"
        restored = cli.json("restore", point_id, "--target", f"path={target}", "--wait")
        assert restored["state"] == "COMPLETED", restored
        assert tree_digest(target / data.relative_to("/")) == tree_digest(data)

        # A new machine: an empty catalog, the same declaration, the bucket alone.
        fresh = Cli(home=tmp_path / "fresh-home", env=env)
        fresh.json("apply", "-f", str(config))
        assert fresh.json("list-recovery-points", "--resource", "docs") == []
        fresh("catalog", "rebuild", "--vault", "offsite")
        (found,) = fresh.json("list-recovery-points", "--resource", "docs")
        assert found["id"] == point_id and found["vault"] == "offsite"
        again = tmp_path / "restored-again"
        restored = fresh.json("restore", point_id, "--target", f"path={again}", "--wait")
        assert restored["state"] == "COMPLETED", restored
        assert tree_digest(again / data.relative_to("/")) == tree_digest(data)
    finally:
        s3_service.empty(s3_service.bucket, f"{prefix}/")
