"""Issue #13 "done means" for copies: a rule's copy action from a vault in the primary
bucket to a DR vault in the DR bucket of the real S3 server (another key), the primary
emptied, and a byte-identical restore from the copy; ``catalog rebuild`` from the DR
bucket alone finds the copy with its source link; the replication lag is reported."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.test_copies_cli import DR_PASS
from tests.support.data import make_tree, tree_digest
from tests.support.operations_flow import Cli
from tests.support.services import S3Service, unique_name

pytestmark = pytest.mark.e2e


def _vault(s3_service: S3Service, url: str, passphrase: str) -> dict[str, Any]:
    return {
        "url": url,
        "key": {"provider": "passphrase", "passphrase": passphrase},
        "s3": {
            "endpoint_url": s3_service.url,
            "region": s3_service.region,
            "addressing_style": "path",
            "access_key_id": "env:S3_KEY_ID",
            "secret_access_key": "env:S3_SECRET",
        },
    }


def test_a_copy_action_to_the_dr_bucket_restores_with_the_primary_emptied(
    s3_service: S3Service, tmp_path: Path
) -> None:
    data = make_tree(tmp_path / "data")
    prefix = unique_name("copies")
    primary = f"s3://{s3_service.bucket}/{prefix}/main"
    dr = f"s3://{s3_service.dr_bucket}/{prefix}/dr"
    document = {
        "vaults": {
            "main": _vault(s3_service, primary, "env:VAULT_PASS"),
            "dr": _vault(s3_service, dr, "env:DR_PASS"),
        },
        "resources": {"docs": {"type": "files", "paths": [str(data)]}},
        "plans": {
            "nightly": {
                "rules": [
                    {
                        "name": "daily",
                        "schedule": "rate(1 day)",
                        "target_vault": "main",
                        "lifecycle": {"delete_after_days": 30},
                        "copy_actions": [
                            {"destination_vault": "dr", "lifecycle": {"delete_after_days": 90}}
                        ],
                    }
                ],
                "selections": [{"name": "this", "names": ["docs"]}],
            }
        },
    }
    config = tmp_path / "strongroom.yaml"
    config.write_text(yaml.safe_dump(document))
    env = {**DR_PASS, "S3_KEY_ID": s3_service.user, "S3_SECRET": s3_service.password}
    try:
        cli = Cli(home=tmp_path / "home", env=env)
        cli("apply", "-f", str(config))
        backup = cli.json("start-backup", "docs", "--wait")
        assert backup["state"] == "COMPLETED", backup
        source_id = backup["result"]["point_id"]
        cli("serve", "--once")
        [copy] = cli.json("list-recovery-points", "--vault", "dr")
        assert copy["source_point_id"] == source_id
        [lag] = cli.json("report", "replication-lag")
        assert (lag["source_vault"], lag["destination_vault"], lag["behind"]) == ("main", "dr", 0)

        s3_service.empty(s3_service.bucket, f"{prefix}/")
        listed = s3_service.connect().list_objects_v2(Bucket=s3_service.bucket, Prefix=f"{prefix}/")
        assert listed.get("KeyCount", 0) == 0
        target = tmp_path / "restored"
        restored = cli.json("restore", copy["id"], "--target", f"path={target}", "--wait")
        assert restored["state"] == "COMPLETED", restored
        assert tree_digest(target / data.relative_to("/")) == tree_digest(data)

        fresh = Cli(home=tmp_path / "fresh-home", env=env)
        fresh("apply", "-f", str(config))
        fresh("catalog", "rebuild", "--vault", "dr")
        [found] = fresh.json("list-recovery-points", "--vault", "dr")
        assert found["id"] == copy["id"] and found["source_point_id"] == source_id
    finally:
        s3_service.empty(s3_service.bucket, f"{prefix}/")
        s3_service.empty(s3_service.dr_bucket, f"{prefix}/")
