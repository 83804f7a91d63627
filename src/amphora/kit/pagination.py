"""Cursor pagination: ``{items, next_cursor}``; the cursor is opaque to clients."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, Generic, TypeVar

from fastapi import Response
from pydantic import BaseModel

from amphora.kit.errors import AmphoraError

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


def page_response(page: Page[Any]) -> Response:
    """The page as JSON, serialised once by pydantic-core (a returned model would be
    validated and encoded again by the framework)."""
    return Response(page.model_dump_json(), media_type="application/json")


class InvalidCursor(AmphoraError):
    status_code = 400
    code = "invalid_cursor"
    message = "This cursor is not valid; start again without one."


def encode_cursor(offset: int, fingerprint: str) -> str:
    raw = json.dumps({"o": offset, "f": fingerprint}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None, fingerprint: str) -> int:
    """The offset a cursor stands for; a cursor made for other filters is refused."""
    if not cursor:
        return 0
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        offset = int(data["o"])
        same_query = data["f"] == fingerprint
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise InvalidCursor from exc
    if offset < 0 or not same_query:
        raise InvalidCursor
    return offset
