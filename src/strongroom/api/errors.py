"""Errors as HTTP responses: one JSON body for every failure, the status from the error tree.

Every error body reads ``{"error": {"code", "message", "hint", "retryable"}}``; a request
that fails validation adds ``"fields"``: one ``{"field", "message"}`` per problem, the
field named by its dotted path (``body.target``, ``query.limit``).
"""

from __future__ import annotations

from typing import Any, Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from strongroom.errors import (
    AccessDeniedError,
    AuthenticationError,
    ConfigError,
    ConflictError,
    InsufficientStorageError,
    NotFoundError,
    PermissionDeniedError,
    PolicyError,
    StrongroomError,
    ThrottlingError,
    TransientError,
    UnsupportedError,
)
from strongroom.logs import get_logger, mask

_logger = get_logger(__name__)

_STATUS: Final[tuple[tuple[type[StrongroomError], int], ...]] = (
    (AuthenticationError, 401),
    (PermissionDeniedError, 403),
    (AccessDeniedError, 403),
    (NotFoundError, 404),
    (ConflictError, 409),
    (PolicyError, 409),
    (ConfigError, 422),
    (UnsupportedError, 422),
    (InsufficientStorageError, 507),
    (ThrottlingError, 429),
    (TransientError, 503),
)


def status_of(error: StrongroomError) -> int:
    """The HTTP status for an error of the tree (500 for one with no better status)."""
    for kind, status in _STATUS:
        if isinstance(error, kind):
            return status
    return 500


def error_body(
    code: str, message: str, *, hint: str = "", retryable: bool = False, **extra: Any
) -> dict[str, Any]:
    """The JSON body every error response carries."""
    return {
        "error": {"code": code, "message": mask(message), "hint": hint, "retryable": retryable}
        | extra
    }


def error_response(error: StrongroomError) -> JSONResponse:
    """The response for an error of the tree; 401 adds the ``WWW-Authenticate`` header."""
    status = status_of(error)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    body = error_body(error.code, str(error), hint=error.hint, retryable=error.retryable)
    return JSONResponse(body, status_code=status, headers=headers)


def _field(location: Any) -> str:
    return ".".join(str(part) for part in location)


async def _strongroom_error(request: Request, error: Exception) -> JSONResponse:
    if not isinstance(error, StrongroomError):  # registered for this class only
        raise error
    return error_response(error)


async def _validation_error(request: Request, error: Exception) -> JSONResponse:
    if not isinstance(error, RequestValidationError):  # registered for this class only
        raise error
    fields = [
        {"field": _field(problem.get("loc", ())), "message": str(problem.get("msg", ""))}
        for problem in error.errors()
    ]
    names = ", ".join(field["field"] for field in fields)
    body = error_body(
        ConfigError.code,
        f"invalid request: {names}",
        hint="Fix the named fields and send the request again.",
        fields=fields,
    )
    return JSONResponse(body, status_code=422)


async def _http_error(request: Request, error: Exception) -> JSONResponse:
    if not isinstance(error, StarletteHTTPException):  # registered for this class only
        raise error
    code = {404: "NotFound", 405: "MethodNotAllowed", 413: "RequestTooLarge"}.get(
        error.status_code, f"HTTP{error.status_code}"
    )
    return JSONResponse(
        error_body(code, str(error.detail)),
        status_code=error.status_code,
        headers=getattr(error, "headers", None),
    )


async def _unexpected_error(request: Request, error: Exception) -> JSONResponse:
    _logger.error(
        "API request failed",
        exc_info=error,
        extra={"method": request.method, "path": request.url.path},
    )
    return JSONResponse(
        error_body("InternalServerError", "internal error; the server log has the details"),
        status_code=500,
    )


def install_error_handlers(app: FastAPI) -> None:
    """Make every error of ``app`` answer with the one JSON error body."""
    app.add_exception_handler(StrongroomError, _strongroom_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
