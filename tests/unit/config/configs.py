"""Configuration texts shared by the configuration tests, and small helpers around them."""

from __future__ import annotations

from pathlib import Path

from strongroom.config.issues import ConfigIssue
from strongroom.config.load import validate_file

REPOSITORY = Path(__file__).resolve().parents[3]
EXAMPLES = REPOSITORY / "examples"

VALID = """\
vaults:
  prod:
    url: file:///var/lib/strongroom/prod
    key:
      provider: passphrase
      passphrase: env:STRONGROOM_PASSPHRASE
    cold_tier:
      kind: same-store
      min_storage_days: 0
  archive:
    url: s3://archive-bucket/strongroom
    key:
      provider: key-file
      path: /etc/strongroom/archive.key
    cold_tier:
      kind: same-store
      storage_class: GLACIER
resources:
  orders-db:
    type: postgres
    password: env:PGPASSWORD
    tags:
      BackupEnabled: "true"
      Environment: production
plans:
  prod:
    rules:
      - name: daily
        schedule: cron(0 3 * * ? *)
        target_vault: prod
        lifecycle:
          move_to_cold_after_days: 7
          delete_after_days: 30
      - name: weekly
        schedule: cron(0 2 ? * SUN *)
        target_vault: archive
        lifecycle:
          move_to_cold_after_days: 30
          delete_after_days: 365
    selections:
      - name: tagged
        list_of_tags:
          - {key: BackupEnabled, value: "true"}
"""
"""A small valid configuration; tests change one line of it at a time."""

SEED_AWS_PLAN = """\
BackupPlan:
  Name: ecommerce-production-database-backup
  Rules:
    - RuleName: continuous-backup
      TargetBackupVault: ecommerce-production-vault
      ScheduleExpression: "cron(0 */6 * * ? *)"  # Every 6 hours
      StartWindowMinutes: 60
      CompletionWindowMinutes: 180
      Lifecycle:
        DeleteAfterDays: 30
        MoveToColdStorageAfterDays: 7
      RecoveryPointTags:
        Environment: production
        BackupType: automated
        Criticality: high
    - RuleName: daily-backup
      TargetBackupVault: ecommerce-production-vault
      ScheduleExpression: "cron(0 3 * * ? *)"  # Daily at 3 AM UTC
      StartWindowMinutes: 60
      CompletionWindowMinutes: 240
      Lifecycle:
        DeleteAfterDays: 90
        MoveToColdStorageAfterDays: 30
      RecoveryPointTags:
        Environment: production
        BackupType: daily
        Criticality: high
    - RuleName: weekly-backup
      TargetBackupVault: ecommerce-long-term-vault
      ScheduleExpression: "cron(0 2 ? * SUN *)"  # Weekly on Sunday at 2 AM UTC
      StartWindowMinutes: 120
      CompletionWindowMinutes: 360
      Lifecycle:
        DeleteAfterDays: 365
        MoveToColdStorageAfterDays: 90
      RecoveryPointTags:
        Environment: production
        BackupType: weekly
        Criticality: high
        Compliance: required
"""
"""The seed document's production plan, verbatim (its spelling: Name, TargetBackupVault)."""


def line_number(text: str, fragment: str, occurrence: int = 1) -> int:
    """Return the 1-based line of the ``occurrence``-th line containing ``fragment``."""
    seen = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if fragment in line:
            seen += 1
            if seen == occurrence:
                return number
    raise AssertionError(f"{fragment!r} not in the text")


def issues_of(tmp_path: Path, text: str, name: str = "strongroom.yaml") -> list[ConfigIssue]:
    """Write ``text`` to a file and return what validate_file says about it."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return validate_file(path)


def errors_of(tmp_path: Path, text: str, name: str = "strongroom.yaml") -> list[ConfigIssue]:
    """Like :func:`issues_of`, errors only."""
    return [issue for issue in issues_of(tmp_path, text, name) if issue.severity == "error"]


def by_path(issues: list[ConfigIssue]) -> dict[str, ConfigIssue]:
    """Index issues by their dotted path (one per path expected)."""
    return {issue.path: issue for issue in issues}
