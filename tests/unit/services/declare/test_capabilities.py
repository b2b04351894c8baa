"""The refusal of a resource type follows the source registry, with no other edit."""

from __future__ import annotations

from pathlib import Path

import pytest

from strongroom.services.declare.documents import validate_document
from strongroom.sources import REGISTRY

CONFIG = """\
resources:
  events:
    type: kubernetes
  app-db:
    type: sqlite
    path: /var/lib/app/app.db
"""


def _refused_paths(tmp_path: Path) -> list[str]:
    path = tmp_path / "strongroom.yaml"
    path.write_text(CONFIG)
    return [issue.path for issue in validate_document(path).errors]


def test_registering_a_source_lifts_the_refusal_of_its_type(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every type of the schema has a source now: take one out to see the refusal.
    kubernetes = REGISTRY["kubernetes"]
    monkeypatch.delitem(REGISTRY, "kubernetes")
    assert _refused_paths(tmp_path) == ["resources.events.type"]

    monkeypatch.setitem(REGISTRY, "kubernetes", kubernetes)
    assert _refused_paths(tmp_path) == []

    monkeypatch.delitem(REGISTRY, "sqlite")
    assert _refused_paths(tmp_path) == ["resources.app-db.type"]
