"""Vault settings: where recovery points live, how they are keyed, locked, tiered and packed."""

from __future__ import annotations

import re
from typing import Annotated, Final, Literal
from urllib.parse import urlsplit

from pydantic import Field, WithJsonSchema, model_validator

from strongroom.config.types import (
    AbsolutePath,
    ConfigModel,
    Problem,
    SecretRef,
    StoreUrl,
    raise_problems,
)

KIB: Final = 1024
MIB: Final = 1024 * KIB
MAX_DAYS: Final = 36_500
"""100 years: the longest retention AWS Backup accepts, and strongroom's bound too."""

KNOWN_MIN_STORAGE_DAYS: Final[dict[str, int]] = {
    "STANDARD": 0,
    "INTELLIGENT_TIERING": 0,
    "STANDARD_IA": 30,
    "ONEZONE_IA": 30,
    "GLACIER_IR": 90,
    "GLACIER": 90,
    "DEEP_ARCHIVE": 180,
}
"""Minimum billable storage duration of the S3 storage classes, in days."""

_ENV_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


# -- keys -------------------------------------------------------------------------------


class PassphraseKey(ConfigModel):
    """The vault key is derived from a passphrase (memory-hard KDF)."""

    provider: Literal["passphrase"] = Field(description="Selects this key provider.")
    passphrase: SecretRef = Field(
        description="Reference to the passphrase (env:NAME or file:/path); never the passphrase."
    )


class KeyFileKey(ConfigModel):
    """The vault key material is read from a file only the strongroom user can read."""

    provider: Literal["key-file"] = Field(description="Selects this key provider.")
    path: AbsolutePath = Field(description="Absolute path of the file holding the key material.")


class EnvKey(ConfigModel):
    """The vault key material comes from an environment variable (base64), not a passphrase."""

    provider: Literal["env"] = Field(description="Selects this key provider.")
    variable: Annotated[
        str,
        Field(pattern=_ENV_NAME.pattern),
        WithJsonSchema({"type": "string", "pattern": f"^{_ENV_NAME.pattern}$"}),
    ] = Field(description="Name of the environment variable holding the base64 key material.")


KeyProvider = Annotated[PassphraseKey | KeyFileKey | EnvKey, Field(discriminator="provider")]


# -- storage ----------------------------------------------------------------------------


class S3Options(ConfigModel):
    """How to reach an S3-compatible store (AWS S3, MinIO, Ceph RGW …)."""

    endpoint_url: str | None = Field(
        default=None,
        pattern=r"^https?://",
        description="Endpoint of an S3-compatible server (e.g. http://127.0.0.1:9000); "
        "unset for AWS S3.",
    )
    region: str | None = Field(default=None, description="Region of the bucket; unset for default.")
    access_key_id: SecretRef | None = Field(
        default=None,
        description="Reference to the access key id; unset uses the default credential chain.",
    )
    secret_access_key: SecretRef | None = Field(
        default=None, description="Reference to the secret access key (set with access_key_id)."
    )
    addressing_style: Literal["auto", "path", "virtual"] = Field(
        default="auto", description="Bucket addressing; most self-hosted servers need 'path'."
    )
    server_side_encryption: Literal["AES256", "aws:kms"] | None = Field(
        default=None,
        description="Server-side encryption the server applies to every object (on top of "
        "strongroom's own): AES256 (S3-managed keys) or aws:kms; unset for the bucket default.",
    )
    sse_kms_key_id: str | None = Field(
        default=None,
        min_length=1,
        description="KMS key id or ARN for server_side_encryption aws:kms; unset for the "
        "account's default key.",
    )
    concurrency: int = Field(
        default=8,
        ge=1,
        le=64,
        description="Parts of one large upload or download that travel at once.",
    )

    @model_validator(mode="after")
    def _keys_come_in_pairs(self) -> S3Options:
        if self.sse_kms_key_id is not None and self.server_side_encryption != "aws:kms":
            raise_problems(
                "S3Options",
                [
                    Problem(
                        ("sse_kms_key_id",),
                        "sse_kms",
                        "sse_kms_key_id needs server_side_encryption: aws:kms",
                    )
                ],
            )
        if (self.access_key_id is None) != (self.secret_access_key is None):
            missing = "secret_access_key" if self.secret_access_key is None else "access_key_id"
            raise_problems(
                "S3Options",
                [
                    Problem(
                        (missing,),
                        "missing_pair",
                        "access_key_id and secret_access_key are given together or not at all",
                    )
                ],
            )
        return self


def _is_s3(url: str) -> bool:
    return urlsplit(url).scheme == "s3"


# -- lock -------------------------------------------------------------------------------


class VaultLock(ConfigModel):
    """A vault lock: recovery points cannot be deleted or given a retention outside the bounds.

    In governance mode a lock administrator can still lift the lock; in compliance mode the
    lock becomes immutable once ``changeable_for_days`` (the grace period) has passed.
    """

    mode: Literal["governance", "compliance"] = Field(
        default="governance",
        description="governance: privileged users can remove the lock; compliance: nobody can "
        "after the grace period.",
    )
    min_retention_days: int | None = Field(
        default=None,
        ge=1,
        le=MAX_DAYS,
        description="Shortest retention a recovery point in this vault may have.",
    )
    max_retention_days: int | None = Field(
        default=None,
        ge=1,
        le=MAX_DAYS,
        description="Longest retention a recovery point in this vault may have (it must have one).",
    )
    changeable_for_days: int | None = Field(
        default=None,
        ge=3,
        le=MAX_DAYS,
        description="Compliance mode only: grace period in days (at least 3) before the lock "
        "becomes immutable.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> VaultLock:
        problems: list[Problem] = []
        low, high = self.min_retention_days, self.max_retention_days
        if low is not None and high is not None and low > high:
            problems.append(
                Problem(
                    ("max_retention_days",),
                    "lock_range",
                    f"max_retention_days ({high}) is smaller than min_retention_days ({low})",
                )
            )
        if self.mode == "compliance" and self.changeable_for_days is None:
            problems.append(
                Problem(
                    ("changeable_for_days",),
                    "missing",
                    "compliance mode needs changeable_for_days (the grace period, at least 3 "
                    "days) before the lock becomes immutable",
                )
            )
        if self.mode == "governance" and self.changeable_for_days is not None:
            problems.append(
                Problem(
                    ("changeable_for_days",),
                    "lock_mode",
                    "changeable_for_days applies to compliance mode only; set mode: compliance "
                    "or remove it",
                )
            )
        raise_problems("VaultLock", problems)
        return self


# -- cold tier --------------------------------------------------------------------------

_STORAGE_CLASS = Annotated[
    str,
    Field(pattern=r"^[A-Z][A-Z0-9_]*$"),
    WithJsonSchema({"type": "string", "pattern": "^[A-Z][A-Z0-9_]*$", "examples": ["GLACIER"]}),
]


class NoColdTier(ConfigModel):
    """Recovery points stay where they were written until they are deleted."""

    kind: Literal["none"] = Field(description="Selects this kind of cold tier.")

    @property
    def minimum_storage_days(self) -> int:
        """Days a recovery point must stay in the tier before it may be deleted (none: 0)."""
        return 0


class _StoredColdTier(ConfigModel):
    storage_class: _STORAGE_CLASS | None = Field(
        default=None,
        description="S3 storage class for cold objects (e.g. GLACIER, DEEP_ARCHIVE); S3 only.",
    )
    min_storage_days: int | None = Field(
        default=None,
        ge=0,
        le=MAX_DAYS,
        description="Days a recovery point must stay cold before it may be deleted; unset takes "
        "the storage class's known minimum (GLACIER 90, DEEP_ARCHIVE 180, STANDARD_IA 30), "
        "else 0.",
    )

    @property
    def minimum_storage_days(self) -> int:
        """Days a recovery point must stay in the tier before it may be deleted."""
        if self.min_storage_days is not None:
            return self.min_storage_days
        return KNOWN_MIN_STORAGE_DAYS.get(self.storage_class or "", 0)

    @model_validator(mode="after")
    def _not_below_class_minimum(self) -> _StoredColdTier:
        known = KNOWN_MIN_STORAGE_DAYS.get(self.storage_class or "")
        if (
            known is not None
            and self.min_storage_days is not None
            and self.min_storage_days < known
        ):
            raise_problems(
                "ColdTier",
                [
                    Problem(
                        ("min_storage_days",),
                        "cold_minimum",
                        f"storage class {self.storage_class} keeps objects at least {known} days; "
                        f"min_storage_days {self.min_storage_days} is lower",
                    )
                ],
            )
        return self


class SameStoreColdTier(_StoredColdTier):
    """Cold recovery points stay in the vault's own store (on S3: in a colder storage class)."""

    kind: Literal["same-store"] = Field(description="Selects this kind of cold tier.")


class ThawSettings(ConfigModel):
    """How a restore thaws cold packs kept in an archive class (GLACIER, DEEP_ARCHIVE)."""

    tier: Literal["Expedited", "Standard", "Bulk"] = Field(
        default="Standard",
        description="S3 retrieval tier of the restore requests: Expedited (minutes, GLACIER "
        "only), Standard (hours), Bulk (up to two days, cheapest).",
    )
    days: int = Field(
        default=3,
        ge=1,
        le=MAX_DAYS,
        description="Days a thawed copy stays readable: long enough for the restore to run.",
    )


class SeparateStoreColdTier(_StoredColdTier):
    """Cold recovery points move to a second store (e.g. an archive bucket)."""

    kind: Literal["separate-store"] = Field(description="Selects this kind of cold tier.")
    url: StoreUrl = Field(description="URL of the cold store (file:///…, s3://…, memory://…).")
    s3: S3Options | None = Field(
        default=None, description="How to reach the cold store when it is an s3:// URL."
    )
    thaw: ThawSettings = Field(
        default_factory=ThawSettings,
        description="How a restore of a point in an archive storage class asks S3 to thaw it.",
    )


ColdTier = Annotated[
    NoColdTier | SameStoreColdTier | SeparateStoreColdTier, Field(discriminator="kind")
]


# -- format -----------------------------------------------------------------------------


class ChunkingSettings(ConfigModel):
    """Content-defined chunking (FastCDC) bounds; smaller chunks deduplicate better, cost more."""

    min_size_bytes: int = Field(
        default=512 * KIB, ge=4 * KIB, le=64 * MIB, description="Smallest chunk, in bytes."
    )
    average_size_bytes: int = Field(
        default=1 * MIB, ge=4 * KIB, le=64 * MIB, description="Target average chunk, in bytes."
    )
    max_size_bytes: int = Field(
        default=4 * MIB, ge=4 * KIB, le=64 * MIB, description="Largest chunk, in bytes."
    )

    @model_validator(mode="after")
    def _ordered(self) -> ChunkingSettings:
        if not self.min_size_bytes < self.average_size_bytes < self.max_size_bytes:
            raise_problems(
                "ChunkingSettings",
                [
                    Problem(
                        ("average_size_bytes",),
                        "chunk_order",
                        "chunk sizes must grow: min_size_bytes < average_size_bytes < "
                        f"max_size_bytes (got {self.min_size_bytes}, {self.average_size_bytes}, "
                        f"{self.max_size_bytes})",
                    )
                ],
            )
        return self


class CompressionSettings(ConfigModel):
    """How chunks are compressed before encryption."""

    algorithm: Literal["zstd", "none"] = Field(
        default="zstd", description="zstd, or none for data that does not compress."
    )
    level: int = Field(
        default=3, ge=1, le=22, description="zstd level (1 fastest … 22 smallest); unused for none."
    )


def _default_cold_tier() -> NoColdTier:
    return NoColdTier(kind="none")


class VaultConfig(ConfigModel):
    """One vault: a blob store holding encrypted, deduplicated recovery points."""

    url: StoreUrl = Field(
        description="Where the vault stores blobs: file:///absolute/path, s3://bucket/prefix or "
        "memory://name (tests)."
    )
    description: str | None = Field(default=None, description="Free text for people.")
    key: KeyProvider = Field(description="Where the key that encrypts the vault comes from.")
    s3: S3Options | None = Field(
        default=None, description="How to reach the store when url is an s3:// URL."
    )
    lock: VaultLock | None = Field(
        default=None, description="Vault lock (retention bounds); unset for no lock."
    )
    cold_tier: ColdTier = Field(
        default_factory=_default_cold_tier,
        description="Where lifecycle rules move recovery points to cold storage.",
    )
    chunking: ChunkingSettings = Field(
        default_factory=ChunkingSettings, description="Content-defined chunking bounds."
    )
    pack_size_bytes: int = Field(
        default=16 * MIB,
        ge=1 * MIB,
        le=512 * MIB,
        description="Target size of the pack files chunks are grouped into, in bytes.",
    )
    compression: CompressionSettings = Field(
        default_factory=CompressionSettings, description="Compression of chunks."
    )

    @model_validator(mode="after")
    def _store_settings_fit(self) -> VaultConfig:
        problems: list[Problem] = []
        if self.s3 is not None and not _is_s3(self.url):
            problems.append(
                Problem(("s3",), "s3_options", "s3 settings need an s3:// url; remove them")
            )
        tier = self.cold_tier
        if isinstance(tier, SeparateStoreColdTier) and tier.s3 is not None and not _is_s3(tier.url):
            problems.append(
                Problem(
                    ("cold_tier", "s3"),
                    "s3_options",
                    "s3 settings need an s3:// cold tier url; remove them",
                )
            )
        if isinstance(tier, SameStoreColdTier | SeparateStoreColdTier) and tier.storage_class:
            store_url = tier.url if isinstance(tier, SeparateStoreColdTier) else self.url
            if not _is_s3(store_url):
                problems.append(
                    Problem(
                        ("cold_tier", "storage_class"),
                        "storage_class",
                        "a storage class applies to s3:// stores only; remove it",
                    )
                )
        if self.pack_size_bytes < self.chunking.max_size_bytes:
            problems.append(
                Problem(
                    ("pack_size_bytes",),
                    "pack_size",
                    f"pack_size_bytes ({self.pack_size_bytes}) must be at least "
                    f"chunking.max_size_bytes ({self.chunking.max_size_bytes})",
                )
            )
        raise_problems("VaultConfig", problems)
        return self
