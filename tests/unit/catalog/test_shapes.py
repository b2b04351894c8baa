"""The job and event shapes: documented field by field, and the documentation in step."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel

from strongroom.catalog.shapes import DOCUMENTED, SCHEMA_VERSION, refresh_tables

EVENTS_DOC = Path(__file__).resolve().parents[3] / "docs" / "events.md"


def test_docs_events_md_shows_the_tables_the_models_make() -> None:
    text = EVENTS_DOC.read_text(encoding="utf-8")
    assert refresh_tables(text) == text, (
        "docs/events.md is stale: run .venv/bin/python dev/gen-event-docs and commit it"
    )
    for model in DOCUMENTED:
        assert f"<!-- generated: {model.__name__} -->" in text, model.__name__


def test_a_stale_table_is_rewritten() -> None:
    stale = "<!-- generated: JobErrorShape -->\n| old |\n<!-- end generated -->"
    assert "`retryable` | boolean |" in refresh_tables(stale)
    assert "| old |" not in refresh_tables(stale)


@pytest.mark.parametrize("model", DOCUMENTED, ids=lambda model: model.__name__)
def test_every_field_is_described_and_unknown_fields_are_refused(
    model: type[BaseModel],
) -> None:
    assert model.model_config.get("extra") == "forbid"
    for name, field in model.model_fields.items():
        assert field.description, f"{model.__name__}.{name}"


def test_job_and_event_documents_carry_the_schema_version() -> None:
    assert SCHEMA_VERSION == 1
    for model in DOCUMENTED:
        if "schema_version" in model.model_fields:
            assert model.model_fields["schema_version"].default == SCHEMA_VERSION
