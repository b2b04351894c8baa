"""Loading files: every problem at once, each with its dotted path and its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from strongroom.config.load import load_config, load_text, validate_file, validate_text
from strongroom.errors import ConfigError, UnsupportedError
from tests.unit.config.configs import (
    EXAMPLES,
    VALID,
    by_path,
    errors_of,
    issues_of,
    line_number,
)


def test_the_valid_configuration_loads_without_issues(tmp_path: Path) -> None:
    path = tmp_path / "strongroom.yaml"
    path.write_text(VALID, encoding="utf-8")
    loaded = load_config(path)
    assert loaded.kind == "strongroom"
    assert loaded.warnings == ()
    assert loaded.source == str(path)
    assert loaded.config.plans["prod"].rules[1].target_vault == "archive"
    assert loaded.config.resources["orders-db"].tags == {
        "BackupEnabled": "true",
        "Environment": "production",
    }


@pytest.mark.parametrize("name", ["strongroom.yaml", "aws-backup-plan.json"])
def test_the_examples_validate(name: str) -> None:
    issues = validate_file(EXAMPLES / name)
    assert [issue for issue in issues if issue.severity == "error"] == []
    load_config(EXAMPLES / name)


def test_the_example_reproduces_the_seed_production_setup() -> None:
    config = load_config(EXAMPLES / "strongroom.yaml").config
    plan = config.plans["ecommerce-production-database-backup"]
    assert [
        (
            rule.name,
            rule.schedule,
            rule.start_window_minutes,
            rule.completion_window_minutes,
            rule.target_vault,
            rule.lifecycle.move_to_cold_after_days,
            rule.lifecycle.delete_after_days,
        )
        for rule in plan.rules
    ] == [
        ("continuous-backup", "cron(0 */6 * * ? *)", 60, 180, "ecommerce-production-vault", 7, 30),
        ("daily-backup", "cron(0 3 * * ? *)", 60, 240, "ecommerce-production-vault", 30, 90),
        ("weekly-backup", "cron(0 2 ? * SUN *)", 120, 360, "ecommerce-long-term-vault", 90, 365),
    ]
    assert set(config.vaults) == {"ecommerce-production-vault", "ecommerce-long-term-vault"}
    lock = config.vaults["ecommerce-long-term-vault"].lock
    assert lock is not None
    assert (lock.min_retention_days, lock.max_retention_days, lock.changeable_for_days) == (
        365,
        2555,
        3,
    )
    selected = {
        name
        for name, resource in config.resources.items()
        if plan.selections[0].selects(name, resource.type, resource.tags)
    }
    assert selected == {"ecommerce-prod-db", "ecommerce-uploads"}
    assert config.resources["ecommerce-prod-db"].type == "postgres"


def test_an_unknown_key_is_reported_at_its_line_with_a_suggestion(tmp_path: Path) -> None:
    text = VALID.replace("        target_vault: archive", "        taget_vault: archive")
    found = by_path(errors_of(tmp_path, text))
    unknown = found["plans.prod.rules[1].taget_vault"]
    assert unknown.line == line_number(text, "taget_vault")
    assert unknown.code == "extra_forbidden"
    assert unknown.message == "unknown key (did you mean 'target_vault'?)"
    missing = found["plans.prod.rules[1].target_vault"]
    assert missing.message == "required key is missing"
    assert missing.line == line_number(text, "name: weekly")


def test_an_unknown_key_without_a_close_match_lists_the_allowed_ones(tmp_path: Path) -> None:
    text = VALID.replace("delete_after_days: 365", "delete_after_days: 365\n          zzz: 1")
    [issue] = errors_of(tmp_path, text)
    assert issue.path == "plans.prod.rules[1].lifecycle.zzz"
    assert issue.line == line_number(text, "zzz")
    assert "allowed keys: move_to_cold_after_days, delete_after_days" in issue.message


def test_an_unknown_key_inside_a_resource_type(tmp_path: Path) -> None:
    text = VALID.replace("    type: postgres", "    type: postgres\n    hostname: db")
    [issue] = errors_of(tmp_path, text)
    assert issue.path == "resources.orders-db.hostname"
    assert issue.line == line_number(text, "hostname")
    assert "did you mean 'host'?" in issue.message


def test_a_wrong_type_is_reported_at_its_line(tmp_path: Path) -> None:
    text = VALID.replace("move_to_cold_after_days: 30", "move_to_cold_after_days: thirty")
    [issue] = errors_of(tmp_path, text)
    assert issue.path == "plans.prod.rules[1].lifecycle.move_to_cold_after_days"
    assert issue.line == line_number(text, "thirty")
    assert "valid integer" in issue.message


def test_a_boolean_where_a_string_belongs_explains_yaml(tmp_path: Path) -> None:
    text = VALID.replace(
        'BackupEnabled: "true"\n      Environment', "BackupEnabled: yes\n      Environment"
    )
    [issue] = errors_of(tmp_path, text)
    assert issue.path == "resources.orders-db.tags.BackupEnabled"
    assert issue.line == line_number(text, "BackupEnabled: yes")
    assert "quote the value" in issue.message


def test_a_rule_targeting_an_undeclared_vault_names_the_rule_path(tmp_path: Path) -> None:
    text = VALID.replace("target_vault: archive", "target_vault: archives")
    [issue] = errors_of(tmp_path, text)
    assert issue.path == "plans.prod.rules[1].target_vault"
    assert issue.line == line_number(text, "target_vault: archives")
    assert issue.code == "unknown_vault"
    assert issue.message == (
        "vault 'archives' is not declared under vaults (did you mean 'archive'?)"
    )


def test_every_error_is_reported_at_once(tmp_path: Path) -> None:
    text = (
        VALID.replace("      passphrase: env:STRONGROOM_PASSPHRASE", "      passphrase: hunter2")
        .replace("target_vault: archive", "target_vault: nowhere")
        .replace("    type: postgres", "    type: postgres\n    colour: blue")
        .replace("delete_after_days: 30", "delete_after_days: soon")
    )
    issues = errors_of(tmp_path, text)
    assert [(issue.path, issue.line) for issue in issues] == [
        ("vaults.prod.key.passphrase", line_number(text, "hunter2")),
        ("resources.orders-db.colour", line_number(text, "colour")),
        ("plans.prod.rules[0].lifecycle.delete_after_days", line_number(text, "soon")),
        ("plans.prod.rules[1].target_vault", line_number(text, "nowhere")),
    ]
    path = tmp_path / "strongroom.yaml"
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    lines = caught.value.message.splitlines()
    assert lines[0] == f"{path}: invalid configuration (4 errors)"
    assert lines[1:] == [issue.render(str(path)) for issue in issues]
    assert lines[4] == (
        f"{path}:{line_number(text, 'nowhere')}: plans.prod.rules[1].target_vault: "
        "vault 'nowhere' is not declared under vaults (declared: archive, prod)"
    )
    assert "hunter2" not in caught.value.message


def test_reference_errors_are_found_even_when_other_sections_are_invalid(
    tmp_path: Path,
) -> None:
    text = VALID.replace("target_vault: prod", "target_vault: prodd").replace(
        "    type: postgres", "    type: postgres\n    port: many"
    )
    assert {issue.path for issue in errors_of(tmp_path, text)} == {
        "resources.orders-db.port",
        "plans.prod.rules[0].target_vault",
    }


def test_a_literal_secret_is_refused_with_the_way_to_fix_it(tmp_path: Path) -> None:
    text = VALID.replace("password: env:PGPASSWORD", "password: correct-horse-battery")
    [issue] = errors_of(tmp_path, text)
    assert issue.path == "resources.orders-db.password"
    assert issue.line == line_number(text, "correct-horse")
    assert "literal secret is not allowed" in issue.message
    assert "env:NAME" in issue.message
    assert "file:/" in issue.message
    assert "correct-horse" not in issue.message


def test_duplicate_keys_are_errors_with_both_lines(tmp_path: Path) -> None:
    text = VALID.replace(
        "      Environment: production\n",
        "      Environment: production\n      Environment: staging\n",
    )
    [issue] = errors_of(tmp_path, text)
    first = line_number(text, "Environment: production")
    assert issue.path == "resources.orders-db.tags.Environment"
    assert issue.line == line_number(text, "Environment: staging")
    assert issue.code == "duplicate_key"
    assert f"first at line {first}" in issue.message


def test_duplicate_sections_and_names_are_errors(tmp_path: Path) -> None:
    text = VALID + "vaults:\n  other:\n    url: memory://o\n"
    issues = errors_of(tmp_path, text)
    assert ("vaults", line_number(text, "vaults:", 2)) in [(i.path, i.line) for i in issues]


def test_merge_keys_are_not_duplicates(tmp_path: Path) -> None:
    text = VALID.replace(
        "resources:\n",
        "x-defaults: &defaults\n  type: postgres\n  port: 5433\nresources:\n",
    ).replace("    type: postgres\n", "    <<: *defaults\n    port: 5434\n")
    issues = errors_of(tmp_path, text)
    assert [issue.path for issue in issues] == ["x-defaults"]  # only the unknown section


def test_a_yaml_syntax_error_reports_its_line(tmp_path: Path) -> None:
    text = VALID.replace("        list_of_tags:", "        list_of_tags: [")
    [issue] = errors_of(tmp_path, text)
    assert issue.code == "yaml_syntax"
    assert issue.path == ""
    assert issue.line is not None
    assert issue.line >= line_number(text, "list_of_tags: [")
    with pytest.raises(ConfigError, match=rf"strongroom.yaml:{issue.line}: YAML syntax error"):
        load_config(tmp_path / "strongroom.yaml")


def test_a_tab_indented_line_is_a_syntax_error_at_its_line(tmp_path: Path) -> None:
    text = "vaults:\n\tprod: {}\n"
    [issue] = errors_of(tmp_path, text)
    assert (issue.code, issue.line) == ("yaml_syntax", 2)


def test_a_bad_timestamp_is_reported_at_its_line(tmp_path: Path) -> None:
    [issue] = errors_of(tmp_path, "vaults: {}\nwhen: 2024-13-45\n")
    assert (issue.code, issue.line) == ("yaml_value", 2)


def test_unknown_yaml_tags_are_refused(tmp_path: Path) -> None:
    [issue] = errors_of(tmp_path, "vaults: !!python/object:os.system {}\n")
    assert (issue.code, issue.line) == ("yaml_syntax", 1)


def test_alias_bombs_and_self_references_are_refused(tmp_path: Path) -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for level in "bcdefg":
        previous = chr(ord(level) - 1)
        bomb += f"{level}: &{level} [" + ", ".join([f"*{previous}"] * 10) + "]\n"
    [issue] = errors_of(tmp_path, bomb)
    assert issue.code == "yaml_alias"
    [issue] = errors_of(tmp_path, "a: &a [*a]\n")
    assert (issue.code, issue.message) == ("yaml_alias", "an alias refers to itself")


def test_an_empty_file_is_the_default_configuration(tmp_path: Path) -> None:
    assert issues_of(tmp_path, "") == []
    assert issues_of(tmp_path, "# nothing yet\n") == []
    assert load_text("").config.vaults == {}


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a string\n", "42\n"])
def test_the_top_level_must_be_a_mapping(tmp_path: Path, text: str) -> None:
    [issue] = errors_of(tmp_path, text)
    assert (issue.code, issue.line, issue.path) == ("document_type", 1, "")


def test_several_documents_in_one_file_are_refused(tmp_path: Path) -> None:
    [issue] = errors_of(tmp_path, "vaults: {}\n---\nplans: {}\n")
    assert issue.code == "yaml_syntax"
    assert "single document" in issue.message


def test_invalid_names_are_reported_at_the_key(tmp_path: Path) -> None:
    text = VALID.replace("  orders-db:", "  orders db:")
    issues = errors_of(tmp_path, text)
    assert [(issue.path, issue.line) for issue in issues] == [
        ('resources["orders db"]', line_number(text, "orders db:"))
    ]
    assert issues[0].message.startswith("invalid key: a name is 1 to 63 letters")


def test_an_unknown_resource_type_lists_the_types(tmp_path: Path) -> None:
    text = VALID.replace("type: postgres", "type: oracle")
    [issue] = errors_of(tmp_path, text)
    assert issue.path == "resources.orders-db"
    assert issue.message.startswith("unknown type 'oracle'; expected one of 'postgres'")
    text = VALID.replace("    type: postgres\n", "")
    [issue] = errors_of(tmp_path, text)
    assert "the key 'type' is required" in issue.message
    assert "(one of postgres, mysql, redis, kafka, kubernetes, files, sqlite)" in issue.message


def test_delete_before_cold_is_refused_with_the_numbers(tmp_path: Path) -> None:
    text = VALID.replace("delete_after_days: 30", "delete_after_days: 5")
    [issue] = errors_of(tmp_path, text)
    assert issue.path == "plans.prod.rules[0].lifecycle.delete_after_days"
    assert issue.line == line_number(text, "delete_after_days: 5")
    assert issue.message == "delete_after_days (5) must be greater than move_to_cold_after_days (7)"


def test_the_cold_tier_minimum_is_named_with_the_numbers(tmp_path: Path) -> None:
    text = VALID.replace("delete_after_days: 365", "delete_after_days: 100")
    [issue] = errors_of(tmp_path, text)
    assert issue.path == "plans.prod.rules[1].lifecycle.delete_after_days"
    assert issue.line == line_number(text, "delete_after_days: 100")
    assert issue.code == "cold_minimum"
    assert issue.message == (
        "rule 'weekly' of plan 'prod' moves recovery points to the cold tier of vault "
        "'archive' after 30 days and deletes them after 100 days, 70 days in cold storage; "
        "that tier keeps them at least 90 days (min_storage_days), so delete_after_days "
        "must be at least 120"
    )


def test_a_cold_move_into_a_vault_without_cold_tier_is_refused(tmp_path: Path) -> None:
    text = VALID.replace("    cold_tier:\n      kind: same-store\n      min_storage_days: 0\n", "")
    [issue] = errors_of(tmp_path, text)
    assert issue.path == "plans.prod.rules[0].lifecycle.move_to_cold_after_days"
    assert "vault 'prod' has no cold tier" in issue.message


def test_retention_must_fit_the_vault_lock(tmp_path: Path) -> None:
    text = VALID.replace(
        "      storage_class: GLACIER\n",
        "      storage_class: GLACIER\n    lock:\n      min_retention_days: 400\n"
        "      max_retention_days: 2555\n",
    )
    [issue] = errors_of(tmp_path, text)
    assert issue.path == "plans.prod.rules[1].lifecycle.delete_after_days"
    assert "locked with min_retention_days 400" in issue.message


def test_a_selection_matching_nothing_is_a_warning(tmp_path: Path) -> None:
    text = VALID.replace('value: "true"}', 'value: "yes"}')
    [issue] = issues_of(tmp_path, text)
    assert issue.severity == "warning"
    assert issue.code == "selection_matches_nothing"
    assert issue.path == "plans.prod.selections[0]"
    assert issue.line == line_number(text, "- name: tagged")
    assert issue.render("f.yaml").startswith(
        f"f.yaml:{issue.line}: plans.prod.selections[0]: warning:"
    )
    loaded = load_text(text, "f.yaml")
    assert [warning.code for warning in loaded.warnings] == ["selection_matches_nothing"]


def test_a_selection_naming_an_undeclared_resource_is_an_error(tmp_path: Path) -> None:
    text = VALID.replace(
        "        list_of_tags:\n", "        names: [orders-db, ordres-db]\n        list_of_tags:\n"
    )
    [issue] = errors_of(tmp_path, text)
    assert issue.path == "plans.prod.selections[0].names[1]"
    assert "did you mean 'orders-db'?" in issue.message


def test_an_unreadable_file_is_an_issue_not_a_crash(tmp_path: Path) -> None:
    [issue] = validate_file(tmp_path / "absent.yaml")
    assert issue.code == "unreadable"
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_config(tmp_path / "absent.yaml")
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"vaults: \xff\n")
    [issue] = validate_file(binary)
    assert issue.code == "encoding"


def test_a_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + VALID.encode())
    assert validate_file(path) == []


def test_json_that_yaml_cannot_read_is_read_as_json() -> None:
    text = '{\n\t"vaults": {},\n\t"plans": {}\n}\n'
    assert validate_text(text) == []
    [issue] = validate_text('{\n\t"vaults": {},\n\t"vaults": {}\n}\n')
    assert issue.code == "duplicate_key"


def test_unsupported_aws_fields_raise_unsupported_error(tmp_path: Path) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text(
        "BackupPlan:\n  BackupPlanName: p\n  Rules:\n    - RuleName: r\n"
        "      TargetBackupVaultName: v\n      EnableContinuousBackup: true\n",
        encoding="utf-8",
    )
    with pytest.raises(UnsupportedError) as caught:
        load_config(path)
    assert f"{path}:6: BackupPlan.Rules[0].EnableContinuousBackup: strongroom cannot honour " in (
        caught.value.message
    )


def test_a_check_about_an_absent_key_names_that_key(tmp_path: Path) -> None:
    text = VALID.replace(
        "    url: s3://archive-bucket/strongroom\n",
        "    url: s3://archive-bucket/strongroom\n    s3:\n      access_key_id: env:KEY_ID\n",
    )
    [issue] = errors_of(tmp_path, text)
    assert issue.path == "vaults.archive.s3.secret_access_key"
    assert issue.line == line_number(text, "    s3:")
