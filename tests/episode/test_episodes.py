"""Episodes through the API: fields, numbering, scheduling, filters, audio, transcripts,
chapters, trash; on both backends (local files and S3)."""

from __future__ import annotations

from datetime import timedelta

import httpx

from amphora.kit.clock import utcnow
from amphora.media.testaudio import tone_m4a, tone_mp3, tone_mp4_video
from amphora.runtime import Runtime
from tests.catalog import Team
from tests.helpers import API

VTT = (
    b"WEBVTT\n\n00:00:00.000 --> 00:00:02.000\nHello there.\n\n"
    b"00:00:02.000 --> 00:00:04.000\nBye.\n"
)


async def _episode(client: httpx.AsyncClient, team: Team, **fields: object) -> dict:
    body = {"title": "Episode", **fields}
    made = await client.post(f"{team.show_url}/episodes", json=body, headers=team.editor.headers)
    assert made.status_code == 201, made.text
    return made.json()


async def test_episode_fields_guid_and_status(client: httpx.AsyncClient, team: Team) -> None:
    future = (utcnow() + timedelta(days=3)).isoformat()
    past = (utcnow() - timedelta(days=3)).isoformat()
    draft = await _episode(
        client,
        team,
        title="Keeper's Log",
        description="<p>Notes <img src=x onerror=alert(1)></p>",
        season=1,
        season_name="Storms",
        number="3",
        number_display="3a",
        episode_type="bonus",
        persons=[{"name": "Guest Star", "role": "guest"}],
        soundbites=[{"start_time": 73.5, "duration": 45, "title": "The storm"}],
        locations=[{"name": "Brest", "country": "FR"}],
        funding=[{"url": "https://example.com/tip", "label": "Tip"}],
        license={"identifier": "cc-by-4.0"},
        value={"recipients": [{"type": "node", "address": "02ab", "split": 100}]},
        social_interact=[{"protocol": "activitypub", "uri": "https://x.example/@p/1"}],
        chat={"server": "irc.example.net", "protocol": "irc"},
        premium=True,
    )
    assert draft["status"] == "draft" and draft["guid"]
    assert "onerror" not in draft["description"]
    assert draft["number"] == "3.000" or float(draft["number"]) == 3
    assert draft["soundbites"][0]["start_time"] == 73.5 and draft["premium"] is True
    scheduled = await _episode(client, team, publish_at=future, guid="my-own-guid-1")
    assert scheduled["status"] == "scheduled" and scheduled["guid"] == "my-own-guid-1"
    published = await _episode(client, team, publish_at=past, guid="PUB-guid")
    assert published["status"] == "published"

    dup = await client.post(
        f"{team.show_url}/episodes",
        json={"title": "x", "guid": "my-own-guid-1"},
        headers=team.editor.headers,
    )
    assert dup.status_code == 409 and dup.json()["error"]["code"] == "guid_taken"
    # Case matters: guids compare byte for byte.
    assert (
        await client.post(
            f"{team.show_url}/episodes",
            json={"title": "x", "guid": "pub-GUID"},
            headers=team.editor.headers,
        )
    ).status_code == 201
    frozen = await client.patch(
        f"{API}/episodes/{published['id']}", json={"guid": "changed"}, headers=team.editor.headers
    )
    assert frozen.status_code == 409 and frozen.json()["error"]["code"] == "guid_immutable"
    moved = await client.patch(
        f"{API}/episodes/{draft['id']}", json={"guid": "draft-guid"}, headers=team.editor.headers
    )
    assert moved.status_code == 200 and moved.json()["guid"] == "draft-guid"

    viewer = await client.patch(
        f"{API}/episodes/{draft['id']}", json={"title": "v"}, headers=team.viewer.headers
    )
    assert viewer.status_code == 403
    for method in ("GET", "PATCH", "DELETE"):
        stranger = await client.request(
            method,
            f"{API}/episodes/{draft['id']}",
            json={"title": "s"} if method == "PATCH" else None,
            headers=team.stranger.headers,
        )
        assert stranger.status_code == 404
    stale = await client.patch(
        f"{API}/episodes/{draft['id']}",
        json={"title": "t"},
        headers={**team.editor.headers, "If-Match": '"1"'},
    )
    assert stale.status_code == 412


async def test_serial_shows_need_numbers_and_next_number(
    client: httpx.AsyncClient, team: Team
) -> None:
    await client.patch(team.show_url, json={"show_type": "serial"}, headers=team.owner.headers)
    past = (utcnow() - timedelta(days=1)).isoformat()
    refused = await client.post(
        f"{team.show_url}/episodes",
        json={"title": "No number", "publish_at": past},
        headers=team.editor.headers,
    )
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "number_required"
    await _episode(client, team, season=1, number=1, publish_at=past)
    await _episode(client, team, season=1, number=2, publish_at=past)
    await _episode(client, team, season=2, number=1)
    suggestions = (
        await client.get(f"{team.show_url}/episodes/next-number", headers=team.viewer.headers)
    ).json()
    assert suggestions == [{"season": 1, "next_number": 3}, {"season": 2, "next_number": 2}]


async def test_list_filters_sorting_and_pages(client: httpx.AsyncClient, team: Team) -> None:
    series = (
        await client.post(
            f"{team.show_url}/series", json={"name": "Deep Dives"}, headers=team.editor.headers
        )
    ).json()
    now = utcnow()
    for i in range(6):
        await _episode(
            client,
            team,
            title=f"Tide {i}",
            season=1 + i % 2,
            number=i + 1,
            publish_at=(now - timedelta(days=10 - i)).isoformat(),
            series_id=series["id"] if i < 2 else None,
            episode_type="trailer" if i == 5 else "full",
        )
    await _episode(client, team, title="Draft one")
    await _episode(client, team, title="Later", publish_at=(now + timedelta(days=2)).isoformat())

    async def titles(**params: object) -> list[str]:
        page = await client.get(
            f"{team.show_url}/episodes", params=params, headers=team.viewer.headers
        )
        assert page.status_code == 200, page.text
        return [e["title"] for e in page.json()["items"]]

    assert await titles(status="published", sort="published") == [f"Tide {i}" for i in range(6)]
    assert await titles(status="draft") == ["Draft one"]
    assert await titles(status="scheduled") == ["Later"]
    assert await titles(series=series["id"], sort="published") == ["Tide 0", "Tide 1"]
    assert await titles(season=2, sort="number") == ["Tide 1", "Tide 3", "Tide 5"]
    assert await titles(episode_type="trailer") == ["Tide 5"]
    assert await titles(q="tide 3") == ["Tide 3"]
    after = (now - timedelta(days=7, hours=12)).isoformat()
    assert await titles(published_after=after, status="published", sort="published") == [
        "Tide 3",
        "Tide 4",
        "Tide 5",
    ]
    assert (await titles(sort="-published"))[0] == "Draft one"  # drafts first, then newest

    first = (
        await client.get(
            f"{team.show_url}/episodes", params={"limit": 5}, headers=team.viewer.headers
        )
    ).json()
    second = (
        await client.get(
            f"{team.show_url}/episodes",
            params={"limit": 5, "cursor": first["next_cursor"]},
            headers=team.viewer.headers,
        )
    ).json()
    ids = [e["id"] for e in first["items"] + second["items"]]
    assert len(ids) == len(set(ids)) == 8 and second["next_cursor"] is None
    other_filter = await client.get(
        f"{team.show_url}/episodes",
        params={"limit": 5, "cursor": first["next_cursor"], "status": "draft"},
        headers=team.viewer.headers,
    )
    assert other_filter.status_code == 400


async def test_one_shot_audio_upload_and_replacement(
    client: httpx.AsyncClient, team: Team, runtime: Runtime
) -> None:
    episode = await _episode(client, team)
    url = f"{API}/episodes/{episode['id']}/audio"
    mp3 = tone_mp3(8, chapters=[(0, 4000, "Intro"), (4000, 8000, "Main")])
    put = await client.put(
        url,
        content=mp3,
        headers={**team.editor.headers, "content-type": "audio/mpeg", "X-Filename": "ep1.mp3"},
    )
    assert put.status_code == 200, put.text
    media = put.json()["media"]
    assert media["content_type"] == "audio/mpeg" and media["extension"] == "mp3"
    assert media["size"] == len(mp3) and abs(media["duration_s"] - 8) < 0.2
    assert media["bitrate"] == 64000 and media["id3_size"] > 0
    chapters = await client.get(
        f"{API}/episodes/{episode['id']}/chapters", headers=team.viewer.headers
    )
    assert chapters.headers["content-type"].startswith("application/json+chapters")
    assert [c["title"] for c in chapters.json()["chapters"]] == ["Intro", "Main"]

    m4a = await client.put(
        url, content=tone_m4a(5), headers={**team.editor.headers, "content-type": "audio/mp4"}
    )
    assert m4a.status_code == 200
    new_media = m4a.json()["media"]
    assert new_media["id"] != media["id"] and new_media["content_type"] == "audio/x-m4a"
    keys = await runtime.storage.list_keys("media")
    assert len(keys) == 2  # the old file is kept (feeds may still point to it)
    video = await client.put(
        url, content=tone_mp4_video(2), headers={**team.editor.headers, "content-type": "video/mp4"}
    )
    assert video.status_code == 200 and video.json()["media"]["kind"] == "video"


async def test_bad_audio_is_refused_and_leaves_nothing(
    client: httpx.AsyncClient, team: Team, runtime: Runtime
) -> None:
    episode = await _episode(client, team)
    url = f"{API}/episodes/{episode['id']}/audio"
    headers = {**team.editor.headers, "content-type": "audio/mpeg"}
    cases = [
        (b"<html><body>not audio</body></html>", 415),
        (b"%PDF-1.7\n" + b"x" * 2000, 415),
        (b"", 422),
        (tone_mp3(3)[:400], 422),
    ]
    for body, expected in cases:
        response = await client.put(url, content=body, headers=headers)
        assert response.status_code == expected, (body[:10], response.text)
    wrong_type = await client.put(
        url, content=tone_mp3(1), headers={**team.editor.headers, "content-type": "image/png"}
    )
    assert wrong_type.status_code == 415
    assert await runtime.storage.list_keys("media") == []
    staging = runtime.settings.resolved_data_dir / "uploads"
    assert not staging.exists() or list(staging.iterdir()) == []
    assert (
        await client.get(f"{API}/episodes/{episode['id']}", headers=team.viewer.headers)
    ).json()["media"] is None


async def test_transcripts_and_chapters(
    client: httpx.AsyncClient, team: Team, runtime: Runtime
) -> None:
    episode = await _episode(client, team)
    base = f"{API}/episodes/{episode['id']}"
    added = await client.post(
        f"{base}/transcripts",
        files={"file": ("captions.vtt", VTT, "text/vtt")},
        data={"language": "en", "captions": "true"},
        headers=team.editor.headers,
    )
    assert added.status_code == 201, added.text
    assert added.json()["content_type"] == "text/vtt" and added.json()["captions"] is True
    srt = b"1\n00:00:00,000 --> 00:00:01,500\nHi\n"
    assert (
        await client.post(
            f"{base}/transcripts", files={"file": ("t.srt", srt)}, headers=team.editor.headers
        )
    ).status_code == 201
    bad = await client.post(
        f"{base}/transcripts",
        files={"file": ("t.vtt", b"WEBVTT\n\n00:00:05.000 --> 00:00:01.000\nx\n")},
        headers=team.editor.headers,
    )
    assert bad.status_code == 422
    read = (await client.get(base, headers=team.viewer.headers)).json()
    assert [t["content_type"] for t in read["transcripts"]] == ["text/vtt", "application/x-subrip"]
    assert len(await runtime.storage.list_keys("transcripts")) == 2
    gone = await client.delete(
        f"{base}/transcripts/{read['transcripts'][0]['id']}", headers=team.editor.headers
    )
    assert gone.status_code == 204
    assert len(await runtime.storage.list_keys("transcripts")) == 1

    doc = {
        "version": "1.2.0",
        "chapters": [{"startTime": 30, "title": "B"}, {"startTime": 0, "title": "A"}],
    }
    put = await client.put(f"{base}/chapters", json=doc, headers=team.editor.headers)
    assert put.status_code == 200 and [c["title"] for c in put.json()["chapters"]] == ["A", "B"]
    invalid = await client.put(
        f"{base}/chapters", json={"chapters": []}, headers=team.editor.headers
    )
    assert invalid.status_code == 422
    assert (await client.delete(f"{base}/chapters", headers=team.editor.headers)).status_code == 204
    assert (await client.get(f"{base}/chapters", headers=team.viewer.headers)).status_code == 404


async def test_trash_restore_with_show(client: httpx.AsyncClient, team: Team) -> None:
    kept = await _episode(client, team, title="Kept")
    alone = await _episode(client, team, title="Deleted alone")
    assert (
        await client.delete(f"{API}/episodes/{alone['id']}", headers=team.editor.headers)
    ).status_code == 200
    assert (
        await client.get(f"{API}/episodes/{alone['id']}", headers=team.editor.headers)
    ).status_code == 404
    trash_response = await client.get(f"{API}/trash", headers=team.editor.headers)
    assert trash_response.status_code == 200, trash_response.text
    trash = trash_response.json()
    assert [e["title"] for e in trash["episodes"]] == ["Deleted alone"] and trash["episodes"][0][
        "purge_after"
    ]

    await client.delete(team.show_url, headers=team.owner.headers)
    trash = (await client.get(f"{API}/trash", headers=team.owner.headers)).json()
    assert [s["id"] for s in trash["shows"]] == [team.show["id"]]
    assert (
        await client.get(f"{API}/episodes/{kept['id']}", headers=team.owner.headers)
    ).status_code == 404
    await client.post(f"{team.show_url}/restore", headers=team.owner.headers)
    listed = (await client.get(f"{team.show_url}/episodes", headers=team.owner.headers)).json()[
        "items"
    ]
    assert [e["title"] for e in listed] == ["Kept"]  # the one deleted on its own stays in the trash
    restored = await client.post(
        f"{API}/episodes/{alone['id']}/restore", headers=team.editor.headers
    )
    assert restored.status_code == 200 and restored.json()["deleted_at"] is None


async def test_episode_list_query_count_does_not_grow_with_the_page(
    client: httpx.AsyncClient, team: Team, runtime: Runtime
) -> None:
    from sqlalchemy import event

    for i in range(12):
        made = await _episode(client, team, title=f"E{i}", persons=[{"name": "P"}])
        if i % 3 == 0:
            await client.put(
                f"{API}/episodes/{made['id']}/audio",
                content=tone_mp3(1),
                headers={**team.editor.headers, "content-type": "audio/mpeg"},
            )
            await client.post(
                f"{API}/episodes/{made['id']}/transcripts",
                files={"file": ("t.vtt", VTT)},
                headers=team.editor.headers,
            )
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    engine = runtime.db.engine.sync_engine
    # The token's first use records a timestamp: not part of what is measured.
    await client.get(f"{team.show_url}/episodes", headers=team.viewer.headers)
    counts = []
    for limit in (3, 12):  # both pages hold episodes with and without media
        statements.clear()
        event.listen(engine, "before_cursor_execute", count)
        try:
            page = await client.get(
                f"{team.show_url}/episodes", params={"limit": limit}, headers=team.viewer.headers
            )
        finally:
            event.remove(engine, "before_cursor_execute", count)
        assert len(page.json()["items"]) == limit
        counts.append(len(statements))
    assert counts[0] == counts[1], statements


async def test_times_without_a_timezone_are_refused(client: httpx.AsyncClient, team: Team) -> None:
    naive = await client.post(
        f"{team.show_url}/episodes",
        json={"title": "x", "publish_at": "2026-01-01T10:00:00"},
        headers=team.editor.headers,
    )
    assert naive.status_code == 422
    listed = await client.get(
        f"{team.show_url}/episodes",
        params={"published_after": "2026-01-01T10:00:00"},
        headers=team.viewer.headers,
    )
    assert listed.status_code == 422
    too_long = await client.post(
        f"{team.show_url}/episodes", json={"title": "x" * 256}, headers=team.editor.headers
    )
    assert too_long.status_code == 422
    listed = await client.get(f"{team.show_url}/episodes", headers=team.viewer.headers)
    assert listed.json()["items"] == []
