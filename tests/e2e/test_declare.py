"""The declarative verbs driven as a user would: validate, apply, create-plan, lists, rebuild.

The flows live in :mod:`tests.support.declare_flow`; here they run on SQLite, the embedded
default, and ``tests/integration/test_apply_postgres.py`` runs them again with a PostgreSQL
catalog.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.cli import text
from tests.support.declare_flow import (
    LONG_TERM,
    PRODUCTION,
    SEED_AWS,
    Cli,
    apply_flow,
    create_plan_flow,
    example_config,
    lines,
    rebuild_flow,
    write_config,
)

pytestmark = pytest.mark.e2e


# -- SQLite (the embedded default) ------------------------------------------------------


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path / "home")


def test_validate_a_good_file(cli: Cli, tmp_path: Path) -> None:
    path = write_config(tmp_path / "strongroom.yaml", example_config(tmp_path))
    assert lines(cli.ok("validate", "-f", str(path))) == [
        f"{path}: valid strongroom configuration (0 errors, 0 warnings)"
    ]
    aws = cli.json("validate", "-f", str(SEED_AWS))
    assert (aws["kind"], aws["valid"], aws["errors"]) == ("aws-backup-plan", True, [])
    assert not (tmp_path / "home" / "catalog.db").exists()  # validate reads no catalog


def test_validate_a_bad_file_shows_every_error_with_its_line(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        """\
vaults:
  prod:
    url: file:///tmp/x
    key: {provider: passphrase, passphrase: hunter2}
resources:
  db:
    type: postgress
plans:
  p:
    rules:
      - name: daily
        schedule: cron(0 3 * * ?)
        target_vault: prod
        colour: red
"""
    )
    result = cli.run("validate", "-f", str(path))
    assert result.returncode == 2, text(result)
    output = lines(result.stdout.decode())
    assert [line.split(": ")[:2] for line in output[:4]] == [
        [f"{path}:4", "vaults.prod.key.passphrase"],
        [f"{path}:6", "resources.db"],
        [f"{path}:12", "plans.p.rules[0].schedule"],
        [f"{path}:14", "plans.p.rules[0].colour"],
    ]
    assert output[4] == (
        f"{path}:9: plans.p: warning: plan 'p' has no selections: its rules back up nothing"
    )
    assert output[5] == f"{path}: invalid strongroom configuration (4 errors, 1 warning)"
    assert "hunter2" not in result.stdout.decode()

    as_json = cli.run("validate", "-f", str(path), "--output", "json")
    assert as_json.returncode == 2
    report = json.loads(as_json.stdout)
    assert [(error["line"], error["path"]) for error in report["errors"]] == [
        (4, "vaults.prod.key.passphrase"),
        (6, "resources.db"),
        (12, "plans.p.rules[0].schedule"),
        (14, "plans.p.rules[0].colour"),
    ]

    refused = cli.run("apply", "-f", str(path))
    assert refused.returncode == 2
    assert f"{path}:14: plans.p.rules[0].colour: unknown key" in refused.stderr.decode()


def test_apply_flow(cli: Cli, tmp_path: Path) -> None:
    apply_flow(cli, tmp_path)


def test_create_plan_flow(cli: Cli, tmp_path: Path) -> None:
    create_plan_flow(cli, tmp_path)


def test_rebuild_flow(cli: Cli, tmp_path: Path) -> None:
    def delete_catalog() -> None:
        for name in ("catalog.db", "catalog.db-wal", "catalog.db-shm"):
            (cli.home / name).unlink(missing_ok=True)

    rebuild_flow(cli, tmp_path, delete_catalog)


def test_a_dry_run_creates_no_vault_and_no_catalog_rows(cli: Cli, tmp_path: Path) -> None:
    path = write_config(tmp_path / "strongroom.yaml", example_config(tmp_path))
    output = lines(cli.ok("apply", "-f", str(path), "--dry-run"))
    assert output[-1] == "dry run: 8 to create, 1 to update, 0 to remove; nothing was changed"
    assert not (tmp_path / PRODUCTION).exists()
    assert cli.json("list-plans") == []


def test_a_missing_passphrase_names_the_vault_and_the_reference(cli: Cli, tmp_path: Path) -> None:
    path = write_config(tmp_path / "strongroom.yaml", example_config(tmp_path))
    cli.env = {"SR_E2E_PRODUCTION": "production passphrase"}
    result = cli.run("apply", "-f", str(path))
    assert result.returncode == 2, text(result)
    error = result.stderr.decode()
    assert f"vault '{LONG_TERM}' at {(tmp_path / LONG_TERM).as_uri()}" in error
    assert "env:SR_E2E_LONG_TERM" in error
    assert "environment variable is not set" in error
    assert cli.json("list-resources") == []


def test_a_catalog_that_does_not_answer_is_a_retryable_error_naming_it(
    cli: Cli, tmp_path: Path
) -> None:
    path = write_config(tmp_path / "strongroom.yaml", example_config(tmp_path))
    cli.root = ("--catalog", "postgresql://strongroom@127.0.0.1:1/strongroom")
    result = cli.run("apply", "-f", str(path))
    assert result.returncode == 1, text(result)
    error = result.stderr.decode()
    assert error.startswith("error: the catalog at 127.0.0.1:1 does not answer")
    assert "usually temporary" in error
    assert "Traceback" not in error
