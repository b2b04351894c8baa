"""Issue #16 "done means" from the CLI: the objects of a real API server backed up through
a plan, restored into mapped namespaces, restore-tested, and a forged point (one config
map value altered before sealing) failing its restore test.

The steps are those of :func:`tests.e2e.test_sources_cli.run_case`; the namespaces and
the CRD are this test's own (unique names: test runs share the server).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from strongroom.sources.kubernetes.objects import normalized
from tests.e2e.test_sources_cli import MARKER, Case, run_case
from tests.integration.sources.kube_data import (
    Populated,
    call,
    delete_crd,
    delete_namespaces,
    populate,
)
from tests.support.services import KubeService, unique_name

pytestmark = pytest.mark.e2e


@pytest.fixture
def cluster(kube_service: KubeService) -> Iterator[tuple[Any, Populated]]:
    api_client = kube_service.connect()
    populated = populate(api_client, unique_name("sr-cli").replace("_", "-").lower())
    copies = [f"{namespace}-copy" for namespace in populated.namespaces]
    try:
        yield api_client, populated
    finally:
        delete_namespaces(api_client, populated.namespaces + copies, populated.crd_group)
        delete_crd(api_client, populated.crd_name)
        api_client.close()


def _objects(api_client: Any, populated: Populated, namespace: str) -> dict[str, Any]:
    paths = {
        "ConfigMap": f"/api/v1/namespaces/{namespace}/configmaps",
        "Secret": f"/api/v1/namespaces/{namespace}/secrets",
        "Deployment": f"/apis/apps/v1/namespaces/{namespace}/deployments",
        "Widget": populated.widget_path(namespace),
    }
    found = {}
    for kind, path in paths.items():
        for item in call(api_client, "GET", path)["items"]:
            item = normalized(item)
            item["metadata"].pop("namespace")
            found[f"{kind} {item['metadata']['name']}"] = item
    return found


def test_kubernetes_through_a_plan(
    kube_service: KubeService, cluster: tuple[Any, Populated], tmp_path: Path
) -> None:
    api_client, populated = cluster
    first = populated.namespaces[0]
    call(
        api_client,
        "POST",
        f"/api/v1/namespaces/{first}/configmaps",
        {"metadata": {"name": "marked"}, "data": {"note": MARKER}},
    )
    mapping = ",".join(f"{namespace}={namespace}-copy" for namespace in populated.namespaces)

    def compare() -> None:
        for namespace in populated.namespaces:
            copied = _objects(api_client, populated, f"{namespace}-copy")
            assert copied == _objects(api_client, populated, namespace)
            assert len(copied) == 3 + 3 + 1 + 3 + (namespace == first)

    case = Case(
        resource={
            "type": "kubernetes",
            "kubeconfig": kube_service.kubeconfig,
            "context": kube_service.context,
            "namespaces": [f"{first[:-2]}-*"],
        },
        restore_target=[f"namespace_map={mapping}"],
        compare=compare,
        tampered_checks=["objects/core/v1/configmaps.jsonl"],
    )
    run_case(tmp_path, "cluster", case)
