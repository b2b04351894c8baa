"""The error tree: retryable flags, hints, the seed's error names."""

from __future__ import annotations

import pytest

from strongroom import errors


@pytest.mark.parametrize(
    ("code", "retryable"),
    [
        ("ThrottlingException", True),
        ("ServiceUnavailableException", True),
        ("InternalServerError", True),
        ("RequestTimeout", True),
        ("NetworkError", True),
        ("InvalidParameterException", False),
        ("ResourceNotFoundException", False),
        ("AccessDeniedException", False),
        ("InsufficientStorageException", False),
    ],
)
def test_seed_error_codes_map_to_the_seed_retry_classes(code: str, retryable: bool) -> None:
    error = errors.SEED_ERROR_CODES[code]("boom")
    assert error.retryable is retryable
    assert errors.is_retryable(error) is retryable


def test_every_error_class_has_a_distinct_code_and_nonzero_exit() -> None:
    classes = [
        value
        for value in vars(errors).values()
        if isinstance(value, type) and issubclass(value, errors.StrongroomError)
    ]
    codes = [cls.code for cls in classes]
    assert len(codes) == len(set(codes))
    assert all(cls.exit_code != 0 for cls in classes)


def test_instance_can_override_retryable_and_hint() -> None:
    error = errors.ConflictError("exists", retryable=False, hint="pick another name")
    assert not errors.is_retryable(error)
    assert error.hint == "pick another name"
    assert str(error) == "exists"


def test_wrong_key_is_access_denied_and_not_retryable() -> None:
    error = errors.WrongKeyError("no key slot opens")
    assert isinstance(error, errors.AccessDeniedError)
    assert not error.retryable
    assert "nothing was written" in error.hint


def test_foreign_exceptions_are_never_retried() -> None:
    assert not errors.is_retryable(OSError("disk"))
