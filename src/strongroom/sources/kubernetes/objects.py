"""API objects as strongroom keeps them: server-set fields stripped, what never restores
left out, and namespaces rewritten for a restore into other namespaces.

The never-restored rules are the list of ``docs/sources/kubernetes.md``: types that only
describe the running cluster (events, nodes, leases, endpoints, …) and objects a controller
or the API server itself re-creates (anything with a controller owner reference, the RBAC
and flow-control defaults, the ``kubernetes`` service, ``kube-root-ca.crt`` config maps,
service-account token secrets).
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterable, Mapping
from typing import Any

from strongroom.sources.base import JsonObject
from strongroom.sources.kubernetes.discovery import ResourceType

SERVER_SET_METADATA = (
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
)
"""Fields of ``metadata`` the server writes: never backed up, never compared."""

SERVER_SET_ANNOTATIONS = ("deployment.kubernetes.io/revision",)
"""Annotations a controller writes and re-writes: a restored object gets its own."""

NEVER_RESTORED_TYPES: Mapping[str, str] = {
    "events": "events describe what happened, not what to run",
    "events.events.k8s.io": "events describe what happened, not what to run",
    "nodes": "nodes register themselves",
    "leases.coordination.k8s.io": "leases are held by running processes",
    "endpoints": "the endpoints controller writes them for services",
    "csinodes.storage.k8s.io": "CSI drivers register them per node",
    "volumeattachments.storage.k8s.io": "they describe volumes attached to nodes",
    "certificatesigningrequests.certificates.k8s.io": "requests are answered once",
    "ipaddresses.networking.k8s.io": "the API server allocates them for services",
    "resourceslices.resource.k8s.io": "drivers publish them per node",
}
"""Resource types (``RESOURCE.GROUP``) a backup leaves out, with the reason."""

SYSTEM_NAMESPACE_LABEL = "kubernetes.io/metadata.name"


def never_restored(rtype: ResourceType, item: JsonObject) -> str | None:
    """The reason an object is left out of a backup, or None when it is kept."""
    metadata = item.get("metadata", {})
    labels = metadata.get("labels") or {}
    annotations = metadata.get("annotations") or {}
    name = metadata.get("name", "")
    if any(ref.get("controller") for ref in metadata.get("ownerReferences") or []):
        return "owned by a controller, which re-creates it"
    if labels.get("kubernetes.io/bootstrapping") == "rbac-defaults":
        return "an RBAC default the API server re-creates"
    if annotations.get("apf.kubernetes.io/autoupdate-spec") == "true":
        return "a flow-control default the API server re-creates"
    if labels.get("kube-aggregator.kubernetes.io/automanaged"):
        return "an API service the API server manages"
    group_resource = rtype.group_resource
    if group_resource == "services" and (metadata.get("namespace"), name) == (
        "default",
        "kubernetes",
    ):
        return "the API server's own service"
    if group_resource == "servicecidrs.networking.k8s.io" and name == "kubernetes":
        return "the API server's default service CIDR"
    if group_resource == "configmaps" and name == "kube-root-ca.crt":
        return "published in every namespace by a controller"
    if group_resource == "secrets" and item.get("type") == "kubernetes.io/service-account-token":
        return "service-account tokens are issued by the cluster"
    if group_resource == "priorityclasses.scheduling.k8s.io" and name.startswith("system-"):
        return "a priority class the API server re-creates"
    return None


def json_copy(item: JsonObject) -> JsonObject:
    """A deep copy of a JSON object (several times faster than ``copy.deepcopy``)."""
    copied: JsonObject = json.loads(json.dumps(item))
    return copied


def strip(item: JsonObject, *, keep_status: bool = False) -> JsonObject:
    """A copy without the fields the server sets (and ``status`` unless ``keep_status``).

    A service's assigned cluster IPs go too (a restored service gets its own), unless it
    is headless (``None``), which is the user's choice.
    """
    return strip_in_place(json_copy(item), keep_status=keep_status)


def strip_in_place(stripped: JsonObject, *, keep_status: bool = False) -> JsonObject:
    """:func:`strip` on the object itself (one the caller owns, fresh from the server)."""
    metadata = stripped.setdefault("metadata", {})
    for field in SERVER_SET_METADATA:
        metadata.pop(field, None)
    annotations = metadata.get("annotations")
    if annotations:
        for annotation in SERVER_SET_ANNOTATIONS:
            annotations.pop(annotation, None)
        if not annotations:
            metadata.pop("annotations")
    if not keep_status:
        stripped.pop("status", None)
    if stripped.get("kind") == "Service" and stripped.get("apiVersion") == "v1":
        spec = stripped.get("spec") or {}
        if spec.get("clusterIP") not in (None, "None"):
            spec.pop("clusterIP", None)
            spec.pop("clusterIPs", None)
    return stripped


def normalized(item: JsonObject, *, keep_status: bool = False) -> JsonObject:
    """The form two objects are compared in: stripped, owner references dropped."""
    result = strip(item, keep_status=keep_status)
    result["metadata"].pop("ownerReferences", None)
    return result


def canonical_line(item: JsonObject) -> bytes:
    """One object as a line of a stream: keys sorted, no spaces, newline-terminated."""
    return json.dumps(item, sort_keys=True, separators=(",", ":")).encode() + b"\n"


def object_name(rtype: ResourceType | None, item: JsonObject) -> str:
    """``Kind namespace/name`` (``Kind name`` when cluster-scoped), for reports."""
    metadata = item.get("metadata", {})
    kind = item.get("kind") or (rtype.kind if rtype else "?")
    namespace = metadata.get("namespace")
    name = metadata.get("name", "?")
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"


def matches_any(value: str, patterns: Iterable[str]) -> bool:
    """True when ``value`` matches one of the globs (``*``, ``?``, ``[abc]``)."""
    return any(fnmatch.fnmatchcase(value, pattern) for pattern in patterns)


def type_selected(rtype: ResourceType, include: list[str], exclude: list[str]) -> bool:
    """Whether a type passes include/exclude lists of resources, ``RESOURCE.GROUP`` or kinds.

    Names compare case-insensitively; an empty include list takes every type.
    """
    names = {rtype.resource, rtype.group_resource, rtype.kind.lower()}

    def named(patterns: list[str]) -> bool:
        return any(pattern.lower() in names for pattern in patterns)

    return (not include or named(include)) and not named(exclude)


def namespace_selected(namespace: str, include: list[str], exclude: list[str]) -> bool:
    """Whether a namespace passes the include and exclude globs (empty include: all)."""
    return (not include or matches_any(namespace, include)) and not matches_any(namespace, exclude)


def map_namespaces(item: JsonObject, mapping: Mapping[str, str]) -> JsonObject:
    """A copy with every namespace the object is in or names rewritten by ``mapping``.

    Rewrites ``metadata.namespace``, a Namespace's own name (and its
    ``kubernetes.io/metadata.name`` label), RoleBinding and ClusterRoleBinding subjects,
    and the service namespaces of webhook configurations, API services and CRD conversion
    webhooks. Namespaces not in ``mapping`` stay as they are.
    """
    if not mapping:
        return item
    result = json_copy(item)
    metadata = result.setdefault("metadata", {})

    def mapped(namespace: Any) -> Any:
        return mapping.get(namespace, namespace) if isinstance(namespace, str) else namespace

    if "namespace" in metadata:
        metadata["namespace"] = mapped(metadata["namespace"])
    kind = result.get("kind")
    if kind == "Namespace":
        metadata["name"] = mapped(metadata.get("name"))
        labels = metadata.get("labels") or {}
        if SYSTEM_NAMESPACE_LABEL in labels:
            labels[SYSTEM_NAMESPACE_LABEL] = metadata["name"]
    for subject in result.get("subjects") or []:
        if "namespace" in subject:
            subject["namespace"] = mapped(subject["namespace"])
    services = [webhook.get("clientConfig", {}) for webhook in result.get("webhooks") or []]
    spec = result.get("spec") or {}
    services.append(spec)  # APIService: spec.service
    conversion = (spec.get("conversion") or {}).get("webhook") or {}
    services.append(conversion.get("clientConfig") or {})
    for holder in services:
        service = holder.get("service")
        if isinstance(service, dict) and "namespace" in service:
            service["namespace"] = mapped(service["namespace"])
    return result


def prepared_for_restore(item: JsonObject, mapping: Mapping[str, str]) -> JsonObject:
    """The object as a restore sends it: namespaces mapped, owner references dropped.

    Owner references name objects by ``uid``, which a restored owner does not keep.
    """
    result = map_namespaces(item, mapping)
    if result is item:
        result = json_copy(item)
    result.setdefault("metadata", {}).pop("ownerReferences", None)
    return result
