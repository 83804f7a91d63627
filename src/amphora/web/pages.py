"""The pages mailed links land on: confirm an email address, choose a new password.

A GET only shows a form: mail scanners open links, and must not use up a one-shot token.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from pydantic import SecretStr, ValidationError

from amphora.account import service
from amphora.account.schemas import ResetPasswordIn
from amphora.deps import SessionDep
from amphora.kit.errors import AmphoraError

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
router = APIRouter(include_in_schema=False)


def _page(request: Request, name: str, status_code: int = 200, **context: object) -> HTMLResponse:
    return templates.TemplateResponse(request, name, context, status_code=status_code)


@router.get("/verify-email", response_class=HTMLResponse)
async def verify_form(request: Request, token: str = "") -> HTMLResponse:
    return _page(request, "verify_email.html", token=token)


@router.post("/verify-email", response_class=HTMLResponse)
async def verify_submit(
    request: Request, session: SessionDep, token: Annotated[str, Form(max_length=200)]
) -> HTMLResponse:
    try:
        user = await service.verify_email(session, secret=token)
    except AmphoraError as exc:
        return _page(request, "message.html", 400, title="Link not valid", message=exc.message)
    return _page(
        request,
        "message.html",
        title="Email confirmed",
        message=f"{user.email} is confirmed. You can close this page and sign in.",
    )


@router.get("/reset-password", response_class=HTMLResponse)
async def reset_form(request: Request, token: str = "") -> HTMLResponse:
    return _page(request, "reset_password.html", token=token, error=None)


@router.post("/reset-password", response_class=HTMLResponse)
async def reset_submit(
    request: Request,
    session: SessionDep,
    token: Annotated[str, Form(max_length=200)],
    password: Annotated[str, Form(max_length=1024)],
) -> HTMLResponse:
    try:
        data = ResetPasswordIn(token=token, password=SecretStr(password))
        await service.reset_password(session, secret=data.token, password=data.password)
    except ValidationError:
        return _page(
            request,
            "reset_password.html",
            422,
            token=token,
            error="The password needs at least 10 characters.",
        )
    except AmphoraError as exc:
        return _page(
            request, "reset_password.html", exc.status_code, token=token, error=exc.message
        )
    return _page(
        request,
        "message.html",
        title="Password changed",
        message="Your password is changed and every other session was signed out.",
    )
