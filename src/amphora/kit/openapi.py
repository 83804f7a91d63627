"""OpenAPI helpers: the error envelope schema with an example per status code."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel, Field

_EXAMPLES: dict[int, tuple[str, str]] = {
    400: ("invalid_token", "This link is invalid, already used or expired."),
    401: ("not_authenticated", "Authentication required."),
    403: ("forbidden", "You are not allowed to do this."),
    404: ("not_found", "Not found."),
    409: ("conflict", "This conflicts with existing data."),
    412: ("precondition_failed", "The resource changed since you read it."),
    413: ("payload_too_large", "The request body is larger than the limit of 1048576 bytes."),
    415: ("unsupported_media_type", "This file type is not supported."),
    422: ("validation_error", "The request is not valid."),
    429: ("rate_limited", "Too many attempts. Try again later."),
}


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. `email_taken`.")
    message: str = Field(description="Human-readable explanation.")
    details: Any = Field(None, description="Extra data, e.g. the invalid fields.")
    request_id: str | None = Field(None, description="Quote this when reporting a problem.")


class ErrorEnvelope(BaseModel):
    error: ErrorDetail


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    responses: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        code, message = _EXAMPLES.get(status, ("error", "The request failed."))
        responses[status] = {
            "model": ErrorEnvelope,
            "content": {
                "application/json": {
                    "example": {
                        "error": {
                            "code": code,
                            "message": message,
                            "details": None,
                            "request_id": "4f1c2b9e8d7a4c3b",
                        }
                    }
                }
            },
        }
    return responses


Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])


def get_and_head(router: APIRouter, path: str, **options: Any) -> Callable[[Endpoint], Endpoint]:
    """Register one endpoint for GET and HEAD as two operations (each its own operation id;
    one route with both methods would give the schema a duplicate operation id)."""

    def register(endpoint: Endpoint) -> Endpoint:
        for method in ("GET", "HEAD"):
            router.add_api_route(
                path, endpoint, methods=[method], response_class=Response, **options
            )
        return endpoint

    return register
