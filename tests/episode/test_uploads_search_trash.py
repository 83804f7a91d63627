"""Resumable uploads, quotas, search, and purging the trash after the grace period."""

from __future__ import annotations

import contextlib
import uuid
from datetime import timedelta
from typing import Any

import anyio
import httpx
from sqlalchemy import func, select, update

from amphora.kit.clock import utcnow
from amphora.media.testaudio import tone_mp3
from amphora.models import Episode, SearchDocument, Show, User
from amphora.runtime import Runtime
from amphora.show.tasks import purge_due
from tests.catalog import Team
from tests.helpers import API, eventually


async def _episode(client: httpx.AsyncClient, team: Team, **fields: object) -> dict[str, Any]:
    made = await client.post(
        f"{team.show_url}/episodes",
        json={"title": "Episode", **fields},
        headers=team.editor.headers,
    )
    assert made.status_code == 201, made.text
    return made.json()


async def test_resumable_upload_with_a_broken_connection(
    client: httpx.AsyncClient, team: Team, runtime: Runtime
) -> None:
    episode = await _episode(client, team)
    audio = tone_mp3(30)
    size = len(audio)
    created = await client.post(
        f"{API}/uploads",
        json={
            "filename": "long.mp3",
            "size": size,
            "content_type": "audio/mpeg",
            "episode_id": episode["id"],
        },
        headers=team.editor.headers,
    )
    assert created.status_code == 201, created.text
    upload = created.json()
    url = f"{API}/uploads/{upload['id']}"
    assert upload["offset"] == 0 and upload["status"] == "open"

    # Someone else cannot see or feed this upload.
    assert (await client.head(url, headers=team.owner.headers)).status_code == 404

    half = size // 2
    first = await client.patch(
        url,
        content=audio[:half],
        headers={**team.editor.headers, "Content-Range": f"bytes 0-{half - 1}/{size}"},
    )
    assert first.status_code == 200 and first.json()["offset"] == half

    async def broken() -> Any:  # the connection drops after 1000 bytes of the second range
        yield audio[half : half + 1000]
        raise httpx.ReadError("connection reset")

    with contextlib.suppress(httpx.ReadError):
        await client.patch(
            url,
            content=broken(),
            headers={**team.editor.headers, "Content-Range": f"bytes {half}-{size - 1}/{size}"},
        )
    offset = int((await client.head(url, headers=team.editor.headers)).headers["Upload-Offset"])
    assert half <= offset <= half + 1000

    wrong = await client.patch(
        url,
        content=audio[0:10],
        headers={**team.editor.headers, "Content-Range": f"bytes 0-9/{size}"},
    )
    assert wrong.status_code == 409 and wrong.json()["error"]["details"]["offset"] == offset
    early = await client.post(f"{url}/complete", headers=team.editor.headers)
    assert early.status_code == 409 and early.json()["error"]["code"] == "upload_incomplete"

    rest = await client.patch(
        url,
        content=audio[offset:],
        headers={**team.editor.headers, "Content-Range": f"bytes {offset}-{size - 1}/{size}"},
    )
    assert rest.status_code == 200 and rest.json()["offset"] == size
    done = await client.post(f"{url}/complete", headers=team.editor.headers)
    assert done.status_code == 202

    async def finished() -> bool:
        return (await client.get(url, headers=team.editor.headers)).json()["status"] == "done"

    await eventually(finished)
    media = (
        await client.get(f"{API}/episodes/{episode['id']}", headers=team.viewer.headers)
    ).json()["media"]
    assert media["size"] == size and abs(media["duration_s"] - 30) < 0.2
    import hashlib

    assert media["sha256"] == hashlib.sha256(audio).hexdigest()
    staging = runtime.settings.resolved_data_dir / "uploads"
    assert list(staging.iterdir()) == []


async def test_disguised_upload_is_refused_at_completion(
    client: httpx.AsyncClient, team: Team, runtime: Runtime
) -> None:
    episode = await _episode(client, team)
    fake = b"<html>" + b"x" * 5000
    upload = (
        await client.post(
            f"{API}/uploads",
            json={
                "filename": "a.mp3",
                "size": len(fake),
                "content_type": "audio/mpeg",
                "episode_id": episode["id"],
            },
            headers=team.editor.headers,
        )
    ).json()
    url = f"{API}/uploads/{upload['id']}"
    await client.patch(
        url,
        content=fake,
        headers={**team.editor.headers, "Content-Range": f"bytes 0-{len(fake) - 1}/{len(fake)}"},
    )
    refused = await client.post(f"{url}/complete", headers=team.editor.headers)
    assert refused.status_code == 415
    assert (await client.get(url, headers=team.editor.headers)).status_code == 404
    assert await runtime.storage.list_keys("media") == []
    assert list((runtime.settings.resolved_data_dir / "uploads").iterdir()) == []
    not_media = await client.post(
        f"{API}/uploads",
        json={
            "filename": "a.zip",
            "size": 10,
            "content_type": "application/zip",
            "episode_id": episode["id"],
        },
        headers=team.editor.headers,
    )
    assert not_media.status_code == 415
    viewer = await client.post(
        f"{API}/uploads",
        json={
            "filename": "a.mp3",
            "size": 10,
            "content_type": "audio/mpeg",
            "episode_id": episode["id"],
        },
        headers=team.viewer.headers,
    )
    assert viewer.status_code == 403


async def test_quota_and_overage_allowance(
    client: httpx.AsyncClient, team: Team, runtime: Runtime
) -> None:
    episode = await _episode(client, team)
    audio = tone_mp3(10)
    async with runtime.db.session() as session:
        await session.execute(
            update(User)
            .where(User.email == team.owner.email)
            .values(storage_quota_bytes=len(audio) // 2)
        )
    url = f"{API}/episodes/{episode['id']}/audio"
    headers = {**team.editor.headers, "content-type": "audio/mpeg"}
    refused = await client.put(url, content=audio, headers=headers)
    assert refused.status_code == 413 and refused.json()["error"]["code"] == "quota_exceeded"
    assert await runtime.storage.list_keys("media") == []
    resumable = await client.post(
        f"{API}/uploads",
        json={
            "filename": "a.mp3",
            "size": len(audio),
            "content_type": "audio/mpeg",
            "episode_id": episode["id"],
        },
        headers=team.editor.headers,
    )
    assert resumable.status_code == 413

    async with runtime.db.session() as session:
        await session.execute(
            update(User)
            .where(User.email == team.owner.email)
            .values(overage_allowance_bytes=len(audio))
        )
    accepted = await client.put(url, content=audio, headers=headers)
    assert accepted.status_code == 200
    async with runtime.db.session(write=False) as session:
        owner = await session.scalar(select(User).where(User.email == team.owner.email))
    assert owner is not None
    assert owner.overage_allowance_bytes == len(audio) - (len(audio) - len(audio) // 2)


async def test_search(client: httpx.AsyncClient, team: Team, mailbox: Any) -> None:
    series = (
        await client.post(
            f"{team.show_url}/series", json={"name": "Lighthouses"}, headers=team.editor.headers
        )
    ).json()
    past = (utcnow() - timedelta(days=1)).isoformat()
    await _episode(
        client,
        team,
        title="The keeper's storm",
        description="<p>A <b>storm</b> &amp; a <script>x</script> lamp</p>",
        publish_at=past,
    )
    await _episode(
        client,
        team,
        title="Quiet days",
        series_id=series["id"],
        persons=[{"name": "Marguerite Dupont"}],
    )
    await _episode(client, team, title="Storms of 1891", season=2)
    other = await client.post(
        f"{API}/shows", json={"title": "Storm chasers"}, headers=team.stranger.headers
    )
    assert other.status_code == 201

    async def hits(**params: object) -> list[dict[str, Any]]:
        response = await client.get(f"{API}/search", params=params, headers=team.viewer.headers)
        assert response.status_code == 200, response.text
        items = response.json()["items"]
        for item in items:
            item["plain"] = item["title"].replace("<mark>", "").replace("</mark>", "")
        return items

    storm = await hits(q="storm")
    titles = [h["plain"] for h in storm]
    assert len(storm) == 2 and all("Storm chasers" not in t for t in titles)
    first = storm[0]
    assert "<mark>" in first["title"] or "<mark>" in first["snippet"]
    assert "<script>" not in first["snippet"] and "<b>" not in first["snippet"]
    assert [h["plain"] for h in await hits(q="lighthouses")] == ["Quiet days"]  # by series name
    assert [h["plain"] for h in await hits(q="marguer")] == ["Quiet days"]  # by person, prefix
    assert len(await hits(q="storm", status="published")) == 1
    assert [h["plain"] for h in await hits(q="storm", season=2)] == ["Storms of 1891"]
    show_hits = await hits(q="lighthouse hour", kind="show")
    assert [h["kind"] for h in show_hits] == ["show"]
    assert await hits(q='"); DROP TABLE episodes; --') == []
    assert await hits(q="***") == []

    # Deleted episodes vanish from search, and come back on restore.
    target = (
        await client.get(
            f"{team.show_url}/episodes", params={"q": "quiet"}, headers=team.viewer.headers
        )
    ).json()
    episode_id = target["items"][0]["id"]
    await client.delete(f"{API}/episodes/{episode_id}", headers=team.editor.headers)
    assert await hits(q="quiet") == []
    await client.post(f"{API}/episodes/{episode_id}/restore", headers=team.editor.headers)
    assert len(await hits(q="quiet")) == 1


async def test_purge_after_grace_period_exactly_once(
    client: httpx.AsyncClient, team: Team, runtime: Runtime
) -> None:
    episode = await _episode(client, team)
    await client.put(
        f"{API}/episodes/{episode['id']}/audio",
        content=tone_mp3(3),
        headers={**team.editor.headers, "content-type": "audio/mpeg"},
    )
    survivor = await _episode(client, team, title="Survivor")
    await client.put(
        f"{API}/episodes/{survivor['id']}/audio",
        content=tone_mp3(2),
        headers={**team.editor.headers, "content-type": "audio/mpeg"},
    )
    assert len(await runtime.storage.list_keys("media")) == 2
    await client.delete(f"{API}/episodes/{episode['id']}", headers=team.editor.headers)

    await purge_due.body(runtime)  # not due yet: nothing happens
    await anyio.sleep(0.5)
    assert len(await runtime.storage.list_keys("media")) == 2
    async with runtime.db.session() as session:
        await session.execute(
            update(Episode)
            .where(Episode.id == uuid.UUID(episode["id"]))
            .values(purge_after=utcnow() - timedelta(seconds=1))
        )
    await purge_due.body(runtime)

    async def purged() -> bool:
        async with runtime.db.session(write=False) as session:
            return await session.get(Episode, uuid.UUID(episode["id"])) is None

    await eventually(purged)
    assert len(await runtime.storage.list_keys("media")) == 1
    assert (
        await client.post(f"{API}/episodes/{episode['id']}/restore", headers=team.editor.headers)
    ).status_code == 404

    # The whole show: files, artwork, rows.
    await client.delete(team.show_url, headers=team.owner.headers)
    async with runtime.db.session() as session:
        await session.execute(update(Show).values(purge_after=utcnow() - timedelta(seconds=1)))
    await purge_due.body(runtime)
    await purge_due.body(runtime)  # twice: the second run finds nothing left to do

    async def show_gone() -> bool:
        async with runtime.db.session(write=False) as session:
            return (await session.scalar(select(func.count()).select_from(Show))) == 0

    await eventually(show_gone)
    assert await runtime.storage.list_keys() == []
    async with runtime.db.session(write=False) as session:
        assert await session.scalar(select(func.count()).select_from(Episode)) == 0
        assert await session.scalar(select(func.count()).select_from(SearchDocument)) == 0


async def test_search_ranks_the_most_recent_matches_when_there_are_very_many(
    client: httpx.AsyncClient, team: Team, monkeypatch: Any
) -> None:
    from amphora.show import search

    monkeypatch.setattr(search, "CANDIDATES", 2)
    for i in range(4):
        await _episode(client, team, title=f"Harbour {i}")
    await client.post(
        f"{API}/shows", json={"title": "Harbour elsewhere"}, headers=team.stranger.headers
    )
    found = await client.get(f"{API}/search", params={"q": "harbour"}, headers=team.viewer.headers)
    titles = sorted(
        h["title"].replace("<mark>", "").replace("</mark>", "") for h in found.json()["items"]
    )
    # Another creator's matches never take a place among the candidates.
    assert titles == ["Harbour 2", "Harbour 3"]


async def test_a_slow_upload_does_not_block_other_writes(
    client: httpx.AsyncClient, team: Team
) -> None:
    import asyncio

    episode = await _episode(client, team)
    audio = tone_mp3(5)
    release = asyncio.Event()

    async def slow_body() -> Any:
        yield audio[:1000]
        await release.wait()  # the client stalls mid-upload
        yield audio[1000:]

    upload = asyncio.create_task(
        client.put(
            f"{API}/episodes/{episode['id']}/audio",
            content=slow_body(),
            headers={**team.editor.headers, "content-type": "audio/mpeg"},
        )
    )
    await asyncio.sleep(0.3)
    # With the upload holding a write transaction, this would wait for the lock (on SQLite).
    edit = await asyncio.wait_for(
        client.patch(
            team.show_url, json={"subtitle": "still editable"}, headers=team.owner.headers
        ),
        timeout=10,
    )
    assert edit.status_code == 200
    release.set()
    done = await upload
    assert done.status_code == 200 and done.json()["media"]["size"] == len(audio)
