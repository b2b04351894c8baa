"""The notifications section: channels and event rules, validated with paths and reasons."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from strongroom.config.models import StrongroomConfig


def errors_of(notifications: dict[str, Any]) -> dict[tuple[str | int, ...], str]:
    with pytest.raises(ValidationError) as caught:
        StrongroomConfig.model_validate({"notifications": notifications})
    return {tuple(error["loc"]): error["msg"] for error in caught.value.errors()}


def test_a_full_section_validates_and_keeps_every_secret_a_reference() -> None:
    config = StrongroomConfig.model_validate(
        {
            "notifications": {
                "channels": {
                    "slack": {"type": "apprise", "url": "env:SLACK_URL"},
                    "mail": {
                        "type": "email",
                        "host": "mail.example.com",
                        "password": "file:/run/secrets/smtp",
                        "username": "strongroom",
                        "sender": "backup@example.com",
                        "recipients": ["ops@example.com"],
                        "min_severity": "warning",
                    },
                    "pager": {"type": "pagerduty", "routing_key": "env:PD_KEY"},
                },
                "rules": [
                    {
                        "name": "failures",
                        "pattern": {"types": ["backup.escalation"], "resource_types": ["postgres"]},
                        "targets": [{"channel": "mail"}, {"channel": "pager"}],
                    },
                    {
                        "name": "verify",
                        "pattern": {"types": ["backup.job.completed"]},
                        "targets": [{"start_job": {"kind": "restore_test"}}],
                        "retry": {"max_attempts": 2, "max_event_age_seconds": 3600},
                    },
                ],
            }
        }
    )

    rules = config.notifications.rules
    assert [rule.name for rule in rules] == ["failures", "verify"]
    assert rules[1].targets[0].key(0) == "start_job:restore_test"
    assert config.notifications.channels["pager"].type == "pagerduty"


def test_a_literal_secret_in_a_channel_is_refused_without_repeating_it() -> None:
    errors = errors_of(
        {"channels": {"slack": {"type": "apprise", "url": "slack://T000/B000/very-secret"}}}
    )

    ((where, message),) = errors.items()
    assert where == ("notifications", "channels", "slack", "apprise", "url")
    assert "literal secret" in message and "very-secret" not in message


def test_credentials_in_a_webhook_url_are_refused() -> None:
    errors = errors_of(
        {"channels": {"hook": {"type": "webhook", "url": "https://user:pw@hooks.example.com/x"}}}
    )

    assert "no credentials in the URL" in " ".join(errors.values())


def test_a_rule_naming_an_unknown_channel_names_the_known_ones() -> None:
    errors = errors_of(
        {
            "channels": {"mail": {"type": "webhook", "url": "https://hooks.example.com/x"}},
            "rules": [{"name": "r", "targets": [{"channel": "pager"}]}],
        }
    )

    assert errors == {
        ("notifications", "rules", 0, "targets", 0, "channel"): (
            "no channel named 'pager' (channels: mail)"
        )
    }


def test_a_target_has_exactly_one_kind_and_rule_names_are_unique() -> None:
    errors = errors_of(
        {
            "rules": [
                {"name": "r", "targets": [{}]},
                {
                    "name": "r",
                    "targets": [
                        {
                            "start_job": {"kind": "verify"},
                            "webhook": {"url": "https://x.example.com"},
                        }
                    ],
                },
            ]
        }
    )

    assert (
        "exactly one of channel, start_job, webhook"
        in errors[("notifications", "rules", 0, "targets", 0)]
    )
    assert ("notifications", "rules", 1, "targets", 0) in errors


def test_the_shipped_example_of_the_seeds_flows_validates() -> None:
    example = Path(__file__).resolve().parents[3] / "examples" / "notifications.yaml"

    config = StrongroomConfig.model_validate(yaml.safe_load(example.read_text()))

    names = [rule.name for rule in config.notifications.rules]
    assert names == [
        "verify-every-backup",
        "restore-test-production",
        "copy-postgres-to-dr",
        "run-summary",
        "escalate",
        "monitor",
        "dead-letters",
    ]


def _copy_rule(**start_job: Any) -> dict[str, Any]:
    return {
        "vaults": {
            "main": {"url": "file:///tmp/main", "key": {"provider": "env", "variable": "K"}},
            "dr": {"url": "file:///tmp/dr", "key": {"provider": "env", "variable": "K"}},
        },
        "notifications": {
            "rules": [
                {
                    "name": "copy-postgres",
                    "pattern": {"types": ["backup.job.completed"], "resource_types": ["postgres"]},
                    "targets": [{"start_job": {"kind": "copy", **start_job}}],
                }
            ]
        },
    }


def test_a_copy_target_names_a_declared_vault_and_has_its_own_lifecycle() -> None:
    config = StrongroomConfig.model_validate(
        _copy_rule(destination_vault="dr", lifecycle={"delete_after_days": 90})
    )
    [target] = config.notifications.rules[0].targets
    assert target.key(0) == "start_job:copy:dr"
    assert target.start_job is not None and target.start_job.lifecycle is not None
    assert target.start_job.lifecycle.delete_after_days == 90

    with pytest.raises(ValidationError) as caught:
        StrongroomConfig.model_validate(_copy_rule(destination_vault="nowhere"))
    [error] = caught.value.errors()
    where = ("notifications", "rules", 0, "targets", 0, "start_job", "destination_vault")
    assert tuple(error["loc"]) == where and "nowhere" in error["msg"]


@pytest.mark.parametrize(
    ("start_job", "field"),
    [
        ({"kind": "copy"}, "destination_vault"),
        ({"kind": "verify", "destination_vault": "dr"}, "destination_vault"),
        ({"kind": "restore_test", "lifecycle": {"delete_after_days": 3}}, "lifecycle"),
    ],
)
def test_a_start_job_refuses_the_fields_of_another_kind(
    start_job: dict[str, Any], field: str
) -> None:
    errors = errors_of({"rules": [{"name": "r", "targets": [{"start_job": start_job}]}]})
    [(where, message)] = errors.items()
    assert where[:4] == ("notifications", "rules", 0, "targets") and field in message
