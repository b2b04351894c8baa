"""The source registry: every line loads, reading it loads no database driver, and what
the registry declares (restore-target models, the cache capability) is what services use."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel

import strongroom.vault
from strongroom.config.resources import FilesResource
from strongroom.errors import ConfigError, UnsupportedError
from strongroom.sources import REGISTRY, entry_for, source_types
from strongroom.sources.base import Source, SourceContext
from strongroom.sources.targets import target_keys
from tests.support.source_fakes import ReusingMemorySink

DRIVERS = ("psycopg", "pymysql")

_PROBE = """
import json, sys
import strongroom.sources as sources
from strongroom.sources.targets import target_keys
for entry in sources.REGISTRY.values():
    target_keys(entry.target_model())
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in {drivers})))
"""


def test_reading_the_registry_and_every_target_model_imports_no_database_driver() -> None:
    probe = _PROBE.format(drivers=set(DRIVERS))
    output = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True
    ).stdout
    assert json.loads(output) == []


@pytest.mark.parametrize("type_name", sorted(REGISTRY))
def test_every_registry_line_loads_a_source_of_its_type_and_a_described_target_model(
    type_name: str,
) -> None:
    entry = REGISTRY[type_name]
    assert entry.type_name == type_name
    source_class = entry.source_class()
    assert source_class.type_name == type_name
    model = entry.target_model()
    assert model.model_config.get("extra") == "forbid"
    keys = target_keys(model)
    assert keys, f"{type_name}'s restore target has no keys"
    assert all(key.description for key in keys), f"{type_name}: a target key has no description"


@pytest.mark.parametrize("name", sorted(strongroom.vault.__all__))
def test_every_lazy_part_of_the_vault_package_loads(name: str) -> None:
    assert getattr(strongroom.vault, name) is not None


def test_a_type_without_a_source_is_refused_naming_those_that_exist() -> None:
    with pytest.raises(UnsupportedError) as raised:
        entry_for("no-such-type", resource="events")
    assert "'events'" in str(raised.value) and "'no-such-type'" in str(raised.value)
    assert raised.value.hint is not None
    assert all(name in raised.value.hint for name in source_types())


def test_a_bad_target_key_is_refused_naming_the_allowed_keys() -> None:
    with pytest.raises(ConfigError) as raised:
        entry_for("mysql").parse_target({"path": "/tmp/x"})
    message = str(raised.value)
    assert "'path': unknown key" in message
    for key in ("database", "database_map", "databases", "users", "checks"):
        assert key in message


def test_a_good_target_comes_back_as_the_model() -> None:
    parsed = entry_for("postgres").parse_target({"database": "copy", "jobs": "4"})
    assert isinstance(parsed, BaseModel)
    assert parsed.model_dump()["jobs"] == 4


def test_a_source_that_keeps_a_cache_is_built_with_its_own_cache_file(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "a.txt").write_bytes(b"a")
    entry = entry_for("files")
    assert entry.keeps_cache
    source = entry.build(
        FilesResource(type="files", paths=[str(tree)]), resource="docs", cache_dir=tmp_path / "c"
    )
    assert isinstance(source, Source)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    source.backup(SourceContext(scratch=scratch), ReusingMemorySink({}))
    assert (tmp_path / "c" / "files" / "docs.sqlite").is_file()


DOCS = Path(__file__).parents[3] / "docs" / "sources"


@pytest.mark.parametrize("type_name", sorted(REGISTRY))
def test_every_registered_source_has_a_docs_page_naming_its_restore_target_keys(
    type_name: str,
) -> None:
    page = (DOCS / f"{type_name}.md").read_text()
    missing = [
        key.name
        for key in target_keys(REGISTRY[type_name].target_model())
        if f"`{key.name}`" not in page
    ]
    assert missing == [], f"docs/sources/{type_name}.md does not name {missing}"
