"""Frameworks as code: each requirement maps to named controls with their thresholds.

The built-in frameworks follow the seed's requirements (SOC 2 Type II, GDPR, PCI DSS,
HIPAA). A custom framework is a YAML file of the same shape::

    name: acme
    title: ACME backup policy
    requirements:
      - id: daily
        text: Daily backups kept a month
        controls:
          - control: backup-coverage-daily
          - control: retention-minimum
            params: {days: 30}

An unknown control, an unknown parameter of a control or a malformed file is a
``ConfigError`` naming it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from strongroom.compliance import backups, erasure, governance
from strongroom.compliance.evidence import Catalogued
from strongroom.compliance.model import ControlResult, Status, worst
from strongroom.errors import ConfigError

Control = Callable[[Catalogued, dict[str, Any]], ControlResult]

CONTROLS: Final[Mapping[str, tuple[Control, frozenset[str]]]] = {
    "backup-coverage-daily": (backups.backup_coverage_daily, frozenset({"exclude_types"})),
    "retention-minimum": (backups.retention_minimum, frozenset({"days"})),
    "retention-maximum": (backups.retention_maximum, frozenset({"days"})),
    "verification-within": (backups.verification_within, frozenset({"hours"})),
    "restore-test-recent": (backups.restore_test_recent, frozenset({"days"})),
    "failed-jobs-resolved": (backups.failed_jobs_resolved, frozenset()),
    "dr-copies": (backups.dr_copies, frozenset()),
    "encryption-at-rest": (governance.encryption_at_rest, frozenset()),
    "key-rotation": (governance.key_rotation, frozenset({"max_age_days"})),
    "vault-lock": (governance.vault_lock, frozenset()),
    "legal-holds": (governance.legal_holds, frozenset()),
    "audit-trail-intact": (governance.audit_trail_intact, frozenset()),
    "audit-logging": (governance.audit_logging, frozenset()),
    "restore-procedure-documented": (governance.restore_procedure_documented, frozenset({"path"})),
    "data-residency": (governance.data_residency, frozenset()),
    "erasure-requests": (erasure.erasure_requests, frozenset()),
    "outside-strongroom": (governance.outside_strongroom, frozenset({"title"})),
}
"""Every control by name, with the parameters it accepts."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ControlRef(_Strict):
    """One control of a requirement, with its thresholds."""

    control: str = Field(description="The control's name (see docs/compliance.md).")
    params: dict[str, Any] = Field(default_factory=dict, description="Its thresholds.")


class Requirement(_Strict):
    """One requirement of a framework and the controls that show it is met."""

    id: str = Field(description="Short id, unique in the framework.")
    text: str = Field(description="The requirement in words.")
    controls: list[ControlRef] = Field(min_length=1, description="Controls that show it.")


class Framework(_Strict):
    """A named set of requirements."""

    name: str = Field(description="Short name (soc2, gdpr …).")
    title: str = Field(description="Full name.")
    requirements: list[Requirement] = Field(min_length=1, description="Its requirements.")


def _req(identifier: str, text: str, *controls: tuple[str, dict[str, Any]] | str) -> Requirement:
    refs = [
        ControlRef(control=item)
        if isinstance(item, str)
        else ControlRef(control=item[0], params=item[1])
        for item in controls
    ]
    return Requirement(id=identifier, text=text, controls=refs)


BUILT_IN: Final[Mapping[str, Framework]] = {
    "soc2": Framework(
        name="soc2",
        title="SOC 2 Type II",
        requirements=[
            _req(
                "daily-backups",
                "Daily backups with 30-day retention",
                "backup-coverage-daily",
                ("retention-minimum", {"days": 30}),
            ),
            _req(
                "encryption",
                "Encrypted backups at rest and in transit",
                "encryption-at-rest",
                "key-rotation",
            ),
            _req(
                "verification",
                "Backup verification within 24 hours",
                ("verification-within", {"hours": 24}),
            ),
            _req("procedures", "Documented recovery procedures", "restore-procedure-documented"),
            _req(
                "dr-testing",
                "Quarterly DR testing",
                ("restore-test-recent", {"days": 92}),
                "dr-copies",
            ),
            _req(
                "operations",
                "Failures handled, operations logged",
                "failed-jobs-resolved",
                "audit-trail-intact",
            ),
        ],
    ),
    "gdpr": Framework(
        name="gdpr",
        title="GDPR",
        requirements=[
            _req(
                "retention",
                "Data retention policies enforced (storage limitation)",
                ("retention-maximum", {"days": 365}),
            ),
            _req("encryption", "Backup data encrypted", "encryption-at-rest", "key-rotation"),
            _req("access", "Access controls and audit logs", "audit-logging", "audit-trail-intact"),
            _req("deletion", "Data deletion capabilities", "legal-holds", "erasure-requests"),
            _req("transfers", "Cross-border data transfer compliance", "data-residency"),
        ],
    ),
    "pci-dss": Framework(
        name="pci-dss",
        title="PCI DSS",
        requirements=[
            _req("daily-backups", "Daily backups of cardholder data", "backup-coverage-daily"),
            _req("encryption", "Encrypted backups", "encryption-at-rest", "key-rotation"),
            _req(
                "restore-testing",
                "Quarterly backup restoration testing",
                ("restore-test-recent", {"days": 92}),
            ),
            _req("access-logging", "Backup access logging", "audit-logging", "audit-trail-intact"),
            _req("secure-storage", "Secure backup storage", "vault-lock"),
        ],
    ),
    "hipaa": Framework(
        name="hipaa",
        title="HIPAA",
        requirements=[
            _req(
                "daily-backups",
                "Daily backups with encryption",
                "backup-coverage-daily",
                "encryption-at-rest",
            ),
            _req(
                "access", "Access controls and audit trails", "audit-logging", "audit-trail-intact"
            ),
            _req(
                "integrity", "Backup integrity verification", ("verification-within", {"hours": 24})
            ),
            _req("procedures", "Documented backup procedures", "restore-procedure-documented"),
            _req(
                "baa",
                "Business associate agreements",
                ("outside-strongroom", {"title": "Business associate agreements"}),
            ),
        ],
    ),
}
"""The built-in frameworks, by name."""


def check_framework(framework: Framework, where: str) -> Framework:
    """Return ``framework`` after checking every control and parameter it names; raises
    ConfigError naming the requirement (``where`` says which file or framework)."""
    for requirement in framework.requirements:
        for ref in requirement.controls:
            known = CONTROLS.get(ref.control)
            if known is None:
                raise ConfigError(
                    f"{where}: requirement {requirement.id!r} names unknown control {ref.control!r}",
                    hint=f"Known controls: {', '.join(sorted(CONTROLS))}.",
                )
            unknown = sorted(set(ref.params) - known[1])
            if unknown:
                raise ConfigError(
                    f"{where}: control {ref.control!r} has no parameter {unknown[0]!r}",
                    hint=f"Its parameters: {', '.join(sorted(known[1])) or 'none'}.",
                )
    return framework


def load_framework(path: Path) -> Framework:
    """Read a custom framework from a YAML file; raises ConfigError for an unreadable or
    malformed file, an unknown control or parameter."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"cannot read framework file {path}: {error.strerror}") from error
    except yaml.YAMLError as error:
        raise ConfigError(f"framework file {path} is not YAML: {error}") from error
    try:
        framework = Framework.model_validate(document)
    except ValidationError as error:
        first = error.errors()[0]
        location = ".".join(str(part) for part in first["loc"])
        raise ConfigError(f"framework file {path}: at {location!r}: {first['msg']}") from error
    return check_framework(framework, str(path))


def resolve(names: list[str]) -> list[Framework]:
    """Return the frameworks named: built-in names, ``all`` (every built-in), or paths
    of YAML files. Raises ConfigError for an unknown name."""
    chosen: list[Framework] = []
    for name in names:
        if name == "all":
            chosen.extend(BUILT_IN.values())
        elif name in BUILT_IN:
            chosen.append(BUILT_IN[name])
        elif name.endswith((".yaml", ".yml")):
            chosen.append(load_framework(Path(name)))
        else:
            raise ConfigError(
                f"unknown compliance framework {name!r}",
                hint=f"Use {', '.join(BUILT_IN)}, all, or a custom framework file (.yaml).",
            )
    return chosen


@dataclass(frozen=True)
class RequirementResult:
    """One requirement with the results of its controls."""

    requirement: Requirement
    controls: list[ControlResult]

    @property
    def status(self) -> Status:
        """The worst of its controls."""
        return worst([control.status for control in self.controls])


@dataclass(frozen=True)
class FrameworkResult:
    """One framework evaluated over one period."""

    framework: Framework
    requirements: list[RequirementResult]

    @property
    def status(self) -> Status:
        """The worst of its requirements: compliant only when every one passed."""
        return worst([requirement.status for requirement in self.requirements])

    def as_json(self) -> dict[str, Any]:
        """The framework's result as JSON."""
        return {
            "framework": self.framework.name,
            "title": self.framework.title,
            "status": self.status.value,
            "requirements": [
                {
                    "id": item.requirement.id,
                    "text": item.requirement.text,
                    "status": item.status.value,
                    "controls": [control.as_json() for control in item.controls],
                }
                for item in self.requirements
            ],
        }


def evaluate(framework: Framework, data: Catalogued) -> FrameworkResult:
    """Evaluate every control of ``framework`` over ``data``."""
    requirements = []
    for requirement in framework.requirements:
        results = []
        for ref in requirement.controls:
            control, _ = CONTROLS[ref.control]
            results.append(control(data, dict(ref.params)))
        requirements.append(RequirementResult(requirement, results))
    return FrameworkResult(framework, requirements)
