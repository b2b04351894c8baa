"""Objects to back up on the test API server, made and read through the official client.

The server runs no controllers: nothing deletes a namespace's objects, so
:func:`delete_namespaces` deletes them type by type before it finalizes each namespace.
"""

from __future__ import annotations

import base64
import json
import os
import time
from dataclasses import dataclass
from typing import Any

from kubernetes.client import ApiClient

NAMESPACED_TYPES = (
    "/api/v1/{ns}/configmaps",
    "/api/v1/{ns}/secrets",
    "/api/v1/{ns}/services",
    "/api/v1/{ns}/serviceaccounts",
    "/apis/apps/v1/{ns}/deployments",
    "/apis/rbac.authorization.k8s.io/v1/{ns}/roles",
    "/apis/rbac.authorization.k8s.io/v1/{ns}/rolebindings",
)


def call(
    api_client: ApiClient,
    method: str,
    path: str,
    body: Any = None,
    query: dict[str, str] | None = None,
) -> Any:
    """One request with the plain client; returns the JSON answer.

    Raises the client's ``ApiException`` (with ``status``) for an error answer.
    """
    from kubernetes.client.exceptions import ApiException

    prepared = api_client.param_serialize(
        method,
        path,
        query_params=list((query or {}).items()),
        header_params={"Accept": "application/json", "Content-Type": "application/json"},
        body=body,
        auth_settings=["BearerToken"],
    )
    response = api_client.call_api(*prepared)
    data = response.read()
    if response.status >= 400:
        raise ApiException(status=response.status, reason=response.reason, body=data)
    return json.loads(data)


@dataclass(frozen=True)
class Populated:
    """What :func:`populate` made: namespaces, the CRD's group and name."""

    namespaces: list[str]
    crd_group: str
    crd_name: str

    def widget_path(self, namespace: str) -> str:
        """The collection path of the custom resources in ``namespace``."""
        return f"/apis/{self.crd_group}/v1/namespaces/{namespace}/widgets"


def crd_body(group: str) -> dict[str, Any]:
    """A namespaced CRD ``widgets.GROUP`` with a small schema."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "properties": {
                                        "size": {"type": "integer"},
                                        "colour": {"type": "string"},
                                    },
                                }
                            },
                        }
                    },
                }
            ],
        },
    }


def wait_established(api_client: ApiClient, name: str) -> None:
    """Poll until the CRD is Established (the server answers within seconds)."""
    for _ in range(400):
        found = call(
            api_client, "GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"
        )
        conditions = (found.get("status") or {}).get("conditions") or []
        if any(c["type"] == "Established" and c["status"] == "True" for c in conditions):
            return
        time.sleep(0.1)
    raise AssertionError(f"CRD {name} never became Established")


def populate(api_client: ApiClient, prefix: str, *, per_namespace: int = 3) -> Populated:
    """Two namespaces ``PREFIX-a`` and ``PREFIX-b``, each with config maps, binary secrets, a
    deployment, a service, a service account, a role and its binding, and custom resources
    of a CRD of its own group ``PREFIX.strongroom.test``.
    """
    group = f"{prefix}.strongroom.test"
    crd = crd_body(group)
    call(api_client, "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
    wait_established(api_client, crd["metadata"]["name"])
    namespaces = [f"{prefix}-a", f"{prefix}-b"]
    populated = Populated(namespaces, group, crd["metadata"]["name"])
    for namespace in namespaces:
        call(
            api_client,
            "POST",
            "/api/v1/namespaces",
            {"metadata": {"name": namespace, "labels": {"team": "strongroom-test"}}},
        )
        base = f"/api/v1/namespaces/{namespace}"
        for index in range(per_namespace):
            call(
                api_client,
                "POST",
                f"{base}/configmaps",
                {
                    "metadata": {"name": f"settings-{index}", "labels": {"app": "web"}},
                    "data": {"index": str(index), "text": "héllo\nwörld"},
                },
            )
            payload = os.urandom(64) + b"\x00\xff"
            call(
                api_client,
                "POST",
                f"{base}/secrets",
                {
                    "metadata": {"name": f"key-{index}"},
                    "type": "Opaque",
                    "data": {"blob": base64.b64encode(payload).decode()},
                },
            )
            call(
                api_client,
                "POST",
                populated.widget_path(namespace),
                {
                    "apiVersion": f"{group}/v1",
                    "kind": "Widget",
                    "metadata": {"name": f"widget-{index}"},
                    "spec": {"size": index, "colour": "blue"},
                },
            )
        call(api_client, "POST", f"{base}/serviceaccounts", {"metadata": {"name": "app"}})
        call(
            api_client,
            "POST",
            f"/apis/apps/v1/namespaces/{namespace}/deployments",
            {
                "metadata": {"name": "web", "labels": {"app": "web"}},
                "spec": {
                    "replicas": 2,
                    "selector": {"matchLabels": {"app": "web"}},
                    "template": {
                        "metadata": {"labels": {"app": "web"}},
                        "spec": {
                            "serviceAccountName": "app",
                            "containers": [{"name": "web", "image": "nginx:1.27"}],
                        },
                    },
                },
            },
        )
        call(
            api_client,
            "POST",
            f"{base}/services",
            {
                "metadata": {"name": "web"},
                "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]},
            },
        )
        rbac = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}"
        call(
            api_client,
            "POST",
            f"{rbac}/roles",
            {
                "metadata": {"name": "reader"},
                "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}],
            },
        )
        call(
            api_client,
            "POST",
            f"{rbac}/rolebindings",
            {
                "metadata": {"name": "app-reads"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Role",
                    "name": "reader",
                },
                "subjects": [{"kind": "ServiceAccount", "name": "app", "namespace": namespace}],
            },
        )
    return populated


def delete_namespaces(
    api_client: ApiClient, namespaces: list[str], widget_group: str | None = None
) -> None:
    """Delete the namespaces' objects type by type, then the namespaces (finalized here)."""
    paths = list(NAMESPACED_TYPES)
    if widget_group:
        paths.append(f"/apis/{widget_group}/v1/{{ns}}/widgets")
    for namespace in namespaces:
        for path in paths:
            try:
                call(api_client, "DELETE", path.format(ns=f"namespaces/{namespace}"))
            except Exception as exc:  # a type whose CRD is gone already
                if getattr(exc, "status", None) != 404:
                    raise
        try:
            call(api_client, "DELETE", f"/api/v1/namespaces/{namespace}")
        except Exception as exc:
            if getattr(exc, "status", None) == 404:
                continue
            raise
        body = {"metadata": {"name": namespace}, "spec": {"finalizers": []}}
        call(api_client, "PUT", f"/api/v1/namespaces/{namespace}/finalize", body)
    for namespace in namespaces:
        for _ in range(400):
            try:
                call(api_client, "GET", f"/api/v1/namespaces/{namespace}")
            except Exception as exc:
                if getattr(exc, "status", None) == 404:
                    break
                raise
            time.sleep(0.05)


def delete_crd(api_client: ApiClient, name: str) -> None:
    """Delete a CRD (the API server removes its custom resources) and wait until gone."""
    path = f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"
    try:
        call(api_client, "DELETE", path)
    except Exception as exc:
        if getattr(exc, "status", None) == 404:
            return
        raise
    for _ in range(600):
        try:
            call(api_client, "GET", path)
        except Exception as exc:
            if getattr(exc, "status", None) == 404:
                return
            raise
        time.sleep(0.1)
    raise AssertionError(f"CRD {name} was not removed")
