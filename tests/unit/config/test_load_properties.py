"""Property tests: no input makes the loaders crash; they answer with issues or a config."""

from __future__ import annotations

import copy
import re
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strongroom.config.issues import ConfigIssue
from strongroom.config.load import load_text, validate_text
from strongroom.errors import ConfigError, UnsupportedError
from tests.unit.config.configs import SEED_AWS_PLAN, VALID

YAML_LINE_BREAK = re.compile("\r\n|[\n\r\x85\u2028\u2029]")
KEYS = [
    "vaults",
    "resources",
    "plans",
    "retry",
    "concurrency",
    "catalog",
    "version",
    "url",
    "key",
    "provider",
    "passphrase",
    "type",
    "tags",
    "rules",
    "name",
    "schedule",
    "target_vault",
    "lifecycle",
    "delete_after_days",
    "move_to_cold_after_days",
    "selections",
    "names",
    "list_of_tags",
    "cold_tier",
    "kind",
    "global",
    "BackupPlan",
    "Rules",
    "RuleName",
    "BackupPlanName",
    "Lifecycle",
    "DeleteAfterDays",
    "CopyActions",
    "prod",
    "db",
    "*",
]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["", "memory://m", "env:X", "hunter2", "cron(0 3 * * ? *)", "postgres", "*"]),
    st.text(max_size=12),
)
VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), children, max_size=5),
    ),
    max_leaves=30,
)


def assert_well_formed(issues: list[ConfigIssue], text: str) -> None:
    line_count = len(YAML_LINE_BREAK.split(text))
    for issue in issues:
        assert issue.severity in ("error", "warning")
        assert issue.message
        assert issue.line is None or 1 <= issue.line <= line_count, issue


def assert_load_agrees(text: str, issues: list[ConfigIssue]) -> None:
    errors = [issue for issue in issues if issue.severity == "error"]
    try:
        loaded = load_text(text)
    except (ConfigError, UnsupportedError):
        assert errors
    else:
        assert not errors
        assert list(loaded.warnings) == [i for i in issues if i.severity == "warning"]


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_any_text_gives_issues_or_a_config(text: str) -> None:
    issues = validate_text(text)
    assert_well_formed(issues, text)
    assert_load_agrees(text, issues)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=6))
def test_any_yaml_structure_gives_issues_or_a_config(data: dict[str, Any]) -> None:
    text = yaml.safe_dump(data, sort_keys=False)
    issues = validate_text(text)
    assert_well_formed(issues, text)
    assert_load_agrees(text, issues)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


def _mutated(base: dict[str, Any], data: st.DataObject) -> dict[str, Any]:
    document = copy.deepcopy(base)
    for _ in range(data.draw(st.integers(min_value=1, max_value=3))):
        paths = [path for path in _paths(document) if path]
        if not paths:
            break
        path = data.draw(st.sampled_from(paths))
        parent = document
        for segment in path[:-1]:
            parent = parent[segment]
        if data.draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = data.draw(VALUES)
    return document


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), st.sampled_from([VALID, SEED_AWS_PLAN]))
def test_a_damaged_valid_file_names_a_path_for_every_error(
    data: st.DataObject, original: str
) -> None:
    text = yaml.safe_dump(_mutated(yaml.safe_load(original), data), sort_keys=False)
    issues = validate_text(text)
    assert_well_formed(issues, text)
    assert_load_agrees(text, issues)
    for issue in issues:
        if issue.severity == "error" and issue.code not in ("document_type", "aws_references"):
            assert issue.line is not None, issue
