"""The back office (superusers only, same-origin forms) and the pages mailed links open."""

from __future__ import annotations

import httpx
from sqlalchemy import update

from amphora.models import User
from amphora.runtime import Runtime
from tests.fakes.smtp import Mailbox
from tests.helpers import API, PASSWORD, bearer, login, register, unique_email, verified_account

ORIGIN = {"Origin": "http://testserver"}


async def _admin_login(
    client: httpx.AsyncClient, email: str, headers: dict[str, str]
) -> httpx.Response:
    return await client.post(
        "/admin/login", data={"username": email, "password": PASSWORD}, headers=headers
    )


async def test_back_office_needs_a_superuser_session(
    client: httpx.AsyncClient, mailbox: Mailbox, runtime: Runtime
) -> None:
    anonymous = await client.get("/admin/user/list")
    assert anonymous.status_code in (302, 303) and "/admin/login" in anonymous.headers["location"]

    creator = await verified_account(client, mailbox)
    refused = await _admin_login(client, creator.email, ORIGIN)
    assert refused.status_code == 400  # SQLAdmin re-shows the form with an error
    assert (await client.get("/admin/user/list")).status_code in (302, 303)

    async with runtime.db.session() as session:
        await session.execute(
            update(User).where(User.email == creator.email).values(is_superuser=True)
        )
    forged = await _admin_login(client, creator.email, {"Origin": "https://evil.example"})
    assert forged.status_code == 403 and forged.json()["error"]["code"] == "csrf_failed"
    no_origin = await _admin_login(client, creator.email, {})
    assert no_origin.status_code == 403

    signed_in = await _admin_login(client, creator.email, ORIGIN)
    assert signed_in.status_code in (302, 303)
    cookie = signed_in.headers["set-cookie"].lower()
    assert "amphora_session=" in cookie and "httponly" in cookie and "samesite=strict" in cookie
    listing = await client.get("/admin/user/list")
    assert listing.status_code == 200 and creator.email in listing.text
    assert "password_hash" not in listing.text and "$argon2" not in listing.text

    # Losing superuser rights ends back-office access at once.
    async with runtime.db.session() as session:
        await session.execute(
            update(User).where(User.email == creator.email).values(is_superuser=False)
        )
    assert (await client.get("/admin/user/list")).status_code in (302, 303)


async def test_verify_page_does_not_spend_the_token_on_get(
    client: httpx.AsyncClient, mailbox: Mailbox
) -> None:
    email = unique_email()
    await register(client, email)
    token = (await mailbox.wait_for(email)).token()
    page = await client.get("/verify-email", params={"token": token})
    assert page.status_code == 200 and 'name="token"' in page.text
    # A mail scanner opening the link did not verify anything:
    assert (await client.post(f"{API}/auth/verify", json={"token": token})).status_code == 200
    used = await client.post("/verify-email", data={"token": token})
    assert used.status_code == 400 and "Link not valid" in used.text


async def test_reset_password_page(client: httpx.AsyncClient, mailbox: Mailbox) -> None:
    account = await verified_account(client, mailbox)
    await client.post(f"{API}/auth/forgot-password", json={"email": account.email})
    token = (await mailbox.wait_for(account.email, count=2)).token()
    form = await client.get("/reset-password", params={"token": token})
    assert form.status_code == 200 and 'type="password"' in form.text
    short = await client.post("/reset-password", data={"token": token, "password": "short"})
    assert short.status_code == 422
    done = await client.post(
        "/reset-password", data={"token": token, "password": "via the web page"}
    )
    assert done.status_code == 200 and "Password changed" in done.text
    assert (await client.get(f"{API}/users/me", headers=bearer(account.token))).status_code == 401
    assert (await login(client, account.email, "via the web page")).status_code == 200
