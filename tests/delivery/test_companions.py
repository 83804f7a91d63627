"""Transcripts, chapters and artwork on their public URLs: content types, Range, visibility."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx

from amphora.delivery.urls import chapters_url, transcript_url
from amphora.episode.companions import validate_chapters
from amphora.kit.clock import utcnow
from amphora.kit.db import new_id
from amphora.models import Artwork, Episode, Show, Transcript
from amphora.runtime import Runtime
from tests.catalog import image_bytes
from tests.delivery.seed import SeededEpisode, SeededShow, seed_episode, seed_show, set_row

AppClient = tuple[Any, httpx.AsyncClient]
VTT = b"WEBVTT\n\n00:00:00.000 --> 00:00:02.000\nHello there.\n"
SRT = b"1\n00:00:00,000 --> 00:00:01,500\nHi\n"
CHAPTERS = {
    "version": "1.2.0",
    "chapters": [{"startTime": 1, "title": "Main"}, {"startTime": 0, "title": "Intro"}],
    "title": "Ünïcode chapters",
}


async def _transcript(
    runtime: Runtime, episode: SeededEpisode, data: bytes, content_type: str, extension: str
) -> Transcript:
    transcript_id = new_id()
    key = f"transcripts/{episode.id}/{transcript_id}.{extension}"
    await runtime.storage.write_bytes(key, data, content_type=content_type)
    async with runtime.db.session() as session:
        row = Transcript(
            id=transcript_id,
            episode_id=episode.id,
            storage_key=key,
            content_type=content_type,
            extension=extension,
            size=len(data),
        )
        session.add(row)
        return row


async def _artwork(runtime: Runtime, show: SeededShow) -> tuple[Artwork, bytes]:
    artwork_id = new_id()
    data = image_bytes(1400, 1400)
    variants = []
    for name in ("master", "600"):
        key = f"artwork/{show.id}/{artwork_id}/{name}.jpg"
        await runtime.storage.write_bytes(key, data, content_type="image/jpeg")
        variants.append(
            {"name": name, "key": key, "width": 1400, "content_type": "image/jpeg", "size": 1}
        )
    async with runtime.db.session() as session:
        artwork = Artwork(
            id=artwork_id,
            show_id=show.id,
            owner_id=show.owner_id,
            key_prefix=f"artwork/{show.id}/{artwork_id}",
            master_key=variants[0]["key"],
            content_type="image/jpeg",
            extension="jpg",
            width=1400,
            sha256="ab" * 32,
            total_bytes=2 * len(data),
            variants=variants,
        )
        session.add(artwork)
        return artwork, data


async def test_transcripts(app_client: AppClient, backend: str) -> None:
    app, client = app_client
    runtime = app.state.runtime
    show = await seed_show(runtime)
    episode = await seed_episode(runtime, show)
    draft = await seed_episode(runtime, show, publish_at=None)
    vtt = await _transcript(runtime, episode, VTT, "text/vtt", "vtt")
    srt = await _transcript(runtime, episode, SRT, "application/x-subrip", "srt")
    hidden = await _transcript(runtime, draft, VTT, "text/vtt", "vtt")
    url = transcript_url("", vtt.id, "vtt")

    if backend == "sqlite":
        served = await client.get(url)
        assert served.status_code == 200 and served.content == VTT
        assert served.headers["content-type"] == "text/vtt; charset=utf-8"
        assert served.headers["accept-ranges"] == "bytes"
        assert served.headers["etag"] == f'"{vtt.id.hex}"'
        srt_served = await client.get(transcript_url("", srt.id, "srt"))
        assert srt_served.headers["content-type"] == "application/x-subrip"
        part = await client.get(url, headers={"Range": "bytes=0-5"})
        assert part.status_code == 206 and part.content == b"WEBVTT"
        head = await client.head(url)
        assert head.status_code == 200 and head.headers["content-length"] == str(len(VTT))
    else:
        for method in ("GET", "HEAD"):
            served = await client.request(method, url)
            assert served.status_code == 302 and vtt.storage_key in served.headers["location"]

    for missing in (
        transcript_url("", vtt.id, "srt"),  # wrong extension
        transcript_url("", hidden.id, "vtt"),  # a draft's
        transcript_url("", new_id(), "vtt"),
        "/transcripts/not-an-id.vtt",
    ):
        assert (await client.get(missing)).status_code == 404, missing
    await set_row(runtime, Show, show.id, deleted_at=utcnow())
    assert (await client.get(url)).status_code == 404


async def test_chapters(app_client: AppClient) -> None:
    app, client = app_client
    runtime = app.state.runtime
    show = await seed_show(runtime)
    document = validate_chapters(CHAPTERS)
    episode = await seed_episode(runtime, show, chapters=document)
    scheduled = await seed_episode(runtime, show, chapters=document, publish_at=timedelta(days=1))
    bare = await seed_episode(runtime, show)
    url = chapters_url("", episode.id, 1)

    served = await client.get(url)
    assert served.status_code == 200
    assert served.headers["content-type"] == "application/json+chapters"
    assert served.headers["cache-control"] == "public, max-age=86400"
    assert served.headers["accept-ranges"] == "bytes" and served.headers["etag"].startswith('"')
    body = json.loads(served.content)
    assert list(body) == ["version", "title", "chapters"]
    assert body["version"] == "1.2.0" and body["title"] == "Ünïcode chapters"
    assert [c["title"] for c in body["chapters"]] == ["Intro", "Main"]
    assert [c["startTime"] for c in body["chapters"]] == [0, 1]

    head = await client.head(url)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(served.content))
    part = await client.get(url, headers={"Range": "bytes=0-9"})
    assert part.status_code == 206 and part.content == served.content[:10]
    assert part.headers["content-range"] == f"bytes 0-9/{len(served.content)}"
    assert (await client.get(url, headers={"Range": "bytes=99999-"})).status_code == 416
    cached = await client.get(url, headers={"If-None-Match": served.headers["etag"]})
    assert cached.status_code == 304

    # An older URL (a feed read before an edit) still answers, but is not cached for long.
    await set_row(runtime, Episode, episode.id, version=2)
    stale = await client.get(url)
    assert stale.status_code == 200 and stale.headers["cache-control"] == "public, max-age=300"
    current = await client.get(chapters_url("", episode.id, 2))
    assert current.headers["cache-control"] == "public, max-age=86400"

    for missing in (
        chapters_url("", scheduled.id, 1),
        chapters_url("", bare.id, 1),
        chapters_url("", new_id(), 1),
        f"/chapters/{episode.id}/latest.json",
        f"/chapters/{episode.id}/1.js",
        "/chapters/nope/1.json",
    ):
        assert (await client.get(missing)).status_code == 404, missing
    await set_row(runtime, Episode, episode.id, deleted_at=utcnow())
    assert (await client.get(url)).status_code == 404


async def test_artwork_gains_range(app_client: AppClient, backend: str) -> None:
    app, client = app_client
    runtime = app.state.runtime
    artwork, data = await _artwork(runtime, await seed_show(runtime))
    url = f"/artwork/{artwork.id}/master.jpg"
    if backend == "sqlite":
        whole = await client.get(url)
        assert whole.status_code == 200 and whole.content == data
        assert whole.headers["content-type"] == "image/jpeg"
        assert whole.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert whole.headers["etag"] == f'"{"ab" * 32}"'
        part = await client.get(url, headers={"Range": "bytes=-100"})
        assert part.status_code == 206 and part.content == data[-100:]
        assert (
            part.headers["content-range"] == f"bytes {len(data) - 100}-{len(data) - 1}/{len(data)}"
        )
        head = await client.head(f"/artwork/{artwork.id}/600.jpg")
        assert head.status_code == 200 and head.headers["content-length"] == str(len(data))
        assert head.headers["etag"] == f'"{artwork.id.hex}-600"'
    else:
        redirected = await client.get(url, headers={"Range": "bytes=-100"})
        assert redirected.status_code == 302
        async with httpx.AsyncClient() as outside:
            fetched = await outside.get(
                redirected.headers["location"], headers={"Range": "bytes=-100"}
            )
        assert fetched.status_code == 206 and fetched.content == data[-100:]
    for missing in (
        f"/artwork/{artwork.id}/master.png",
        f"/artwork/{artwork.id}/1400.jpg",
        f"/artwork/{new_id()}/master.jpg",
        "/artwork/nope/master.jpg",
    ):
        assert (await client.get(missing)).status_code == 404, missing
