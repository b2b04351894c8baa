"""Reading the documents the declarative verbs take, with every problem and its line.

``validate`` takes a strongroom configuration, an AWS Backup plan document or a plan
document; ``create-plan`` takes plan documents only. A *plan document* is one of:

- a single strongroom plan: ``{name: NAME, rules: [...], selections: [...], ...}``;
- strongroom plans: ``{plans: {NAME: {...}, ...}}`` (``version`` allowed, nothing else);
- an AWS Backup plan document (``{BackupPlan: {...}}``, ``get-backup-plan`` output, the
  bare plan), converted by :mod:`strongroom.config.aws` (unsupported fields are refused
  by name).

Vaults and resources a plan names are not checked here: ``create-plan`` checks them
against the catalog.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from pydantic import ValidationError

from strongroom.config.aws import analyse_aws_document, detect_document_kind
from strongroom.config.capabilities import capability_findings
from strongroom.config.issues import (
    ConfigIssue,
    Finding,
    error_for,
    findings_from_validation_error,
)
from strongroom.config.load import (
    located_issue,
    parse_document,
    read_text,
    sort_issues,
    validate_text,
)
from strongroom.config.models import SKIP_REFERENCE_CHECKS, StrongroomConfig
from strongroom.config.plans import PlanConfig
from strongroom.config.types import Location
from strongroom.config.yamltree import ParsedDocument
from strongroom.services.declare.capabilities import capabilities

DocumentKind = Literal["strongroom", "aws-backup-plan", "strongroom-plan", "strongroom-plans"]
KIND_LABELS: Final[dict[DocumentKind, str]] = {
    "strongroom": "strongroom configuration",
    "aws-backup-plan": "AWS Backup plan document",
    "strongroom-plan": "strongroom plan document",
    "strongroom-plans": "strongroom plans document",
}
_PLANS_KEYS: Final = frozenset({"version", "plans"})
_SKIP: Final = {SKIP_REFERENCE_CHECKS: True}


@dataclass(frozen=True)
class PlanDocument:
    """The plans of a valid plan document, where they came from, and its warnings."""

    source: str
    kind: DocumentKind
    plans: dict[str, PlanConfig]
    warnings: tuple[ConfigIssue, ...] = ()


@dataclass(frozen=True)
class Validation:
    """What ``validate`` found in one file: its kind and every error and warning."""

    source: str
    kind: DocumentKind
    issues: tuple[ConfigIssue, ...]

    @property
    def errors(self) -> list[ConfigIssue]:
        """The errors, by line."""
        return [issue for issue in self.issues if issue.severity == "error"]

    @property
    def warnings(self) -> list[ConfigIssue]:
        """The warnings, by line."""
        return [issue for issue in self.issues if issue.severity == "warning"]

    @property
    def valid(self) -> bool:
        """True when there is no error."""
        return not self.errors


def _kind(data: object) -> DocumentKind:
    if not isinstance(data, Mapping):
        return "strongroom"
    if detect_document_kind(data) == "aws-backup-plan":
        return "aws-backup-plan"
    if "rules" in data and "plans" not in data and not {"vaults", "resources"} & data.keys():
        return "strongroom-plan"
    if "plans" in data and data.keys() <= _PLANS_KEYS:
        return "strongroom-plans"
    return "strongroom"


def _validate_plans(raw_plans: object) -> tuple[list[Finding], dict[str, PlanConfig]]:
    try:
        config = StrongroomConfig.model_validate({"plans": raw_plans}, context=_SKIP)
    except ValidationError as error:
        return findings_from_validation_error(error, StrongroomConfig), {}
    return [], dict(config.plans)


def _single_plan(
    data: Mapping[str, Any], document: ParsedDocument
) -> tuple[list[ConfigIssue], dict[str, PlanConfig]]:
    name = data.get("name")
    if not isinstance(name, str):
        message = "required key is missing" if name is None else "expected the plan's name"
        location: Location = ("name",) if "name" in data else ()
        return [located_issue(Finding(location, "missing", message), document, location)], {}
    body = {key: value for key, value in data.items() if key != "name"}
    findings, plans = _validate_plans({name: body})
    issues = []
    for finding in findings:
        inner = finding.location[2:] if finding.location[:2] == ("plans", name) else ()
        location = inner if inner or len(finding.location) < 2 else ("name",)
        issues.append(located_issue(finding, document, location))
    return issues, plans


def _plan_issues(
    kind: DocumentKind, data: Mapping[str, Any], document: ParsedDocument
) -> tuple[list[ConfigIssue], dict[str, PlanConfig]]:
    """Every problem of a plan document (located in it) and its plans when it has none.

    What cannot run yet (see ``config.capabilities``) is one of them.
    """
    refused = [
        located_issue(finding, document, finding.location)
        for finding in capability_findings(data, kind, capabilities())
    ]
    issues, plans = _plan_issues_of_kind(kind, data, document)
    return issues + refused, ({} if refused else plans)


def _plan_issues_of_kind(
    kind: DocumentKind, data: Mapping[str, Any], document: ParsedDocument
) -> tuple[list[ConfigIssue], dict[str, PlanConfig]]:
    if kind == "aws-backup-plan":
        conversion = analyse_aws_document(data)
        issues = [located_issue(f, document, f.location) for f in conversion.findings]
        if conversion.plan is None or conversion.plan_name is None:
            return issues, {}
        return issues, {conversion.plan_name: conversion.plan}
    if kind == "strongroom-plan":
        return _single_plan(data, document)
    if kind == "strongroom-plans":
        findings, plans = _validate_plans(data["plans"])
        return [located_issue(f, document, f.location) for f in findings], plans
    extra = sorted(str(key) for key in data if key not in _PLANS_KEYS)
    message = (
        "create-plan reads plans only: a plan ({name, rules, selections}), {plans: {...}} or "
        "an AWS Backup plan document; declare vaults and resources with 'strongroom apply'"
    )
    location = (extra[0],) if extra else ()
    return [located_issue(Finding(location, "plan_document", message), document, location)], {}


def read_plan_document(path: str | os.PathLike[str]) -> PlanDocument:
    """Read a plan document; return its plans.

    Raises ``ConfigError`` (``UnsupportedError`` when an AWS field strongroom cannot
    honour is used) listing every problem as ``FILE:LINE: path: message``.
    """
    source = os.fspath(path)
    text, issues = read_text(path)
    plans: dict[str, PlanConfig] = {}
    kind: DocumentKind = "strongroom-plans"
    if text is not None:
        document, issues = parse_document(text)
        if document is not None:
            data = document.data if isinstance(document.data, Mapping) else {}
            if not data:
                issues.append(ConfigIssue("", "the document holds no plan", code="empty"))
            else:
                kind = _kind(data)
                found, plans = _plan_issues(kind, data, document)
                issues += found
    errors = [issue for issue in sort_issues(issues) if issue.severity == "error"]
    if errors or not plans:
        raise error_for(source, errors or [ConfigIssue("", "the document holds no plan")])
    warnings = tuple(issue for issue in issues if issue.severity == "warning")
    return PlanDocument(source, kind, plans, warnings)


def validate_document(path: str | os.PathLike[str]) -> Validation:
    """Return every error and warning of a configuration or plan document (never raises).

    Strongroom configurations and AWS Backup plan documents are checked as ``apply`` and
    ``load_config`` read them; a single-plan document as ``create-plan`` reads it (its
    vaults and resources are checked against the catalog by ``create-plan`` only).
    """
    source = os.fspath(path)
    text, issues = read_text(path)
    if text is None:
        return Validation(source, "strongroom", tuple(issues))
    document, parse_issues = parse_document(text)
    data = document.data if document is not None else None
    kind = _kind(data)
    if kind == "strongroom-plan" and document is not None and isinstance(data, Mapping):
        found, _ = _plan_issues(kind, data, document)
        return Validation(source, kind, tuple(sort_issues(parse_issues + found)))
    # {plans: ...} alone is a configuration too: apply checks it as one.
    kind = "strongroom" if kind == "strongroom-plans" else kind
    return Validation(source, kind, tuple(validate_text(text, capabilities())))
