"""Erasure requests (GDPR Art. 17) as a source applies them to data it has just restored.

Backups are immutable, so a subject's erasure is recorded (``services/erasure/``) and
re-applied to every restored copy before the restore is reported done. The services give
a source the open requests of its resource in :attr:`SourceContext.erasures`; the source
calls one function of this module on each target it restored (a database, a Redis
server, a folder) and adds the returned :class:`ErasureEffect` to its report.

How a request erases, by resource type:

* ``sql`` (postgres, mysql): statements run in one transaction in the restored
  database, each with the subject id bound as the parameter ``%(subject)s`` (never
  formatted into the text); an optional ``remaining`` query counts what is left of the
  subject, and must find 0.
* ``keys`` (redis): glob patterns with ``{subject}`` (the subject's glob characters are
  escaped), every key matching them removed from every database of the target.
* ``paths`` (files): globs below the backed-up roots with ``{subject}`` (escaped the same
  way); whatever matches is removed from the restored tree.

A request that cannot be applied raises :class:`~strongroom.errors.ErasureError`: the
restored data still holds the subject and must not be reported good.
"""

from __future__ import annotations

import glob
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal, Protocol

from strongroom.errors import ConfigError, ErasureError

ErasureKind = Literal["sql", "keys", "paths"]

KIND_BY_TYPE: Final[dict[str, ErasureKind]] = {
    "postgres": "sql",
    "mysql": "sql",
    "redis": "keys",
    "files": "paths",
}
"""How a resource of each type is erased; other types take no erasure requests."""

SUBJECT_PARAMETER: Final = "%(subject)s"
SUBJECT_FIELD: Final = "{subject}"
# Any percent sign that is neither "%%" (a literal percent) nor the one parameter.
_STRAY_PERCENT: Final = re.compile(r"%(?!%|\(subject\)s)")
_ESCAPED_PERCENT: Final = re.compile(r"%%")


@dataclass(frozen=True)
class Erasure:
    """One open erasure request as a source applies it.

    ``database`` (sql only) names the backed-up database the statements run in; None: every
    restored database. ``statements`` and ``remaining`` are for sql, ``patterns`` for keys
    and paths.
    """

    request_id: str
    subject: str
    kind: ErasureKind
    statements: tuple[str, ...] = ()
    remaining: str | None = None
    patterns: tuple[str, ...] = ()
    database: str | None = None

    def applies_to_database(self, original: str) -> bool:
        """True when the request's statements run in backed-up database ``original``."""
        return self.kind == "sql" and (self.database is None or self.database == original)


@dataclass
class ErasureEffect:
    """What re-applying one request to one restored target did.

    ``affected``: rows changed, keys or paths removed; ``remaining``: what the request's
    check found left of the subject afterwards (None: no check).
    """

    request_id: str
    target: str
    affected: int
    remaining: int | None = None
    details: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The effect as JSON (a restore's result, an erasure's evidence)."""
        return {
            "request_id": self.request_id,
            "target": self.target,
            "affected": self.affected,
            "remaining": self.remaining,
            "details": self.details[:50],
        }


def check_statement(statement: str, what: str) -> str:
    """Return ``statement`` without a trailing semicolon, or raise ``ConfigError``.

    A statement binds the subject as ``%(subject)s`` (at least once), holds no other
    parameter (a literal percent sign is written ``%%``) and is one statement.
    """
    text = statement.strip().rstrip(";").strip()
    if not text:
        raise ConfigError(f"{what} is empty")
    if SUBJECT_PARAMETER not in text:
        raise ConfigError(
            f"{what} does not bind the subject: {text!r}",
            hint="Write the subject id as the parameter %(subject)s, e.g. "
            "DELETE FROM users WHERE id = %(subject)s; it is bound, never formatted in.",
        )
    if _STRAY_PERCENT.search(_ESCAPED_PERCENT.sub("", text)):
        raise ConfigError(
            f"{what} holds a percent sign that is not the %(subject)s parameter: {text!r}",
            hint="Write a literal percent sign as %% (e.g. LIKE 'a%%').",
        )
    if ";" in text:
        raise ConfigError(
            f"{what} holds more than one statement: {text!r}",
            hint="Give each statement on its own (--sql once per statement).",
        )
    return text


def check_pattern(pattern: str, kind: ErasureKind, what: str) -> str:
    """Return a key or path pattern, or raise ``ConfigError`` (no ``{subject}``, unsafe path)."""
    text = pattern.strip()
    if SUBJECT_FIELD not in text:
        raise ConfigError(
            f"{what} does not name the subject: {text!r}",
            hint="Write {subject} where the subject id goes, e.g. user:{subject}:* or "
            "users/{subject}/**.",
        )
    if kind == "paths":
        parts = Path(text.lstrip("/")).parts
        if text.startswith("/") or ".." in parts:
            raise ConfigError(
                f"{what} must be relative to the backed-up root without '..': {text!r}",
                hint="Give paths below the root, e.g. users/{subject}.json.",
            )
    return text


def _glob_escape(subject: str) -> str:
    """The subject with the glob characters of Redis and of paths escaped."""
    return re.sub(r"([*?\[\]\\])", r"\\\1", subject)


def pattern_for(pattern: str, subject: str, kind: ErasureKind) -> str:
    """The pattern with ``{subject}`` replaced by the escaped subject id."""
    escaped = glob.escape(subject) if kind == "paths" else _glob_escape(subject)
    return pattern.replace(SUBJECT_FIELD, escaped)


class Cursor(Protocol):
    """The part of a DB-API cursor the SQL erasure uses (psycopg and PyMySQL both fit)."""

    rowcount: int

    def execute(self, query: Any, params: Any = ..., /) -> Any:
        """Run one statement with bound parameters."""
        ...

    def fetchone(self) -> Any:
        """Return the next row or None."""
        ...


class Connection(Protocol):
    """The part of a DB-API connection the SQL erasure uses."""

    def cursor(self) -> Any:
        """Return a new cursor."""
        ...

    def commit(self) -> None:
        """Commit the transaction."""
        ...

    def rollback(self) -> None:
        """Roll the transaction back."""
        ...


def apply_sql(
    connection: Connection,
    erasures: Iterable[Erasure],
    *,
    original: str,
    target: str,
    driver_errors: tuple[type[Exception], ...],
) -> list[ErasureEffect]:
    """Run the statements of every request for backed-up database ``original`` in one
    transaction of ``connection`` (the restored database, not in autocommit mode), then
    their ``remaining`` checks; return one effect per request.

    Raises ``ErasureError`` naming the request and statement when one fails (the
    transaction is rolled back: nothing of the subject is erased then) or when a check
    finds the subject still there.
    """
    selected = [erasure for erasure in erasures if erasure.applies_to_database(original)]
    if not selected:
        return []
    effects: list[ErasureEffect] = []
    cursor = connection.cursor()
    current = selected[0]
    statement = ""
    try:
        for current in selected:
            effect = ErasureEffect(request_id=current.request_id, target=target, affected=0)
            for statement in current.statements:
                cursor.execute(statement, {"subject": current.subject})
                count = max(cursor.rowcount, 0)
                effect.affected += count
                effect.details.append(f"{count} row(s): {statement}")
            effects.append(effect)
        connection.commit()
        for current, effect in zip(selected, effects, strict=True):
            if current.remaining is not None:
                statement = current.remaining
                cursor.execute(statement, {"subject": current.subject})
                row = cursor.fetchone()
                effect.remaining = int(row[0]) if row and row[0] is not None else 0
            connection.commit()
    except driver_errors as exc:
        connection.rollback()
        raise ErasureError(
            f"erasure request {current.request_id} could not be re-applied to {target}: "
            f"{statement!r} failed: {exc}",
            hint="The restored data still holds the subject: do not use it. Fix the request's "
            "statements ('strongroom erasure show') and restore again.",
        ) from exc
    return _checked(effects)


def _checked(effects: list[ErasureEffect]) -> list[ErasureEffect]:
    """Return ``effects``; raise ``ErasureError`` when a check found the subject still there."""
    for effect in effects:
        if effect.remaining:
            raise ErasureError(
                f"erasure request {effect.request_id} re-applied to {effect.target}, but "
                f"{effect.remaining} row(s) of the subject remain",
                hint="The restored data still holds the subject: do not use it. Extend the "
                "request's statements to cover what its check finds, and restore again.",
            )
    return effects


class KeyStore(Protocol):
    """The part of a redis-py client the key erasure uses."""

    def scan_iter(self, match: str, count: int) -> Iterable[Any]:
        """Iterate over the keys matching ``match``."""
        ...

    def unlink(self, *names: Any) -> Any:
        """Remove keys."""
        ...


def apply_keys(
    databases: dict[int, KeyStore], erasures: Iterable[Erasure], *, target: str
) -> list[ErasureEffect]:
    """Remove every key of the requests' patterns from each database of ``databases``
    (number -> client of the restored server), then scan again: a key still there raises
    ``ErasureError``. Returns one effect per request. Errors of the client propagate for
    the caller to translate.
    """
    effects: list[ErasureEffect] = []
    for erasure in erasures:
        effect = ErasureEffect(request_id=erasure.request_id, target=target, affected=0)
        for pattern in erasure.patterns:
            match = pattern_for(pattern, erasure.subject, "keys")
            for number, client in sorted(databases.items()):
                keys = list(client.scan_iter(match=match, count=1000))
                for start in range(0, len(keys), 500):
                    client.unlink(*keys[start : start + 500])
                effect.affected += len(keys)
                if keys:
                    effect.details.append(f"db {number}: {len(keys)} key(s) matching {match!r}")
        effect.remaining = sum(
            1
            for pattern in erasure.patterns
            for client in databases.values()
            for _key in client.scan_iter(
                match=pattern_for(pattern, erasure.subject, "keys"), count=1000
            )
        )
        effects.append(effect)
    return _checked(effects)


def apply_paths(
    roots: Sequence[Path], erasures: Iterable[Erasure], *, target: str
) -> list[ErasureEffect]:
    """Remove whatever matches the requests' globs below each restored root folder of
    ``roots`` (``**`` matches any depth), then match again: anything left raises
    ``ErasureError``. Returns one effect per request.
    """
    effects: list[ErasureEffect] = []
    for erasure in erasures:
        if erasure.kind != "paths":
            continue
        effect = ErasureEffect(request_id=erasure.request_id, target=target, affected=0)
        try:
            for root in roots:
                for path in _matches(root, erasure):
                    _remove(path)
                    effect.affected += 1
                    effect.details.append(str(path))
            effect.remaining = sum(len(_matches(root, erasure)) for root in roots)
        except OSError as exc:
            raise ErasureError(
                f"erasure request {erasure.request_id} could not be re-applied to {target}: "
                f"{exc.filename or ''}: {exc.strerror or exc}",
                hint="The restored files still hold the subject: do not use them.",
            ) from exc
        effects.append(effect)
    return _checked(effects)


def _matches(root: Path, erasure: Erasure) -> list[Path]:
    """The paths below ``root`` matching the request's globs, deepest first."""
    if not root.is_dir():
        return []
    found: set[Path] = set()
    for pattern in erasure.patterns:
        found.update(root.glob(pattern_for(pattern, erasure.subject, "paths")))
    return sorted(found, key=lambda path: len(path.parts), reverse=True)


def _remove(path: Path) -> None:
    """Remove a file, link or whole folder (already gone: nothing to do)."""
    if path.is_dir() and not path.is_symlink():
        for child in sorted(path.rglob("*"), key=lambda item: len(item.parts), reverse=True):
            if child.is_dir() and not child.is_symlink():
                child.rmdir()
            else:
                child.unlink()
        path.rmdir()
    elif path.exists() or path.is_symlink():
        path.unlink()


def not_applied(erasures: Iterable[Erasure], effects: Iterable[ErasureEffect]) -> list[str]:
    """The ids of ``erasures`` no effect was reported for."""
    done = {effect.request_id for effect in effects}
    return [erasure.request_id for erasure in erasures if erasure.request_id not in done]


def skipped_databases(
    erasures: Iterable[Erasure], restored: Iterable[str], *, target: str
) -> list[ErasureEffect]:
    """An effect with nothing affected for each sql request whose database was not among
    the ``restored`` backed-up databases (the restore left it out, so nothing to erase)."""
    names = set(restored)
    return [
        ErasureEffect(
            request_id=erasure.request_id,
            target=target,
            affected=0,
            details=[f"database {erasure.database} was not restored"],
        )
        for erasure in erasures
        if erasure.kind == "sql" and erasure.database is not None and erasure.database not in names
    ]
