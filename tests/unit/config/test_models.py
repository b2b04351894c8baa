"""The configuration models: defaults, single-model checks, selection semantics."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from strongroom.config.models import (
    ConcurrencyConfig,
    Lifecycle,
    RetryOverride,
    RetryPolicy,
    Selection,
    StrongroomConfig,
    VaultConfig,
    VaultLock,
)
from strongroom.config.plans import BackupRule
from strongroom.config.schema import _all_models

KEY = {"provider": "passphrase", "passphrase": "env:STRONGROOM_PASSPHRASE"}


def errors(model: type[BaseModel], data: dict[str, Any]) -> list[tuple[tuple[Any, ...], str]]:
    """Validate and return ``(location, message)`` of every error."""
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    return [(error["loc"], error["msg"]) for error in caught.value.errors()]


def rule(**changes: Any) -> dict[str, Any]:
    return {"name": "daily", "schedule": "cron(0 3 * * ? *)", "target_vault": "v", **changes}


def test_every_field_of_every_model_has_a_description() -> None:
    missing = [
        f"{model.__name__}.{name}"
        for model in _all_models(StrongroomConfig)
        for name, field in model.model_fields.items()
        if not (field.description and field.description.strip())
    ]
    assert missing == []


def test_every_model_forbids_unknown_keys() -> None:
    assert all(
        model.model_config.get("extra") == "forbid" for model in _all_models(StrongroomConfig)
    )


def test_an_empty_configuration_is_valid_with_the_seed_retry_policy() -> None:
    config = StrongroomConfig.model_validate({})
    assert config.retry == RetryPolicy(max_attempts=3, interval_seconds=300, backoff_rate=2.0)
    assert config.catalog.url is None
    assert config.concurrency.global_ == 4


def test_retry_delays_grow_by_the_backoff_rate() -> None:
    policy = RetryPolicy()
    assert [policy.delay_before_retry(n) for n in (1, 2, 3)] == [300.0, 600.0, 1200.0]
    with pytest.raises(ValueError, match="start at 1"):
        policy.delay_before_retry(0)


def test_retry_overrides_apply_field_by_field_plan_then_rule() -> None:
    config = StrongroomConfig.model_validate(
        {
            "retry": {"max_attempts": 5},
            "vaults": {"v": {"url": "memory://v", "key": KEY}},
            "plans": {
                "p": {
                    "retry": {"interval_seconds": 60},
                    "rules": [rule(), rule(name="fast", retry={"backoff_rate": 1.5})],
                }
            },
        }
    )
    assert config.retry_for("p", "daily") == RetryPolicy(max_attempts=5, interval_seconds=60)
    assert config.retry_for("p", "fast") == RetryPolicy(
        max_attempts=5, interval_seconds=60, backoff_rate=1.5
    )
    assert RetryOverride().apply_to(config.retry) is config.retry
    with pytest.raises(KeyError):
        config.retry_for("p", "absent")


def test_concurrency_reads_the_global_key() -> None:
    concurrency = ConcurrencyConfig.model_validate(
        {"global": 8, "per_vault": 2, "per_resource_type": {"postgres": 1}}
    )
    assert concurrency.global_ == 8
    assert concurrency.model_dump(by_alias=True)["global"] == 8
    assert errors(ConcurrencyConfig, {"global_": 8}) == [
        (("global_",), "Extra inputs are not permitted")
    ]
    assert errors(ConcurrencyConfig, {"per_resource_type": {"postgres": 0}}) == [
        (("per_resource_type", "postgres"), "a limit is at least 1")
    ]
    assert errors(ConcurrencyConfig, {"per_resource_type": {"oracle": 1}})[0][0] == (
        "per_resource_type",
        "oracle",
        "[key]",
    )


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("ftp://host/x", "unsupported store URL scheme"),
        ("file://relative/path", "absolute path"),
        ("file:relative", "absolute path"),
        ("s3://UPPER/x", "bucket name"),
        ("s3://key:secret@bucket/x", "credentials are not allowed"),
        ("s3://bucket/x?region=eu", "no query"),
        ("memory://", "needs a name"),
    ],
)
def test_store_urls_are_checked(url: str, fragment: str) -> None:
    [(location, message)] = errors(VaultConfig, {"url": url, "key": KEY})
    assert location == ("url",)
    assert fragment in message
    assert "secret" not in message or "credentials" in message


@pytest.mark.parametrize(
    "url",
    ["file:///var/lib/strongroom", "file://localhost/srv/v", "s3://my.bucket-1", "memory://t"],
)
def test_valid_store_urls_pass(url: str) -> None:
    assert VaultConfig.model_validate({"url": url, "key": KEY}).url == url


def test_vault_settings_must_fit_the_store() -> None:
    found = errors(
        VaultConfig,
        {
            "url": "file:///v",
            "key": KEY,
            "s3": {"region": "eu-west-1"},
            "cold_tier": {"kind": "same-store", "storage_class": "GLACIER"},
            "pack_size_bytes": 1048576,
        },
    )
    assert [location for location, _ in found] == [
        ("s3",),
        ("cold_tier", "storage_class"),
        ("pack_size_bytes",),
    ]


def test_s3_keys_come_in_pairs() -> None:
    found = errors(
        VaultConfig,
        {"url": "s3://bucket", "key": KEY, "s3": {"access_key_id": "env:AWS_ACCESS_KEY_ID"}},
    )
    assert found == [
        (
            ("s3", "secret_access_key"),
            "access_key_id and secret_access_key are given together or not at all",
        )
    ]


def test_cold_tier_minimum_follows_the_storage_class_unless_set() -> None:
    def tier(**settings: Any) -> int:
        vault = VaultConfig.model_validate(
            {"url": "s3://bucket", "key": KEY, "cold_tier": {"kind": "same-store", **settings}}
        )
        return vault.cold_tier.minimum_storage_days

    assert tier(storage_class="GLACIER") == 90
    assert tier(storage_class="DEEP_ARCHIVE") == 180
    assert tier(storage_class="GLACIER", min_storage_days=120) == 120
    assert tier(storage_class="VENDOR_COLD", min_storage_days=14) == 14
    assert tier() == 0
    [(location, message)] = errors(
        VaultConfig,
        {
            "url": "s3://bucket",
            "key": KEY,
            "cold_tier": {"kind": "same-store", "storage_class": "GLACIER", "min_storage_days": 30},
        },
    )
    assert location == ("cold_tier", "same-store", "min_storage_days")
    assert "GLACIER keeps objects at least 90 days; min_storage_days 30 is lower" in message


def test_lock_rules() -> None:
    assert errors(VaultLock, {"min_retention_days": 10, "max_retention_days": 5}) == [
        (("max_retention_days",), "max_retention_days (5) is smaller than min_retention_days (10)")
    ]
    [(location, message)] = errors(VaultLock, {"mode": "compliance"})
    assert location == ("changeable_for_days",)
    assert "grace period" in message
    [(location, _)] = errors(VaultLock, {"changeable_for_days": 3})
    assert location == ("changeable_for_days",)
    [(location, _)] = errors(VaultLock, {"mode": "compliance", "changeable_for_days": 2})
    assert location == ("changeable_for_days",)


def test_lifecycle_deletes_after_the_cold_move() -> None:
    assert errors(Lifecycle, {"move_to_cold_after_days": 30, "delete_after_days": 30}) == [
        (
            ("delete_after_days",),
            "delete_after_days (30) must be greater than move_to_cold_after_days (30)",
        )
    ]
    assert Lifecycle(move_to_cold_after_days=None, delete_after_days=1).delete_after_days == 1


def test_windows_follow_aws_limits() -> None:
    assert BackupRule.model_validate(rule()).start_window_minutes == 60
    assert BackupRule.model_validate(rule()).completion_window_minutes == 10080
    [(location, message)] = errors(BackupRule, rule(start_window_minutes=59))
    assert location == ("start_window_minutes",)
    assert "greater than or equal to 60" in message
    assert errors(BackupRule, rule(start_window_minutes=120, completion_window_minutes=150)) == [
        (
            ("completion_window_minutes",),
            "completion_window_minutes (150) must be at least start_window_minutes + 60 (180)",
        )
    ]


def test_timezones_are_iana_names() -> None:
    assert BackupRule.model_validate(rule(timezone="Europe/Paris")).timezone == "Europe/Paris"
    [(location, message)] = errors(BackupRule, rule(timezone="Mars/Olympus"))
    assert location == ("timezone",)
    assert "IANA" in message


def test_schedules_are_parsed_by_the_schedule_module() -> None:
    [(location, message)] = errors(BackupRule, rule(schedule="every tuesday"))
    assert location == ("schedule",)
    assert "every tuesday" in message
    [(location, _)] = errors(BackupRule, rule(schedule="  "))
    assert location == ("schedule",)


@pytest.mark.parametrize(
    ("resource", "location", "fragment"),
    [
        ({"type": "postgres", "password": "hunter2"}, ("password",), "literal secret"),
        ({"type": "redis", "url": "redis://:pw@host:6379/0"}, ("url",), "no password"),
        ({"type": "redis", "url": "http://host"}, ("url",), "redis://"),
        ({"type": "files", "paths": ["relative"]}, ("paths", 0), "absolute path"),
        ({"type": "files", "paths": []}, ("paths",), "at least 1"),
        (
            {"type": "kafka", "bootstrap_servers": ["nohostport"], "topics": ["t"]},
            ("bootstrap_servers", 0),
            "pattern",
        ),
        ({"type": "sqlite"}, ("path",), "Field required"),
    ],
)
def test_resource_settings_are_checked(
    resource: dict[str, Any], location: tuple[Any, ...], fragment: str
) -> None:
    found = errors(StrongroomConfig, {"resources": {"r": resource}})
    # pydantic puts the union tag (the resource type) after the name: skip both
    assert [(loc[3:], fragment in message) for loc, message in found] == [(location, True)]


def test_catalog_url_keeps_passwords_out() -> None:
    [(location, message)] = errors(StrongroomConfig, {"catalog": {"url": "postgresql://u:pw@h/db"}})
    assert location == ("catalog", "url")
    assert "catalog.password" in message
    assert "pw@" not in message
    [(_, message)] = errors(StrongroomConfig, {"catalog": {"url": "mysql://h/db"}})
    assert "sqlite:// or postgresql://" in message


class TestSelection:
    def select(self, selection: dict[str, Any], name: str, kind: str, **tags: str) -> bool:
        return Selection.model_validate({"name": "s", **selection}).selects(name, kind, tags)

    def test_list_of_tags_selects_when_any_tag_matches(self) -> None:
        seed = {
            "list_of_tags": [
                {"key": "BackupEnabled", "value": "true"},
                {"key": "Environment", "value": "production"},
            ]
        }
        assert self.select(seed, "a", "postgres", BackupEnabled="true")
        assert self.select(seed, "a", "postgres", Environment="production")
        assert not self.select(seed, "a", "postgres", BackupEnabled="false")

    def test_conditions_must_all_hold(self) -> None:
        selection = {
            "names": ["*"],
            "conditions": {
                "string_equals": [{"key": "Environment", "value": "production"}],
                "string_like": [{"key": "Team", "value": "data-*"}],
                "string_not_equals": [{"key": "Tier", "value": "scratch"}],
                "string_not_like": [{"key": "Name", "value": "*-tmp"}],
            },
        }
        tags = {"Environment": "production", "Team": "data-eng"}
        assert self.select(selection, "a", "files", **tags)
        assert self.select(selection, "a", "files", **tags, Name="orders")
        assert not self.select(selection, "a", "files", **tags, Name="orders-tmp")
        assert not self.select(selection, "a", "files", **tags, Tier="scratch")
        assert not self.select(selection, "a", "files", Environment="production")
        assert not self.select(selection, "a", "files", **{**tags, "Team": "web"})

    def test_like_patterns_match_the_whole_value_literally(self) -> None:
        like = {"conditions": {"string_like": [{"key": "k", "value": "a.b*"}]}}
        assert self.select(like, "x", "files", k="a.bc")
        assert not self.select(like, "x", "files", k="axbc")
        assert not self.select(like, "x", "files", k="za.bc")

    def test_names_types_and_exclusions(self) -> None:
        assert self.select({"names": ["a"]}, "a", "redis")
        assert not self.select({"names": ["a"]}, "b", "redis")
        assert self.select({"names": ["*"], "not_names": ["b"]}, "a", "redis")
        assert not self.select({"names": ["*"], "not_names": ["b"]}, "b", "redis")
        assert self.select({"resource_types": ["postgres"]}, "a", "postgres")
        assert not self.select({"resource_types": ["postgres"]}, "a", "mysql")
        assert not self.select({"names": ["a"], "resource_types": ["postgres"]}, "a", "mysql")

    def test_an_empty_selection_is_refused(self) -> None:
        [(location, message)] = errors(Selection, {"name": "s"})
        assert location == ()
        assert "names: ['*']" in message
        [(location, _)] = errors(Selection, {"name": "s", "names": ["bad name"]})
        assert location == ("names", 0)


def test_rule_and_selection_names_are_unique_in_a_plan() -> None:
    found = errors(
        StrongroomConfig,
        {
            "vaults": {"v": {"url": "memory://v", "key": KEY}},
            "plans": {
                "p": {
                    "rules": [rule(), rule()],
                    "selections": [{"name": "s", "names": ["*"]}] * 2,
                }
            },
        },
    )
    assert found == [
        (("plans", "p", "rules", 1, "name"), "another rule is already named 'daily'"),
        (("plans", "p", "selections", 1, "name"), "another selection is already named 's'"),
    ]


def test_cross_section_errors_point_at_the_field_to_fix() -> None:
    found = errors(
        StrongroomConfig,
        {
            "vaults": {"v": {"url": "memory://v", "key": KEY}},
            "plans": {
                "p": {
                    "rules": [
                        rule(),
                        rule(
                            name="weekly",
                            target_vault="w",
                            copy_actions=[{"destination_vault": "dr"}],
                        ),
                    ],
                    "selections": [{"name": "s", "names": ["ghost"]}],
                }
            },
        },
    )
    assert [location for location, _ in found] == [
        ("plans", "p", "rules", 1, "target_vault"),
        ("plans", "p", "rules", 1, "copy_actions", 0, "destination_vault"),
        ("plans", "p", "selections", 0, "names", 0),
    ]
    assert found[0][1] == "vault 'w' is not declared under vaults (declared: v)"


def test_warnings_are_collected_not_raised() -> None:
    config = StrongroomConfig.model_validate(
        {
            "vaults": {"v": {"url": "memory://v", "key": KEY}},
            "resources": {"r": {"type": "sqlite", "path": "/db.sqlite"}},
            "plans": {
                "p": {
                    "rules": [rule(copy_actions=[{"destination_vault": "v"}])],
                    "selections": [{"name": "s", "list_of_tags": [{"key": "k", "value": "v"}]}],
                },
                "q": {"rules": [rule()]},
            },
        }
    )
    assert sorted(warning.code for warning in config.warnings()) == [
        "copy_to_self",
        "no_selection",
        "selection_matches_nothing",
    ]


def test_a_declared_vault_defaults_to_the_engine_defaults() -> None:
    from strongroom.services.vaults.stores import engine_settings
    from strongroom.vault.config import VaultSettings

    declared = VaultConfig.model_validate({"url": "file:///srv/v", "key": KEY})

    assert engine_settings(declared) == VaultSettings()
