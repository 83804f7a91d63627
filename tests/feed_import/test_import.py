"""Importing a show from another host's feed, end to end: API, jobs, mirroring, our feed."""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import feedparser
import httpx
import pytest
from sqlalchemy import func, select, update

from amphora.feed_import import tasks
from amphora.kit.clock import utcnow
from amphora.media.testaudio import tone_mp3
from amphora.models import Episode, ShowImport
from amphora.runtime import Runtime
from amphora.settings import Settings
from tests.catalog import image_bytes
from tests.fakes.oldhost import OldHost
from tests.fakes.smtp import Mailbox
from tests.feed_import.sample import (
    CHAPTERS,
    PODCAST_GUID,
    VTT,
    feed_xml,
    item_xml,
    start_import,
    wait_for_status,
)
from tests.helpers import API, Account, eventually, verified_account


async def _episodes(client: httpx.AsyncClient, account: Account, show_id: str) -> list[Any]:
    response = await client.get(
        f"{API}/shows/{show_id}/episodes", params={"limit": 100}, headers=account.headers
    )
    assert response.status_code == 200, response.text
    items: list[Any] = response.json()["items"]
    return items


async def test_a_feed_comes_over_whole(
    client: httpx.AsyncClient, account: Account, host: OldHost
) -> None:
    transcript = host.put("/t/1.vtt", VTT, content_type="text/vtt")
    chapters = host.put("/c/1.json", CHAPTERS, content_type="application/json")
    art = host.put("/art/1.png", image_bytes(1400, 1400, "PNG"), content_type="image/png")
    extra = (
        f'<podcast:transcript url="{transcript}" type="text/vtt" language="en"/>'
        f'<podcast:chapters url="{chapters}" type="application/json+chapters"/>'
        f'<itunes:image href="{art}"/>'
    )
    items = item_xml(host, 1, extra=extra) + item_xml(host, 2) + item_xml(host, 3)
    feed_url = host.put("/feed.xml", feed_xml(host, items), content_type="application/rss+xml")

    started = await start_import(client, account, feed_url)
    assert started["status"] == "queued"
    done = await wait_for_status(client, account, started["id"], "done", "failed")
    assert done["status"] == "done", done
    assert done["progress"]["items_total"] == done["progress"]["items_done"] == 3
    # 3 media + show artwork + episode artwork + transcript + chapters
    assert done["progress"]["files_total"] == done["progress"]["files_done"] == 7

    show = (await client.get(f"{API}/shows/{done['show_id']}", headers=account.headers)).json()
    assert show["title"] == "The Lighthouse Hour"
    assert show["podcast_guid"] == PODCAST_GUID  # kept, never recomputed from our URL
    assert show["language"] == "en-us"
    assert show["categories"] == [
        {"category": "Leisure", "subcategory": "Video Games"},  # the old name, mapped
        {"category": "History"},
    ]
    assert show["owner_email"] == "ada@lighthouse.example.com"
    assert show["artwork"] is not None
    assert show["funding"] == [
        {"url": "https://lighthouse.example.com/support", "label": "Support us"}
    ]

    episodes = {e["guid"]: e for e in await _episodes(client, account, done["show_id"])}
    assert set(episodes) == {f"old-host:episode/{n}" for n in (1, 2, 3)}
    first = episodes["old-host:episode/1"]
    assert first["status"] == "published"
    assert "<script>" not in first["description"]
    assert first["number"] == "1" or float(first["number"]) == 1
    assert first["season"] == 1
    assert first["persons"][0]["name"] == "Grace Hopper"
    assert first["soundbites"] == [{"start_time": 0.5, "duration": 0.4, "title": "The storm"}]
    assert first["has_chapters"] is True
    assert [t["content_type"] for t in first["transcripts"]] == ["text/vtt"]
    assert first["artwork"] is not None
    source_audio = host.resources["/media/ep1.mp3"].body
    assert first["media"]["sha256"] == hashlib.sha256(source_audio).hexdigest()
    assert first["media"]["size"] == len(source_audio)

    # Our feed lists every item with its guid byte-for-byte and our own enclosure.
    ours = await client.get(f"/feeds/{show['slug']}.xml")
    assert ours.status_code == 200
    parsed = feedparser.parse(ours.content)
    assert not parsed.bozo
    assert {e.id for e in parsed.entries} == set(episodes)
    for entry in parsed.entries:
        (enclosure,) = entry.enclosures
        assert enclosure.href.startswith("http://testserver/e/")
        served = await client.get(enclosure.href.removeprefix("http://testserver"))
        if served.status_code == 302:  # object storage: the file is served from there
            async with httpx.AsyncClient() as outside:
                served = await outside.get(served.headers["location"])
        number = entry.id.rsplit("/", 1)[-1]
        assert served.content == host.resources[f"/media/ep{number}.mp3"].body
        assert int(enclosure.length) == len(served.content)


async def test_a_broken_download_resumes_with_range(
    client: httpx.AsyncClient, account: Account, host: OldHost
) -> None:
    audio = tone_mp3(40.0)  # several network chunks, so some arrive before the cut
    items = item_xml(host, 1, media=audio)
    host.resources["/media/ep1.mp3"].cut_after = len(audio) * 2 // 3
    feed_url = host.put("/feed.xml", feed_xml(host, items))

    done = await wait_for_status(
        client, account, (await start_import(client, account, feed_url))["id"], "done", "failed"
    )
    assert done["status"] == "done", done
    first, second = [s.headers.get("range") for s in host.requests_to("/media/ep1.mp3")]
    assert first is None
    resumed = re.fullmatch(r"bytes=(\d+)-", second or "")
    assert resumed and 0 < int(resumed[1]) <= len(audio) * 2 // 3, second
    (episode,) = await _episodes(client, account, done["show_id"])
    assert episode["media"]["sha256"] == hashlib.sha256(audio).hexdigest()


async def test_importing_again_and_syncing_never_duplicates(
    client: httpx.AsyncClient, account: Account, host: OldHost, runtime: Runtime
) -> None:
    feed_url = host.put("/feed.xml", feed_xml(host, item_xml(host, 1) + item_xml(host, 2)))
    first = await start_import(client, account, feed_url, keep_in_sync=True)
    done = await wait_for_status(client, account, first["id"], "done", "failed")
    assert done["status"] == "done", done

    # The old host publishes a new episode and fixes a title; the periodic sync brings both.
    changed = item_xml(host, 1).replace("the keeper's log", "the keeper's log (fixed)")
    host.put("/feed.xml", feed_xml(host, changed + item_xml(host, 2) + item_xml(host, 3)))
    async with runtime.db.session() as session:
        await session.execute(
            update(ShowImport).values(last_synced_at=utcnow() - timedelta(days=1))
        )
    await tasks.sync_imports.body(runtime)

    async def synced() -> bool:
        return len(await _episodes(client, account, done["show_id"])) == 3

    await eventually(synced, timeout=60)
    await wait_for_status(client, account, first["id"], "done")
    episodes = {e["guid"]: e for e in await _episodes(client, account, done["show_id"])}
    assert episodes["old-host:episode/1"]["title"].endswith("(fixed)")

    # Importing the same URL again goes into the same show: still one episode per guid.
    again = await start_import(client, account, feed_url)
    assert (await wait_for_status(client, account, again["id"], "done", "failed"))[
        "status"
    ] == "done"
    assert again["show_id"] == done["show_id"]
    async with runtime.db.session(write=False) as session:
        count = await session.scalar(
            select(func.count())
            .select_from(Episode)
            .where(Episode.show_id == uuid.UUID(done["show_id"]))
        )
    assert count == 3
    shows = (await client.get(f"{API}/shows", headers=account.headers)).json()
    assert len(shows["items"]) == 1


@pytest.mark.parametrize("switch", ["redirect", "new-feed-url"])
async def test_syncing_stops_once_the_old_feed_leads_here(
    client: httpx.AsyncClient,
    account: Account,
    host: OldHost,
    runtime: Runtime,
    settings: Settings,
    switch: str,
) -> None:
    feed_url = host.put("/feed.xml", feed_xml(host, item_xml(host, 1)))
    first = await start_import(client, account, feed_url, keep_in_sync=True)
    done = await wait_for_status(client, account, first["id"], "done", "failed")
    assert done["status"] == "done", done
    show = (await client.get(f"{API}/shows/{done['show_id']}", headers=account.headers)).json()
    ours = f"{settings.base_url}/feeds/{show['slug']}.xml"

    # The creator switches: the old host redirects to us, or names us in its feed.
    if switch == "redirect":
        host.put("/feed.xml", status=301, location=ours)
    else:
        moved = f"<itunes:new-feed-url>{ours}</itunes:new-feed-url>"
        host.put("/feed.xml", feed_xml(host, item_xml(host, 1), channel_extra=moved))
    async with runtime.db.session() as session:
        await session.execute(
            update(ShowImport).values(last_synced_at=utcnow() - timedelta(days=1))
        )
    await tasks.sync_imports.body(runtime)

    async def stopped() -> bool:
        got = await client.get(f"{API}/imports/{first['id']}", headers=account.headers)
        return got.json()["keep_in_sync"] is False

    await eventually(stopped, timeout=30)
    final = (await client.get(f"{API}/imports/{first['id']}", headers=account.headers)).json()
    assert final["status"] == "done"
    assert any("keeping in sync stopped" in p["message"] for p in final["problems"])
    assert len(await _episodes(client, account, done["show_id"])) == 1


async def test_media_kept_on_the_old_host(
    client: httpx.AsyncClient, account: Account, host: OldHost
) -> None:
    feed_url = host.put("/feed.xml", feed_xml(host, item_xml(host, 1) + item_xml(host, 2)))
    started = await start_import(client, account, feed_url, mirror_media=False)
    done = await wait_for_status(client, account, started["id"], "done", "failed")
    assert done["status"] == "done", done
    assert not [s for s in host.seen if s.path.startswith("/media/")]  # never downloaded
    show = (await client.get(f"{API}/shows/{done['show_id']}", headers=account.headers)).json()
    parsed = feedparser.parse((await client.get(f"/feeds/{show['slug']}.xml")).content)
    # The artwork is brought over all the same: the feed points at our copy.
    assert host.requests_to("/art/show.jpg")
    assert show["artwork"] is not None
    assert not parsed.feed.image.href.startswith(host.url("/"))
    by_guid = {e.id: e for e in parsed.entries}
    for n in (1, 2):
        entry = by_guid[f"old-host:episode/{n}"]
        (enclosure,) = entry.enclosures
        assert enclosure.href == host.url(f"/media/ep{n}.mp3")
        assert int(enclosure.length) == len(host.resources[f"/media/ep{n}.mp3"].body)
        assert enclosure.type == "audio/mpeg"
        assert entry.itunes_duration in (f"00:00:0{n}", f"{n}", f"0:0{n}", f"00:0{n}")


async def test_a_locked_feed_needs_the_owners_code(
    client: httpx.AsyncClient, account: Account, host: OldHost, mailbox: Mailbox
) -> None:
    owner = "keeper@lighthouse.example.com"
    locked = f'<podcast:locked owner="{owner}">yes</podcast:locked>'
    feed_url = host.put("/feed.xml", feed_xml(host, item_xml(host, 1), channel_extra=locked))
    started = await start_import(client, account, feed_url)
    waiting = await wait_for_status(client, account, started["id"], "verifying", "failed")
    assert waiting["status"] == "verifying", waiting
    assert waiting["verify_email"] == owner
    assert waiting["show_id"] is None  # nothing imported before the code
    mail = await mailbox.wait_for(owner)
    code = re.search(r"\b(\d{6})\b", mail.text)
    assert code is not None

    verify = f"{API}/imports/{started['id']}/verify"
    wrong = "000000" if code[1] != "000000" else "111111"
    refused = await client.post(verify, json={"code": wrong}, headers=account.headers)
    assert refused.status_code == 422
    assert refused.json()["error"]["details"]["attempts_left"] == 4
    stranger = await client.post(
        verify, json={"code": code[1]}, headers=(await verified_account(client, mailbox)).headers
    )
    assert stranger.status_code == 404
    accepted = await client.post(verify, json={"code": code[1]}, headers=account.headers)
    assert accepted.status_code == 200, accepted.text
    done = await wait_for_status(client, account, started["id"], "done", "failed")
    assert done["status"] == "done", done


async def test_media_that_is_a_web_page_leaves_no_show(
    client: httpx.AsyncClient, account: Account, host: OldHost
) -> None:
    page = b"<!doctype html><html><body>Moved! Visit our new site.</body></html>" * 20
    items = item_xml(host, 1, media=page)
    host.resources["/media/ep1.mp3"].content_type = "text/html"
    feed_url = host.put("/feed.xml", feed_xml(host, items))
    failed = await wait_for_status(
        client, account, (await start_import(client, account, feed_url))["id"], "done", "failed"
    )
    assert failed["status"] == "failed"
    assert failed["error"]["code"] == "nothing_imported"
    media_problem = [p for p in failed["problems"] if p["field"] == "media"]
    assert media_problem and "not audio or video" in media_problem[0]["message"]
    shows = (await client.get(f"{API}/shows", headers=account.headers)).json()
    assert shows["items"] == []
    # The slug the failed import had taken is free again.
    created = await client.post(
        f"{API}/shows", json={"title": "The Lighthouse Hour"}, headers=account.headers
    )
    assert created.json()["slug"] == "the-lighthouse-hour"


async def test_cancelling_stops_the_downloads(
    client: httpx.AsyncClient, account: Account, host: OldHost, settings: Settings
) -> None:
    items = item_xml(host, 1)
    host.resources["/media/ep1.mp3"].drip_seconds = 0.05
    feed_url = host.put("/feed.xml", feed_xml(host, items))
    started = await start_import(client, account, feed_url)
    await wait_for_status(client, account, started["id"], "mirroring")

    async def downloading() -> bool:
        return bool(host.requests_to("/media/ep1.mp3"))

    await eventually(downloading)
    cancelled = await client.post(f"{API}/imports/{started['id']}/cancel", headers=account.headers)
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    staging = Path(settings.resolved_data_dir) / "imports" / started["id"]

    async def cleaned() -> bool:
        return not staging.exists()

    await eventually(cleaned)
    final = (await client.get(f"{API}/imports/{started['id']}", headers=account.headers)).json()
    assert final["status"] == "cancelled"


async def test_requests_are_checked(
    client: httpx.AsyncClient, account: Account, mailbox: Mailbox
) -> None:
    url = f"{API}/imports"
    assert (await client.post(url, json={"feed_url": "https://x.example/f"})).status_code == 401
    bad = await client.post(url, json={"feed_url": "ftp://x.example/f"}, headers=account.headers)
    assert bad.status_code == 422
    extra = await client.post(
        url, json={"feed_url": "https://x.example/f", "nope": 1}, headers=account.headers
    )
    assert extra.status_code == 422
    odd = await client.post(
        url, content=b"feed", headers={**account.headers, "Content-Type": "text/plain"}
    )
    assert odd.status_code == 415
    started = await start_import(client, account, "https://x.example/f")
    other = await verified_account(client, mailbox)
    for path in ("", "/cancel"):
        method = client.get if not path else client.post
        response = await method(f"{url}/{started['id']}{path}", headers=other.headers)
        assert response.status_code == 404
    mine = await client.get(url, headers=account.headers)
    assert [i["id"] for i in mine.json()] == [started["id"]]
    assert (await client.get(url, headers=other.headers)).json() == []
