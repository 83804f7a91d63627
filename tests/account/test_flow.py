"""The whole account journey against a real SMTP server, on both backends."""

from __future__ import annotations

from datetime import datetime

import httpx
from sqlalchemy import select, update

from amphora.kit.clock import utcnow
from amphora.models import OneTimeToken, OutboxMail
from amphora.runtime import Runtime
from tests.fakes.smtp import Mailbox
from tests.helpers import API, PASSWORD, bearer, login, register, unique_email


async def test_register_verify_login_token_logout_forgot_reset(
    client: httpx.AsyncClient, mailbox: Mailbox
) -> None:
    email = unique_email()
    created = await register(client, email)
    assert created.status_code == 201
    body = created.json()
    assert body["email"] == email and body["is_verified"] is False
    assert "password" not in str(body) and "password_hash" not in body

    mail = await mailbox.wait_for(email)
    assert mail.subject == "Confirm your Amphora account"
    assert "http://testserver/verify-email?token=" in mail.text
    assert "verify-email?token=" in mail.html
    verified = await client.post(f"{API}/auth/verify", json={"token": mail.token()})
    assert verified.status_code == 200 and verified.json()["is_verified"] is True

    session = await login(client, email)
    assert session.status_code == 200
    tokens = session.json()
    assert tokens["token_type"] == "bearer"
    assert datetime.fromisoformat(tokens["expires_at"]) > utcnow()
    me = await client.get(f"{API}/users/me", headers=bearer(tokens["access_token"]))
    assert me.status_code == 200 and me.json()["email"] == email

    created_token = await client.post(
        f"{API}/users/me/tokens",
        json={"name": "uploads", "scopes": ["read"], "expires_in_days": 30},
        headers=bearer(tokens["access_token"]),
    )
    assert created_token.status_code == 201
    personal = created_token.json()["token"]
    assert personal.startswith("amp_pat_")
    me_by_pat = await client.get(f"{API}/users/me", headers=bearer(personal))
    assert me_by_pat.json()["id"] == body["id"]

    # A second session, to see that a password reset ends it.
    other_session = (await login(client, email)).json()["access_token"]

    logout = await client.post(f"{API}/auth/logout", headers=bearer(tokens["access_token"]))
    assert logout.status_code == 204
    after = await client.get(f"{API}/users/me", headers=bearer(tokens["access_token"]))
    assert after.status_code == 401 and after.json()["error"]["code"] == "invalid_token"

    forgot = await client.post(f"{API}/auth/forgot-password", json={"email": email})
    assert forgot.status_code == 202
    reset_mail = await mailbox.wait_for(email, count=2)
    assert reset_mail.subject == "Reset your Amphora password"
    new_password = "a brand new passphrase"
    reset = await client.post(
        f"{API}/auth/reset-password", json={"token": reset_mail.token(), "password": new_password}
    )
    assert reset.status_code == 204
    assert (await client.get(f"{API}/users/me", headers=bearer(other_session))).status_code == 401
    # Personal API tokens are separate credentials and survive a password reset.
    assert (await client.get(f"{API}/users/me", headers=bearer(personal))).status_code == 200
    assert (await login(client, email)).status_code == 401
    assert (await login(client, email, new_password)).status_code == 200
    # The reset link is single-use.
    again = await client.post(
        f"{API}/auth/reset-password",
        json={"token": reset_mail.token(), "password": "yet another one"},
    )
    assert again.status_code == 400 and again.json()["error"]["code"] == "invalid_token"


async def test_duplicate_email_is_a_conflict_whatever_the_case(client: httpx.AsyncClient) -> None:
    email = unique_email()
    assert (await register(client, email)).status_code == 201
    again = await register(client, email.upper())
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "email_taken"


async def test_verification_token_is_single_use_and_unforgeable(
    client: httpx.AsyncClient, mailbox: Mailbox
) -> None:
    email = unique_email()
    await register(client, email)
    token = (await mailbox.wait_for(email)).token()
    assert (await client.post(f"{API}/auth/verify", json={"token": token})).status_code == 200
    reused = await client.post(f"{API}/auth/verify", json={"token": token})
    assert reused.status_code == 400 and reused.json()["error"]["code"] == "invalid_token"
    forged = await client.post(f"{API}/auth/verify", json={"token": token[:-4] + "AAAA"})
    assert forged.status_code == 400


async def test_expired_verification_token_is_refused(
    client: httpx.AsyncClient, mailbox: Mailbox, runtime: Runtime
) -> None:
    email = unique_email()
    await register(client, email)
    token = (await mailbox.wait_for(email)).token()
    async with runtime.db.session() as session:
        await session.execute(update(OneTimeToken).values(expires_at=utcnow()))
    response = await client.post(f"{API}/auth/verify", json={"token": token})
    assert response.status_code == 400
    me = await login(client, email)
    assert me.status_code == 200  # unverified accounts can still sign in (to resend, etc.)
    user = await client.get(f"{API}/users/me", headers=bearer(me.json()["access_token"]))
    assert user.json()["is_verified"] is False


async def test_verification_link_expires_after_24_hours(
    client: httpx.AsyncClient, mailbox: Mailbox, runtime: Runtime
) -> None:
    email = unique_email()
    started = utcnow()
    await register(client, email)
    await mailbox.wait_for(email)
    async with runtime.db.session(write=False) as session:
        token = await session.scalar(select(OneTimeToken))
    assert token is not None
    hours = (token.expires_at - started).total_seconds() / 3600
    assert 23.9 < hours < 24.1


async def test_resend_and_forgot_never_reveal_accounts(
    client: httpx.AsyncClient, mailbox: Mailbox, runtime: Runtime
) -> None:
    unknown = unique_email("nobody")
    for path in ("/auth/verify/resend", "/auth/forgot-password", "/auth/find-account"):
        response = await client.post(f"{API}{path}", json={"email": unknown})
        assert response.status_code == 202
        assert response.content == b""

    email = unique_email()
    await register(client, email)
    first = await mailbox.wait_for(email)
    resend = await client.post(f"{API}/auth/verify/resend", json={"email": email})
    assert resend.status_code == 202
    second = await mailbox.wait_for(email, count=2)
    # The newest link works; the earlier one was replaced.
    assert (
        await client.post(f"{API}/auth/verify", json={"token": first.token()})
    ).status_code == 400
    assert (
        await client.post(f"{API}/auth/verify", json={"token": second.token()})
    ).status_code == 200
    # Nothing was ever mailed to the unknown address.
    async with runtime.db.session(write=False) as session:
        sent_to = set(await session.scalars(select(OutboxMail.to_address)))
    assert unknown not in sent_to and mailbox.for_address(unknown) == []


async def test_password_rules(client: httpx.AsyncClient) -> None:
    short = await register(client, unique_email(), password="short")
    assert short.status_code == 422
    assert short.json()["error"]["details"][0]["loc"] == ["body", "password"]
    email = unique_email("marguerite")
    local = email.split("@")[0]
    weak = await register(client, email, password=f"{local.upper()}-rocks-2026")
    assert weak.status_code == 422 and weak.json()["error"]["code"] == "weak_password"
    assert (await login(client, email)).status_code == 401  # nothing was created


async def test_stored_password_is_argon2(client: httpx.AsyncClient, runtime: Runtime) -> None:
    from amphora.models import User

    email = unique_email()
    await register(client, email)
    async with runtime.db.session(write=False) as session:
        user = await session.scalar(select(User).where(User.email == email))
    assert user is not None and user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash
