"""The one error tree of strongroom.

Every error strongroom raises on purpose derives from :class:`StrongroomError`. Each class
says whether retrying the same operation can succeed (``retryable``), carries a one-line
hint for the user, a stable ``code`` (the seed's AWS error names where one exists) and the
exit code the CLI uses. Third-party exceptions are translated at the adapter boundary with
``raise ... from exc`` so callers only ever catch these.

This module imports nothing else from the package.

Hierarchy (``[R]``: retryable by default; ``tests/unit/test_errors.py`` checks this
drawing against the classes below)::

    StrongroomError                            not retryable unless a subclass says so
    ├── ConfigError                            InvalidParameterException
    │   └── SecretError                        a secret reference that does not resolve
    ├── NotFoundError                          ResourceNotFoundException
    │   └── BlobNotFoundError                  a blob store holds no blob of that name
    ├── AccessDeniedError                      AccessDeniedException
    │   ├── WrongKeyError                      wrong passphrase / key for a vault
    │   ├── SnapshotRefusedError               a server refuses the commands a snapshot needs
    │   ├── AuthenticationError                no credentials, or ones nobody issued (HTTP 401)
    │   ├── PermissionDeniedError              the principal's role lacks the permission (403)
    │   └── CsrfRefusedError                   a console form post without its CSRF token (403)
    ├── InsufficientStorageError               InsufficientStorageException (disk or quota full)
    ├── IntegrityError                         stored data is corrupt or missing; never restored
    ├── ErasureError                           an erasure request could not be re-applied to restored data
    ├── ConflictError                          the state of things forbids it (it exists, ...)
    │   ├── IllegalTransitionError             a job cannot move from its state to the one asked
    │   ├── BusyError                     [R]  held by someone else: a lease, lock or claim
    │   └── ChangedMeanwhileError         [R]  someone else changed it first (a lost race)
    ├── PolicyError                            a vault lock, retention or legal hold forbids it
    ├── PartialNotAllowedError                 a partial result where the rule wants all or none
    ├── UnsupportedError                       a feature strongroom cannot honour (yet)
    ├── ToolError                              an external tool failed (pg_dump, mariadb-dump, ...)
    ├── JobFailedError                         a job ended without completing
    ├── AbortedError                           cancelled (window closed, shutdown, user)
    └── TransientError                    [R]  passes on its own
        ├── ThrottlingError               [R]  ThrottlingException
        ├── ServiceUnavailableError       [R]  ServiceUnavailableException
        ├── InternalServerError           [R]  InternalServerError
        ├── TimeoutError_                 [R]  RequestTimeout
        ├── NetworkError                  [R]  NetworkError
        ├── WorkerLostError               [R]  the worker running a job stopped renewing its lease
        └── ThawPendingError              [R]  archived data asked to thaw is not readable yet

A raise site may still override ``retryable`` where one case differs from the rest of
its class (e.g. a daemon refuses at once, not retryable, while another daemon leads).
"""

from __future__ import annotations

from typing import ClassVar


class StrongroomError(Exception):
    """Base of every error strongroom raises on purpose.

    Given a message and optionally a hint (what the user can do about it); ``retryable``
    can be overridden per instance where the same class is sometimes transient.
    """

    code: ClassVar[str] = "StrongroomError"
    default_retryable: ClassVar[bool] = False
    default_hint: ClassVar[str] = ""
    exit_code: ClassVar[int] = 1

    def __init__(self, message: str, *, hint: str | None = None, retryable: bool | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint if hint is not None else self.default_hint
        self.retryable = self.default_retryable if retryable is None else retryable

    def __str__(self) -> str:
        return self.message


class ConfigError(StrongroomError):
    """Invalid input: configuration, arguments, parameters."""

    code = "InvalidParameterException"
    default_hint = "Fix the named setting and run the command again."
    exit_code = 2


class SecretError(ConfigError):
    """A secret reference (``env:NAME``, ``file:/path``) does not resolve."""

    code = "SecretNotFound"
    default_hint = "Set the environment variable or create the file the reference names."


class NotFoundError(StrongroomError):
    """A named thing (vault, resource, recovery point, job, database) does not exist."""

    code = "ResourceNotFoundException"
    exit_code = 3


class BlobNotFoundError(NotFoundError):
    """A blob store holds no blob of the name asked for (permanent for that name)."""

    code = "BlobNotFound"


class AccessDeniedError(StrongroomError):
    """Credentials were refused or a permission is missing."""

    code = "AccessDeniedException"
    default_hint = "Check the credentials and the permissions of the account in use."
    exit_code = 4


class WrongKeyError(AccessDeniedError):
    """None of the vault's key wrappings opens with the key material given."""

    code = "WrongKey"
    default_hint = "Check the passphrase or key file; nothing was written."


class SnapshotRefusedError(AccessDeniedError):
    """A server refuses the replication commands a snapshot needs (an ACL, a managed service)."""

    code = "SnapshotRefused"
    default_hint = "Back the resource up in a mode that needs no snapshot (e.g. logical)."


class AuthenticationError(AccessDeniedError):
    """A request carries no API token, or one that is unknown, expired or revoked."""

    code = "UnrecognizedClientException"
    default_hint = "Send a valid API token ('strongroom token create' issues one)."


class PermissionDeniedError(AccessDeniedError):
    """An authenticated principal asked for something its role does not permit."""

    code = "PermissionDenied"
    default_hint = "Ask an admin for a token with a role that grants it (see docs/api.md)."


class CsrfRefusedError(AccessDeniedError):
    """A web console form was posted without the CSRF token of the session that showed it
    (a stale page, or a post forged by another site); nothing was done."""

    code = "CsrfTokenRefused"
    default_hint = "Reload the page and submit its form again."


class InsufficientStorageError(StrongroomError):
    """The target ran out of space or quota; what was written before stays consistent."""

    code = "InsufficientStorageException"
    default_hint = "Free space on the target (or run gc) and retry."
    exit_code = 5


class IntegrityError(StrongroomError):
    """Stored bytes are missing, truncated or altered; strongroom never restores them."""

    code = "IntegrityError"
    default_hint = "Run 'strongroom vault verify --read-data' to see every damaged object."
    exit_code = 6


class ErasureError(StrongroomError):
    """An erasure request (GDPR Art. 17) could not be re-applied to restored data.

    The restored data may still hold the subject, so the restore is not reported good.
    """

    code = "ErasureFailed"
    default_hint = "Fix the request ('strongroom erasure show ID') and restore again."
    exit_code = 6


class ConflictError(StrongroomError):
    """The state of things forbids the operation: the target exists, the name is taken.

    Not retryable: the same call fails the same way until someone changes that state.
    The two cases a retry can help have their own classes: :class:`BusyError` and
    :class:`ChangedMeanwhileError`.
    """

    code = "ConflictException"
    exit_code = 7


class IllegalTransitionError(ConflictError):
    """A job was asked to move to a state its current state does not lead to."""

    code = "InvalidStateTransition"


class BusyError(ConflictError):
    """Someone else holds it: a lease, a lock or a claim of another process or job.

    Retryable: the holder finishes (or its lease runs out) and the same call succeeds.
    """

    code = "ResourceInUseException"
    default_retryable = True
    default_hint = "Wait for the holder to finish, then retry."


class ChangedMeanwhileError(ConflictError):
    """Someone else changed the thing between our read and our write (a lost race).

    Retryable: the next try reads the new state afresh.
    """

    code = "ConcurrentModificationException"
    default_retryable = True
    default_hint = "Run the command again."


class PolicyError(StrongroomError):
    """A vault lock, retention rule or legal hold forbids the operation."""

    code = "PolicyViolation"
    exit_code = 8


class PartialNotAllowedError(StrongroomError):
    """A handler returned a partial result for a job that must be complete or fail."""

    code = "PartialResultNotAllowed"
    default_hint = "Allow partial results on the rule, or fix what was left out."


class UnsupportedError(StrongroomError):
    """A feature or field strongroom cannot honour; it is refused, never ignored."""

    code = "Unsupported"
    exit_code = 2


class ToolError(StrongroomError):
    """An external tool exited with an error; the message carries its (masked) stderr."""

    code = "ToolError"


class JobFailedError(StrongroomError):
    """A job ended FAILED, ABORTED or EXPIRED where the caller needed it COMPLETED."""

    code = "JobFailed"
    default_hint = "'strongroom describe-job ID' shows every attempt and its error."


class AbortedError(StrongroomError):
    """The operation was cancelled cleanly (completion window, shutdown, user)."""

    code = "Aborted"
    exit_code = 130


class TransientError(StrongroomError):
    """A failure that can pass on its own; retry with backoff."""

    code = "TransientError"
    default_retryable = True
    default_hint = "This is usually temporary; strongroom retries by the retry policy."


class ThrottlingError(TransientError):
    """The service asked us to slow down."""

    code = "ThrottlingException"


class ServiceUnavailableError(TransientError):
    """The service (database, object store, catalog) does not answer right now."""

    code = "ServiceUnavailableException"


class InternalServerError(TransientError):
    """The remote service failed internally."""

    code = "InternalServerError"


class TimeoutError_(TransientError):  # the underscore avoids shadowing the builtin
    """An operation did not finish in time."""

    code = "RequestTimeout"


class NetworkError(TransientError):
    """A connection could not be made or broke."""

    code = "NetworkError"


class WorkerLostError(TransientError):
    """The worker running a job stopped renewing its lease (it died or stalled)."""

    code = "WorkerLost"


class ThawPendingError(TransientError):
    """Data in an archive storage class was asked to thaw and is not readable yet."""

    code = "ThawPending"
    default_hint = (
        "The storage provider makes the data readable on its own; run the restore again "
        "after the time named (strongroom retries it by the retry policy meanwhile)."
    )


SEED_ERROR_CODES: dict[str, type[StrongroomError]] = {
    cls.code: cls
    for cls in (
        ThrottlingError,
        ServiceUnavailableError,
        InternalServerError,
        TimeoutError_,
        NetworkError,
        ConfigError,
        NotFoundError,
        AccessDeniedError,
        InsufficientStorageError,
    )
}
"""The seed's retry configuration, by its error names: which strongroom class each maps to."""


def is_retryable(error: BaseException) -> bool:
    """Tell whether an error may succeed when retried; unknown exceptions are not retried."""
    return isinstance(error, StrongroomError) and error.retryable
