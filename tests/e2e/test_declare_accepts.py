"""What ``validate`` and ``apply`` once refused because it could not run is accepted now.

Every resource type of the schema has a source, ``s3://`` vaults are served and copy
actions run; the refusal itself (for what a later schema may add before it runs) is
tested in ``tests/unit/config/test_capabilities.py`` and
``tests/unit/services/declare/test_capabilities.py`` with a source taken out of the registry.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import text
from tests.support.declare_flow import Cli, write_config

pytestmark = pytest.mark.e2e


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path / "home", env={"SR_E2E_PASSPHRASE": "a passphrase"})


def _config(root: Path) -> dict[str, Any]:
    vault = {
        "url": (root / "vault").as_uri(),
        "key": {"provider": "passphrase", "passphrase": "env:SR_E2E_PASSPHRASE"},
    }
    return {
        "vaults": {"main": vault, "dr": {**vault, "url": (root / "dr").as_uri()}},
        "resources": {"docs": {"type": "files", "paths": [str(root / "docs")]}},
        "plans": {
            "nightly": {
                "rules": [
                    {"name": "daily", "schedule": "cron(0 3 * * ? *)", "target_vault": "main"}
                ],
                "selections": [{"name": "all", "names": ["docs"]}],
            }
        },
    }


def test_an_s3_vault_is_no_longer_refused(cli: Cli, tmp_path: Path) -> None:
    """The S3 store is served, so ``validate`` accepts an ``s3://`` vault without touching it."""
    config = _config(tmp_path)
    config["vaults"]["dr"]["url"] = "s3://dr-bucket/strongroom"
    path = write_config(tmp_path / "strongroom.yaml", config)
    result = cli.run("validate", "-f", str(path), "--output", "json")
    assert result.returncode == 0, text(result)
    assert json.loads(result.stdout)["errors"] == []


def test_a_copy_action_runs_so_validate_apply_and_create_plan_accept_it(
    cli: Cli, tmp_path: Path
) -> None:
    config = _config(tmp_path)
    rule = config["plans"]["nightly"]["rules"][0]
    rule["copy_actions"] = [{"destination_vault": "dr"}]
    path = write_config(tmp_path / "strongroom.yaml", config)
    cli.ok("validate", "-f", str(path))
    cli.ok("apply", "-f", str(path))
    plan = {"name": "weekly", **config["plans"]["nightly"]}
    plan["rules"] = [{**rule, "name": "weekly", "copy_actions": [{"destination_vault": "dr"}]}]
    cli.ok("create-plan", "-f", str(write_config(tmp_path / "plan.yaml", plan)))
    assert [item["name"] for item in cli.json("list-plans")] == ["nightly", "weekly"]
