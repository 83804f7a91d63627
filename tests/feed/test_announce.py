"""Aggregators are told when the public feed really changes: after an edit through the API and
when a scheduled episode goes live, but not for edits the feed cannot show."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import anyio
import httpx
from asgi_lifespan import LifespanManager

from amphora.app import create_app
from amphora.feed.tasks import announce_due
from amphora.kit.clock import utcnow
from amphora.runtime import Runtime
from tests.catalog import make_team
from tests.fakes.hubs import FakeHubs
from tests.fakes.smtp import Mailbox
from tests.feed.test_pings import ping_settings
from tests.helpers import API, eventually


async def test_edits_and_schedules_are_announced_once(
    settings_factory: Any,
    hubs: FakeHubs,
    mailbox: Mailbox,
) -> None:
    settings = ping_settings(settings_factory, hubs, podping_token=None, websub_hubs=[])
    app = create_app(settings, run_jobs=True)
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30):
        runtime: Runtime = app.state.runtime
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            team = await make_team(client, mailbox)
            feed = f"http://testserver/feeds/{team.show['slug']}.xml"

            def notified() -> list[str]:
                return [r.query["url"][0] for r in hubs.requests if "pubnotify" in r.path]

            async def announced(count: int) -> None:
                async def enough() -> bool:
                    return len(notified()) >= count

                await eventually(enough)

            await announced(1)  # the new show's feed
            edited = await client.patch(
                team.show_url, json={"title": "Brighter"}, headers=team.owner.headers
            )
            assert edited.status_code == 200
            await announced(2)
            assert notified() == [feed, feed]

            # A draft changes nothing anyone can see: no announcement.
            draft = await client.post(
                f"{team.show_url}/episodes", json={"title": "Draft"}, headers=team.owner.headers
            )
            assert draft.status_code == 201
            await anyio.sleep(1.5)
            assert len(notified()) == 2

            # A scheduled episode: announced when it goes live, by the periodic job.
            soon = utcnow() + timedelta(seconds=1)
            scheduled = await client.patch(
                f"{API}/episodes/{draft.json()['id']}",
                json={
                    "publish_at": soon.isoformat(),
                    "live": {"status": "live", "start": soon.isoformat()},
                    "content_links": [
                        {"href": "https://lighthouse.example.com/live", "text": "Watch"}
                    ],
                },
                headers=team.owner.headers,
            )
            assert scheduled.status_code == 200, scheduled.text
            await anyio.sleep(1.5)
            assert len(notified()) == 2  # nothing visible changed yet
            await announce_due.body(runtime)
            await announced(3)
            await announce_due.body(runtime)  # already announced: nothing more
            await anyio.sleep(1.5)
            assert len(notified()) == 3

            history = await client.get(f"{team.show_url}/feed/pings", headers=team.viewer.headers)
            assert history.status_code == 200
            assert [p["target"] for p in history.json()] == ["podcastindex"] * 3
            assert all(p["ok"] for p in history.json())
