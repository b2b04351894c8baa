"""Which resources a plan covers, evaluated against the catalog at fire time.

A plan's ``selections`` column holds its :class:`~strongroom.config.plans.Selection`
models dumped as JSON (a list; ``{"selections": [...]}`` is read too). A resource is in
the plan when *any* selection selects it; each selection's own semantics (names or
list_of_tags OR'ed, resource_types, conditions AND'ed, not_names) are the config model's
:meth:`Selection.selects`, so the scheduler and ``apply`` can never disagree.

:class:`ResourceIndex` looks resources up by name and by tag, so that a tick firing many
plans over many resources checks each selection against its candidates only.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import TypeAdapter, ValidationError

from strongroom.config.plans import Selection
from strongroom.errors import ConfigError

_SELECTIONS: TypeAdapter[list[Selection]] = TypeAdapter(list[Selection])
_EVERY = "*"


@dataclass(frozen=True)
class ResourceRef:
    """What selection needs of a resource: its id, name, type and tags."""

    id: int
    name: str
    type: str
    tags: Mapping[str, str] = field(default_factory=dict)


def plan_selections(plan: str, stored: Any) -> list[Selection]:
    """Read a plan's stored selections; raises ConfigError naming the plan if invalid."""
    if isinstance(stored, Mapping):
        stored = stored.get("selections", [])
    try:
        return _SELECTIONS.validate_python(stored or [])
    except ValidationError as error:
        raise ConfigError(
            f"the catalog's selections of plan {plan!r} are not valid: {error}",
            hint="Apply the plan's configuration again ('strongroom apply -f FILE').",
        ) from None


class ResourceIndex:
    """The catalog's resources, indexed by name and by tag for fast selection."""

    def __init__(self, resources: Iterable[ResourceRef]) -> None:
        self.resources = sorted(resources, key=lambda resource: resource.name)
        self._by_name = {resource.name: resource for resource in self.resources}
        self._by_tag: dict[tuple[str, str], list[ResourceRef]] = defaultdict(list)
        for resource in self.resources:
            for pair in resource.tags.items():
                self._by_tag[pair].append(resource)

    def select(self, selections: Sequence[Selection]) -> list[ResourceRef]:
        """Return the resources any of ``selections`` selects, by name."""
        chosen: dict[int, ResourceRef] = {}
        for selection in selections:
            for resource in self._candidates(selection):
                if resource.id not in chosen and selection.selects(
                    resource.name, resource.type, resource.tags
                ):
                    chosen[resource.id] = resource
        return sorted(chosen.values(), key=lambda resource: resource.name)

    def _candidates(self, selection: Selection) -> Iterable[ResourceRef]:
        # Names and list_of_tags narrow the set (their OR must hold); without them, or with
        # "*", every resource is a candidate and the selection's other rules decide.
        if (not selection.names and not selection.list_of_tags) or _EVERY in selection.names:
            return self.resources
        found = [self._by_name[name] for name in selection.names if name in self._by_name]
        for pair in selection.list_of_tags:
            found.extend(self._by_tag.get((pair.key, pair.value), []))
        return found
