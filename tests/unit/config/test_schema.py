"""The generated JSON Schema and reference stay in step with the models."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
import yaml

from strongroom.config.schema import GENERATED_FILES, json_schema, reference_markdown
from tests.unit.config.configs import EXAMPLES, REPOSITORY


@pytest.mark.parametrize("name", sorted(GENERATED_FILES))
def test_committed_generated_files_are_up_to_date(name: str) -> None:
    path = REPOSITORY / "docs" / name
    assert path.exists(), f"{path} is missing: run .venv/bin/python dev/gen-config-docs"
    assert path.read_text(encoding="utf-8") == GENERATED_FILES[name](), (
        f"{path} is stale: run .venv/bin/python dev/gen-config-docs and commit the result"
    )


def _objects(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {"(root)": schema, **schema["$defs"]}


def test_every_object_forbids_unknown_keys_and_describes_every_property() -> None:
    for name, definition in _objects(json_schema()).items():
        assert definition.get("additionalProperties") is False, name
        for key, prop in definition["properties"].items():
            assert prop.get("description"), f"{name}.{key}"


def test_the_schema_uses_the_yaml_spelling_of_keys() -> None:
    concurrency = json_schema()["$defs"]["ConcurrencyConfig"]["properties"]
    assert "global" in concurrency
    assert "global_" not in concurrency


def test_secret_fields_carry_the_reference_pattern() -> None:
    password = json_schema()["$defs"]["PostgresResource"]["properties"]["password"]
    [reference, _null] = password["anyOf"]
    assert reference["pattern"].startswith("^(env:")


def test_the_reference_lists_every_key_with_type_default_and_description() -> None:
    text = reference_markdown()
    assert "| `global` | integer | `4` | Jobs running at once, in all. |" in text
    assert "| `passphrase` | secret reference | required |" in text
    assert "| `start_window_minutes` | integer | `60` |" in text
    assert "## SeparateStoreColdTier" in text
    assert "| `EnableContinuousBackup` |" in text


def _validator() -> Any:
    # a dev dependency (jsonschema>=4.23,<5): missing, these tests fail rather than skip
    jsonschema = importlib.import_module("jsonschema")
    return jsonschema.Draft202012Validator(json_schema())


def test_the_example_configuration_satisfies_the_schema() -> None:
    document = yaml.safe_load((EXAMPLES / "strongroom.yaml").read_text(encoding="utf-8"))
    assert list(_validator().iter_errors(document)) == []


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"vaults": {"v": {"url": "memory://v", "colour": "blue"}}}, "colour"),
        ({"resources": {"r": {"type": "oracle"}}}, "oracle"),
        ({"resources": {"r": {"type": "postgres", "password": "hunter2"}}}, "hunter2"),
        ({"concurrency": {"global_": 3}}, "global_"),
    ],
)
def test_the_schema_refuses_what_the_models_refuse(change: dict[str, Any], where: str) -> None:
    messages = [error.message for error in _validator().iter_errors(change)]
    assert any(where in message for message in messages), messages
