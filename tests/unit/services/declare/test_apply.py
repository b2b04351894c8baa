"""apply: the diff, one transaction, dry runs, pruning, policy checks, the stored form."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from strongroom.catalog.points import record_recovery_point
from strongroom.catalog.resources import (
    get_resource,
    get_rule,
    get_vault,
    list_plans,
    list_resources,
    list_vaults,
)
from strongroom.catalog.settings import ConcurrencyLimits, read_concurrency_limits
from strongroom.errors import PolicyError, SecretError, ServiceUnavailableError
from strongroom.services.context import AppContext
from strongroom.services.declare import write as apply_write
from strongroom.services.declare.apply import ApplyReport, ApplyService
from strongroom.services.declare.checks import PendingApply
from strongroom.services.declare.diff import Change, changed_fields
from strongroom.services.declare.listing import ListingService
from tests.unit.services.apply_support import config_text, loaded, new_context


@pytest.fixture
def context(tmp_path: Path) -> Iterator[AppContext]:
    context = new_context(tmp_path / "home")
    yield context
    context.close()


def changes(report: ApplyReport) -> set[tuple[str, str, str]]:
    return {(change.action, change.kind, change.name) for change in report.changes}


def change(report: ApplyReport, kind: str, name: str) -> Change:
    [found] = [c for c in report.changes if (c.kind, c.name) == (kind, name)]
    return found


def catalog_names(context: AppContext) -> dict[str, list[str]]:
    with context.catalog.session(readonly=True) as session:
        return {
            "vaults": [row.name for row in list_vaults(session)],
            "resources": [row.name for row in list_resources(session)],
            "plans": [row.name for row in list_plans(session)],
            "rules": sorted(
                f"{plan.name}/{rule.name}" for plan in list_plans(session) for rule in plan.rules
            ),
        }


def test_first_apply_creates_everything_and_the_vaults_in_their_stores(
    context: AppContext, tmp_path: Path
) -> None:
    report = ApplyService(context).apply(loaded(config_text(tmp_path)))

    assert changes(report) == {
        ("create", "vault", "prod"),
        ("create", "vault", "archive"),
        ("create", "resource", "app-db"),
        ("create", "resource", "uploads"),
        ("create", "resource", "scratch"),
        ("create", "plan", "nightly"),
        ("create", "rule", "nightly/daily"),
        ("create", "rule", "nightly/weekly"),
    }
    assert change(report, "vault", "prod").note.startswith("created in its store")
    assert (tmp_path / "vault-prod" / "config").is_file()
    assert (tmp_path / "keys" / "prod.key").is_file()
    assert report.selections == {"nightly": ["app-db", "uploads"]}
    assert catalog_names(context) == {
        "vaults": ["archive", "prod"],
        "resources": ["app-db", "scratch", "uploads"],
        "plans": ["nightly"],
        "rules": ["nightly/daily", "nightly/weekly"],
    }


def test_rules_carry_every_column_the_scheduler_reads(context: AppContext, tmp_path: Path) -> None:
    ApplyService(context).apply(loaded(config_text(tmp_path)))
    with context.catalog.session(readonly=True) as session:
        daily = get_rule(session, "nightly", "daily")
        assert daily.schedule == "cron(0 3 * * ? *)"
        assert daily.timezone == "Europe/Paris"
        assert (daily.start_window_minutes, daily.completion_window_minutes) == (90, 300)
        assert daily.vault.name == "prod"
        assert daily.lifecycle == {"move_to_cold_after_days": None, "delete_after_days": 30}
        assert daily.recovery_point_tags == {"BackupType": "daily"}
        assert daily.copy_actions == []
        # default (max_attempts 5) <- plan (interval 60) <- rule (backoff 3.0); the catalog
        # counts every attempt: 5 retries after the first make 6 attempts
        assert daily.retry_policy == {
            "max_attempts": 6,
            "interval_seconds": 60,
            "backoff_rate": 3.0,
        }
        assert daily.allow_partial is True
        assert daily.missed_run_policy == "skip"
        weekly = get_rule(session, "nightly", "weekly")
        assert weekly.retry_policy == {
            "max_attempts": 6,
            "interval_seconds": 60,
            "backoff_rate": 2.0,
        }
        [plan] = list_plans(session)
        assert plan.selections == [
            {
                "name": "production",
                "names": [],
                "list_of_tags": [{"key": "Environment", "value": "production"}],
                "resource_types": [],
                "conditions": {
                    "string_equals": [],
                    "string_not_equals": [],
                    "string_like": [],
                    "string_not_like": [],
                },
                "not_names": [],
            }
        ]
        resource = get_resource(session, "app-db")
        assert resource.connection["path"] == str(tmp_path / "app.db")
        assert get_vault(session, "prod").settings["key"]["provider"] == "key-file"


def test_applying_the_same_file_again_changes_nothing(context: AppContext, tmp_path: Path) -> None:
    service = ApplyService(context)
    service.apply(loaded(config_text(tmp_path)))
    with context.catalog.session(readonly=True) as session:
        before = get_rule(session, "nightly", "daily").updated_at

    again = service.apply(loaded(config_text(tmp_path)))

    assert not again.changed
    assert again.changes == []
    with context.catalog.session(readonly=True) as session:
        assert get_rule(session, "nightly", "daily").updated_at == before


def test_an_edit_shows_the_changed_fields_and_removes_a_dropped_rule(
    context: AppContext, tmp_path: Path
) -> None:
    service = ApplyService(context)
    service.apply(loaded(config_text(tmp_path)))
    text = config_text(tmp_path, daily_schedule="cron(0 4 * * ? *)")
    text = text.replace(
        "      - name: weekly\n        schedule: cron(0 2 ? * SUN *)\n        target_vault: archive\n",
        "",
    )
    text = text.replace(
        "tags: {Environment: production}\n  scratch", "tags: {Environment: staging}\n  scratch"
    )

    report = service.apply(loaded(text))

    assert changes(report) == {
        ("update", "resource", "uploads"),
        ("update", "plan", "nightly"),
        ("update", "rule", "nightly/daily"),
        ("remove", "rule", "nightly/weekly"),
    }
    assert change(report, "rule", "nightly/daily").fields == ("schedule",)
    assert change(report, "resource", "uploads").fields == ("tags.Environment",)
    assert change(report, "plan", "nightly").fields == ("rules",)
    assert report.selections == {"nightly": ["app-db"]}
    assert catalog_names(context)["rules"] == ["nightly/daily"]


def test_a_dry_run_shows_the_diff_and_changes_nothing(context: AppContext, tmp_path: Path) -> None:
    report = ApplyService(context).apply(loaded(config_text(tmp_path)), dry_run=True)

    assert report.dry_run
    assert ("create", "vault", "prod") in changes(report)
    assert report.selections == {"nightly": ["app-db", "uploads"]}
    assert not (tmp_path / "vault-prod").exists()
    assert not (tmp_path / "keys").exists()
    assert catalog_names(context) == {"vaults": [], "resources": [], "plans": [], "rules": []}


def test_things_the_file_no_longer_declares_are_kept_unless_pruned(
    context: AppContext, tmp_path: Path
) -> None:
    service = ApplyService(context)
    service.apply(loaded(config_text(tmp_path)))
    text = config_text(tmp_path).replace(
        f"  scratch:\n    type: files\n    paths: [{tmp_path / 'scratch'}]\n", ""
    )
    text = text.split("plans:\n")[0] + "plans: {}\n"

    kept = service.apply(loaded(text))
    assert changes(kept) == {("keep", "resource", "scratch"), ("keep", "plan", "nightly")}
    assert change(kept, "plan", "nightly").note == "not declared; --prune removes it"
    assert catalog_names(context)["plans"] == ["nightly"]

    pruned = service.apply(loaded(text), prune=True)
    assert changes(pruned) == {("remove", "resource", "scratch"), ("remove", "plan", "nightly")}
    assert catalog_names(context) == {
        "vaults": ["archive", "prod"],
        "resources": ["app-db", "uploads"],
        "plans": [],
        "rules": [],
    }


def test_pruning_keeps_what_recovery_points_refer_to(context: AppContext, tmp_path: Path) -> None:
    service = ApplyService(context)
    service.apply(loaded(config_text(tmp_path)))
    with context.catalog.session() as session:
        record_recovery_point(
            session,
            point_id="a" * 64,
            vault_id=get_vault(session, "archive").id,
            resource_id=get_resource(session, "scratch").id,
            created_at=datetime(2025, 1, 1, tzinfo=UTC),
        )
    text = config_text(tmp_path).replace(
        f"  scratch:\n    type: files\n    paths: [{tmp_path / 'scratch'}]\n", ""
    )

    report = service.apply(loaded(text), prune=True)

    assert changes(report) == {("keep", "resource", "scratch")}
    assert (
        change(report, "resource", "scratch").note == "not declared; kept: it has recovery points"
    )
    assert "scratch" in catalog_names(context)["resources"]


def test_a_failure_in_the_middle_of_the_writes_leaves_nothing_applied(
    context: AppContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real_upsert_rule = apply_write.upsert_rule

    def failing_second_rule(session: Any, **kwargs: Any) -> Any:
        calls.append(kwargs["name"])
        if len(calls) == 2:
            raise ServiceUnavailableError("the catalog connection broke")
        return real_upsert_rule(session, **kwargs)

    monkeypatch.setattr(apply_write, "upsert_rule", failing_second_rule)

    with pytest.raises(ServiceUnavailableError) as raised:
        ApplyService(context).apply(loaded(config_text(tmp_path)))

    assert calls == ["daily", "weekly"]  # vaults, resources, the plan and one rule were written
    assert raised.value.retryable
    assert raised.value.message.startswith(
        "nothing was applied (created in their stores, adopted by the next apply: archive, prod)"
    )
    assert catalog_names(context) == {"vaults": [], "resources": [], "plans": [], "rules": []}

    monkeypatch.setattr(apply_write, "upsert_rule", real_upsert_rule)
    report = ApplyService(context).apply(loaded(config_text(tmp_path)))
    assert change(report, "vault", "prod").note.startswith("adopted the vault already in its store")
    assert catalog_names(context)["rules"] == ["nightly/daily", "nightly/weekly"]


def test_a_policy_check_refuses_before_anything_is_written(
    context: AppContext, tmp_path: Path
) -> None:
    seen: list[PendingApply] = []

    def no_weekly(pending: PendingApply) -> Sequence[str]:
        seen.append(pending)
        plans = pending.declared.plans
        return [
            f"plan {name!r}: weekly rules are not allowed here"
            for name, plan in plans.items()
            if any(rule.name == "weekly" for rule in plan.rules)
        ]

    service = ApplyService(context, checks=[no_weekly])
    with pytest.raises(PolicyError, match="weekly rules are not allowed here"):
        service.apply(loaded(config_text(tmp_path)), dry_run=True)
    with pytest.raises(PolicyError, match="nothing was applied"):
        service.apply(loaded(config_text(tmp_path)))

    assert set(seen[-1].vaults()) == {"prod", "archive"}
    assert catalog_names(context) == {"vaults": [], "resources": [], "plans": [], "rules": []}


def test_a_new_vault_whose_passphrase_does_not_resolve_names_the_vault_and_reference(
    context: AppContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SR_TEST_MISSING_PASSPHRASE", raising=False)
    text = config_text(tmp_path).replace(
        f"      provider: key-file\n      path: {tmp_path / 'keys' / 'prod.key'}\n",
        "      provider: passphrase\n      passphrase: env:SR_TEST_MISSING_PASSPHRASE\n",
    )

    with pytest.raises(SecretError) as raised:
        ApplyService(context).apply(loaded(text))

    assert raised.value.message.startswith(f"vault 'prod' at {(tmp_path / 'vault-prod').as_uri()}")
    assert "env:SR_TEST_MISSING_PASSPHRASE" in raised.value.message
    assert catalog_names(context)["vaults"] == []


def test_a_missing_key_file_is_never_generated_beside_an_existing_vault(
    context: AppContext, tmp_path: Path
) -> None:
    ApplyService(context).apply(loaded(config_text(tmp_path)))
    text = config_text(tmp_path).replace("prod.key", "lost.key")

    with pytest.raises(SecretError, match="does not exist and the store already holds data"):
        ApplyService(context).apply(loaded(text))

    assert not (tmp_path / "keys" / "lost.key").exists()


def test_vault_changes_name_their_fields_and_warn_about_creation_settings(
    context: AppContext, tmp_path: Path
) -> None:
    service = ApplyService(context)
    service.apply(loaded(config_text(tmp_path)))
    text = config_text(tmp_path).replace(
        "  archive:\n",
        "    description: day to day\n    compression: {level: 9}\n  archive:\n",
        1,
    )

    report = service.apply(loaded(text))

    assert change(report, "vault", "prod").fields == ("compression.level", "description")
    [warning] = report.warnings
    assert "compression.level take effect when a vault is created" in warning.message


def test_the_files_catalog_section_is_used_when_none_is_given(tmp_path: Path) -> None:
    database = tmp_path / "declared" / "catalog.db"
    database.parent.mkdir()
    text = config_text(tmp_path).replace(
        "version: 1\n", f"version: 1\ncatalog:\n  url: sqlite:///{database}\n"
    )
    context = new_context(tmp_path / "home")
    try:
        report = ApplyService(context).apply(loaded(text))
    finally:
        context.close()
    assert report.catalog == f"sqlite:///{database}"
    assert database.is_file()
    assert not (tmp_path / "home" / "catalog.db").exists()


def test_list_views_show_rules_selected_resources_and_last_points(
    context: AppContext, tmp_path: Path
) -> None:
    ApplyService(context).apply(loaded(config_text(tmp_path)))
    with context.catalog.session() as session:
        record_recovery_point(
            session,
            point_id="b" * 64,
            vault_id=get_vault(session, "prod").id,
            resource_id=get_resource(session, "app-db").id,
            created_at=datetime(2025, 3, 1, tzinfo=UTC),
        )

    [plan] = ListingService(context).plans()
    assert plan.selected == ["app-db", "uploads"]
    assert [(rule.name, rule.target_vault, rule.timezone) for rule in plan.rules] == [
        ("daily", "prod", "Europe/Paris"),
        ("weekly", "archive", "UTC"),
    ]
    assert plan.as_json()["rules"][0]["lifecycle"]["delete_after_days"] == 30

    views = {view.name: view for view in ListingService(context).resources()}
    assert views["app-db"].plans == ["nightly"]
    assert views["scratch"].plans == []
    assert views["app-db"].last_point is not None
    assert views["app-db"].as_json()["last_point"] == {
        "id": "b" * 64,
        "vault": "prod",
        "created_at": "2025-03-01T00:00:00+00:00",
        "state": "AVAILABLE",
    }
    assert [view.name for view in ListingService(context).resources(type="sqlite")] == ["app-db"]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ({"a": 1, "b": {"c": 2}}, {"a": 1, "b": {"c": 3}}, ["b.c"]),
        ({"a": [1, 2]}, {"a": [2, 1]}, ["a"]),
        ({"a": 1}, {"a": 1, "b": None}, []),
        ({"tags": {"x": "1"}}, {"tags": {}}, ["tags.x"]),
        ({}, {"a": {"b": 1}}, ["a"]),
    ],
)
def test_changed_fields_names_the_dotted_paths(
    old: dict[str, Any], new: dict[str, Any], expected: list[str]
) -> None:
    assert changed_fields(old, new) == expected


def test_the_concurrency_section_is_stored_and_its_changes_shown(
    context: AppContext, tmp_path: Path
) -> None:
    service = ApplyService(context)
    first = service.apply(loaded(config_text(tmp_path)))
    assert not [c for c in first.changes if c.kind == "settings"]  # the defaults: no news
    with context.catalog.session(readonly=True) as session:
        assert read_concurrency_limits(session) == ConcurrencyLimits(max_running=4)

    limited = (
        config_text(tmp_path) + "concurrency:\n  per_vault: 2\n  per_resource_type: {files: 1}\n"
    )
    preview = service.apply(loaded(limited), dry_run=True)
    assert change(preview, "settings", "concurrency").fields == (
        "per_resource_type.files",
        "per_vault",
    )
    with context.catalog.session(readonly=True) as session:
        assert read_concurrency_limits(session) == ConcurrencyLimits(max_running=4)

    applied = service.apply(loaded(limited))
    assert changes(applied) == {("update", "settings", "concurrency")}
    with context.catalog.session(readonly=True) as session:
        assert read_concurrency_limits(session) == ConcurrencyLimits(
            max_running=4, per_vault_default=2, per_resource_type={"files": 1}
        )
    assert service.apply(loaded(limited)).changes == []
