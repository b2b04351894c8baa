"""The Redis restore target: what it accepts, how it maps databases and matches keys."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from strongroom.config.resources import RedisResource
from strongroom.errors import ConfigError
from strongroom.sources.redis.target import RedisRestoreTarget
from strongroom.sources.targets import parse_target


def test_database_selection_and_mapping() -> None:
    target = RedisRestoreTarget(databases=[0, 3], database_map={3: 5})

    assert target.selected_from([0, 1, 3]) == [0, 3]
    assert target.target_database(3) == 5
    assert target.target_database(0) == 0


def test_two_databases_into_one_are_refused() -> None:
    with pytest.raises(ValidationError, match="two databases to one"):
        RedisRestoreTarget(database_map={1: 4, 2: 4})
    with pytest.raises(ValueError, match="0 -> 0, 1 -> 0"):
        RedisRestoreTarget(database_map={1: 0}).selected_from([0, 1])


def test_key_patterns_match_binary_keys_byte_for_byte() -> None:
    match = RedisRestoreTarget(key_pattern="user:[!x]*").key_matcher()

    assert match(b"user:a\xff\x00")
    assert not match(b"user:x1")
    assert not match(b"order:1")
    assert RedisRestoreTarget().key_matcher()(b"\x00anything")


def test_a_cold_start_path_excludes_live_options() -> None:
    with pytest.raises(ValidationError, match="cold start"):
        RedisRestoreTarget(path="/srv/redis", replace=True)
    with pytest.raises(ValidationError, match="absolute"):
        RedisRestoreTarget(path="relative/folder")


def test_another_server_is_reached_with_the_target_s_own_login() -> None:
    resource = RedisResource(
        type="redis", url="redis://db:6379", username="backup", password="env:SOURCE_PASSWORD"
    )

    other = RedisRestoreTarget(url="redis://other:6380").server_settings(resource)
    same = RedisRestoreTarget(password="env:RESTORER").server_settings(resource)

    assert (other.url, other.username, other.password) == ("redis://other:6380", None, None)
    assert (same.url, same.username, same.password) == (
        "redis://db:6379",
        "backup",
        "env:RESTORER",
    )


def test_the_resource_refuses_modes_and_options_that_do_not_fit() -> None:
    with pytest.raises(ValidationError, match="database 0 only"):
        RedisResource(type="redis", mode="cluster", databases=[1])
    with pytest.raises(ValidationError, match=r"Input should be"):
        RedisResource.model_validate({"type": "redis", "mode": "sentinel"})
    with pytest.raises(ValidationError, match="apply to logical backups"):
        RedisResource(type="redis", databases=[1])
    with pytest.raises(ValidationError, match="snapshot only"):
        RedisResource(type="redis", mode="logical", fallback_to_logical=True)
    with pytest.raises(ValidationError, match="no password in the URL"):
        RedisResource(type="redis", url="redis://user:secret@host:6379")


# -- values from the command line (--target KEY=VALUE: text) -----------------------------------


@given(
    st.dictionaries(
        st.integers(min_value=0, max_value=10_000),
        st.integers(min_value=0, max_value=10_000),
        min_size=1,
        max_size=8,
    ).filter(lambda mapping: len(set(mapping.values())) == len(mapping))
)
def test_a_database_map_written_as_text_reads_back(mapping: dict[int, int]) -> None:
    text = ", ".join(f"{source}:{target}" for source, target in mapping.items())
    parsed = parse_target(RedisRestoreTarget, {"database_map": text}, "redis")
    assert parsed.database_map == mapping


def test_databases_and_a_key_pattern_from_text() -> None:
    parsed = parse_target(
        RedisRestoreTarget, {"databases": "0,2", "key_pattern": "shop:*"}, "redis"
    )
    assert (parsed.databases, parsed.key_pattern) == ([0, 2], "shop:*")


@pytest.mark.parametrize(
    ("key", "text", "named"),
    [
        ("database_map", "0-5", "'0-5' is not a FROM:TO pair"),
        ("database_map", "0:x", "'x' is not a database number"),
        ("database_map", "-1:3", "'-1' is not a database number"),
        ("database_map", "0:5,,1:6", "empty item"),
        ("database_map", "0:5,0:6", "database 0 is mapped twice"),
        ("database_map", "0:5,1:5", "two databases to one target database"),
        ("databases", "0,a", "'a' is not a database number"),
    ],
)
def test_bad_text_is_refused_naming_the_piece(key: str, text: str, named: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_target(RedisRestoreTarget, {key: text}, "redis")
    assert named in str(caught.value)
