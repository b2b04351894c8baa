"""What cannot run yet is refused by ``validate``, ``apply`` and ``create-plan``, at its path.

A resource type without a source would be stored and then fail at every backup; the CLI
refuses it with exit status 2, an error
naming its path and line, and changes nothing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from strongroom.config.resources import RESOURCE_TYPES
from strongroom.sources import REGISTRY
from tests.support.cli import text
from tests.support.declare_flow import Cli, write_config

pytestmark = pytest.mark.e2e

_SETTINGS: dict[str, dict[str, Any]] = {
    "redis": {"url": "redis://127.0.0.1:6379/0"},
    "kafka": {"bootstrap_servers": ["127.0.0.1:9092"], "topics": ["orders"]},
    "kubernetes": {},
}
"""Valid settings of each type the schema knows, for the types without a source."""


def _unregistered_type() -> str:
    unregistered = sorted(set(RESOURCE_TYPES) - REGISTRY.keys())
    if not unregistered:
        pytest.skip("every resource type of the schema has a source")
    return unregistered[0]


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


def _refused(cli: Cli, path: Path, where: str, says: str) -> None:
    """validate and apply both exit 2 naming ``where``; the catalog stays empty."""
    result = cli.run("validate", "-f", str(path), "--output", "json")
    assert result.returncode == 2, text(result)
    errors = {error["path"]: error for error in json.loads(result.stdout)["errors"]}
    assert list(errors) == [where], text(result)
    assert says in errors[where]["message"] and errors[where]["line"] is not None

    result = cli.run("apply", "-f", str(path))
    assert result.returncode == 2, text(result)
    assert f"{path}:{errors[where]['line']}: {where}: " in text(result)
    assert says in text(result)
    assert cli.json("list-resources") == [] and cli.json("list-plans") == []


def test_a_resource_type_without_a_source_is_refused(cli: Cli, tmp_path: Path) -> None:
    kind = _unregistered_type()
    config = _config(tmp_path)
    config["resources"]["other"] = {"type": kind, **_SETTINGS[kind]}
    path = write_config(tmp_path / "strongroom.yaml", config)
    _refused(cli, path, "resources.other.type", f"resources of type {kind!r} cannot be backed up")


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
