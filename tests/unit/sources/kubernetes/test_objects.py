"""Stripping, the never-restored rules, namespace rewriting and restore order."""

from __future__ import annotations

import pytest

from strongroom.errors import ConfigError
from strongroom.sources.kubernetes.discovery import ResourceType
from strongroom.sources.kubernetes.objects import (
    map_namespaces,
    namespace_selected,
    never_restored,
    normalized,
    prepared_for_restore,
    strip,
    type_selected,
)
from strongroom.sources.kubernetes.restore import STAGES, stage_of
from strongroom.sources.kubernetes.target import KubernetesRestoreTarget
from strongroom.sources.targets import parse_target

CONFIGMAPS = ResourceType("", "v1", "configmaps", "ConfigMap", namespaced=True)
SECRETS = ResourceType("", "v1", "secrets", "Secret", namespaced=True)
DEPLOYMENTS = ResourceType("apps", "v1", "deployments", "Deployment", namespaced=True)
CRDS = ResourceType(
    "apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", False
)


def test_strip_removes_server_set_fields_and_status_unless_kept() -> None:
    item = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "namespace": "shop",
            "uid": "1",
            "resourceVersion": "9",
            "generation": 3,
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "managedFields": [{}],
            "annotations": {"deployment.kubernetes.io/revision": "4"},
            "labels": {"app": "web"},
        },
        "spec": {"replicas": 2},
        "status": {"readyReplicas": 2},
    }

    stripped = strip(item)

    assert stripped == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
        "spec": {"replicas": 2},
    }
    assert strip(item, keep_status=True)["status"] == {"readyReplicas": 2}
    assert item["metadata"]["uid"] == "1"  # the original is untouched


def test_a_service_loses_its_assigned_cluster_ip_but_keeps_headless() -> None:
    assigned = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "a"}}
    assigned["spec"] = {"clusterIP": "10.96.0.7", "clusterIPs": ["10.96.0.7"], "ports": []}
    headless = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "b"}}
    headless["spec"] = {"clusterIP": "None", "clusterIPs": ["None"]}

    assert strip(assigned)["spec"] == {"ports": []}
    assert strip(headless)["spec"] == {"clusterIP": "None", "clusterIPs": ["None"]}


@pytest.mark.parametrize(
    ("rtype", "item", "reason"),
    [
        (
            CONFIGMAPS,
            {"metadata": {"name": "x", "ownerReferences": [{"controller": True, "uid": "1"}]}},
            "owned by a controller",
        ),
        (CONFIGMAPS, {"metadata": {"name": "kube-root-ca.crt"}}, "published"),
        (
            SECRETS,
            {"metadata": {"name": "t"}, "type": "kubernetes.io/service-account-token"},
            "tokens",
        ),
        (
            ResourceType("", "v1", "services", "Service", True),
            {"metadata": {"name": "kubernetes", "namespace": "default"}},
            "API server's own",
        ),
        (
            ResourceType("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False),
            {
                "metadata": {
                    "name": "admin",
                    "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
                }
            },
            "RBAC default",
        ),
    ],
)
def test_objects_a_cluster_recreates_are_never_restored(
    rtype: ResourceType, item: dict[str, object], reason: str
) -> None:
    found = never_restored(rtype, item)  # type: ignore[arg-type]
    assert found is not None and reason in found


def test_ordinary_objects_are_kept() -> None:
    owned_not_controller = {"metadata": {"name": "x", "ownerReferences": [{"uid": "1"}]}}
    assert never_restored(CONFIGMAPS, {"metadata": {"name": "settings"}}) is None
    assert never_restored(CONFIGMAPS, owned_not_controller) is None
    assert never_restored(SECRETS, {"metadata": {"name": "s"}, "type": "Opaque"}) is None


def test_namespace_mapping_rewrites_the_object_and_its_references() -> None:
    mapping = {"shop": "shop-copy"}
    binding = {
        "kind": "RoleBinding",
        "metadata": {"name": "b", "namespace": "shop"},
        "subjects": [
            {"kind": "ServiceAccount", "name": "app", "namespace": "shop"},
            {"kind": "ServiceAccount", "name": "ci", "namespace": "tools"},
            {"kind": "User", "name": "ann"},
        ],
    }
    namespace = {
        "kind": "Namespace",
        "metadata": {"name": "shop", "labels": {"kubernetes.io/metadata.name": "shop"}},
    }
    webhook = {
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "w"},
        "webhooks": [{"clientConfig": {"service": {"name": "hook", "namespace": "shop"}}}],
    }

    assert map_namespaces(binding, mapping)["metadata"]["namespace"] == "shop-copy"
    assert [s.get("namespace") for s in map_namespaces(binding, mapping)["subjects"]] == [
        "shop-copy",
        "tools",
        None,
    ]
    assert map_namespaces(namespace, mapping)["metadata"] == {
        "name": "shop-copy",
        "labels": {"kubernetes.io/metadata.name": "shop-copy"},
    }
    rewritten = map_namespaces(webhook, mapping)
    assert rewritten["webhooks"][0]["clientConfig"]["service"]["namespace"] == "shop-copy"
    assert binding["metadata"]["namespace"] == "shop"


def test_a_restored_object_drops_owner_references() -> None:
    item = {"kind": "ConfigMap", "metadata": {"name": "c", "ownerReferences": [{"uid": "1"}]}}
    assert "ownerReferences" not in prepared_for_restore(item, {})["metadata"]
    assert normalized(item)["metadata"] == {"name": "c"}


def test_type_and_namespace_filters() -> None:
    assert type_selected(DEPLOYMENTS, [], [])
    assert type_selected(DEPLOYMENTS, ["Deployment"], [])
    assert type_selected(DEPLOYMENTS, ["deployments.apps"], [])
    assert not type_selected(DEPLOYMENTS, ["configmaps"], [])
    assert not type_selected(DEPLOYMENTS, [], ["deployments"])
    assert namespace_selected("team-a", ["team-*"], [])
    assert not namespace_selected("team-a", ["team-*"], ["*-a"])
    assert not namespace_selected("other", ["team-*"], [])


def test_restore_order_puts_namespaces_then_config_then_rbac_then_workloads_last() -> None:
    namespaces = ResourceType("", "v1", "namespaces", "Namespace", False)
    roles = ResourceType("rbac.authorization.k8s.io", "v1", "roles", "Role", True)
    widgets = ResourceType("example.com", "v1", "widgets", "Widget", True)
    order = [stage_of(t) for t in (namespaces, CONFIGMAPS, roles, DEPLOYMENTS, widgets)]
    assert order == sorted(order)
    assert len(set(order)) == 5
    assert stage_of(widgets) == len(STAGES)


def test_namespace_map_accepts_pairs_and_refuses_bad_names() -> None:
    target = parse_target(KubernetesRestoreTarget, {"namespace_map": "a=b, c=d"}, "kubernetes")
    assert target.namespace_map == {"a": "b", "c": "d"}
    with pytest.raises(ConfigError, match="not a namespace name"):
        parse_target(KubernetesRestoreTarget, {"namespace_map": {"a": "Bad_Name"}}, "kubernetes")
    with pytest.raises(ConfigError, match="two namespaces to one"):
        parse_target(KubernetesRestoreTarget, {"namespace_map": "a=x,b=x"}, "kubernetes")
    with pytest.raises(ConfigError, match="OLD=NEW"):
        parse_target(KubernetesRestoreTarget, {"namespace_map": "a"}, "kubernetes")
