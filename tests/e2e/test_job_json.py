"""Every job command prints a job in the one documented shape, and attempts one way.

The shapes are the models of ``strongroom.catalog.shapes`` (docs/events.md); the JSON a
command prints is validated against their JSON Schema, as an outside consumer would.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from strongroom.catalog.shapes import JobDescriptionShape, JobShape
from tests.support.data import make_tree
from tests.support.operations_flow import Cli

pytestmark = pytest.mark.e2e


def validator(model: type[BaseModel]) -> Any:
    """A JSON Schema validator for what the model writes (a dev dependency: never skipped)."""
    jsonschema = importlib.import_module("jsonschema")
    return jsonschema.Draft202012Validator(
        model.model_json_schema(mode="serialization", by_alias=True)
    )


def declare(cli: Cli, root: Path) -> Path:
    """A vault, a files resource and a plan whose rule keeps the default retry policy."""
    data = make_tree(root / "data")
    config = root / "strongroom.yaml"
    config.write_text(
        f"""\
vaults:
  v:
    url: {(root / "vault").as_uri()}
    key:
      provider: passphrase
      passphrase: env:VAULT_PASS
resources:
  docs:
    type: files
    paths: [{data}]
plans:
  p:
    rules:
      - name: r
        schedule: rate(1 day)
        target_vault: v
    selections:
      - name: all
        names: [docs]
"""
    )
    cli(
        "vault", "create", "v", "--url", (root / "vault").as_uri(), "--passphrase-env", "VAULT_PASS"
    )
    cli("apply", "-f", str(config))
    return data


def test_every_job_command_prints_the_documented_job_shape(tmp_path: Path) -> None:
    cli = Cli(home=tmp_path / "home")
    declare(cli, tmp_path)
    job, described = validator(JobShape), validator(JobDescriptionShape)

    queued = cli.json("start-backup", "docs", "--vault", "v")
    job.validate(queued)
    assert (queued["schema_version"], queued["state"]) == (1, "PENDING")
    assert "job_id" not in queued
    described.validate(cli.json("describe-job", queued["id"]))
    waited = cli.json("wait-job", queued["id"])
    described.validate(waited)
    assert waited["state"] == "COMPLETED", waited

    backup = cli.json("start-backup", "docs", "--rule", "p/r", "--wait")
    described.validate(backup)
    point = backup["result"]["point_id"]
    restored = cli.json("restore", point, "--target", f"path={tmp_path / 'out'}", "--wait")
    verified = cli.json("verify", point, "--read-data", "--wait")
    for document in (restored, verified):
        described.validate(document)
        assert document["state"] == "COMPLETED", document
    listed = cli.json("list-backups")
    for item in listed:
        job.validate(item)
    assert {item["id"] for item in listed} == {queued["id"], backup["id"]}


def test_a_rule_job_and_an_ad_hoc_job_count_attempts_the_same_way(tmp_path: Path) -> None:
    cli = Cli(home=tmp_path / "home")
    declare(cli, tmp_path)

    # The seed's MaxAttempts (3 retries) is the default of the rule and of an ad-hoc job.
    by_rule = cli.json("start-backup", "docs", "--rule", "p/r")
    assert (by_rule["attempt"], by_rule["max_attempts"]) == (1, 4)
    rule_table = cli("describe-job", by_rule["id"]).stdout.decode()
    cli("cancel-job", by_rule["id"])  # one queued backup of a resource at a time
    ad_hoc = cli.json("start-backup", "docs", "--vault", "v")
    assert (ad_hoc["attempt"], ad_hoc["max_attempts"]) == (1, 4)
    ad_hoc_table = cli("describe-job", ad_hoc["id"]).stdout.decode()
    for table in (rule_table, ad_hoc_table):
        assert "1 of 4" in table, table
    listing = cli("list-backups").stdout.decode()
    assert "1 of 4" in listing and "/4" not in listing
    cli("cancel-job", ad_hoc["id"])

    # --max-attempts counts retries, as retry.max_attempts does in a config.
    never_retried = cli("start-backup", "docs", "--vault", "v", "--max-attempts", "0", "--wait")
    assert "attempt 1 of 1" in never_retried.stderr.decode()
    assert cli.json("list-backups", "--state", "COMPLETED")[0]["max_attempts"] == 1
