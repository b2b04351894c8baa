"""Copies to a DR vault driven as a user would: a rule's copy action, ``strongroom copy``,
replication lag, a restore from the copy once the source vault is gone, and ``catalog
rebuild`` of the DR vault finding the copy with its link to its source."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from strongroom.catalog.shapes import CopyResultShape
from tests.support.data import make_tree, tree_digest
from tests.support.operations_flow import Cli

pytestmark = pytest.mark.e2e

DR_PASS = {"DR_PASS": "a different passphrase for the DR vault"}


def _config(root: Path, data: Path) -> str:
    return f"""\
version: 1
vaults:
  main:
    url: {(root / "vaults" / "main").as_uri()}
    key: {{provider: passphrase, passphrase: env:VAULT_PASS}}
  dr:
    url: {(root / "vaults" / "dr").as_uri()}
    key: {{provider: passphrase, passphrase: env:DR_PASS}}
resources:
  docs:
    type: files
    paths: [{data}]
plans:
  ops:
    rules:
      - name: daily
        schedule: rate(1 day)
        target_vault: main
        lifecycle: {{delete_after_days: 30}}
        recovery_point_tags: {{team: ops}}
        copy_actions:
          - destination_vault: dr
            lifecycle: {{delete_after_days: 90}}
    selections:
      - name: docs
        names: [docs]
"""


def _set_up(tmp_path: Path) -> tuple[Cli, Path, Path]:
    data = make_tree(tmp_path / "data")
    config = tmp_path / "strongroom.yaml"
    config.write_text(_config(tmp_path, data))
    cli = Cli(home=tmp_path / "home", env=dict(DR_PASS))
    cli("apply", "-f", str(config))
    return cli, data, config


def test_a_copy_action_copies_to_dr_and_the_copy_restores_without_the_source(
    tmp_path: Path,
) -> None:
    cli, data, config = _set_up(tmp_path)
    backup = cli.json("start-backup", "docs", "--wait")
    assert backup["state"] == "COMPLETED", backup
    source_id = backup["result"]["point_id"]

    # The copy action queued a copy job with the backup's end; the daemon runs it.
    queued = cli.json("report", "detailed", "--kind", "copy")
    assert [(row["kind"], row["state"]) for row in queued] == [("copy", "PENDING")]
    lag = cli.json("report", "replication-lag")
    assert [(pair["source_vault"], pair["destination_vault"], pair["behind"]) for pair in lag] == [
        ("main", "dr", 1)
    ]
    assert lag[0]["newest_copied_point"] is None
    cli("serve", "--once")
    copy_job = cli.json("describe-job", queued[0]["job_id"])
    assert copy_job["state"] == "COMPLETED", copy_job
    assert copy_job["rule"] == "ops/daily"
    result = CopyResultShape.model_validate(copy_job["result"])
    assert result.source_point_id == source_id and result.vault == "dr"
    copy_id = result.point_id

    points = {point["id"]: point for point in cli.json("list-recovery-points")}
    copy = points[copy_id]
    assert copy["vault"] == "dr" and copy["resource"] == "docs"
    assert copy["source_point_id"] == source_id
    assert copy["tags"]["team"] == "ops" and copy["tags"]["strongroom:copy-of"] == source_id
    # The copy's own lifecycle (90 days), not the source's (30).
    assert copy["delete_at"] != points[source_id]["delete_at"]
    lag = cli.json("report", "replication-lag")
    assert lag[0]["behind"] == 0 and lag[0]["lag_seconds"] == 0
    assert lag[0]["newest_copy_point"] == copy_id
    cli("report", "replication-lag")  # the table renders

    # The source vault is gone: the copy restores byte for byte.
    shutil.rmtree(tmp_path / "vaults" / "main")
    target = tmp_path / "restored"
    restored = cli.json("restore", copy_id[:12], "--target", f"path={target}", "--wait")
    assert restored["state"] == "COMPLETED", restored
    assert tree_digest(target / data.relative_to("/")) == tree_digest(data)

    # A new catalog rebuilt from the DR vault alone finds the copy and its source link.
    fresh = Cli(home=tmp_path / "fresh-home", env=dict(DR_PASS))
    fresh("apply", "-f", str(config))
    rebuilt = fresh.json("catalog", "rebuild", "--vault", "dr")
    assert rebuilt["totals"]["recorded"] == 1, rebuilt
    [found] = fresh.json("list-recovery-points", "--vault", "dr")
    assert found["id"] == copy_id and found["source_point_id"] == source_id
    assert found["delete_at"] is not None


def test_copy_by_hand_and_its_refusals(tmp_path: Path) -> None:
    cli, _, _ = _set_up(tmp_path)
    source_id = cli.json("start-backup", "docs", "--wait")["result"]["point_id"]
    cli("serve", "--once")  # the copy action's copy

    again = cli.json("copy", source_id[:12], "--to-vault", "dr", "--wait")
    assert again["state"] == "COMPLETED", again
    # Everything was in the DR vault already: nothing new stored.
    assert again["result"]["new_stored_size"] == 0
    assert again["result"]["source_point_id"] == source_id

    to_itself = cli("copy", source_id, "--to-vault", "main", expect=2)
    assert "main" in to_itself.stderr.decode()
    no_vault = cli("copy", source_id, "--to-vault", "nowhere", expect=3)
    assert "nowhere" in no_vault.stderr.decode()
    no_point = cli("copy", "0123456789ab", "--to-vault", "dr", expect=3)
    assert "0123456789ab" in no_point.stderr.decode()

    # A wrong key for the destination fails the job, naming the key; nothing is recorded.
    wrong = Cli(home=cli.home, env={"DR_PASS": "not the passphrase"})
    failed = wrong.json("copy", source_id, "--to-vault", "dr", "--wait", expect=None)
    assert failed["state"] == "FAILED"
    assert failed["error"]["code"] == "WrongKey"
    dr_points = cli.json("list-recovery-points", "--vault", "dr")
    assert len(dr_points) == 2
