"""Erasure requests as sources apply them: statements and patterns checked, subjects escaped,
paths removed below the restored roots (the servers' parts run in tests/e2e/test_erasure_cli.py)."""

from __future__ import annotations

import fnmatch
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strongroom.errors import ConfigError
from strongroom.sources.erasure import (
    Erasure,
    apply_paths,
    check_pattern,
    check_statement,
    not_applied,
    pattern_for,
    skipped_databases,
)


def test_a_statement_binds_the_subject_and_nothing_else() -> None:
    assert check_statement(" DELETE FROM u WHERE id = %(subject)s; ", "s") == (
        "DELETE FROM u WHERE id = %(subject)s"
    )
    assert check_statement("DELETE FROM u WHERE id = %(subject)s AND n LIKE 'a%%'", "s")
    for bad, words in [
        ("DELETE FROM u WHERE id = '42'", "does not bind the subject"),
        ("DELETE FROM u WHERE id = %(subject)s AND n LIKE 'a%'", "percent sign"),
        ("DELETE FROM u WHERE id = %(subject)s AND n = %s", "percent sign"),
        ("DELETE FROM u WHERE id = %(subject)s AND n = %(other)s", "percent sign"),
        ("DELETE FROM u WHERE id = %(subject)s; DROP TABLE u", "more than one statement"),
        ("  ;", "is empty"),
    ]:
        with pytest.raises(ConfigError, match=words):
            check_statement(bad, "statement 1")


def test_patterns_name_the_subject_and_paths_stay_below_the_root() -> None:
    assert check_pattern("user:{subject}:*", "keys", "p") == "user:{subject}:*"
    with pytest.raises(ConfigError, match="does not name the subject"):
        check_pattern("user:*", "keys", "p")
    for outside in ("/etc/{subject}", "../{subject}", "a/../../{subject}"):
        with pytest.raises(ConfigError, match=r"without '\.\.'"):
            check_pattern(outside, "paths", "p")


@given(st.text(min_size=1, max_size=20))
def test_a_subject_matches_itself_only_in_a_key_pattern(subject: str) -> None:
    pattern = pattern_for("user:{subject}:*", subject, "keys")
    # Redis globs escape with a backslash like fnmatch's character classes do not; check
    # that every glob character of the subject is escaped.
    unescaped = pattern.replace("\\\\", "").replace("\\*", "").replace("\\?", "")
    unescaped = unescaped.replace("\\[", "").replace("\\]", "")
    assert unescaped.count("*") == 1 and "?" not in unescaped and "[" not in unescaped


@given(st.text(alphabet="ab*?[]-", min_size=1, max_size=8))
def test_a_subject_matches_itself_only_in_a_path_pattern(subject: str) -> None:
    pattern = pattern_for("{subject}.json", subject, "paths")
    assert fnmatch.fnmatchcase(f"{subject}.json", pattern)
    assert not fnmatch.fnmatchcase(f"{subject}x.json", pattern)


def test_paths_are_removed_below_each_restored_root(tmp_path: Path) -> None:
    root = tmp_path / "restored" / "data"
    for subject in ("s-1", "s-2", "s-[1]"):
        (root / "users" / subject).mkdir(parents=True)
        (root / "users" / subject / "a.txt").write_text("x")
    request = Erasure("r1", "s-[1]", "paths", patterns=("users/{subject}",))
    (effect,) = apply_paths([root, tmp_path / "missing"], [request], target="copy")
    assert effect.affected == 1 and effect.remaining == 0
    assert sorted(path.name for path in (root / "users").iterdir()) == ["s-1", "s-2"]


def test_requests_nothing_reported_for_are_named() -> None:
    first = Erasure(
        "r1", "s", "sql", statements=("DELETE FROM t WHERE id = %(subject)s",), database="app"
    )
    second = Erasure(
        "r2", "s", "sql", statements=("DELETE FROM t WHERE id = %(subject)s",), database="crm"
    )
    skipped = skipped_databases([first, second], ["app"], target="pg")
    assert [effect.request_id for effect in skipped] == ["r2"]
    assert skipped[0].details == ["database crm was not restored"]
    assert not_applied([first, second], skipped) == ["r1"]
