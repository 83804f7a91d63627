"""Feeds over HTTP: validators, compression, invalidation after every kind of edit, schedules,
moves, renames, the trash and purges, subscribers' private feeds, JSON Feed, OPML, feed check,
and the last good copy while the database is away."""

from __future__ import annotations

import gzip
import os
import shutil
import uuid
from datetime import timedelta
from typing import Any

import anyio
import brotli
import feedparser
import httpx
from lxml import etree
from sqlalchemy import update

from amphora.feed.guid import podcast_guid
from amphora.feed.tasks import announce_feed
from amphora.kit.clock import utcnow
from amphora.media.testaudio import tone_mp3
from amphora.models import MediaFile, Show
from amphora.runtime import Runtime
from amphora.show.tasks import purge_show, purge_superseded_media
from tests.catalog import Team, image_bytes
from tests.helpers import API

NS = {
    "itunes": "http://www.itunes.com/dtds/podcast-1.0.dtd",
    "podcast": "https://podcastindex.org/namespace/1.0",
    "atom": "http://www.w3.org/2005/Atom",
}
VTT = b"WEBVTT\n\n00:00:00.000 --> 00:00:02.000\nHello there.\n"


async def _episode(
    client: httpx.AsyncClient, team: Team, *, audio: bool = True, **fields: Any
) -> dict[str, Any]:
    fields.setdefault("publish_at", (utcnow() - timedelta(hours=1)).isoformat())
    made = await client.post(
        f"{team.show_url}/episodes",
        json={"title": "Episode", **fields},
        headers=team.editor.headers,
    )
    assert made.status_code == 201, made.text
    episode: dict[str, Any] = made.json()
    if audio:
        put = await client.put(
            f"{API}/episodes/{episode['id']}/audio",
            content=tone_mp3(2),
            headers={**team.editor.headers, "content-type": "audio/mpeg"},
        )
        assert put.status_code == 200, put.text
        episode = put.json()
    return episode


def _feed_url(team: Team) -> str:
    return f"/feeds/{team.show['slug']}.xml"


async def _feed(client: httpx.AsyncClient, team: Team) -> etree._Element:
    response = await client.get(_feed_url(team))
    assert response.status_code == 200, response.text
    return etree.fromstring(response.content)


def _titles(root: etree._Element) -> list[str]:
    return [str(t) for t in root.xpath("/rss/channel/item/title/text()")]


async def test_feed_headers_validators_and_compression(
    client: httpx.AsyncClient, team: Team
) -> None:
    published = await _episode(client, team, title="Published")
    await _episode(client, team, title="Draft", publish_at=None)
    await _episode(
        client, team, title="Later", publish_at=(utcnow() + timedelta(days=1)).isoformat()
    )
    await _episode(client, team, title="Premium", premium=True)
    await _episode(client, team, title="Silent", audio=False)

    response = await client.get(_feed_url(team), headers={"Accept-Encoding": "identity"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/rss+xml; charset=utf-8"
    etag = response.headers["etag"]
    assert etag.startswith('"') and not etag.startswith("W/")
    assert response.headers["last-modified"].endswith("GMT")
    self_url = f"http://testserver/feeds/{team.show['slug']}.xml"
    assert f'<{self_url}>; rel="self"' in response.headers["link"]
    root = etree.fromstring(response.content)
    assert _titles(root) == ["Published"]
    assert root.xpath("/rss/channel/item/guid/text()") == [published["guid"]]
    enclosure = root.xpath("/rss/channel/item/enclosure")[0]
    media = published["media"]
    assert enclosure.get("url") == (
        f"http://testserver/e/{team.show['slug']}/{published['id']}/{media['id']}.mp3"
    )
    assert int(enclosure.get("length")) == media["size"]
    assert root.xpath("/rss/channel/podcast:guid/text()", namespaces=NS) == [podcast_guid(self_url)]
    assert len(root.xpath("/rss/channel/atom:link[@rel='self']", namespaces=NS)) == 1
    parsed = feedparser.parse(response.content)
    assert not parsed.bozo, parsed.bozo_exception

    # Conditional requests: any coding's ETag validates; so does the date.
    for validator in (etag, f'{etag[:-1]}-gzip"', "W/" + etag):
        again = await client.get(_feed_url(team), headers={"If-None-Match": validator})
        assert again.status_code == 304 and again.content == b""
        assert again.headers["etag"] == f'{etag[:-1]}-br"'  # httpx accepts brotli
    since = await client.get(
        _feed_url(team), headers={"If-Modified-Since": response.headers["last-modified"]}
    )
    assert since.status_code == 304
    stale = await client.get(_feed_url(team), headers={"If-None-Match": '"other"'})
    assert stale.status_code == 200

    # HEAD: the same headers, no body.
    head = await client.head(_feed_url(team), headers={"Accept-Encoding": "identity"})
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == response.headers["content-length"]
    assert head.headers["etag"] == response.headers["etag"]

    # gzip and brotli decode to the same document; each coding has its own strong ETag.
    raw = httpx.AsyncClient(transport=client._transport, base_url="http://testserver")
    async with raw:
        for coding, decode in (("gzip", gzip.decompress), ("br", brotli.decompress)):
            request = raw.build_request("GET", _feed_url(team), headers={"Accept-Encoding": coding})
            encoded = await raw.send(request, stream=True)
            body = b"".join([chunk async for chunk in encoded.aiter_raw()])
            assert encoded.headers["content-encoding"] == coding
            assert encoded.headers["vary"] == "Accept-Encoding"
            assert encoded.headers["etag"] == f'{etag[:-1]}-{coding}"'
            assert decode(body) == response.content
            assert int(encoded.headers["content-length"]) == len(body) < len(response.content)


async def test_every_kind_of_edit_reaches_the_feed(client: httpx.AsyncClient, team: Team) -> None:
    episode = await _episode(client, team, title="First")
    headers = team.editor.headers
    etags: list[str] = []

    async def feed() -> etree._Element:
        response = await client.get(_feed_url(team))
        assert response.status_code == 200
        assert not etags or response.headers["etag"] != etags[-1], "the feed did not change"
        etags.append(response.headers["etag"])
        return etree.fromstring(response.content)

    await feed()
    assert (
        await client.patch(team.show_url, json={"title": "Renamed Hour"}, headers=headers)
    ).status_code == 200
    assert (await feed()).xpath("/rss/channel/title/text()") == ["Renamed Hour"]

    url = f"{API}/episodes/{episode['id']}"
    assert (await client.patch(url, json={"title": "Edited"}, headers=headers)).status_code == 200
    assert _titles(await feed()) == ["Edited"]

    persons = [{"name": "Ada Lovelace", "role": "guest"}]
    assert (await client.patch(url, json={"persons": persons}, headers=headers)).status_code == 200
    assert (await feed()).xpath("//item/podcast:person/text()", namespaces=NS) == ["Ada Lovelace"]

    art = await client.put(
        f"{team.show_url}/artwork",
        files={"file": ("a.jpg", image_bytes(1400, 1400))},
        headers=headers,
    )
    assert art.status_code == 200, art.text
    image = (await feed()).xpath("/rss/channel/itunes:image/@href", namespaces=NS)
    assert image == [art.json()["artwork"]["url"]]

    added = await client.post(
        f"{url}/transcripts", files={"file": ("t.vtt", VTT, "text/vtt")}, headers=headers
    )
    assert added.status_code == 201, added.text
    types = (await feed()).xpath("//item/podcast:transcript/@type", namespaces=NS)
    assert types == ["text/vtt"]

    chapters = {"version": "1.2.0", "chapters": [{"startTime": 0, "title": "Start"}]}
    assert (await client.put(f"{url}/chapters", json=chapters, headers=headers)).is_success
    chapter_urls = (await feed()).xpath("//item/podcast:chapters/@url", namespaces=NS)
    assert len(chapter_urls) == 1

    episode_art = await client.put(
        f"{url}/artwork", files={"file": ("e.jpg", image_bytes(1400, 1400))}, headers=headers
    )
    assert episode_art.status_code == 200, episode_art.text
    item_image = (await feed()).xpath("//item/itunes:image/@href", namespaces=NS)
    assert item_image == [episode_art.json()["artwork"]["url"]]

    replaced = await client.put(
        f"{url}/audio", content=tone_mp3(3), headers={**headers, "content-type": "audio/mpeg"}
    )
    assert replaced.status_code == 200
    enclosure = (await feed()).xpath("//item/enclosure/@url")[0]
    assert enclosure.endswith(f"/{replaced.json()['media']['id']}.mp3")

    assert (await client.delete(url, headers=headers)).status_code in (200, 204)
    assert _titles(await feed()) == []
    assert (await client.post(f"{url}/restore", headers=headers)).status_code == 200
    assert _titles(await feed()) == ["Edited"]


async def test_a_scheduled_episode_appears_on_time(client: httpx.AsyncClient, team: Team) -> None:
    await _episode(client, team, title="Now")
    soon = utcnow() + timedelta(seconds=2)
    await _episode(client, team, title="Soon", publish_at=soon.isoformat())
    assert _titles(await _feed(client, team)) == ["Now"]
    await anyio.sleep((soon - utcnow()).total_seconds() + 0.2)
    assert _titles(await _feed(client, team)) == ["Soon", "Now"]


async def test_moved_renamed_trashed_and_purged_shows(
    client: httpx.AsyncClient, team: Team, runtime: Runtime
) -> None:
    await _episode(client, team, title="One")
    headers = team.owner.headers
    old_slug = team.show["slug"]

    renamed = await client.patch(team.show_url, json={"slug": "lamp-stories"}, headers=headers)
    assert renamed.status_code == 200
    moved = await client.get(f"/feeds/{old_slug}.xml")
    assert moved.status_code == 301
    assert moved.headers["location"] == "http://testserver/feeds/lamp-stories.xml"
    assert (await client.get("/feeds/lamp-stories.xml")).status_code == 200
    # The old slug stays reserved for this show.
    taken = await client.post(
        f"{API}/shows", json={"title": "Other", "slug": old_slug}, headers=team.stranger.headers
    )
    assert taken.status_code == 409

    away = "https://feeds.example.org/lamp"
    assert (
        await client.patch(team.show_url, json={"new_feed_url": away}, headers=headers)
    ).status_code == 200
    gone_away = await client.get("/feeds/lamp-stories.xml")
    assert gone_away.status_code == 301 and gone_away.headers["location"] == away
    # The 301 carries the feed too, with itunes:new-feed-url, for apps that read bodies.
    root = etree.fromstring(gone_away.content)
    assert root.xpath("//itunes:new-feed-url/text()", namespaces=NS) == [away]

    assert (await client.get("/feeds/no-such-show.xml")).status_code == 404
    assert (await client.delete(team.show_url, headers=headers)).status_code in (200, 204)
    assert (await client.get("/feeds/lamp-stories.xml")).status_code == 404
    assert (await client.get(f"/feeds/{old_slug}.xml")).status_code == 404

    show_id = uuid.UUID(team.show["id"])
    async with runtime.db.session() as session:
        await session.execute(update(Show).where(Show.id == show_id).values(purge_after=utcnow()))
    await purge_show.body(runtime, str(show_id))
    for slug in (old_slug, "lamp-stories"):
        gone = await client.get(f"/feeds/{slug}.xml")
        assert gone.status_code == 410 and gone.json()["error"]["code"] == "feed_gone"
    reuse = await client.post(
        f"{API}/shows", json={"title": "Again", "slug": "lamp-stories"}, headers=headers
    )
    assert reuse.status_code == 409


async def test_subscriber_feeds(client: httpx.AsyncClient, team: Team) -> None:
    await _episode(client, team, title="Public")
    premium = await _episode(client, team, title="Premium", premium=True)
    url = f"{team.show_url}/subscribers"
    assert (
        await client.post(url, json={"name": "Grace"}, headers=team.viewer.headers)
    ).status_code == 403
    made = await client.post(
        url, json={"name": "Grace", "email": "grace@example.com"}, headers=team.editor.headers
    )
    assert made.status_code == 201, made.text
    created = made.json()
    private = created["feed_url"].removeprefix("http://testserver")
    assert private == f"/feeds/{team.show['slug']}/private/{created['token']}.xml"

    response = await client.get(private)
    assert response.status_code == 200
    root = etree.fromstring(response.content)
    assert sorted(_titles(root)) == ["Premium", "Public"]
    assert root.xpath("/rss/channel/itunes:block/text()", namespaces=NS) == ["Yes"]
    assert not root.xpath("/rss/channel/atom:link[@rel='hub']", namespaces=NS)
    enclosure = root.xpath(f"//item[guid='{premium['guid']}']/enclosure/@url")[0]
    assert enclosure.endswith(f".mp3?key={created['token']}")
    assert _titles(await _feed(client, team)) == ["Public"]

    listed = await client.get(url, headers=team.editor.headers)
    assert [s["name"] for s in listed.json()["items"]] == ["Grace"]
    assert "token" not in listed.json()["items"][0]

    wrong_show = await client.get(f"/feeds/some-other-show/private/{created['token']}.xml")
    assert wrong_show.status_code == 404
    revoked = await client.delete(f"{url}/{created['id']}", headers=team.editor.headers)
    assert revoked.status_code == 204
    assert (await client.get(private)).status_code == 404

    expired = await client.post(
        url,
        json={"name": "Past", "expires_at": (utcnow() - timedelta(seconds=1)).isoformat()},
        headers=team.editor.headers,
    )
    assert (await client.get(expired.json()["feed_url"])).status_code == 404


async def test_json_feed_opml_and_feed_check(client: httpx.AsyncClient, team: Team) -> None:
    episode = await _episode(client, team, title="Hello")
    await _episode(client, team, title="No audio", audio=False)
    response = await client.get(f"/feeds/{team.show['slug']}.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/feed+json")
    document = response.json()
    assert document["version"] == "https://jsonfeed.org/version/1.1"
    assert [item["id"] for item in document["items"]] == [episode["guid"]]
    assert document["items"][0]["attachments"][0]["size_in_bytes"] == episode["media"]["size"]

    opml = await client.get(f"{API}/users/me/opml", headers=team.viewer.headers)
    assert opml.status_code == 200 and opml.headers["content-type"].startswith("text/x-opml")
    outlines = etree.fromstring(opml.content).xpath("//outline")
    assert [o.get("xmlUrl") for o in outlines] == [
        f"http://testserver/feeds/{team.show['slug']}.xml"
    ]
    assert (await client.get(f"{API}/users/me/opml")).status_code == 401

    check = await client.get(f"{team.show_url}/feed/check", headers=team.viewer.headers)
    assert check.status_code == 200
    codes = {p["code"] for p in check.json()["problems"]}
    assert check.json()["ok"] is False
    assert "catalog.episode_without_audio" in codes
    assert any("categor" in code for code in codes), codes
    stranger = await client.get(f"{team.show_url}/feed/check", headers=team.stranger.headers)
    assert stranger.status_code == 404


async def test_the_last_feed_is_served_while_the_database_is_down(
    client: httpx.AsyncClient, team: Team, runtime: Runtime, backend: str
) -> None:
    await _episode(client, team, title="Kept")
    first = await client.get(_feed_url(team))
    assert first.status_code == 200
    # An edit makes the cached copy stale, so the next request must try the database.
    assert (
        await client.patch(team.show_url, json={"subtitle": "x"}, headers=team.owner.headers)
    ).status_code == 200
    await runtime.db.engine.dispose()
    if backend == "sqlite":
        path = runtime.settings.resolved_data_dir / "amphora.db"
        shutil.move(path, f"{path}.away")
        for suffix in ("-wal", "-shm"):
            if os.path.exists(f"{path}{suffix}"):
                shutil.move(f"{path}{suffix}", f"{path}.away{suffix}")
        restore = [(f"{path}.away{s}", f"{path}{s}") for s in ("", "-wal", "-shm")]
    else:
        name = runtime.db.engine.url.database
        await _pg_take_away(str(name))
        restore = []
    try:
        served = await client.get(_feed_url(team))
        # The last copy rendered (by this request's predecessor, or by the job that announced
        # the edit before the database went away).
        assert served.status_code == 200
        assert _titles(etree.fromstring(served.content)) == ["Kept"]
    finally:
        await runtime.db.engine.dispose()
        if backend == "sqlite":
            os.remove(runtime.settings.resolved_data_dir / "amphora.db")
            for source, target in restore:
                if os.path.exists(source):
                    shutil.move(source, target)
        else:
            await _pg(f'ALTER DATABASE "{name}_away" RENAME TO "{name}"')


async def _pg_take_away(name: str) -> None:
    """Rename the database under the app; its job consumer may reconnect in between."""
    import asyncpg

    for _ in range(50):
        await _pg(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname='{name}'")
        try:
            await _pg(f'ALTER DATABASE "{name}" RENAME TO "{name}_away"')
            return
        except asyncpg.ObjectInUseError:
            await anyio.sleep(0.1)
    raise AssertionError("the database stayed in use")


async def _pg(statement: str) -> None:
    import asyncpg

    connection = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres")
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


async def test_replaced_audio_stays_served_for_a_while_then_goes(
    client: httpx.AsyncClient, team: Team, runtime: Runtime
) -> None:
    episode = await _episode(client, team, title="Replaced")
    old = episode["media"]
    old_url = f"/e/{team.show['slug']}/{episode['id']}/{old['id']}.mp3"
    replaced = await client.put(
        f"{API}/episodes/{episode['id']}/audio",
        content=tone_mp3(3),
        headers={**team.editor.headers, "content-type": "audio/mpeg"},
    )
    assert replaced.status_code == 200
    assert (await client.head(old_url)).status_code in (200, 302)  # apps may still hold it

    await purge_superseded_media.body(runtime)  # not due yet
    assert (await client.head(old_url)).status_code in (200, 302)
    async with runtime.db.session() as session:
        row = await session.get(MediaFile, uuid.UUID(old["id"]))
        assert row is not None
        key = row.storage_key
        row.superseded_at = utcnow() - timedelta(days=runtime.settings.superseded_media_grace_days)
    await purge_superseded_media.body(runtime)
    assert (await client.head(old_url)).status_code == 404
    assert not await runtime.storage.exists(key)
    new_url = f"/e/{team.show['slug']}/{episode['id']}/{replaced.json()['media']['id']}.mp3"
    assert (await client.head(new_url)).status_code in (200, 302)


async def test_a_deleted_episode_stops_being_served_at_once(
    client: httpx.AsyncClient, team: Team
) -> None:
    episode = await _episode(client, team, title="Short-lived")
    url = f"/e/{team.show['slug']}/{episode['id']}/{episode['media']['id']}.mp3"
    headers = {"Range": "bytes=0-1"}
    for _ in range(2):  # the second answer comes from the process's memory of the first
        assert (await client.get(url, headers=headers)).status_code in (206, 302)
    deleted = await client.delete(f"{API}/episodes/{episode['id']}", headers=team.editor.headers)
    assert deleted.status_code in (200, 204)
    assert (await client.get(url, headers=headers)).status_code == 404
    restored = await client.post(
        f"{API}/episodes/{episode['id']}/restore", headers=team.editor.headers
    )
    assert restored.status_code == 200
    assert (await client.get(url, headers=headers)).status_code in (206, 302)


async def test_a_show_from_before_podcast_guid_gets_one_for_good(
    client: httpx.AsyncClient, team: Team, runtime: Runtime
) -> None:
    show_id = uuid.UUID(team.show["id"])
    async with runtime.db.session() as session:  # as rows written before the feeds release
        await session.execute(update(Show).where(Show.id == show_id).values(podcast_guid=None))
    expected = podcast_guid(f"http://testserver/feeds/{team.show['slug']}.xml")
    guids = (await _feed(client, team)).xpath("//podcast:guid/text()", namespaces=NS)
    assert guids == [expected]
    await announce_feed.body(runtime, str(show_id))
    async with runtime.db.session(write=False) as session:
        assert (await session.get(Show, show_id)).podcast_guid == expected  # type: ignore[union-attr]
