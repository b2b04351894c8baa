"""Blob names and prefixes: what is valid everywhere (file paths and S3 keys alike)."""

from __future__ import annotations

import pytest

from strongroom.errors import ConfigError
from strongroom.storage.base import check_name, check_prefix, check_range


@pytest.mark.parametrize(
    "name",
    [
        "config",
        "data/ab/abcdef",
        "a.b_c-D/E9",
        "...",
        ".hidden",
        "x" * 255,
        "/".join(["y" * 200] * 5),
    ],
)
def test_valid_names(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "/abs",
        "trailing/",
        "a//b",
        ".",
        "..",
        "a/../b",
        "a/./b",
        "newline\n",  # a regular expression's "$" would accept this
        "new\nline",
        "tab\t",
        "space d",
        "tilde~",
        "ümlaut",
        "back\\slash",
        "x" * 256,
        "/".join(["y" * 200] * 6),
    ],
)
def test_invalid_names(name: str) -> None:
    with pytest.raises(ConfigError) as invalid:
        check_name(name)
    assert repr(name) in str(invalid.value)


@pytest.mark.parametrize("prefix", ["", "data", "data/", "data/ab", "d"])
def test_valid_prefixes(prefix: str) -> None:
    assert check_prefix(prefix) == prefix


@pytest.mark.parametrize("prefix", ["/", "data//", "/data", "../", "a b", "data\n"])
def test_invalid_prefixes(prefix: str) -> None:
    with pytest.raises(ConfigError):
        check_prefix(prefix)


@pytest.mark.parametrize(("offset", "length"), [(-1, None), (0, -1)])
def test_negative_ranges(offset: int, length: int | None) -> None:
    with pytest.raises(ConfigError):
        check_range(offset, length)
