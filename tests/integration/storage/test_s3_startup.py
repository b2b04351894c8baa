"""The fixed cost of a ``vault`` command on an S3 vault: no catalog, no boto3, one client.

Each ``strongroom vault backup|restore|points`` is its own process, so what it imports and
sets up before the first byte moves is paid on every command (issue #13's benchmark). The
commands run in a fresh interpreter against the real server and report, at exit, which
of the modules a command must not need were loaded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.services import S3Service, unique_name

pytestmark = pytest.mark.integration

NOT_NEEDED = ("sqlalchemy", "alembic", "psycopg", "boto3", "s3transfer")
"""What a vault command on an unlocked S3 vault in the embedded catalog must not load: the
vault's row is read with the standard library, and the store talks to botocore alone."""

_RUN_CLI = (
    "import atexit, json, sys\n"
    "import botocore.session\n"
    "created = []\n"
    "original = botocore.session.Session.create_client\n"
    "def counted(self, *args, **kwargs):\n"
    "    created.append(args[0] if args else kwargs.get('service_name'))\n"
    "    return original(self, *args, **kwargs)\n"
    "botocore.session.Session.create_client = counted\n"
    "from strongroom.cli.app import main\n"
    "def report():\n"
    "    loaded = sorted(m for m in sys.modules if any(m == r or m.startswith(r + '.') "
    "for r in {roots!r}))\n"
    "    sys.stderr.write('\\nREPORT ' + json.dumps([loaded, created]) + '\\n')\n"
    "atexit.register(report)\n"
    "main(sys.argv[1:])\n"
)


def _run_cli(
    env: dict[str, str], *args: str, stdin: bytes | None = None
) -> tuple[bytes, list[str], list[str]]:
    """Run the CLI in a fresh interpreter; return its stdout, the modules of
    :data:`NOT_NEEDED` it had loaded and the botocore clients it created."""
    result = subprocess.run(
        [sys.executable, "-c", _RUN_CLI.format(roots=NOT_NEEDED), *args],
        input=stdin,
        capture_output=True,
        timeout=120,
        check=False,
        env=env,
    )
    stderr = result.stderr.decode(errors="replace")
    assert result.returncode == 0, stderr[-3000:]
    line = next(line for line in stderr.splitlines() if line.startswith("REPORT "))
    loaded, created = json.loads(line.removeprefix("REPORT "))
    return result.stdout, loaded, created


def test_vault_commands_on_s3_load_neither_the_catalog_nor_boto3(
    tmp_path: Path, s3_service: S3Service
) -> None:
    aws_config = tmp_path / "aws-config"
    aws_config.write_text(
        f"[default]\nregion = {s3_service.region}\ns3 =\n  addressing_style = path\n"
    )
    env = {
        **os.environ,
        "STRONGROOM_HOME": str(tmp_path / "home"),
        "VAULT_PASS": "s3 startup test",
        # The standard AWS settings alone, as a user reaching AWS S3 would have them.
        "AWS_CONFIG_FILE": str(aws_config),
        "AWS_ENDPOINT_URL_S3": s3_service.url,
        "AWS_ACCESS_KEY_ID": s3_service.user,
        "AWS_SECRET_ACCESS_KEY": s3_service.password,
    }
    prefix = unique_name("startup")
    key = ("--passphrase-env", "VAULT_PASS")
    url = f"s3://{s3_service.bucket}/{prefix}"
    data = b"s3 startup " * 60_000
    try:
        _run_cli(env, "vault", "create", "v", "--url", url, *key)  # registers: uses the catalog

        out, loaded, created = _run_cli(env, "vault", "backup", "v", "-", *key, stdin=data)
        assert (loaded, created) == ([], ["s3"]), f"vault backup: {loaded}, clients {created}"
        point = out.decode().split()[-1]

        _, loaded, created = _run_cli(env, "vault", "points", "v", *key)
        assert (loaded, created) == ([], ["s3"]), f"vault points: {loaded}, clients {created}"

        restored, loaded, created = _run_cli(env, "vault", "restore", "v", point, "--to", "-", *key)
        assert (loaded, created) == ([], ["s3"]), f"vault restore: {loaded}, clients {created}"
        assert restored == data
    finally:
        s3_service.empty(s3_service.bucket, f"{prefix}/")
