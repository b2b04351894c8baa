"""The kubernetes source against a real kube-apiserver (with etcd) of `dev/services up kube`.

Each test makes its own namespaces and CRD group (unique names: test runs share the
server) through the plain official client, and deletes them afterwards.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from strongroom.config.resources import KubernetesResource
from strongroom.errors import AccessDeniedError, NetworkError
from strongroom.sources.base import SourceContext
from strongroom.sources.kubernetes.objects import normalized
from strongroom.sources.kubernetes.source import KubernetesSource
from tests.integration.sources.kube_data import (
    Populated,
    call,
    delete_crd,
    delete_namespaces,
    populate,
)
from tests.support.services import KubeService, unique_name
from tests.support.source_fakes import MemoryReader, MemorySink

pytestmark = pytest.mark.integration


def _prefix() -> str:
    return unique_name("sr").replace("_", "-").lower()


@pytest.fixture
def cluster(kube_service: KubeService) -> Iterator[tuple[Any, Populated]]:
    """The admin ApiClient and two populated namespaces with a CRD, removed afterwards."""
    api_client = kube_service.connect()
    populated = populate(api_client, _prefix())
    try:
        yield api_client, populated
    finally:
        delete_namespaces(api_client, populated.namespaces, populated.crd_group)
        delete_crd(api_client, populated.crd_name)
        api_client.close()


def _source(kube_service: KubeService, populated: Populated, **settings: Any) -> KubernetesSource:
    resource = KubernetesResource.model_validate(
        {
            "type": "kubernetes",
            "kubeconfig": kube_service.kubeconfig,
            "context": kube_service.context,
            "namespaces": [f"{populated.namespaces[0][:-2]}-*"],
            **settings,
        }
    )
    return KubernetesSource(resource, namespace_wait_seconds=2)


def _context(tmp_path: Path, *, dry_run: bool = False) -> SourceContext:
    return SourceContext(scratch=tmp_path, dry_run=dry_run)


def _snapshot(api_client: Any, populated: Populated) -> dict[str, Any]:
    """Every object of the test namespaces, normalized, by (kind, namespace, name)."""
    found: dict[str, Any] = {}
    for namespace in populated.namespaces:
        paths = {
            "ConfigMap": f"/api/v1/namespaces/{namespace}/configmaps",
            "Secret": f"/api/v1/namespaces/{namespace}/secrets",
            "Service": f"/api/v1/namespaces/{namespace}/services",
            "ServiceAccount": f"/api/v1/namespaces/{namespace}/serviceaccounts",
            "Deployment": f"/apis/apps/v1/namespaces/{namespace}/deployments",
            "Role": f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/roles",
            "RoleBinding": f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/rolebindings",
            "Widget": populated.widget_path(namespace),
        }
        for kind, path in paths.items():
            for item in call(api_client, "GET", path)["items"]:
                found[f"{kind} {namespace}/{item['metadata']['name']}"] = normalized(item)
    return found


def test_backup_writes_one_stream_per_type_with_counts_and_stripped_objects(
    kube_service: KubeService, cluster: tuple[Any, Populated], tmp_path: Path
) -> None:
    _, populated = cluster
    sink = MemorySink()

    result = _source(kube_service, populated).backup(_context(tmp_path), sink)

    metadata = result.metadata
    assert not result.partial, result.failed_parts
    assert metadata["server_version"].startswith("v1.37.")
    assert metadata["namespaces"] == populated.namespaces
    assert metadata["counts"]["core/v1/configmaps"] == 6
    assert metadata["counts"]["core/v1/secrets"] == 6
    assert metadata["counts"]["apps/v1/deployments"] == 2
    assert metadata["counts"][f"{populated.crd_group}/v1/widgets"] == 6
    assert metadata["counts"]["core/v1/namespaces"] == 2
    assert populated.crd_name in metadata["crds"]
    assert "core/v1/events" in metadata["types_left_out"]
    secrets = [
        json.loads(line) for line in sink.streams["objects/core/v1/secrets.jsonl"].splitlines()
    ]
    assert {item["metadata"]["namespace"] for item in secrets} == set(populated.namespaces)
    for item in secrets:
        assert not {"uid", "resourceVersion", "creationTimestamp", "managedFields"} & set(
            item["metadata"]
        )
        assert len(base64.b64decode(item["data"]["blob"])) == 66
    services = sink.streams["objects/core/v1/services.jsonl"].splitlines()
    assert all("clusterIP" not in json.loads(line)["spec"] for line in services)
    # Namespaced objects outside the selected namespaces are in no stream.
    found_namespaces = {
        json.loads(line)["metadata"].get("namespace")
        for data in sink.streams.values()
        for line in data.splitlines()
    }
    assert found_namespaces - {None} == set(populated.namespaces)


def test_restore_brings_back_deleted_namespaces_and_crd_equal(
    kube_service: KubeService, cluster: tuple[Any, Populated], tmp_path: Path
) -> None:
    api_client, populated = cluster
    source = _source(kube_service, populated)
    before = _snapshot(api_client, populated)
    sink = MemorySink()
    metadata = source.backup(_context(tmp_path), sink).metadata
    delete_namespaces(api_client, populated.namespaces, populated.crd_group)
    delete_crd(api_client, populated.crd_name)

    report = source.restore(_context(tmp_path), MemoryReader(sink.streams), metadata, {})

    assert report.ok, report.failures
    after = _snapshot(api_client, populated)
    assert sorted(after) == sorted(before)
    for key, item in before.items():
        if key.startswith("Service "):
            item["spec"].pop("clusterIP", None)
            item["spec"].pop("clusterIPs", None)
            after[key]["spec"].pop("clusterIP", None)
            after[key]["spec"].pop("clusterIPs", None)
        assert after[key] == item, key
    assert any(
        note.startswith("created: apiextensions.k8s.io/v1 CustomResourceDefinition")
        for note in report.notes
    )


def test_restore_into_mapped_namespaces_rewrites_references_and_honours_existing(
    kube_service: KubeService, cluster: tuple[Any, Populated], tmp_path: Path
) -> None:
    api_client, populated = cluster
    source = _source(kube_service, populated)
    sink = MemorySink()
    metadata = source.backup(_context(tmp_path), sink).metadata
    original = populated.namespaces[0]
    mapped = f"{original}-copy"
    target = {"namespaces": [original], "namespace_map": f"{original}={mapped}"}
    try:
        report = source.restore(_context(tmp_path), MemoryReader(sink.streams), metadata, target)
        assert report.ok, report.failures
        binding = call(
            api_client,
            "GET",
            f"/apis/rbac.authorization.k8s.io/v1/namespaces/{mapped}/rolebindings/app-reads",
        )
        assert binding["subjects"][0]["namespace"] == mapped
        copied = call(api_client, "GET", f"/api/v1/namespaces/{mapped}/secrets/key-0")
        kept = call(api_client, "GET", f"/api/v1/namespaces/{original}/secrets/key-0")
        assert copied["data"] == kept["data"]
        assert (
            call(api_client, "GET", f"/api/v1/namespaces/{mapped}")["metadata"]["labels"][
                "kubernetes.io/metadata.name"
            ]
            == mapped
        )

        # existing: skip keeps a changed object; update puts the backed-up one back.
        path = f"/api/v1/namespaces/{mapped}/configmaps/settings-0"
        changed = call(api_client, "GET", path)
        changed["data"]["index"] = "changed"
        call(api_client, "PUT", path, changed)
        again = source.restore(_context(tmp_path), MemoryReader(sink.streams), metadata, target)
        assert again.ok
        assert any(note.startswith("kept: v1 ConfigMap " + mapped) for note in again.notes)
        assert call(api_client, "GET", path)["data"]["index"] == "changed"
        updated = source.restore(
            _context(tmp_path),
            MemoryReader(sink.streams),
            metadata,
            {**target, "existing": "update"},
        )
        assert updated.ok, updated.failures
        assert call(api_client, "GET", path)["data"]["index"] == "0"
    finally:
        delete_namespaces(api_client, [mapped], populated.crd_group)


def test_dry_run_restore_creates_nothing_and_says_what_it_would_do(
    kube_service: KubeService, cluster: tuple[Any, Populated], tmp_path: Path
) -> None:
    api_client, populated = cluster
    source = _source(kube_service, populated)
    sink = MemorySink()
    metadata = source.backup(_context(tmp_path), sink).metadata
    mapped = f"{populated.namespaces[0]}-dry"
    target = {
        "namespaces": [populated.namespaces[0]],
        "namespace_map": {populated.namespaces[0]: mapped},
    }

    report = source.restore(
        _context(tmp_path, dry_run=True), MemoryReader(sink.streams), metadata, target
    )

    assert report.ok, report.failures
    assert any(note.startswith(f"would be created: v1 Namespace {mapped}") for note in report.notes)
    assert any(f"ConfigMap {mapped}/settings-0" in note for note in report.notes)
    with pytest.raises(Exception) as missing:
        call(api_client, "GET", f"/api/v1/namespaces/{mapped}")
    assert getattr(missing.value, "status", None) == 404


def test_an_object_the_server_rejects_is_reported_and_the_rest_restored(
    kube_service: KubeService, cluster: tuple[Any, Populated], tmp_path: Path
) -> None:
    api_client, populated = cluster
    source = _source(kube_service, populated, include_resources=["configmaps"])
    sink = MemorySink()
    metadata = source.backup(_context(tmp_path), sink).metadata
    mapped = f"{populated.namespaces[0]}-rej"
    # A config map the server refuses: its name is not a DNS subdomain.
    stream = "objects/core/v1/configmaps.jsonl"
    lines = sink.streams[stream].splitlines(keepends=True)
    bad = json.loads(lines[0])
    bad["metadata"]["name"] = "Not_A_Valid_Name"
    lines.append(json.dumps(bad, sort_keys=True, separators=(",", ":")).encode() + b"\n")
    sink.streams[stream] = b"".join(lines)
    entry = next(e for e in metadata["types"] if e["stream"] == stream)
    import hashlib

    entry["sha256"] = hashlib.sha256(sink.streams[stream]).hexdigest()
    target = {
        "namespaces": [populated.namespaces[0]],
        "namespace_map": {populated.namespaces[0]: mapped},
    }
    try:
        report = source.restore(_context(tmp_path), MemoryReader(sink.streams), metadata, target)
        failed = [check.name for check in report.failures]
        assert any(f"ConfigMap {mapped}/Not_A_Valid_Name" in name for name in failed), failed
        assert any("Invalid" in str(check.actual) for check in report.failures)
        for index in range(3):
            call(api_client, "GET", f"/api/v1/namespaces/{mapped}/configmaps/settings-{index}")
    finally:
        delete_namespaces(api_client, [mapped])


def test_restore_test_passes_and_removes_its_scratch_namespaces(
    kube_service: KubeService, cluster: tuple[Any, Populated], tmp_path: Path
) -> None:
    api_client, populated = cluster
    source = _source(kube_service, populated)
    sink = MemorySink()
    metadata = source.backup(_context(tmp_path), sink).metadata

    report = source.restore_test(_context(tmp_path), MemoryReader(sink.streams), metadata)

    assert report.ok, report.failures
    checks = {check.name: check for check in report.checks}
    assert checks["secrets byte-equal"].actual == 6
    assert checks["scratch namespaces deleted"].actual == 2
    names = [
        item["metadata"]["name"] for item in call(api_client, "GET", "/api/v1/namespaces")["items"]
    ]
    assert not [
        name for name in names if name.startswith("srt-") and populated.namespaces[0] in name
    ]


def test_restore_test_fails_naming_objects_whose_crd_is_gone(
    kube_service: KubeService, cluster: tuple[Any, Populated], tmp_path: Path
) -> None:
    api_client, populated = cluster
    source = _source(kube_service, populated)
    sink = MemorySink()
    metadata = source.backup(_context(tmp_path), sink).metadata
    delete_crd(api_client, populated.crd_name)

    report = source.restore_test(_context(tmp_path), MemoryReader(sink.streams), metadata)

    assert not report.ok
    failed = " ".join(check.name for check in report.failures)
    assert "Widget srt-" in failed and "/widget-0" in failed
    assert {check.name: check for check in report.checks}["scratch namespaces deleted"].ok


def test_a_type_rbac_forbids_is_a_named_partial_part(
    kube_service: KubeService, cluster: tuple[Any, Populated], tmp_path: Path
) -> None:
    api_client, populated = cluster
    role = f"{populated.namespaces[0]}-reader"
    rules = [
        {"apiGroups": ["*"], "resources": ["*"], "verbs": ["get", "list"]},
    ]
    call(
        api_client,
        "POST",
        "/apis/rbac.authorization.k8s.io/v1/clusterroles",
        {"metadata": {"name": role}, "rules": rules},
    )
    # Everything but secrets: RBAC has no deny, so the role lists every other type.
    call(
        api_client,
        "PUT",
        f"/apis/rbac.authorization.k8s.io/v1/clusterroles/{role}",
        {
            "metadata": {"name": role},
            "rules": [
                {
                    "apiGroups": ["", "apps", "rbac.authorization.k8s.io", populated.crd_group],
                    "resources": ["namespaces", "configmaps", "deployments", "roles", "widgets"],
                    "verbs": ["get", "list"],
                }
            ],
        },
    )
    binding = {
        "metadata": {"name": role},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [
            {"kind": "User", "name": "strongroom-limited", "apiGroup": "rbac.authorization.k8s.io"}
        ],
    }
    call(api_client, "POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", binding)
    try:
        resource = {
            "context": kube_service.limited_context,
            "include_resources": ["configmaps", "secrets"],
        }
        result = _source(kube_service, populated, **resource).backup(
            _context(tmp_path), MemorySink()
        )
    finally:
        call(api_client, "DELETE", f"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/{role}")
        call(api_client, "DELETE", f"/apis/rbac.authorization.k8s.io/v1/clusterroles/{role}")

    assert result.partial
    assert list(result.failed_parts) == ["core/v1/secrets"]
    assert "list secrets" in result.failed_parts["core/v1/secrets"]
    assert "forbidden" in result.failed_parts["core/v1/secrets"]
    assert result.metadata["counts"]["core/v1/configmaps"] == 6


def test_wrong_credentials_and_unreachable_server_are_typed_errors(
    kube_service: KubeService, tmp_path: Path
) -> None:
    config = yaml.safe_load(Path(kube_service.kubeconfig).read_text(encoding="utf-8"))
    config["users"] = [{"name": "wrong", "user": {"token": "not-a-valid-token"}}]
    config["contexts"] = [
        {"name": "wrong", "context": {"cluster": "strongroom-dev", "user": "wrong"}},
        {"name": "down", "context": {"cluster": "down", "user": "wrong"}},
    ]
    down = json.loads(json.dumps(config["clusters"][0]))
    down["name"] = "down"
    down["cluster"]["server"] = "https://127.0.0.1:9"
    config["clusters"].append(down)
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")

    def source(context: str) -> KubernetesSource:
        resource = KubernetesResource(type="kubernetes", kubeconfig=str(path), context=context)
        return KubernetesSource(resource, request_timeout=10)

    with pytest.raises(AccessDeniedError, match="credentials were refused"):
        source("wrong").backup(_context(tmp_path), MemorySink())
    with pytest.raises(NetworkError, match="cannot be reached"):
        source("down").backup(_context(tmp_path), MemorySink())
