"""Where and how a Redis restore writes: the ``target`` of ``RedisSource.restore``.

From the command line (``strongroom restore … --target KEY=VALUE``) every value arrives as
text: ``databases=0,2`` and ``database_map=0:5,2:6`` (backed-up:target pairs) are read
here, with an error naming the piece that is not a number or not a pair.
"""

from __future__ import annotations

import fnmatch
from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from strongroom.config.resources import RedisResource
from strongroom.config.types import AbsolutePath, ConfigModel, SecretRef

DatabaseNumber = Annotated[int, Field(ge=0)]


class RedisRestoreTarget(ConfigModel):
    """How a Redis restore writes.

    Key by key into a live server (``url``, default the backed-up server itself), or, for
    a snapshot recovery point, its RDB placed as ``dump.rdb`` in ``path`` for a new server
    to start from.
    """

    url: str | None = Field(
        default=None,
        description="Live server to restore into (redis://host:port, rediss://, unix://); "
        "unset: the backed-up server.",
    )
    username: str | None = Field(
        default=None,
        description="ACL user on the target; unset: the resource's (without url) or default.",
    )
    password: SecretRef | None = Field(
        default=None,
        description="Password reference for the target; unset: the resource's (without url) "
        "or none.",
    )
    path: AbsolutePath | None = Field(
        default=None,
        description="Snapshot points only: write the RDB as PATH/dump.rdb for a cold start "
        "of a new server instead of restoring into a live one.",
    )
    databases: list[DatabaseNumber] = Field(
        default_factory=list, description="Databases of the backup to restore; empty: all."
    )
    database_map: dict[DatabaseNumber, DatabaseNumber] = Field(
        default_factory=dict,
        description="Restore some databases under other numbers: {backed-up: target}.",
    )
    key_pattern: str | None = Field(
        default=None,
        min_length=1,
        description="Restore only keys matching this glob (*, ?, [abc], [!abc]).",
    )
    replace: bool = Field(
        default=False,
        description="Overwrite keys (and function libraries) the target already holds; "
        "without it a restore that would overwrite anything is refused before it writes.",
    )
    functions: bool = Field(
        default=True, description="Restore the function libraries (FUNCTION RESTORE) first."
    )

    @field_validator("databases", mode="before")
    @classmethod
    def _databases_from_text(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        return [_number(piece, "databases", "databases=0,2") for piece in _pieces(value)]

    @field_validator("database_map", mode="before")
    @classmethod
    def _database_map_from_text(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        mapping: dict[int, int] = {}
        for piece in _pieces(value):
            source, separator, target = piece.partition(":")
            if not separator:
                raise PydanticCustomError(
                    "database_map_syntax",
                    f"{piece!r} is not a FROM:TO pair of database numbers "
                    "(for example database_map=0:5,1:6)",
                )
            number = _number(source, "database_map", "database_map=0:5,1:6")
            if number in mapping:
                raise PydanticCustomError(
                    "database_map_repeated", f"database {number} is mapped twice"
                )
            mapping[number] = _number(target, "database_map", "database_map=0:5,1:6")
        return mapping

    @model_validator(mode="after")
    def _one_kind(self) -> RedisRestoreTarget:
        if self.path is not None and (
            self.url or self.databases or self.database_map or self.key_pattern or self.replace
        ):
            raise ValueError(
                "path places the whole RDB for a cold start; url, databases, database_map, "
                "key_pattern and replace apply to a restore into a live server"
            )
        if len(set(self.database_map.values())) != len(self.database_map):
            raise ValueError("database_map sends two databases to one target database")
        return self

    def selected_from(self, numbers: list[int]) -> list[int]:
        """The backed-up database numbers this target restores, of ``numbers``.

        Raises ``ValueError`` when two of them would land in one target database.
        """
        chosen = [number for number in numbers if not self.databases or number in self.databases]
        targets = [self.target_database(number) for number in chosen]
        if len(set(targets)) != len(targets):
            raise ValueError(
                "two restored databases would land in one target database: "
                + ", ".join(f"{number} -> {self.target_database(number)}" for number in chosen)
            )
        return chosen

    def target_database(self, number: int) -> int:
        """The database number a backed-up database is restored into."""
        return self.database_map.get(number, number)

    def key_matcher(self) -> KeyMatcher:
        """A predicate on keys for ``key_pattern`` (everything when unset)."""
        return KeyMatcher(self.key_pattern)

    def server_settings(self, resource: RedisResource) -> RedisResource:
        """The resource settings that reach the target server.

        Another server (``url`` set) is reached with the target's own login only; the
        backed-up server with the resource's, unless the target names a user or password.
        """
        if self.url is not None:
            return RedisResource(
                type="redis",
                url=self.url,
                username=self.username,
                password=self.password,
                mode="logical",
            )
        if self.username is None and self.password is None:
            return resource
        return resource.model_copy(
            update={
                "username": self.username if self.username is not None else resource.username,
                "password": self.password if self.password is not None else resource.password,
            }
        )


class KeyMatcher:
    """Tells whether a key matches a glob (binary keys are matched byte for byte)."""

    def __init__(self, pattern: str | None) -> None:
        self.pattern = None if pattern is None else pattern.encode("utf-8", "surrogateescape")

    def __call__(self, key: bytes) -> bool:
        """True when the key matches (always when there is no pattern)."""
        return self.pattern is None or fnmatch.fnmatchcase(key, self.pattern)


def _pieces(text: str) -> list[str]:
    """The comma-separated pieces of a command-line value (blanks around them dropped);
    raises a validation error for an empty value or an empty piece."""
    pieces = [piece.strip() for piece in text.split(",")]
    if not text.strip() or "" in pieces:
        raise PydanticCustomError("empty_piece", f"{text!r} has an empty item between commas")
    return pieces


def _number(text: str, key: str, example: str) -> int:
    """A database number written as text; raises a validation error naming ``text``."""
    stripped = text.strip()
    if not stripped.isdigit():
        raise PydanticCustomError(
            "database_number",
            f"{text.strip()!r} is not a database number (0, 1, 2 …) in {key} "
            f"(for example {example})",
        )
    return int(stripped)
