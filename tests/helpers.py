"""Small building blocks shared by the API tests."""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio
import httpx

from tests.fakes.smtp import Mailbox

PASSWORD = "correct horse battery"
API = "/api/v1"


@dataclass
class Account:
    email: str
    password: str
    token: str
    id: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def unique_email(prefix: str = "creator") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}@example.com"


async def register(
    client: httpx.AsyncClient, email: str, password: str = PASSWORD
) -> httpx.Response:
    return await client.post(
        f"{API}/auth/register",
        json={"email": email, "password": password, "display_name": "Test Creator"},
    )


async def login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    return await client.post(f"{API}/auth/login", json={"email": email, "password": password})


async def verified_account(
    client: httpx.AsyncClient, mailbox: Mailbox, email: str | None = None
) -> Account:
    """Sign up, open the mailed link, sign in: a creator as the product makes them."""
    email = email or unique_email()
    created = await register(client, email)
    assert created.status_code == 201, created.text
    mail = await mailbox.wait_for(email)
    verified = await client.post(f"{API}/auth/verify", json={"token": mail.token()})
    assert verified.status_code == 200, verified.text
    response = await login(client, email)
    assert response.status_code == 200, response.text
    return Account(email, PASSWORD, response.json()["access_token"], created.json()["id"])


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 20) -> None:
    """Wait until a background job has made ``check`` true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await anyio.sleep(0.05)
    raise AssertionError("condition not met in time")
