"""The operational verbs driven as a user would, on the embedded SQLite catalog.

The flow lives in :mod:`tests.support.operations_flow`; it runs twice: once declaring
resources with ``strongroom apply -f`` (falling back to the services API while that
command does not exist), once through the services API.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.operations_flow import Cli, apply_exists, run_flow, set_up

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("use_apply", [True, False], ids=["apply", "services"])
def test_the_operations_flow(tmp_path: Path, use_apply: bool) -> None:
    cli = Cli(home=tmp_path / "home")
    seeded = run_flow(cli, tmp_path, use_apply=use_apply)
    assert seeded == ("apply" if use_apply and apply_exists(cli) else "services")


def test_usage_errors_are_one_line_with_a_hint(tmp_path: Path) -> None:
    cli = Cli(home=tmp_path / "home")
    set_up(cli, tmp_path, use_apply=False)

    no_vault = cli("start-backup", "docs", expect=2)
    assert "--vault" in no_vault.stderr.decode()
    unknown = cli("start-backup", "nothing", "--vault", "v", expect=3)
    assert "nothing" in unknown.stderr.decode()
    bad_target = cli("restore", "abcdef", "--target", "path", expect=2)
    assert "KEY=VALUE" in bad_target.stderr.decode()
    both = cli("verify", "abcdef", "--vault", "v", expect=2)
    assert "--vault" in both.stderr.decode()
    bad_since = cli("list-backups", "--since", "last week", expect=2)
    assert "duration" in bad_since.stderr.decode()
    assert cli("describe-job", "0123456789", expect=3).returncode == 3


def test_a_queued_job_can_be_cancelled(tmp_path: Path) -> None:
    cli = Cli(home=tmp_path / "home")
    set_up(cli, tmp_path, use_apply=False)
    job_id = cli("start-backup", "docs", "--vault", "v").stdout.decode().split()[-1]

    cli("cancel-job", job_id)

    described = cli.json("describe-job", job_id)
    assert [item["to"] for item in described["transitions"]] == ["CREATED", "PENDING", "ABORTED"]
    assert cli("cancel-job", job_id, expect=7).returncode == 7  # already ended
    assert cli("wait-job", job_id, expect=130).returncode == 130
    assert cli.json("list-recovery-points") == []
