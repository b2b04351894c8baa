"""Loading configuration files: every problem at once, each with its path and line.

:func:`validate_file` returns every error and warning of a file; :func:`load_config`
returns the validated configuration or raises one error listing every problem as
``FILE:LINE: path: message``. Both read strongroom's own YAML and AWS Backup plan
documents (YAML or JSON), told apart by :func:`~strongroom.config.aws.detect_document_kind`.

When part of a file is invalid, the cross-section checks (a rule naming an undeclared
vault, a selection naming an undeclared resource …) still run over the parts that are
valid, so one run shows everything to fix.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar

from pydantic import TypeAdapter, ValidationError

from strongroom.config.aws import DocumentKind, analyse_aws_document, detect_document_kind
from strongroom.config.capabilities import Capabilities, capability_findings
from strongroom.config.checks import PlanParts, check_references
from strongroom.config.issues import (
    ConfigIssue,
    Finding,
    error_for,
    findings_from_validation_error,
    format_path,
)
from strongroom.config.models import SKIP_REFERENCE_CHECKS, StrongroomConfig
from strongroom.config.plans import BackupRule, PlanConfig, Selection
from strongroom.config.resources import ResourceConfig
from strongroom.config.types import Location
from strongroom.config.vaults import VaultConfig
from strongroom.config.yamltree import ParsedDocument, line_of, parse_json, parse_yaml

_T = TypeVar("_T")
_VAULT: Final = TypeAdapter(VaultConfig)
_RESOURCE: Final[TypeAdapter[ResourceConfig]] = TypeAdapter(ResourceConfig)
_PLAN: Final = TypeAdapter(PlanConfig)
_RULE: Final = TypeAdapter(BackupRule)
_SELECTION: Final = TypeAdapter(Selection)
_SKIP: Final = {SKIP_REFERENCE_CHECKS: True}


@dataclass(frozen=True, slots=True)
class LoadedConfig:
    """A valid configuration, where it came from, and the warnings it raised."""

    source: str
    kind: DocumentKind
    config: StrongroomConfig
    warnings: tuple[ConfigIssue, ...]


def _valid(adapter: TypeAdapter[_T], raw: object) -> _T | None:
    try:
        return adapter.validate_python(raw)
    except ValidationError:
        return None


def _reference_findings(data: Mapping[str, Any]) -> list[Finding]:
    """Run the cross-section checks over the sections' entries that are valid on their own."""
    sections = [data.get(name) or {} for name in ("vaults", "resources", "plans")]
    if not all(isinstance(section, Mapping) for section in sections):
        return []  # a section of the wrong type: every reference would look undeclared
    raw_vaults, raw_resources, raw_plans = sections
    vaults = {name: _valid(_VAULT, raw) for name, raw in raw_vaults.items()}
    resources = {name: _valid(_RESOURCE, raw) for name, raw in raw_resources.items()}
    plans = {name: _plan_parts(raw) for name, raw in raw_plans.items() if isinstance(name, str)}
    return check_references(vaults, resources, plans)


def _valid_items(adapter: TypeAdapter[_T], raw: object) -> list[tuple[int, _T]]:
    if not isinstance(raw, list):
        return []
    return [
        (index, item)
        for index, raw_item in enumerate(raw)
        if (item := _valid(adapter, raw_item)) is not None
    ]


def _plan_parts(raw: object) -> PlanConfig | PlanParts:
    """The plan when it is valid, else its rules and selections that are valid alone."""
    plan = _valid(_PLAN, raw)
    if plan is not None:
        return plan
    if not isinstance(raw, Mapping):
        return PlanParts([], [], selections_known=False)
    raw_selections = raw.get("selections", [])
    return PlanParts(
        _valid_items(_RULE, raw.get("rules")),
        _valid_items(_SELECTION, raw_selections),
        selections_known=raw_selections == [],
    )


def _analyse_strongroom(data: Mapping[str, Any]) -> tuple[list[Finding], StrongroomConfig | None]:
    try:
        config = StrongroomConfig.model_validate(data, context=_SKIP)
    except ValidationError as exc:
        findings = findings_from_validation_error(exc, StrongroomConfig)
        return findings + _reference_findings(data), None
    return config.findings(), config


def _analyse_aws(data: Mapping[str, Any]) -> tuple[list[Finding], StrongroomConfig | None]:
    conversion = analyse_aws_document(data)
    if conversion.plan is None or conversion.plan_name is None:
        return conversion.findings, None
    config = StrongroomConfig.model_validate(
        {"plans": {conversion.plan_name: conversion.plan}}, context=_SKIP
    )
    names = [f"vaults {', '.join(map(repr, conversion.vaults))}"]
    if conversion.resources:
        names.append(f"resources {', '.join(map(repr, conversion.resources))}")
    note = Finding(
        (),
        "aws_references",
        "an AWS Backup plan document declares no vaults or resources: "
        f"{' and '.join(names)} must be declared in the strongroom configuration this plan "
        "is used with",
        "warning",
    )
    return [*conversion.findings, note], config


def located_issue(
    finding: Finding, document: ParsedDocument, location: Location | None = None
) -> ConfigIssue:
    """Return ``finding`` as an issue at ``location`` (default: the finding's own), with
    the line of that place in ``document``."""
    where = finding.location if location is None else location
    return ConfigIssue(
        format_path(where),
        finding.message,
        line_of(document.root, where),
        finding.severity,
        finding.code,
    )


def sort_issues(issues: list[ConfigIssue]) -> list[ConfigIssue]:
    """Return the issues errors first, then by line and path."""
    return sorted(
        issues, key=lambda issue: (issue.severity != "error", issue.line or 0, issue.path)
    )


def parse_document(text: str) -> tuple[ParsedDocument | None, list[ConfigIssue]]:
    """Parse configuration text as YAML, else as JSON; return the document (None when
    neither parses) and the syntax problems found, each with its path and line."""
    document, problems = parse_yaml(text)
    if document is None:
        json_document, json_problems = parse_json(text)
        if json_document is not None:
            document, problems = json_document, json_problems
    issues = [
        ConfigIssue(
            format_path(problem.finding.location),
            problem.finding.message,
            problem.line,
            problem.finding.severity,
            problem.finding.code,
        )
        for problem in problems
    ]
    return document, issues


def _analyse(
    text: str, capabilities: Capabilities | None
) -> tuple[list[ConfigIssue], DocumentKind, StrongroomConfig | None]:
    document, issues = parse_document(text)
    if document is None:
        return sort_issues(issues), "strongroom", None
    data = {} if document.data is None else document.data
    if not isinstance(data, Mapping):
        issues.append(
            ConfigIssue(
                "",
                "the document must be a mapping of sections (vaults, resources, plans …)",
                line_of(document.root, ()),
                code="document_type",
            )
        )
        return sort_issues(issues), "strongroom", None
    kind = detect_document_kind(data)
    analyse = _analyse_aws if kind == "aws-backup-plan" else _analyse_strongroom
    findings, config = analyse(data)
    if capabilities is not None:
        findings += capability_findings(data, kind, capabilities)
    issues += [located_issue(finding, document) for finding in findings]
    return sort_issues(issues), kind, config


def validate_text(text: str, capabilities: Capabilities | None = None) -> list[ConfigIssue]:
    """Return every error and warning of a configuration given as text (never raises).

    With ``capabilities``, what cannot run (a resource type without a source, a store
    scheme not served, copy actions where they cannot run) is an error too.
    """
    return _analyse(text, capabilities)[0]


def read_text(path: str | os.PathLike[str]) -> tuple[str | None, list[ConfigIssue]]:
    """Read a configuration file as UTF-8 text (a byte-order mark is dropped); return the
    text, or None and the issue saying why it cannot be read. Never raises."""
    try:
        return Path(path).read_bytes().decode("utf-8-sig"), []
    except UnicodeDecodeError as exc:
        return None, [
            ConfigIssue("", f"the file is not UTF-8 text (byte {exc.start})", code="encoding")
        ]
    except OSError as exc:
        return None, [
            ConfigIssue("", f"cannot read the file: {exc.strerror or exc}", code="unreadable")
        ]


def validate_file(
    path: str | os.PathLike[str], capabilities: Capabilities | None = None
) -> list[ConfigIssue]:
    """Return every error and warning of a configuration file, sorted errors first by line.

    Given a strongroom YAML file or an AWS Backup plan document (YAML or JSON). Never raises
    for a bad file: unreadable files, YAML syntax errors (with their line), duplicate keys,
    unknown keys, wrong types, undeclared vaults … all come back as
    :class:`~strongroom.config.issues.ConfigIssue`.
    """
    text, issues = read_text(path)
    return issues if text is None else validate_text(text, capabilities)


def load_text(
    text: str, source: str = "<config>", capabilities: Capabilities | None = None
) -> LoadedConfig:
    """Validate configuration text and return it; raises like :func:`load_config`."""
    issues, kind, config = _analyse(text, capabilities)
    errors = [issue for issue in issues if issue.severity == "error"]
    if errors or config is None:
        raise error_for(source, errors)
    warnings = tuple(issue for issue in issues if issue.severity == "warning")
    return LoadedConfig(source, kind, config, warnings)


def load_config(
    path: str | os.PathLike[str], capabilities: Capabilities | None = None
) -> LoadedConfig:
    """Load and validate a configuration file (strongroom YAML or an AWS plan document).

    Returns the configuration with its warnings. Raises
    :class:`~strongroom.errors.ConfigError` listing every error as ``FILE:LINE: path:
    message``, or :class:`~strongroom.errors.UnsupportedError` (same listing) when the
    file asks for a feature strongroom cannot honour. With ``capabilities`` (``validate``
    and ``apply`` give them), what cannot run yet is refused too.
    """
    source = os.fspath(path)
    text, issues = read_text(path)
    if text is None:
        raise error_for(source, issues)
    return load_text(text, source, capabilities)
