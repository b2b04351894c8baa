"""create-plan and validate: plan documents (strongroom and AWS), lines, refusals by name."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from strongroom.catalog.resources import get_rule, list_plans
from strongroom.errors import ConfigError, ConflictError, NotFoundError, UnsupportedError
from strongroom.services.context import AppContext
from strongroom.services.declare.apply import ApplyService
from strongroom.services.declare.documents import read_plan_document, validate_document
from tests.unit.services.apply_support import loaded, new_context

REPOSITORY = Path(__file__).resolve().parents[4]
SEED_AWS = REPOSITORY / "examples" / "aws-backup-plan.json"
SEED_PLAN = "ecommerce-production-database-backup"


def vaults_config(root: Path, *names: str) -> str:
    """A configuration declaring vaults (key-file keys) and two resources, no plan."""
    vaults = "".join(
        f"""\
  {name}:
    url: {(root / name).as_uri()}
    key: {{provider: key-file, path: {root / "keys" / name}}}
    cold_tier: {{kind: same-store, min_storage_days: 0}}
"""
        for name in names
    )
    return f"""\
vaults:
{vaults}resources:
  ecommerce-prod-db:
    type: postgres
    password: env:PGPASSWORD
    tags: {{BackupEnabled: "true"}}
  orders:
    type: sqlite
    path: {root / "orders.db"}
"""


@pytest.fixture
def context(tmp_path: Path) -> Iterator[AppContext]:
    context = new_context(tmp_path / "home")
    yield context
    context.close()


@pytest.fixture
def seed_vaults(context: AppContext, tmp_path: Path) -> None:
    text = vaults_config(tmp_path, "ecommerce-production-vault", "ecommerce-long-term-vault")
    ApplyService(context).apply(loaded(text))


def write(path: Path, data: Any) -> Path:
    path.write_text(data if isinstance(data, str) else json.dumps(data, indent=2))
    return path


def test_create_plan_from_the_seed_aws_document(context: AppContext, seed_vaults: None) -> None:
    document = read_plan_document(SEED_AWS)
    assert document.kind == "aws-backup-plan"

    report = ApplyService(context).create_plans(document)

    assert [(c.action, c.kind, c.name) for c in report.changes] == [
        ("create", "plan", SEED_PLAN),
        ("create", "rule", f"{SEED_PLAN}/continuous-backup"),
        ("create", "rule", f"{SEED_PLAN}/daily-backup"),
        ("create", "rule", f"{SEED_PLAN}/weekly-backup"),
    ]
    with context.catalog.session(readonly=True) as session:
        weekly = get_rule(session, SEED_PLAN, "weekly-backup")
        assert weekly.vault.name == "ecommerce-long-term-vault"
        assert weekly.schedule == "cron(0 2 ? * SUN *)"
        assert weekly.timezone == "Etc/UTC"
        assert (weekly.start_window_minutes, weekly.completion_window_minutes) == (120, 360)
        assert weekly.lifecycle == {"move_to_cold_after_days": 90, "delete_after_days": 365}
        assert weekly.recovery_point_tags["Compliance"] == "required"
        assert weekly.retry_policy == {  # the seed's 3 retries after the first attempt
            "max_attempts": 4,
            "interval_seconds": 300,
            "backoff_rate": 2.0,
        }
    # The seed document has no selection: the plan backs up nothing yet, and says so.
    assert any(warning.code == "no_selection" for warning in report.warnings)


def test_create_plan_needs_its_vaults_registered_and_names_rule_and_vault(
    context: AppContext,
) -> None:
    with pytest.raises(NotFoundError) as raised:
        ApplyService(context).create_plans(read_plan_document(SEED_AWS))

    lines = raised.value.message.splitlines()
    assert lines[0].endswith("the plan cannot be created (3 errors)")
    assert lines[3] == (
        f"rule 'weekly-backup' of plan '{SEED_PLAN}' targets vault 'ecommerce-long-term-vault', "
        "which is not registered in the catalog (none is registered)"
    )
    with context.catalog.session(readonly=True) as session:
        assert list_plans(session) == []


def test_aws_selections_with_arns_select_registered_resources(
    context: AppContext, seed_vaults: None, tmp_path: Path
) -> None:
    raw = json.loads(SEED_AWS.read_text())
    raw["BackupSelections"] = [
        {
            "BackupSelection": {
                "SelectionName": "rds",
                "IamRoleArn": "arn:aws:iam::123456789012:role/backup",
                "Resources": ["arn:aws:rds:us-east-1:123456789012:db:ecommerce-prod-db"],
            }
        },
        {
            "SelectionName": "tagged",
            "IamRoleArn": "arn:aws:iam::123456789012:role/backup",
            "ListOfTags": [
                {
                    "ConditionType": "STRINGEQUALS",
                    "ConditionKey": "BackupEnabled",
                    "ConditionValue": "true",
                }
            ],
        },
    ]
    report = ApplyService(context).create_plans(
        read_plan_document(write(tmp_path / "plan.json", raw))
    )
    assert report.selections == {SEED_PLAN: ["ecommerce-prod-db"]}

    raw["BackupSelections"][0]["BackupSelection"]["Resources"] = [
        "arn:aws:rds:us-east-1:123456789012:db:unknown-db"
    ]
    with pytest.raises(NotFoundError, match="names resource 'unknown-db', which is not registered"):
        ApplyService(context).create_plans(
            read_plan_document(write(tmp_path / "plan.json", raw)), replace=True
        )


def test_unsupported_aws_fields_are_refused_by_name_with_their_line(tmp_path: Path) -> None:
    raw = json.loads(SEED_AWS.read_text())
    raw["BackupPlan"]["Rules"][1]["EnableContinuousBackup"] = True
    raw["BackupPlan"]["AdvancedBackupSettings"] = [
        {"ResourceType": "EC2", "BackupOptions": {"WindowsVSS": "enabled"}}
    ]
    path = write(tmp_path / "plan.json", raw)
    text = path.read_text().splitlines()

    with pytest.raises(UnsupportedError) as raised:
        read_plan_document(path)

    message = raised.value.message
    continuous = next(i for i, line in enumerate(text, 1) if "EnableContinuousBackup" in line)
    advanced = next(i for i, line in enumerate(text, 1) if "AdvancedBackupSettings" in line)
    assert f"{path}:{continuous}: BackupPlan.Rules[1].EnableContinuousBackup: " in message
    assert f"{path}:{advanced}: BackupPlan.AdvancedBackupSettings: " in message
    assert "strongroom cannot honour EnableContinuousBackup" in message


def test_a_single_strongroom_plan_in_yaml(
    context: AppContext, seed_vaults: None, tmp_path: Path
) -> None:
    path = write(
        tmp_path / "plan.yaml",
        """\
name: orders-hourly
description: every hour
rules:
  - name: hourly
    schedule: rate(1 hour)
    target_vault: ecommerce-production-vault
    lifecycle: {delete_after_days: 2}
selections:
  - name: orders
    names: [orders]
""",
    )
    document = read_plan_document(path)
    assert (document.kind, list(document.plans)) == ("strongroom-plan", ["orders-hourly"])

    report = ApplyService(context).create_plans(document)

    assert report.selections == {"orders-hourly": ["orders"]}
    with context.catalog.session(readonly=True) as session:
        assert get_rule(session, "orders-hourly", "hourly").schedule == "rate(1 hour)"

    with pytest.raises(ConflictError, match="'orders-hourly' already exists"):
        ApplyService(context).create_plans(document)
    replaced = ApplyService(context).create_plans(document, replace=True)
    assert not replaced.changed


def test_a_plans_document_may_hold_several_plans(
    context: AppContext, seed_vaults: None, tmp_path: Path
) -> None:
    rule = "{name: r, schedule: rate(12 hours), target_vault: ecommerce-production-vault}"
    path = write(
        tmp_path / "plans.yaml",
        f"""\
version: 1
plans:
  first:
    rules: [{rule}]
    selections: [{{name: all, names: ["*"]}}]
  second:
    rules: [{rule}]
    selections: [{{name: db, resource_types: [postgres]}}]
""",
    )
    report = ApplyService(context).create_plans(read_plan_document(path))
    assert report.selections == {
        "first": ["ecommerce-prod-db", "orders"],
        "second": ["ecommerce-prod-db"],
    }


def test_plan_document_errors_come_all_at_once_with_lines(tmp_path: Path) -> None:
    path = write(
        tmp_path / "plan.yaml",
        """\
name: p
rules:
  - name: hourly
    schedule: every hour
    target_vault: v
    start_window_minutes: 5
    colour: blue
""",
    )
    with pytest.raises(ConfigError) as raised:
        read_plan_document(path)
    lines = raised.value.message.splitlines()
    assert lines[0] == f"{path}: invalid configuration (3 errors)"
    assert lines[1].startswith(f"{path}:4: rules[0].schedule: ")
    assert (
        lines[2]
        == f"{path}:6: rules[0].start_window_minutes: Input should be greater than or equal to 60"
    )
    assert lines[3].startswith(f"{path}:7: rules[0].colour: unknown key")


def test_create_plan_refuses_vaults_and_resources(tmp_path: Path) -> None:
    path = write(tmp_path / "config.yaml", vaults_config(tmp_path, "v"))
    with pytest.raises(ConfigError, match="create-plan reads plans only"):
        read_plan_document(path)


def test_validate_tells_the_kinds_apart(tmp_path: Path) -> None:
    config = validate_document(write(tmp_path / "c.yaml", vaults_config(tmp_path, "v")))
    assert (config.kind, config.valid) == ("strongroom", True)

    aws = validate_document(SEED_AWS)
    assert (aws.kind, aws.valid) == ("aws-backup-plan", True)
    assert [warning.code for warning in aws.warnings] == ["aws_references"]

    plan = validate_document(
        write(tmp_path / "p.yaml", "name: p\nrules:\n  - name: r\n    schedule: nope\n")
    )
    assert plan.kind == "strongroom-plan"
    assert [(issue.line, issue.path) for issue in plan.errors] == [
        (3, "rules[0].target_vault"),
        (4, "rules[0].schedule"),
    ]

    missing = validate_document(tmp_path / "absent.yaml")
    assert not missing.valid
    assert missing.errors[0].message.startswith("cannot read the file")
