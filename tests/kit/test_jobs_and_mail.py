"""Jobs are sent only after commit, retried, recorded when they fail; mail goes out by job."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from sqlalchemy import select

from amphora.kit.jobs import job
from amphora.kit.mail import queue_mail
from amphora.models import FailedJob, MailStatus, OutboxMail
from amphora.runtime import Runtime
from amphora.settings import Settings
from tests.fakes.smtp import Mailbox
from tests.helpers import eventually

ATTEMPTS: dict[str, int] = {}


@job(retries=0)
async def write_marker(ctx: Any, path: str, text: str) -> None:
    Path(path).write_text(text)


@job(retries=2, retry_delay=0, backoff=1.0)
async def flaky(ctx: Any, key: str, path: str) -> None:
    ATTEMPTS[key] = ATTEMPTS.get(key, 0) + 1
    if ATTEMPTS[key] < 3:
        raise RuntimeError(f"attempt {ATTEMPTS[key]} fails")
    Path(path).write_text("done")


@job(retries=0)
async def always_fails(ctx: Any, marker: str) -> None:
    raise ValueError(f"broken for {marker}")


async def test_job_is_sent_after_commit_and_never_after_rollback(
    runtime: Runtime, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    committed, rolled_back = tmp_path / "committed", tmp_path / "rolled-back"
    async with runtime.db.session() as session:
        write_marker.defer(session, str(committed), "yes")
        assert not committed.exists()  # not before the commit
    with pytest.raises(RuntimeError):
        async with runtime.db.session() as session:
            write_marker.defer(session, str(rolled_back), "no")
            raise RuntimeError("the request failed")

    async def done() -> bool:
        return committed.exists()

    await eventually(done)
    assert committed.read_text() == "yes"
    await anyio.sleep(0.5)
    assert not rolled_back.exists()


async def test_failing_job_is_retried_until_it_succeeds(
    runtime: Runtime, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    key, path = uuid.uuid4().hex, tmp_path / "flaky"
    async with runtime.db.session() as session:
        flaky.defer(session, key, str(path))

    async def done() -> bool:
        return path.exists()

    await eventually(done)
    assert ATTEMPTS[key] == 3


async def test_job_out_of_retries_is_recorded(runtime: Runtime, client: httpx.AsyncClient) -> None:
    marker = uuid.uuid4().hex
    async with runtime.db.session() as session:
        always_fails.defer(session, marker)

    async def find() -> FailedJob | None:
        async with runtime.db.session(write=False) as session:
            rows = (await session.scalars(select(FailedJob))).all()
        return next((row for row in rows if row.args == [marker]), None)

    async def recorded() -> bool:
        return await find() is not None

    await eventually(recorded)
    failed = await find()
    assert failed is not None
    assert failed.task_name.endswith("always_fails")
    assert f"broken for {marker}" in failed.error


async def test_mail_is_delivered_by_smtp_and_bodies_are_scrubbed(
    runtime: Runtime, client: httpx.AsyncClient, mailbox: Mailbox
) -> None:
    async with runtime.db.session() as session:
        mail = await queue_mail(
            session,
            to="listener@example.com",
            template="reset_password",
            context={
                "display_name": "Lis <b>",
                "link": "http://x/reset?token=abc",
                "token": "abc",
                "hours": 2,
            },
        )
        mail_id = mail.id
    received = await mailbox.wait_for("listener@example.com")
    assert received.message["From"] == "Amphora <no-reply@amphora.test>"
    assert "Lis <b>" in received.text and "Lis &lt;b&gt;" in received.html  # HTML is escaped

    async def sent() -> bool:
        async with runtime.db.session(write=False) as session:
            row = await session.get(OutboxMail, mail_id)
            return row is not None and row.status == MailStatus.sent

    await eventually(sent)
    async with runtime.db.session(write=False) as session:
        row = await session.get(OutboxMail, mail_id)
    assert row is not None and row.text_body == "" and row.html_body == "" and row.sent_at


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_without_smtp_mail_stays_in_the_outbox(settings_factory: Any, tmp_path: Path) -> None:
    from asgi_lifespan import LifespanManager

    from amphora.app import create_app

    settings: Settings = settings_factory(smtp_url=None)
    app = create_app(settings, run_jobs=True)
    runtime: Runtime = app.state.runtime
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            await client.post(
                "/api/v1/auth/register",
                json={
                    "email": "offline@example.com",
                    "password": "long enough pw",
                    "display_name": "O",
                },
            )

        async def in_outbox() -> bool:
            async with runtime.db.session(write=False) as session:
                status = await session.scalar(select(OutboxMail.status))
                return status == MailStatus.outbox

        await eventually(in_outbox)
        async with runtime.db.session(write=False) as session:
            row = await session.scalar(select(OutboxMail))
        assert row is not None and "verify-email?token=" in row.text_body


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_unreachable_smtp_keeps_the_mail_and_the_error(settings_factory: Any) -> None:
    from asgi_lifespan import LifespanManager

    from amphora.app import create_app

    settings: Settings = settings_factory(smtp_url="smtp://127.0.0.1:9?starttls=false&timeout=2")
    app = create_app(settings, run_jobs=True)
    runtime: Runtime = app.state.runtime
    async with LifespanManager(app):
        async with runtime.db.session() as session:
            await queue_mail(
                session,
                to="a@example.com",
                template="find_account",
                context={
                    "display_name": "A",
                    "primary_email": "p@example.com",
                    "login_link": "http://x",
                },
            )

        async def attempted() -> bool:
            async with runtime.db.session(write=False) as session:
                row = await session.scalar(select(OutboxMail))
                return row is not None and row.attempts >= 1 and row.last_error is not None

        await eventually(attempted)
    async with runtime.db.session(write=False) as session:
        row = await session.scalar(select(OutboxMail))
    assert (
        row is not None and row.status == MailStatus.queued and "Connect" in (row.last_error or "")
    )
    assert "p@example.com" in row.text_body  # kept for the retry
