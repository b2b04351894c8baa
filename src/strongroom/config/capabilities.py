"""What this strongroom can run, and the findings for a configuration that asks for more.

The schema describes every resource type, store URL and rule field of the design, some of
which nothing runs yet (a resource type without a source, an unserved store scheme). Accepting
them would store a declaration that fails at every backup or is silently ignored, so
``validate`` and ``apply`` refuse them, at their path, like any other invalid setting.

The layers above say what exists (:class:`Capabilities`): the source types from the source
registry, the store schemes from ``storage.open``. Registering a source or serving a
scheme lifts the refusal with no edit here.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from strongroom.config.issues import UNSUPPORTED, Finding
from strongroom.config.resources import RESOURCE_TYPES
from strongroom.config.types import STORE_SCHEMES, Location


@dataclass(frozen=True)
class Capabilities:
    """What can run: resource types with a source, store URL schemes, copy actions."""

    source_types: Collection[str]
    store_schemes: Collection[str]
    copy_actions: bool


def _entries(
    data: Mapping[str, object], section: str
) -> Iterator[tuple[str, Mapping[str, object]]]:
    entries = data.get(section)
    if isinstance(entries, Mapping):
        for name, entry in entries.items():
            if isinstance(name, str) and isinstance(entry, Mapping):
                yield name, entry


def _scheme(url: object) -> str | None:
    if not isinstance(url, str):
        return None
    try:
        return urlsplit(url).scheme.lower() or None
    except ValueError:
        return None  # the schema reports a malformed URL itself


def _resource_findings(data: Mapping[str, object], can: Capabilities) -> Iterator[Finding]:
    known = ", ".join(sorted(can.source_types))
    for name, resource in _entries(data, "resources"):
        kind = resource.get("type")
        if kind in RESOURCE_TYPES and kind not in can.source_types:
            yield Finding(
                ("resources", name, "type"),
                UNSUPPORTED,
                f"resources of type {kind!r} cannot be backed up yet (no source for it); "
                f"the types with a source are: {known}",
            )


def _vault_findings(data: Mapping[str, object], can: Capabilities) -> Iterator[Finding]:
    served = ", ".join(f"{scheme}://" for scheme in sorted(can.store_schemes))
    for name, vault in _entries(data, "vaults"):
        places: list[tuple[Location, object]] = [(("vaults", name, "url"), vault.get("url"))]
        tier = vault.get("cold_tier")
        if isinstance(tier, Mapping) and "url" in tier:
            places.append((("vaults", name, "cold_tier", "url"), tier.get("url")))
        for location, url in places:
            scheme = _scheme(url)
            if scheme in STORE_SCHEMES and scheme not in can.store_schemes:
                yield Finding(
                    location,
                    UNSUPPORTED,
                    f"{scheme}:// stores are not supported yet; use {served}",
                )


def _copy_findings(rules: object, prefix: Location, field: str) -> Iterator[Finding]:
    if not isinstance(rules, list):
        return
    for index, rule in enumerate(rules):
        if isinstance(rule, Mapping) and rule.get(field):
            yield Finding(
                (*prefix, index, field),
                UNSUPPORTED,
                "copy actions are not run yet (no copy job exists); remove them, or copy "
                "recovery points by hand with 'strongroom vault' commands",
            )


def capability_findings(data: object, kind: str, can: Capabilities) -> list[Finding]:
    """Return a finding for each thing ``data`` declares that cannot run.

    Only what the schema accepts is checked: an unknown resource type or URL scheme is
    the schema's error already, reported once.

    ``data`` is a parsed document (valid or not: only what can be read is checked) of
    ``kind`` ``strongroom``, ``strongroom-plan`` (one plan: name, rules, selections) or
    ``aws-backup-plan``.
    """
    if not isinstance(data, Mapping):
        return []
    findings: list[Finding] = []
    if kind == "strongroom":
        findings += [*_resource_findings(data, can), *_vault_findings(data, can)]
    if can.copy_actions:
        return findings
    if kind == "aws-backup-plan":
        plan = data.get("BackupPlan", data)
        prefix: Location = ("BackupPlan", "Rules") if "BackupPlan" in data else ("Rules",)
        if isinstance(plan, Mapping):
            findings += _copy_findings(plan.get("Rules"), prefix, "CopyActions")
    elif kind == "strongroom-plan":
        findings += _copy_findings(data.get("rules"), ("rules",), "copy_actions")
    else:
        for name, plan_data in _entries(data, "plans"):
            rules = plan_data.get("rules")
            findings += _copy_findings(rules, ("plans", name, "rules"), "copy_actions")
    return findings
