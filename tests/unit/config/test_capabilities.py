"""What cannot run yet is refused at its path and line, given what the layers above can run."""

from __future__ import annotations

import pytest

from strongroom.config.capabilities import Capabilities
from strongroom.config.load import load_text, validate_text
from strongroom.errors import UnsupportedError
from tests.unit.config.configs import SEED_AWS_PLAN, VALID, line_number

TODAY = Capabilities(
    source_types={"files", "mysql", "postgres", "sqlite"},
    store_schemes={"file", "memory"},
    copy_actions=False,
)
EVERYTHING = Capabilities(
    source_types={"files", "mysql", "postgres", "sqlite", "redis"},
    store_schemes={"file", "memory", "s3"},
    copy_actions=True,
)

ASKING_TOO_MUCH = VALID.replace(
    "resources:\n",
    "resources:\n  cache:\n    type: redis\n    url: redis://localhost:6379/0\n",
).replace(
    "      - name: weekly\n",
    "        copy_actions:\n          - destination_vault: archive\n      - name: weekly\n",
)


def _errors(text: str, capabilities: Capabilities | None) -> dict[str, tuple[int | None, str]]:
    return {
        issue.path: (issue.line, issue.message)
        for issue in validate_text(text, capabilities)
        if issue.severity == "error"
    }


def test_a_type_without_a_source_an_unserved_store_and_a_copy_action_are_each_refused() -> None:
    errors = _errors(ASKING_TOO_MUCH, TODAY)
    assert set(errors) == {
        "resources.cache.type",
        "vaults.archive.url",
        "plans.prod.rules[0].copy_actions",
    }
    line, message = errors["resources.cache.type"]
    assert line == line_number(ASKING_TOO_MUCH, "type: redis")
    assert "'redis'" in message and "files, mysql, postgres, sqlite" in message
    line, message = errors["vaults.archive.url"]
    assert line == line_number(ASKING_TOO_MUCH, "url: s3://")
    assert "s3:// stores are not supported yet; use file://, memory://" in message
    line, message = errors["plans.prod.rules[0].copy_actions"]
    assert line == line_number(ASKING_TOO_MUCH, "copy_actions:")
    assert "copy actions are not run yet" in message


def test_nothing_is_refused_when_everything_can_run_or_nobody_asks() -> None:
    assert _errors(ASKING_TOO_MUCH, EVERYTHING) == {}
    assert _errors(ASKING_TOO_MUCH, None) == {}


def test_a_refusal_is_reported_beside_the_other_errors_of_an_invalid_file() -> None:
    text = ASKING_TOO_MUCH.replace("schedule: cron(0 3 * * ? *)", "schedule: sometimes")
    errors = _errors(text, TODAY)
    assert "plans.prod.rules[0].schedule" in errors
    assert "resources.cache.type" in errors and "vaults.archive.url" in errors


def test_loading_refuses_with_an_unsupported_error_listing_each_path() -> None:
    with pytest.raises(UnsupportedError) as raised:
        load_text(ASKING_TOO_MUCH, "strongroom.yaml", TODAY)
    message = str(raised.value)
    assert "strongroom.yaml: invalid configuration (3 errors)" in message
    assert (
        f"strongroom.yaml:{line_number(ASKING_TOO_MUCH, 'type: redis')}: resources.cache.type:"
        in message
    )


def test_a_separate_cold_tier_store_is_checked_too() -> None:
    text = VALID.replace(
        "    cold_tier:\n      kind: same-store\n      min_storage_days: 0\n",
        "    cold_tier:\n      kind: separate-store\n      url: s3://cold-bucket/x\n",
    )
    errors = _errors(text, TODAY)
    assert "vaults.prod.cold_tier.url" in errors


def test_an_aws_plan_with_a_copy_action_is_refused_at_the_aws_field() -> None:
    text = SEED_AWS_PLAN.replace(
        "      StartWindowMinutes: 60\n",
        "      StartWindowMinutes: 60\n      CopyActions:\n"
        "        - DestinationBackupVaultArn: arn:aws:backup:us-east-1:123456789012:backup-vault:dr\n",
        1,
    )
    errors = _errors(text, TODAY)
    assert set(errors) == {"BackupPlan.Rules[0].CopyActions"}
    assert errors["BackupPlan.Rules[0].CopyActions"][0] == line_number(text, "CopyActions:")
    assert _errors(text, EVERYTHING) == {}


def test_a_type_or_scheme_the_schema_does_not_know_is_reported_once_by_the_schema() -> None:
    text = VALID.replace("type: postgres", "type: postgress").replace(
        "url: s3://archive-bucket", "url: ftp://archive-bucket"
    )
    errors = _errors(text, TODAY)
    assert "resources.orders-db.type" not in errors
    assert "vaults.archive.url" in errors
    assert "not supported yet" not in errors["vaults.archive.url"][1]
