"""Sign-in limits, profile changes, secondary emails, API tokens and superuser administration."""

from __future__ import annotations

import httpx
from sqlalchemy import select, update

from amphora.kit.clock import utcnow
from amphora.models import AccessToken, User
from amphora.runtime import Runtime
from tests.fakes.smtp import Mailbox
from tests.helpers import API, PASSWORD, bearer, login, register, unique_email, verified_account


async def test_wrong_credentials_get_one_generic_answer(client: httpx.AsyncClient) -> None:
    email = unique_email()
    await register(client, email)
    wrong_password = await login(client, email, "not the password")
    no_account = await login(client, unique_email("ghost"), PASSWORD)
    assert wrong_password.status_code == no_account.status_code == 401
    assert wrong_password.json()["error"]["message"] == no_account.json()["error"]["message"]
    assert wrong_password.json()["error"]["code"] == "invalid_credentials"


async def test_eleventh_failure_in_a_minute_is_rate_limited(client: httpx.AsyncClient) -> None:
    email = unique_email()
    await register(client, email)
    for _ in range(10):
        assert (await login(client, email, "wrong password!")).status_code == 401
    limited = await login(client, email, PASSWORD)  # even the right password waits now
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) >= 1
    assert limited.json()["error"]["code"] == "rate_limited"


async def test_failures_are_counted_per_ip_across_accounts(client: httpx.AsyncClient) -> None:
    emails = [unique_email() for _ in range(3)]
    for email in emails:
        await register(client, email)
    for i in range(10):
        assert (await login(client, emails[i % 2], "wrong password!")).status_code == 401
    # A third account, never attacked, is refused from this address…
    assert (await login(client, emails[2])).status_code == 429


async def test_forwarded_for_is_ignored_from_untrusted_peers(
    client: httpx.AsyncClient,
) -> None:
    email = unique_email()
    await register(client, email)
    for i in range(10):
        headers = {"X-Forwarded-For": f"198.51.100.{i}"}
        response = await client.post(
            f"{API}/auth/login",
            json={"email": unique_email(), "password": "x" * 12},
            headers=headers,
        )
        assert response.status_code == 401
    # Spoofed headers did not spread the failures over ten addresses.
    assert (await login(client, email)).status_code == 429


async def test_forwarded_for_is_used_from_trusted_proxies(settings_factory: object) -> None:
    from asgi_lifespan import LifespanManager

    from amphora.app import create_app

    settings = settings_factory(trusted_proxies="203.0.113.0/24")  # type: ignore[operator]
    app = create_app(settings, run_jobs=False)
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 1234))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            for i in range(10):
                response = await client.post(
                    f"{API}/auth/login",
                    json={"email": unique_email(), "password": "x" * 12},
                    headers={"X-Forwarded-For": f"198.51.100.{i}"},
                )
                assert response.status_code == 401
            # Ten different real clients behind the proxy: none is limited.
            response = await client.post(
                f"{API}/auth/login",
                json={"email": unique_email(), "password": "x" * 12},
                headers={"X-Forwarded-For": "198.51.100.1"},
            )
            assert response.status_code == 401


async def test_display_name_and_password_change(
    client: httpx.AsyncClient, mailbox: Mailbox
) -> None:
    account = await verified_account(client, mailbox)
    other = (await login(client, account.email)).json()["access_token"]
    renamed = await client.patch(
        f"{API}/users/me", json={"display_name": "Ada L."}, headers=account.headers
    )
    assert renamed.status_code == 200 and renamed.json()["display_name"] == "Ada L."

    no_current = await client.patch(
        f"{API}/users/me", json={"password": "a new long password"}, headers=account.headers
    )
    assert no_current.status_code == 400
    assert no_current.json()["error"]["code"] == "wrong_current_password"
    changed = await client.patch(
        f"{API}/users/me",
        json={"password": "a new long password", "current_password": PASSWORD},
        headers=account.headers,
    )
    assert changed.status_code == 200
    assert (await client.get(f"{API}/users/me", headers=account.headers)).status_code == 200
    assert (await client.get(f"{API}/users/me", headers=bearer(other))).status_code == 401
    assert (await login(client, account.email, "a new long password")).status_code == 200


async def test_email_change_waits_for_verification(
    client: httpx.AsyncClient, mailbox: Mailbox
) -> None:
    account = await verified_account(client, mailbox)
    new_email = unique_email("moved")
    pending = await client.patch(
        f"{API}/users/me", json={"email": new_email}, headers=account.headers
    )
    assert pending.status_code == 200
    assert pending.json()["email"] == account.email
    assert pending.json()["pending_email"] == new_email
    assert (await login(client, new_email)).status_code == 401

    mail = await mailbox.wait_for(new_email)
    done = await client.post(f"{API}/auth/verify", json={"token": mail.token()})
    assert done.status_code == 200
    assert done.json()["email"] == new_email and done.json()["pending_email"] is None
    assert (await login(client, new_email)).status_code == 200
    assert (await login(client, account.email)).status_code == 401


async def test_email_change_to_a_taken_address_is_refused(
    client: httpx.AsyncClient, mailbox: Mailbox
) -> None:
    first = await verified_account(client, mailbox)
    second = await verified_account(client, mailbox)
    clash = await client.patch(
        f"{API}/users/me", json={"email": first.email}, headers=second.headers
    )
    assert clash.status_code == 409


async def test_secondary_emails_and_find_account(
    client: httpx.AsyncClient, mailbox: Mailbox
) -> None:
    account = await verified_account(client, mailbox)
    extra = unique_email("alias")
    added = await client.post(
        f"{API}/users/me/emails", json={"email": extra}, headers=account.headers
    )
    assert added.status_code == 201 and added.json()["verified_at"] is None
    email_id = added.json()["id"]

    # Unverified: find-account mails nothing, and it cannot become primary.
    await client.post(f"{API}/auth/find-account", json={"email": extra})
    premature = await client.post(
        f"{API}/users/me/emails/{email_id}/primary", headers=account.headers
    )
    assert premature.status_code == 409

    mail = await mailbox.wait_for(extra)
    verified = await client.post(
        f"{API}/users/me/emails/verify", json={"token": mail.token()}, headers=account.headers
    )
    assert verified.status_code == 200 and verified.json()["verified_at"] is not None
    assert len(mailbox.for_address(extra)) == 1

    found = await client.post(f"{API}/auth/find-account", json={"email": extra})
    assert found.status_code == 202
    hint = await mailbox.wait_for(extra, count=2)
    assert account.email in hint.text

    # Another creator cannot see or touch this address.
    stranger = await verified_account(client, mailbox)
    assert (
        await client.delete(f"{API}/users/me/emails/{email_id}", headers=stranger.headers)
    ).status_code == 404
    taken = await client.post(
        f"{API}/users/me/emails", json={"email": extra}, headers=stranger.headers
    )
    assert taken.status_code == 409

    swapped = await client.post(
        f"{API}/users/me/emails/{email_id}/primary", headers=account.headers
    )
    assert swapped.status_code == 200 and swapped.json()["email"] == extra
    listed = await client.get(f"{API}/users/me/emails", headers=account.headers)
    assert [e["email"] for e in listed.json()] == [account.email]
    assert (await login(client, extra)).status_code == 200

    deleted = await client.delete(f"{API}/users/me/emails/{email_id}", headers=account.headers)
    assert deleted.status_code == 204
    assert (await client.get(f"{API}/users/me/emails", headers=account.headers)).json() == []


async def test_personal_tokens_scopes_listing_and_revocation(
    client: httpx.AsyncClient, mailbox: Mailbox, runtime: Runtime
) -> None:
    account = await verified_account(client, mailbox)
    created = await client.post(
        f"{API}/users/me/tokens",
        json={"name": "read only", "scopes": ["read"]},
        headers=account.headers,
    )
    assert created.status_code == 201
    token, token_id = created.json()["token"], created.json()["id"]

    assert (await client.get(f"{API}/users/me", headers=bearer(token))).status_code == 200
    write = await client.patch(f"{API}/users/me", json={"display_name": "x"}, headers=bearer(token))
    assert write.status_code == 403 and write.json()["error"]["code"] == "missing_scope"
    mint = await client.post(
        f"{API}/users/me/tokens", json={"name": "more", "scopes": ["read"]}, headers=bearer(token)
    )
    assert mint.status_code == 403 and mint.json()["error"]["code"] == "session_required"

    listed = (await client.get(f"{API}/users/me/tokens", headers=account.headers)).json()
    assert [t["id"] for t in listed] == [token_id]
    assert "token" not in listed[0] and token.startswith(listed[0]["token_prefix"])
    async with runtime.db.session(write=False) as session:
        stored = await session.scalar(
            select(AccessToken.token_hash).where(AccessToken.name == "read only")
        )
    assert stored is not None and token not in stored and len(stored) == 64

    stranger = await verified_account(client, mailbox)
    assert (
        await client.delete(f"{API}/users/me/tokens/{token_id}", headers=stranger.headers)
    ).status_code == 404
    assert (
        await client.delete(f"{API}/users/me/tokens/{token_id}", headers=account.headers)
    ).status_code == 204
    assert (await client.get(f"{API}/users/me", headers=bearer(token))).status_code == 401
    assert (await client.get(f"{API}/users/me/tokens", headers=account.headers)).json() == []


async def test_expired_token_stops_working(
    client: httpx.AsyncClient, mailbox: Mailbox, runtime: Runtime
) -> None:
    account = await verified_account(client, mailbox)
    created = await client.post(
        f"{API}/users/me/tokens",
        json={"name": "short", "scopes": ["read", "write", "analytics"], "expires_in_days": 1},
        headers=account.headers,
    )
    token = created.json()["token"]
    assert (await client.get(f"{API}/users/me", headers=bearer(token))).status_code == 200
    async with runtime.db.session() as session:
        await session.execute(
            update(AccessToken).where(AccessToken.name == "short").values(expires_at=utcnow())
        )
    assert (await client.get(f"{API}/users/me", headers=bearer(token))).status_code == 401


async def _make_superuser(runtime: Runtime, email: str) -> None:
    async with runtime.db.session() as session:
        await session.execute(update(User).where(User.email == email).values(is_superuser=True))


async def test_admin_search_and_deactivate(
    client: httpx.AsyncClient, mailbox: Mailbox, runtime: Runtime
) -> None:
    admin = await verified_account(client, mailbox, email=unique_email("boss"))
    creator = await verified_account(client, mailbox, email=unique_email("podder"))
    pat = (
        await client.post(
            f"{API}/users/me/tokens",
            json={"name": "ci", "scopes": ["read"]},
            headers=creator.headers,
        )
    ).json()["token"]

    assert (await client.get(f"{API}/admin/users", headers=creator.headers)).status_code == 403
    await _make_superuser(runtime, admin.email)
    found = await client.get(f"{API}/admin/users", params={"q": "PODDER"}, headers=admin.headers)
    assert found.status_code == 200
    assert [u["email"] for u in found.json()["items"]] == [creator.email]
    assert found.json()["total"] == 1
    wildcard = await client.get(f"{API}/admin/users", params={"q": "%"}, headers=admin.headers)
    assert wildcard.json()["total"] == 0  # LIKE wildcards are matched literally

    changed = await client.patch(
        f"{API}/admin/users/{creator.id}",
        json={"is_active": False, "storage_quota_bytes": 5_000_000},
        headers=admin.headers,
    )
    assert changed.status_code == 200
    assert (
        changed.json()["is_active"] is False and changed.json()["storage_quota_bytes"] == 5_000_000
    )
    assert (await client.get(f"{API}/users/me", headers=creator.headers)).status_code == 401
    assert (await client.get(f"{API}/users/me", headers=bearer(pat))).status_code == 401
    refused = await login(client, creator.email)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "account_disabled"

    self_demote = await client.patch(
        f"{API}/admin/users/{admin.id}", json={"is_superuser": False}, headers=admin.headers
    )
    assert self_demote.status_code == 409
    missing = await client.patch(
        f"{API}/admin/users/0190a0a0-0000-7000-8000-000000000000",
        json={"is_verified": True},
        headers=admin.headers,
    )
    assert missing.status_code == 404


async def test_spent_tokens_are_purged_by_a_periodic_job(
    client: httpx.AsyncClient, mailbox: Mailbox, runtime: Runtime
) -> None:
    from datetime import timedelta

    from sqlalchemy import func

    from amphora.account.tasks import purge_spent_tokens
    from amphora.models import OneTimeToken

    account = await verified_account(client, mailbox)  # one used link token, one live session
    await client.post(f"{API}/auth/logout", headers=account.headers)
    live = (await login(client, account.email)).json()["access_token"]
    long_ago = utcnow() - timedelta(days=31)
    async with runtime.db.session() as session:
        await session.execute(update(OneTimeToken).values(used_at=long_ago))
        await session.execute(
            update(AccessToken)
            .where(AccessToken.revoked_at.is_not(None))
            .values(revoked_at=long_ago)
        )

    periodic = {task.name for task in runtime.jobs.huey._registry.periodic_tasks}
    assert any(name.endswith("purge_spent_tokens") for name in periodic)
    await purge_spent_tokens.body(runtime)

    async with runtime.db.session(write=False) as session:
        assert await session.scalar(select(func.count()).select_from(OneTimeToken)) == 0
        assert await session.scalar(select(func.count()).select_from(AccessToken)) == 1
    assert (await client.get(f"{API}/users/me", headers=bearer(live))).status_code == 200


async def test_a_burst_of_first_uses_of_a_token_does_not_exhaust_the_pool(
    client: httpx.AsyncClient, mailbox: Mailbox, runtime: Runtime
) -> None:
    import asyncio

    account = await verified_account(client, mailbox)
    fresh = (await login(client, account.email)).json()["access_token"]
    # More simultaneous first uses than the pool has connections (5 + 10 overflow).
    answers = await asyncio.gather(
        *(client.get(f"{API}/users/me", headers=bearer(fresh)) for _ in range(40))
    )
    assert [a.status_code for a in answers] == [200] * 40
    async with runtime.db.session(write=False) as session:
        last_used = await session.scalar(
            select(AccessToken.last_used_at)
            .where(AccessToken.kind == "session")
            .order_by(AccessToken.created_at.desc())
        )
    assert last_used is not None
