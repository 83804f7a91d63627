"""The raw hit log: what a row holds, how client addresses are hashed, batching, retries after a
failed write, the flush on shutdown, and switching recording off."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import event, func, select

from amphora.app import create_app
from amphora.delivery.hits import HitRecorder, client_hash, client_hash_key, hit_row
from amphora.kit.clock import utcnow
from amphora.kit.db import Database
from amphora.models import Hit
from amphora.settings import Settings
from tests.delivery.seed import hits_of, seed_episode, seed_show
from tests.helpers import eventually

AppClient = tuple[Any, httpx.AsyncClient]
CLIENT_IP = "203.0.113.7"  # the address the test client connects from
HEX32 = re.compile(r"[0-9a-f]{32}")


@contextlib.asynccontextmanager
async def serving(
    settings: Settings, client_ip: str = CLIENT_IP
) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    app = create_app(settings, run_jobs=False)
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30):
        transport = httpx.ASGITransport(app=app, client=(client_ip, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield app, client


def client_from(app: Any, ip: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(ip, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


# --- pure parts ----------------------------------------------------------------------------------


def test_client_hash_hides_the_address_and_groups_ipv6_by_64() -> None:
    key = client_hash_key("secret-one")
    v4 = client_hash(key, "203.0.113.7")
    assert HEX32.fullmatch(v4) and "203" not in v4
    assert v4 == client_hash(key, "203.0.113.7")
    assert v4 != client_hash(key, "203.0.113.8")
    assert v4 != client_hash(client_hash_key("secret-two"), "203.0.113.7")  # keyed
    assert client_hash(key, "::ffff:203.0.113.7") == v4  # IPv4-mapped IPv6 is the IPv4 client
    same = client_hash(key, "2001:db8:1:2::1")
    assert same == client_hash(key, "2001:db8:1:2:ffff:eeee:dddd:cccc")
    assert same != client_hash(key, "2001:db8:1:3::1")
    assert HEX32.fullmatch(client_hash(key, "unknown"))


def test_hit_row_cuts_texts_to_their_columns() -> None:
    row = hit_row(
        key=b"k",
        at=utcnow(),
        show_id=None,
        episode_id=None,
        media_id=None,
        subscriber_id=None,
        method="GET",
        status=206,
        range_header="bytes=0-1" + " " * 100,
        bytes_sent=2,
        client_address="198.51.100.1",
        user_agent="A" * 5000,
        referer="https://example.com/" + "r" * 5000,
        session_id="S" * 100,
    )
    assert len(row["range"]) == 64 and len(row["user_agent"]) == 1024
    assert len(row["referer"]) == 2048 and len(row["session_id"]) == 64
    assert "198.51.100.1" not in row.values() and HEX32.fullmatch(row["client_hash"])
    assert hit_row(**{**_row_args(), "user_agent": "", "referer": None})["user_agent"] is None


def _row_args() -> dict[str, Any]:
    return {
        "key": b"k",
        "at": utcnow(),
        "show_id": None,
        "episode_id": None,
        "media_id": None,
        "subscriber_id": None,
        "method": "GET",
        "status": 200,
        "range_header": None,
        "bytes_sent": 0,
        "client_address": "198.51.100.1",
        "user_agent": None,
        "referer": None,
        "session_id": None,
    }


# --- through the app -----------------------------------------------------------------------------


async def test_hit_rows(app_client: AppClient, backend: str) -> None:
    app, client = app_client
    runtime = app.state.runtime
    show = await seed_show(runtime)
    episode = await seed_episode(runtime, show)
    size = len(episode.data)
    apple = {
        "User-Agent": "AppleCoreMedia/1.0.0.20E247 (iPhone; U; CPU OS 16_4 like Mac OS X)",
        "X-Playback-Session-Id": "3E2B8E5D-6F0A-4C55-9C8B-1B7A0B6A9F10",
        "Referer": "https://example.com/player",
    }
    await client.get(episode.url(), headers={"Range": "bytes=0-1", **apple})
    await client.get(episode.url(), headers={"User-Agent": "Overcast/3.0"})
    await client.head(episode.url(), headers={"User-Agent": "curl/8"})
    await client.get(episode.url(), headers={"Range": f"bytes={size}-"})
    await client.get(episode.url(), headers={"Range": "bytes=0-1" + "," * 80})
    await client.get(episode.url(), headers={"X-Forwarded-For": "198.51.100.9"})  # untrusted
    await client.get(episode.url(ext="m4a"))  # 404: not logged
    await client.get(f"/e/{show.slug}/{episode.id}/nope.mp3")  # 404: not logged
    assert app.state.hits.pending == 6
    await app.state.hits.flush()
    rows = await hits_of(runtime)
    assert len(rows) == 6 and app.state.hits.pending == 0

    local = backend == "sqlite"
    # Redirected to object storage (S3), a GET records the bytes it asked for there.
    expected = [
        ("GET", 206 if local else 302, "bytes=0-1", 2),
        ("GET", 200 if local else 302, None, size),
        ("HEAD", 200 if local else 302, None, 0 if local else None),
        ("GET", 416 if local else 302, f"bytes={size}-", 0),
        ("GET", 206 if local else 302, ("bytes=0-1" + "," * 80)[:64], 2),
        ("GET", 200 if local else 302, None, size),
    ]
    assert [(h.method, h.status, h.range, h.bytes_sent) for h in rows] == expected
    first = rows[0]
    assert (first.show_id, first.episode_id, first.media_id) == (
        show.id,
        episode.id,
        episode.media_id,
    )
    assert first.subscriber_id is None and first.source == "delivery"
    assert first.user_agent == apple["User-Agent"] and first.referer == apple["Referer"]
    assert first.session_id == apple["X-Playback-Session-Id"]
    assert rows[1].user_agent == "Overcast/3.0" and rows[1].session_id is None
    assert abs((utcnow() - first.at).total_seconds()) < 60

    key = app.state.hits.key
    hashes = {h.client_hash for h in rows}
    assert hashes == {client_hash(key, CLIENT_IP)}  # X-Forwarded-For from a stranger: ignored
    (only,) = hashes
    assert HEX32.fullmatch(only) and only != CLIENT_IP and "203" not in only

    # Two addresses of one IPv6 /64 are one listener; another /64 is another.
    async with (
        client_from(app, "2001:db8:7:1::10") as one,
        client_from(app, "2001:db8:7:1:abcd::99") as same_net,
        client_from(app, "2001:db8:7:2::10") as other_net,
    ):
        for c in (one, same_net, other_net):
            await c.get(episode.url(), headers={"Range": "bytes=0-1"})
    await app.state.hits.flush()
    v6 = [h.client_hash for h in (await hits_of(runtime))[6:]]
    assert v6[0] == v6[1] != v6[2]
    assert "2001" not in "".join(v6)


async def test_forwarded_for_counts_from_a_trusted_proxy(settings_factory: Any) -> None:
    settings = settings_factory(trusted_proxies="203.0.113.0/24")
    async with serving(settings) as (app, client):
        episode = await seed_episode(app.state.runtime, await seed_show(app.state.runtime))
        await client.get(episode.url(), headers={"X-Forwarded-For": "198.51.100.9"})
        await client.get(episode.url(), headers={"X-Forwarded-For": "198.51.100.9, 203.0.113.2"})
        await client.get(episode.url())
        await app.state.hits.flush()
        rows = await hits_of(app.state.runtime)
        key = app.state.hits.key
        assert [h.client_hash for h in rows] == [
            client_hash(key, "198.51.100.9"),
            client_hash(key, "198.51.100.9"),
            client_hash(key, CLIENT_IP),
        ]


async def test_everything_is_written_on_shutdown(settings_factory: Any) -> None:
    # Neither the timer nor the batch size would write these: only the shutdown does.
    settings = settings_factory(hit_flush_seconds=60, hit_batch_size=100_000)
    async with serving(settings) as (app, client):
        runtime = app.state.runtime
        episode = await seed_episode(runtime, await seed_show(runtime))
        for n in range(7):
            await client.get(episode.url(), headers={"Range": f"bytes={n}-{n + 9}"})
        await client.head(episode.url())
        assert app.state.hits.pending == 8
        assert await hits_of(runtime) == []
    db = Database(settings.resolved_database_url)
    try:
        async with db.session(write=False) as session:
            assert await session.scalar(select(func.count()).select_from(Hit)) == 8
    finally:
        await db.dispose()


async def test_recording_can_be_switched_off(settings_factory: Any) -> None:
    settings = settings_factory(record_hits=False)
    async with serving(settings) as (app, client):
        runtime = app.state.runtime
        episode = await seed_episode(runtime, await seed_show(runtime))
        served = await client.get(episode.url())
        assert served.status_code in (200, 302)
        assert app.state.hits.pending == 0
        await app.state.hits.flush()
        assert await hits_of(runtime) == []


async def test_batches_are_one_insert_and_written_when_full(app_client: AppClient) -> None:
    app, _ = app_client
    runtime = app.state.runtime
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, sql: str, *_: Any) -> None:
        if sql.lstrip().upper().startswith("INSERT INTO HITS"):
            statements.append(sql)

    recorder = HitRecorder(runtime.db, secret_key="s", batch_size=5, interval_s=60)
    event.listen(runtime.db.engine.sync_engine, "before_cursor_execute", seen)
    try:
        await recorder.start()
        for _ in range(4):
            recorder.record(hit_row(**_row_args()))
        assert recorder.pending == 4 and statements == []
        recorder.record(hit_row(**_row_args()))  # the fifth row wakes the writer

        async def written() -> bool:
            return recorder.written == 5

        await eventually(written, timeout=5)
        assert len(statements) == 1  # one multi-row INSERT for the batch
        await recorder.stop()
    finally:
        event.remove(runtime.db.engine.sync_engine, "before_cursor_execute", seen)
    assert len(await hits_of(runtime)) == 5


class FlakyDatabase:
    """A database whose first ``failures`` units of work fail (an outage)."""

    def __init__(self, db: Database, failures: int) -> None:
        self.db = db
        self.failures = failures
        self.attempts = 0

    def session(self, *, write: bool = True) -> Any:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise ConnectionError("database unavailable")
        return self.db.session(write=write)


async def test_a_failed_write_is_retried_and_loses_nothing(
    app_client: AppClient, caplog: pytest.LogCaptureFixture
) -> None:
    app, _ = app_client
    runtime = app.state.runtime
    flaky = FlakyDatabase(runtime.db, failures=2)
    recorder = HitRecorder(flaky, secret_key="s", interval_s=0.02)  # type: ignore[arg-type]
    await recorder.start()
    for _ in range(3):
        recorder.record(hit_row(**_row_args()))

    async def written() -> bool:
        return recorder.written == 3

    await eventually(written, timeout=10)
    recorder.record(hit_row(**_row_args()))
    await recorder.stop()
    assert flaky.attempts >= 3 and len(await hits_of(runtime)) == 4
    assert "writing 3 hits failed" in caplog.text


async def test_stop_retries_until_the_database_answers(app_client: AppClient) -> None:
    app, _ = app_client
    runtime = app.state.runtime
    flaky = FlakyDatabase(runtime.db, failures=0)
    recorder = HitRecorder(flaky, secret_key="s", interval_s=60)  # type: ignore[arg-type]
    await recorder.start()
    recorder.record(hit_row(**_row_args()))
    flaky.failures = flaky.attempts + 3  # the next three attempts fail
    await recorder.stop()
    assert recorder.pending == 0 and len(await hits_of(runtime)) == 1
