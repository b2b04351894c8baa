"""Where and how a Kubernetes restore writes: the ``target`` of ``KubernetesSource.restore``."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from strongroom.config.types import AbsolutePath, ConfigModel

_NAMESPACE = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


class KubernetesRestoreTarget(ConfigModel):
    """How a Kubernetes restore writes: which objects, into which namespaces, over what.

    Objects go to the backed-up cluster unless ``kubeconfig`` or ``context`` name another.
    """

    kubeconfig: AbsolutePath | None = Field(
        default=None,
        description="kubeconfig of the cluster to restore into; unset: the resource's.",
    )
    context: str | None = Field(
        default=None, description="kubeconfig context to restore into; unset: the resource's."
    )
    namespaces: list[str] = Field(
        default_factory=list,
        description="Backed-up namespaces to restore, as globs; empty: every one.",
    )
    namespace_map: dict[str, str] = Field(
        default_factory=dict,
        description="Restore namespaces under other names, as {backed-up: new} or "
        "'a=b,c=d'; references to them (RoleBinding subjects, webhook services) follow.",
    )
    include_resources: list[str] = Field(
        default_factory=list,
        description="Resource types to restore (plural, RESOURCE.GROUP or kind); empty: all.",
    )
    exclude_resources: list[str] = Field(
        default_factory=list, description="Resource types not to restore; they win."
    )
    cluster_scoped: bool = Field(
        default=True, description="Also restore cluster-scoped objects (CRDs, cluster roles …)."
    )
    existing: Literal["skip", "update"] = Field(
        default="skip",
        description="An object that already exists: skip keeps it as it is, update replaces "
        "it with the backed-up one.",
    )
    dry_run: bool = Field(
        default=False,
        description="Send every object as a server-side dry run: report what would be "
        "created, kept or updated, change nothing.",
    )

    @field_validator("namespace_map", mode="before")
    @classmethod
    def _pairs(cls, value: Any) -> Any:
        """Accept ``a=b,c=d`` (what ``--target namespace_map=a=b`` gives) besides a mapping."""
        if not isinstance(value, str):
            return value
        pairs: dict[str, str] = {}
        for pair in filter(None, (part.strip() for part in value.split(","))):
            old, separator, new = pair.partition("=")
            if not separator:
                raise ValueError(f"{pair!r} is not OLD=NEW")
            pairs[old.strip()] = new.strip()
        return pairs

    @model_validator(mode="after")
    def _valid_names(self) -> KubernetesRestoreTarget:
        for old, new in self.namespace_map.items():
            if not _NAMESPACE.fullmatch(new):
                raise ValueError(f"namespace_map: {new!r} (for {old!r}) is not a namespace name")
        if len(set(self.namespace_map.values())) != len(self.namespace_map):
            raise ValueError("namespace_map sends two namespaces to one")
        return self
