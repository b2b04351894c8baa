"""AWS Backup plan documents: accepted shapes, conversion, refusals by name."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from strongroom.config.aws import (
    analyse_aws_document,
    detect_document_kind,
    plan_from_aws,
    vault_name_from_arn,
)
from strongroom.config.load import load_config, load_text, validate_text
from strongroom.errors import ConfigError, UnsupportedError
from tests.unit.config.configs import EXAMPLES, SEED_AWS_PLAN, line_number

SEED_PLAN = "ecommerce-production-database-backup"


def aws_rule(**changes: Any) -> dict[str, Any]:
    return {
        "RuleName": "daily",
        "TargetBackupVaultName": "prod",
        "ScheduleExpression": "cron(0 3 * * ? *)",
        **changes,
    }


def document(*rules: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"BackupPlan": {"BackupPlanName": "p", "Rules": list(rules or [aws_rule()])}, **extra}


def test_the_seed_plan_converts_rule_by_rule() -> None:
    loaded = load_text(SEED_AWS_PLAN)
    assert loaded.kind == "aws-backup-plan"
    plan = loaded.config.plans[SEED_PLAN]
    weekly = plan.rule("weekly-backup")
    assert weekly.schedule == "cron(0 2 ? * SUN *)"
    assert (weekly.start_window_minutes, weekly.completion_window_minutes) == (120, 360)
    assert weekly.target_vault == "ecommerce-long-term-vault"
    assert (weekly.lifecycle.move_to_cold_after_days, weekly.lifecycle.delete_after_days) == (
        90,
        365,
    )
    assert weekly.recovery_point_tags == {
        "Environment": "production",
        "BackupType": "weekly",
        "Criticality": "high",
        "Compliance": "required",
    }
    assert [rule.name for rule in plan.rules] == [
        "continuous-backup",
        "daily-backup",
        "weekly-backup",
    ]
    [note] = loaded.warnings
    assert "'ecommerce-production-vault', 'ecommerce-long-term-vault'" in note.message


def test_get_backup_plan_output_is_accepted_and_its_metadata_ignored() -> None:
    loaded = load_config(EXAMPLES / "aws-backup-plan.json")
    plan = loaded.config.plans[SEED_PLAN]
    assert [rule.timezone for rule in plan.rules] == ["Etc/UTC"] * 3
    raw = json.loads((EXAMPLES / "aws-backup-plan.json").read_text(encoding="utf-8"))
    assert {"BackupPlanId", "BackupPlanArn", "VersionId", "CreationDate"} <= set(raw)
    seed = load_text(SEED_AWS_PLAN).config.plans[SEED_PLAN]
    assert [r.model_copy(update={"timezone": "UTC"}) for r in plan.rules] == seed.rules


def test_the_bare_plan_object_of_create_backup_plan_is_accepted() -> None:
    text = json.dumps({"BackupPlanName": "p", "Rules": [aws_rule()]})
    assert detect_document_kind(json.loads(text)) == "aws-backup-plan"
    assert load_text(text).config.plans["p"].rules[0].target_vault == "prod"
    [issue] = [
        i for i in validate_text(text.replace('"daily"', '"bad name!"')) if i.severity == "error"
    ]
    assert issue.path == "Rules[0].RuleName"


def test_detection_tells_the_shapes_apart() -> None:
    assert detect_document_kind({"BackupPlan": {}}) == "aws-backup-plan"
    assert detect_document_kind({"vaults": {}, "plans": {}}) == "strongroom"
    assert detect_document_kind({"Rules": []}) == "strongroom"
    assert detect_document_kind([1, 2]) == "strongroom"


def test_aws_defaults_apply_where_aws_leaves_fields_out() -> None:
    _, plan = plan_from_aws(document({"RuleName": "r", "TargetBackupVaultName": "v"}))
    [rule] = plan.rules
    assert rule.schedule == "cron(0 5 ? * * *)"
    assert (rule.start_window_minutes, rule.completion_window_minutes) == (480, 10080)
    assert rule.timezone == "UTC"


def test_vault_arns_become_vault_names() -> None:
    arn = "arn:aws:backup:eu-west-1:123456789012:backup-vault:dr-vault"
    assert vault_name_from_arn(arn) == "dr-vault"
    assert vault_name_from_arn("arn:aws-us-gov:backup:us-gov-west-1:1:backup-vault:v") == "v"
    assert vault_name_from_arn("plain-name") == "plain-name"
    with pytest.raises(ConfigError, match="not a backup vault ARN"):
        vault_name_from_arn("arn:aws:s3:::bucket")
    _, plan = plan_from_aws(
        document(
            aws_rule(
                CopyActions=[
                    {"DestinationBackupVaultArn": arn, "Lifecycle": {"DeleteAfterDays": 90}}
                ]
            )
        )
    )
    [copy] = plan.rules[0].copy_actions
    assert (copy.destination_vault, copy.lifecycle.delete_after_days) == ("dr-vault", 90)


def test_a_wrong_vault_arn_is_reported_at_its_field() -> None:
    text = json.dumps(
        document(aws_rule(CopyActions=[{"DestinationBackupVaultArn": "arn:aws:s3:::x"}])),
        indent=2,
    )
    [issue] = [i for i in validate_text(text) if i.severity == "error"]
    assert issue.path == "BackupPlan.Rules[0].CopyActions[0].DestinationBackupVaultArn"
    assert issue.line == line_number(text, "DestinationBackupVaultArn")


@pytest.mark.parametrize(
    ("rule_changes", "field"),
    [
        ({"EnableContinuousBackup": True}, "EnableContinuousBackup"),
        ({"IndexActions": [{"ResourceTypes": ["EBS"]}]}, "IndexActions"),
        ({"ScanActions": [{"MalwareScanner": "GUARDDUTY"}]}, "ScanActions"),
        (
            {"TargetLogicallyAirGappedBackupVaultArn": "arn:aws:backup:r:1:backup-vault:x"},
            "TargetLogicallyAirGappedBackupVaultArn",
        ),
    ],
)
def test_rule_features_strongroom_cannot_honour_are_refused_by_name(
    rule_changes: dict[str, Any], field: str
) -> None:
    with pytest.raises(UnsupportedError) as caught:
        plan_from_aws(document(aws_rule(**rule_changes)))
    assert f"BackupPlan.Rules[0].{field}: strongroom cannot honour {field}" in caught.value.message


def test_plan_level_advanced_settings_are_refused_with_their_lines() -> None:
    text = (
        SEED_AWS_PLAN
        + "  AdvancedBackupSettings:\n    - ResourceType: EC2\n"
        + "      BackupOptions: {WindowsVSS: enabled}\n"
    )
    [issue] = [i for i in validate_text(text) if i.severity == "error"]
    assert issue.path == "BackupPlan.AdvancedBackupSettings"
    assert issue.code == "unsupported"
    assert issue.line == line_number(text, "AdvancedBackupSettings")
    assert "Windows VSS" in issue.message
    text = SEED_AWS_PLAN.replace(
        "      StartWindowMinutes: 120",
        "      StartWindowMinutes: 120\n      EnableContinuousBackup: true",
    )
    [issue] = [i for i in validate_text(text) if i.severity == "error"]
    assert (issue.path, issue.line) == (
        "BackupPlan.Rules[2].EnableContinuousBackup",
        line_number(text, "EnableContinuousBackup"),
    )


def test_fields_that_ask_for_nothing_are_accepted() -> None:
    plan_from_aws(
        document(
            aws_rule(
                EnableContinuousBackup=False,
                IndexActions=[],
                Lifecycle={"OptInToArchiveForSupportedResources": True},
            ),
            AdvancedBackupSettings=[],
        )
    )


def test_unknown_aws_keys_are_errors_with_their_line() -> None:
    text = SEED_AWS_PLAN.replace(
        "      StartWindowMinutes: 60\n", "      StartWindowMinute: 60\n", 1
    )
    [issue] = [i for i in validate_text(text) if i.severity == "error"]
    assert issue.path == "BackupPlan.Rules[0].StartWindowMinute"
    assert issue.line == line_number(text, "StartWindowMinute:")
    assert "did you mean 'StartWindowMinutes'?" in issue.message


def test_strongroom_checks_are_reported_at_the_aws_field() -> None:
    text = SEED_AWS_PLAN.replace("CompletionWindowMinutes: 240", "CompletionWindowMinutes: 90")
    text = text.replace('ScheduleExpression: "cron(0 2 ? * SUN *)"', "ScheduleExpression: weekly")
    text = text.replace("        DeleteAfterDays: 30\n", "        DeleteAfterDays: 5\n")
    issues = [i for i in validate_text(text) if i.severity == "error"]
    assert [(issue.path, issue.line) for issue in issues] == [
        ("BackupPlan.Rules[0].Lifecycle.DeleteAfterDays", line_number(text, "DeleteAfterDays: 5")),
        (
            "BackupPlan.Rules[1].CompletionWindowMinutes",
            line_number(text, "CompletionWindowMinutes: 90"),
        ),
        ("BackupPlan.Rules[2].ScheduleExpression", line_number(text, "Expression: weekly")),
    ]


def test_both_plan_name_spellings_must_agree() -> None:
    findings = analyse_aws_document(
        {"BackupPlan": {"BackupPlanName": "a", "Name": "b", "Rules": [aws_rule()]}}
    ).findings
    assert [(f.location, f.code) for f in findings] == [(("BackupPlan", "Name"), "plan_name")]
    findings = analyse_aws_document({"BackupPlan": {"Rules": [aws_rule()]}}).findings
    assert [(f.location, f.code) for f in findings] == [
        (("BackupPlan", "BackupPlanName"), "missing")
    ]


def test_a_rule_without_vault_is_reported() -> None:
    findings = analyse_aws_document(
        document({"RuleName": "r", "ScheduleExpression": "cron(0 3 * * ? *)"})
    ).findings
    assert [(f.location, f.code) for f in findings] == [
        (("BackupPlan", "Rules", 0, "TargetBackupVaultName"), "missing")
    ]


class TestSelections:
    def test_the_seed_tag_selection_becomes_list_of_tags(self) -> None:
        selection = {
            "SelectionName": "RDSBackupSelection",
            "IamRoleArn": "arn:aws:iam::123456789012:role/aws-backup-service-role",
            "ListOfTags": [
                {
                    "ConditionType": "STRINGEQUALS",
                    "ConditionKey": "BackupEnabled",
                    "ConditionValue": "true",
                },
                {
                    "ConditionType": "STRINGEQUALS",
                    "ConditionKey": "aws:ResourceTag/Environment",
                    "ConditionValue": "production",
                },
            ],
        }
        _, plan = plan_from_aws(document(BackupSelection=selection))
        [converted] = plan.selections
        assert converted.name == "RDSBackupSelection"
        assert [(tag.key, tag.value) for tag in converted.list_of_tags] == [
            ("BackupEnabled", "true"),
            ("Environment", "production"),
        ]
        assert converted.selects("db", "postgres", {"Environment": "production"})

    def test_conditions_resources_and_envelopes(self) -> None:
        envelope = {
            "BackupSelection": {
                "SelectionName": "prod",
                "IamRoleArn": "arn:aws:iam::1:role/r",
                "Resources": ["*"],
                "NotResources": ["arn:aws:rds:us-east-1:1:db:scratch-db"],
                "Conditions": {
                    "StringEquals": [
                        {"ConditionKey": "aws:ResourceTag/backup", "ConditionValue": "true"}
                    ],
                    "StringNotLike": [
                        {"ConditionKey": "aws:ResourceTag/stage", "ConditionValue": "dev*"}
                    ],
                },
            },
            "SelectionId": "abc",
            "BackupPlanId": "def",
            "CreationDate": "2025-10-26T09:14:05Z",
        }
        bare = {"SelectionName": "named", "Resources": ["arn:aws:rds:us-east-1:1:db:orders"]}
        _, plan = plan_from_aws(document(BackupSelections=[envelope, bare]))
        prod, named = plan.selections
        assert prod.names == ["*"]
        assert prod.not_names == ["scratch-db"]
        assert prod.selects("orders", "postgres", {"backup": "true", "stage": "prod"})
        assert not prod.selects("orders", "postgres", {"backup": "true", "stage": "dev-1"})
        assert not prod.selects("scratch-db", "postgres", {"backup": "true"})
        assert named.names == ["orders"]
        conversion = analyse_aws_document(document(BackupSelections=[envelope, bare]))
        assert conversion.resources == ("scratch-db", "orders")

    def test_resource_type_patterns_are_refused_by_name(self) -> None:
        text = json.dumps(
            document(
                BackupSelection={
                    "SelectionName": "all-rds",
                    "Resources": ["arn:aws:rds:*:*:db:*"],
                    "ListOfTags": [{"ConditionKey": "k", "ConditionValue": "v"}],
                }
            ),
            indent=2,
        )
        [issue] = [i for i in validate_text(text) if i.severity == "error"]
        assert issue.path == "BackupSelection.Resources[0]"
        assert issue.code == "unsupported"
        assert "arn:aws:rds:*:*:db:*" in issue.message
        with pytest.raises(UnsupportedError):
            plan_from_aws(json.loads(text))

    def test_non_tag_condition_keys_are_refused(self) -> None:
        findings = analyse_aws_document(
            document(
                BackupSelection={
                    "SelectionName": "s",
                    "Conditions": {
                        "StringEquals": [
                            {"ConditionKey": "aws:PrincipalArn", "ConditionValue": "x"}
                        ]
                    },
                }
            )
        ).findings
        assert [(f.location, f.code) for f in findings] == [
            (
                ("BackupSelection", "Conditions", "StringEquals", 0, "ConditionKey"),
                "unsupported",
            )
        ]


def test_plan_from_aws_raises_config_error_for_plain_mistakes(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        plan_from_aws(document(aws_rule(StartWindowMinutes="soon")))
    assert not isinstance(caught.value, UnsupportedError)
    assert "BackupPlan.Rules[0].StartWindowMinutes" in caught.value.message
