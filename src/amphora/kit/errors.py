"""Typed domain errors and the one handler that renders every error as the same envelope.

Services raise ``AmphoraError`` subclasses (never ``HTTPException``); the handlers below turn
them, validation errors, HTTP errors and unexpected exceptions into
``{"error": {"code", "message", "details"}}`` with the request id attached.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from amphora.kit.logs import current_request_id

logger = logging.getLogger("amphora.errors")


class AmphoraError(Exception):
    """An expected failure with an HTTP status, a stable machine code and a human message."""

    status_code: int = 400
    code: str = "bad_request"
    message: str = "The request could not be processed."

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        status_code: int | None = None,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.message = message or self.message
        self.code = code or self.code
        self.status_code = status_code or self.status_code
        self.details = details
        self.headers = headers
        super().__init__(self.message)


class NotFound(AmphoraError):
    status_code = 404
    code = "not_found"
    message = "Not found."


class Conflict(AmphoraError):
    status_code = 409
    code = "conflict"
    message = "This conflicts with existing data."


class Forbidden(AmphoraError):
    status_code = 403
    code = "forbidden"
    message = "You are not allowed to do this."


class Unauthorized(AmphoraError):
    status_code = 401
    code = "not_authenticated"
    message = "Authentication required."

    def __init__(self, message: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(message, **kwargs)


class TooManyRequests(AmphoraError):
    status_code = 429
    code = "rate_limited"
    message = "Too many attempts. Try again later."

    def __init__(self, retry_after: int, message: str | None = None) -> None:
        super().__init__(
            message,
            details={"retry_after": retry_after},
            headers={"Retry-After": str(retry_after)},
        )


class PayloadTooLarge(AmphoraError):
    status_code = 413
    code = "payload_too_large"
    message = "The request body is too large."


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {
        "error": {
            "code": code,
            "message": message,
            "details": details,
            "request_id": current_request_id(),
        }
    }


def _envelope(
    status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(error_body(code, message, details), status_code=status, headers=headers)


def _status_code_name(status: int) -> str:
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "http_error"


async def _amphora_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AmphoraError)
    return _envelope(exc.status_code, exc.code, exc.message, exc.details, exc.headers)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = [
        {
            "loc": list(err.get("loc", ())),
            "msg": err.get("msg", ""),
            "type": err.get("type", ""),
        }
        for err in exc.errors()
    ]
    malformed = any(d["type"] == "json_invalid" for d in details)
    if malformed:
        return _envelope(400, "malformed_json", "The request body is not valid JSON.", details)
    return _envelope(422, "validation_error", "The request is not valid.", details)


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    message = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    headers = dict(exc.headers) if exc.headers else None
    code = getattr(exc, "code", None) or _status_code_name(exc.status_code)
    return _envelope(exc.status_code, code, message, None, headers)


async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error", exc_info=exc)
    return _envelope(500, "internal_error", "Something went wrong on our side.")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AmphoraError, _amphora_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
