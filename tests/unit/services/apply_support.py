"""What the apply tests share: a context with its own home, and configurations to apply."""

from __future__ import annotations

from pathlib import Path

from strongroom.config.load import LoadedConfig, load_text
from strongroom.services.context import AppContext
from strongroom.services.declare.capabilities import capabilities


def config_text(root: Path, *, daily_schedule: str = "cron(0 3 * * ? *)", extra: str = "") -> str:
    """A configuration with two file:// vaults keyed by key files under ``root``."""
    return f"""\
version: 1
retry:
  max_attempts: 5
vaults:
  prod:
    url: {(root / "vault-prod").as_uri()}
    key:
      provider: key-file
      path: {root / "keys" / "prod.key"}
  archive:
    url: {(root / "vault-archive").as_uri()}
    key:
      provider: key-file
      path: {root / "keys" / "archive.key"}
resources:
  app-db:
    type: sqlite
    path: {root / "app.db"}
    tags: {{BackupEnabled: "true", Environment: production}}
  uploads:
    type: files
    paths: [{root / "uploads"}]
    tags: {{Environment: production}}
  scratch:
    type: files
    paths: [{root / "scratch"}]
plans:
  nightly:
    retry:
      interval_seconds: 60
    rules:
      - name: daily
        schedule: {daily_schedule}
        timezone: Europe/Paris
        start_window_minutes: 90
        completion_window_minutes: 300
        target_vault: prod
        lifecycle: {{delete_after_days: 30}}
        recovery_point_tags: {{BackupType: daily}}
        allow_partial: true
        missed_run_policy: skip
        retry:
          backoff_rate: 3.0
      - name: weekly
        schedule: cron(0 2 ? * SUN *)
        target_vault: archive
    selections:
      - name: production
        list_of_tags: [{{key: Environment, value: production}}]
{extra}"""


def loaded(text: str, source: str = "strongroom.yaml") -> LoadedConfig:
    """Validate a configuration text as apply reads a file (refusing what cannot run)."""
    return load_text(text, source, capabilities())


def new_context(home: Path) -> AppContext:
    """A context with an embedded catalog under ``home``."""
    return AppContext(home=home)
