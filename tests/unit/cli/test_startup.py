"""Starting the CLI stays cheap: ``import strongroom.cli.app`` loads no database, vault or source code.

Every invocation imports the whole command tree (even ``strongroom --version``), so the
command modules import their services inside the command functions, and only under
``TYPE_CHECKING`` for annotations (see ``cli/vault.py``). This test imports the CLI in a
fresh interpreter and names, for each heavy package it finds, the chain of imports that
loaded it, so the offending line is easy to find.
"""

from __future__ import annotations

import json
import os
import pkgutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from strongroom.catalog.types import JobKind, JobState
from strongroom.cli import jobs

HEAVY = (
    "sqlalchemy",
    "alembic",
    "psycopg",
    "pymysql",
    "zstandard",
    "cryptography",
    "strongroom.vault",
    "strongroom.sources",
    "strongroom.catalog",
    "strongroom.config.load",
    "strongroom.config.aws",
)
"""Packages (and their submodules) that only a command actually running may import."""

_PROBE = (
    "import json, sys; import {module}; "
    "print(json.dumps(sorted(m for m in sys.modules if m in HEAVY "
    "or any(m.startswith(h + '.') for h in HEAVY))))"
)


@dataclass(frozen=True)
class Imported:
    """One line of ``-X importtime``: a module and how deep in the import tree it loaded."""

    depth: int
    name: str


@dataclass(frozen=True)
class Startup:
    """What importing ``strongroom.cli.app`` loaded: the heavy modules and the import tree."""

    heavy: list[str]
    tree: list[Imported]


def _heavy_root(name: str) -> str | None:
    return next((root for root in HEAVY if name == root or name.startswith(root + ".")), None)


def _tree(importtime: str) -> list[Imported]:
    """Parse ``-X importtime`` output: a module is printed after its imports, one level deeper."""
    tree = []
    for line in importtime.splitlines():
        if not line.startswith("import time:") or "imported package" in line:
            continue
        field = line.rsplit("|", 1)[1]
        name = field.lstrip(" ")
        tree.append(Imported(depth=(len(field) - len(name) - 1) // 2, name=name.strip()))
    return tree


def _chain(tree: list[Imported], index: int) -> list[str]:
    """The module at ``index`` and each module whose import loaded it, up to the top."""
    depth = tree[index].depth
    chain = [tree[index].name]
    for item in tree[index + 1 :]:
        if item.depth < depth:
            depth = item.depth
            chain.append(item.name)
    return chain


def _import(module: str) -> Startup:
    """Import ``module`` in a fresh interpreter: the heavy modules it loaded, and the tree."""
    probe = f"HEAVY = {HEAVY!r}; {_PROBE.format(module=module)}"
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", probe],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return Startup(heavy=json.loads(result.stdout), tree=_tree(result.stderr))


@pytest.fixture(scope="module")
def startup() -> Startup:
    return _import("strongroom.cli.app")


def _each_command_module() -> str:
    """Which heavy packages each ``strongroom.cli`` module loads on its own (on failure only)."""
    import strongroom.cli

    lines = []
    for info in pkgutil.iter_modules(strongroom.cli.__path__, "strongroom.cli."):
        if info.name == "strongroom.cli.app":
            continue
        roots = sorted({_heavy_root(name) or name for name in _import(info.name).heavy})
        if roots:
            lines.append(f"  {info.name}: {', '.join(roots)}")
    return "\n".join(lines)


def _report(startup: Startup) -> str:
    lines = []
    for root in HEAVY:
        loaded = [name for name in startup.heavy if _heavy_root(name) == root]
        if not loaded:
            continue
        first = next(i for i, item in enumerate(startup.tree) if _heavy_root(item.name) == root)
        chain = _chain(startup.tree, first)
        culprit = next((name for name in chain if name.startswith("strongroom.cli.")), "?")
        # From the package itself up, e.g. sqlalchemy <- strongroom.catalog.database <- ...
        start = chain.index(root) if root in chain else 0
        lines.append(
            f"  {root} ({len(loaded)} module(s)), loaded by {culprit}:\n"
            f"      {' <- '.join(chain[start:])}"
        )
    return "\n".join(lines)


def test_importing_the_cli_loads_no_heavy_module(startup: Startup) -> None:
    assert startup.tree, "-X importtime printed nothing: cannot tell who imported what"
    if startup.heavy:
        pytest.fail(
            "importing strongroom.cli.app loaded heavy modules; import them inside the "
            "command functions that use them (and under TYPE_CHECKING for annotations), as "
            "cli/lock.py does:\n"
            + _report(startup)
            + "\nEach command module imported on its own:\n"
            + _each_command_module(),
            pytrace=False,
        )


def test_the_cli_choice_enums_match_the_catalog_enums() -> None:
    # --state and --kind use copies of the catalog's enums, which import SQLAlchemy.
    assert {m.name: m.value for m in jobs.JobStateChoice} == {m.name: m.value for m in JobState}
    assert {m.name: m.value for m in jobs.JobKindChoice} == {m.name: m.value for m in JobKind}


def test_the_choices_become_the_catalog_enums() -> None:
    assert jobs.job_states([jobs.JobStateChoice.FAILED]) == [JobState.FAILED]
    assert jobs.job_kinds([jobs.JobKindChoice.BACKUP, jobs.JobKindChoice.VERIFY]) == [
        JobKind.BACKUP,
        JobKind.VERIFY,
    ]
    assert jobs.job_states([]) is None
    assert jobs.job_kinds(None) is None


# -- `strongroom vault backup|restore|points|verify` run without the catalog -------------

CATALOG_MODULES = ("sqlalchemy", "alembic", "psycopg", "strongroom.catalog")
"""What a vault command on a vault registered in the embedded catalog must not load:
looking the vault up reads one row with the standard library (catalog/embedded.py), so
only the modules of :data:`STANDARD_LIBRARY_READS` may load."""
STANDARD_LIBRARY_READS = (
    "strongroom.catalog",
    "strongroom.catalog.embedded",
    "strongroom.catalog.revisions",
)
"""The catalog's modules that import nothing beyond the standard library."""

_RUN_CLI = (
    "import atexit, json, sys\n"
    "from strongroom.cli.app import main\n"
    "def report():\n"
    "    loaded = sorted(m for m in sys.modules if any(m == r or m.startswith(r + '.') "
    "for r in {roots!r}) and m not in {allowed!r})\n"
    "    sys.stderr.write('\\nLOADED ' + json.dumps(loaded) + '\\n')\n"
    "atexit.register(report)\n"
    "main(sys.argv[1:])\n"
)


def _run_cli(home: Path, *args: str, stdin: bytes | None = None) -> tuple[bytes, list[str]]:
    """Run the CLI in a fresh interpreter; return its stdout and the catalog modules it
    had loaded when it exited."""
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            _RUN_CLI.format(roots=CATALOG_MODULES, allowed=STANDARD_LIBRARY_READS),
            *args,
        ],
        input=stdin,
        capture_output=True,
        timeout=120,
        check=False,
        env={**os.environ, "STRONGROOM_HOME": str(home), "VAULT_PASS": "startup test"},
    )
    stderr = result.stderr.decode(errors="replace")
    assert result.returncode == 0, stderr[-3000:]
    line = next(line for line in stderr.splitlines() if line.startswith("LOADED "))
    return result.stdout, json.loads(line.removeprefix("LOADED "))


def test_vault_modules_do_not_import_the_catalog() -> None:
    probe = (
        "import json, sys; import strongroom.cli.vault, strongroom.services.vaults.service; "
        f"print(json.dumps(sorted(m for m in sys.modules if m.startswith({CATALOG_MODULES!r}) "
        f"and m not in {STANDARD_LIBRARY_READS!r})))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout) == []


def test_vault_backup_restore_points_verify_run_without_the_catalog(tmp_path: Path) -> None:
    home = tmp_path / "home"
    key = ("--passphrase-env", "VAULT_PASS")
    url = (tmp_path / "vault").as_uri()
    _run_cli(home, "vault", "create", "v", "--url", url, *key)  # registers: uses the catalog
    data = b"startup " * 50_000

    out, loaded = _run_cli(home, "vault", "backup", "v", "-", *key, stdin=data)
    assert loaded == [], f"vault backup loaded {loaded}"
    point = out.decode().split()[-1]

    # Verifying a whole vault compares its points with the catalog's (issue #12), so only
    # the verify of one point stays catalog-free.
    for args in (
        ("vault", "points", "v", *key),
        ("vault", "verify", "v", point, *key),
    ):
        _, loaded = _run_cli(home, *args)
        assert loaded == [], f"{' '.join(args)} loaded {loaded}"
    restored, loaded = _run_cli(home, "vault", "restore", "v", point, "--to", "-", *key)
    assert loaded == [], f"vault restore loaded {loaded}"
    assert restored == data


def test_the_catalog_free_lookup_agrees_with_the_catalog(tmp_path: Path) -> None:
    from strongroom.catalog.embedded import VaultRow, vault_settings_without_sqlalchemy
    from strongroom.config.vaults import VaultConfig
    from strongroom.errors import NotFoundError
    from strongroom.services.context import AppContext
    from strongroom.services.vaults.registry import register_vault, registered_config
    from strongroom.services.vaults.service import VaultService

    def lookup_without_catalog(context: AppContext, name: str) -> VaultRow | None:
        return vault_settings_without_sqlalchemy(context.home, context.catalog_url, name)

    context = AppContext(home=tmp_path / "home")
    assert lookup_without_catalog(context, "v") is None  # no catalog file yet: ask the catalog
    config = VaultConfig.model_validate(
        {
            "url": (tmp_path / "vault").as_uri(),
            "key": {"provider": "passphrase", "passphrase": "env:VAULT_PASS"},
            "compression": {"level": 7},
        }
    )
    with context.catalog.session() as session:
        register_vault(session, "v", config, context.now())
    try:
        found = lookup_without_catalog(context, "v")
        assert found is not None
        with context.catalog.session(readonly=True) as session:
            assert VaultConfig.model_validate(found.settings) == registered_config(session, "v")
        assert VaultService(context).config("v") == config
        missing = lookup_without_catalog(context, "other")
        assert missing is not None and missing.settings is None
        with pytest.raises(NotFoundError, match="no vault named 'other'"):
            VaultService(context).config("other")
        with context.catalog.engine.begin() as connection:  # a schema the code does not know
            connection.exec_driver_sql("UPDATE alembic_version SET version_num = 'future'")
        assert lookup_without_catalog(context, "v") is None
    finally:
        context.close()
    postgres = AppContext(home=tmp_path / "home", catalog_url="postgresql://db.invalid/x")
    assert lookup_without_catalog(postgres, "v") is None
