"""Every resource type an API server serves, at each group's preferred version.

Discovery reads ``/api`` and ``/apis``, then each group's preferred version. Subresources
(``deployments/scale``) and types that cannot be both listed and created are left out:
a backup lists, a restore creates.
"""

from __future__ import annotations

from dataclasses import dataclass

from strongroom.errors import StrongroomError
from strongroom.sources.base import JsonObject
from strongroom.sources.kubernetes.client import KubeApi


@dataclass(frozen=True)
class ResourceType:
    """One resource type: ``group`` ("" for the core group), version, plural name, kind."""

    group: str
    version: str
    resource: str
    kind: str
    namespaced: bool

    @property
    def key(self) -> str:
        """``GROUP/VERSION/RESOURCE`` ("core" for the core group): stream and count key."""
        return f"{self.group or 'core'}/{self.version}/{self.resource}"

    @property
    def api_version(self) -> str:
        """The ``apiVersion`` of its objects: ``v1`` or ``GROUP/VERSION``."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> str:
        """``RESOURCE.GROUP`` (``RESOURCE`` for the core group), as RBAC and kubectl say it."""
        return f"{self.resource}.{self.group}" if self.group else self.resource

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        """The URL path of its collection (in ``namespace``) or of the object ``name``."""
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if namespace is not None and self.namespaced:
            base += f"/namespaces/{namespace}"
        base += f"/{self.resource}"
        return f"{base}/{name}" if name is not None else base

    def to_json(self) -> JsonObject:
        """The fields metadata records for it."""
        return {
            "group": self.group,
            "version": self.version,
            "resource": self.resource,
            "kind": self.kind,
            "namespaced": self.namespaced,
        }

    @classmethod
    def from_json(cls, entry: JsonObject) -> ResourceType:
        """Read back what :meth:`to_json` wrote."""
        return cls(
            group=str(entry["group"]),
            version=str(entry["version"]),
            resource=str(entry["resource"]),
            kind=str(entry["kind"]),
            namespaced=bool(entry["namespaced"]),
        )


@dataclass
class Discovery:
    """The types found, and the groups whose discovery failed (name: reason)."""

    types: list[ResourceType]
    failed_groups: dict[str, str]

    def by_group_kind(self, group: str, kind: str) -> ResourceType | None:
        """The served type of a kind in a group, or None when the server has none."""
        for found in self.types:
            if found.group == group and found.kind == kind:
                return found
        return None


def server_version(api: KubeApi) -> str:
    """The server's ``gitVersion`` (e.g. ``v1.37.2``)."""
    answer = api.request("GET", "/version", "reading the server version")
    return str(answer.get("gitVersion", "unknown"))


def discover(api: KubeApi) -> Discovery:
    """List every listable, creatable resource type at its group's preferred version.

    A group whose discovery fails (an aggregated API that is down) is named in
    ``failed_groups``; an unreachable server or refused credentials raise.
    """
    types = _group_version_types(api, "", "v1")
    failed: dict[str, str] = {}
    groups = api.request("GET", "/apis", "listing the API groups").get("groups", [])
    for group in groups:
        preferred = group.get("preferredVersion") or group["versions"][0]
        try:
            types += _group_version_types(api, group["name"], preferred["version"])
        except StrongroomError as exc:
            if exc.code == "AccessDeniedException" and "credentials" in exc.message:
                raise
            failed[group["name"]] = str(exc)
    return Discovery(types=types, failed_groups=failed)


def _group_version_types(api: KubeApi, group: str, version: str) -> list[ResourceType]:
    path = f"/apis/{group}/{version}" if group else f"/api/{version}"
    answer = api.request("GET", path, f"discovering {group or 'core'}/{version}")
    found = []
    for entry in answer.get("resources", []):
        verbs = set(entry.get("verbs", []))
        if "/" in entry["name"] or not {"list", "create"} <= verbs:
            continue
        found.append(
            ResourceType(
                group=group,
                version=version,
                resource=entry["name"],
                kind=entry["kind"],
                namespaced=bool(entry["namespaced"]),
            )
        )
    return found
