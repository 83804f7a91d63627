"""``/e/{slug}/{episode}/{media}.{ext}`` on both backends: local files with Range and HEAD
(SQLite), redirects to S3 (PostgreSQL); which requests may see which file."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from amphora.kit.clock import utcnow
from amphora.media.testaudio import tone_mp3
from amphora.models import Episode, Show
from tests.catalog import Team
from tests.delivery.seed import (
    add_old_slug,
    hits_of,
    seed_episode,
    seed_show,
    seed_subscriber,
    set_row,
)
from tests.helpers import API

AppClient = tuple[Any, httpx.AsyncClient]


def _ok(response: httpx.Response, backend: str) -> bool:
    return response.status_code == (302 if backend == "postgres" else 200)


def _not_found(response: httpx.Response) -> None:
    assert response.status_code == 404, response.text
    if response.request.method == "GET":
        assert response.json()["error"]["code"] == "not_found"


# Local files are served on the embedded backend; with S3 the answer is a redirect (below).
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_local_file_with_every_range_form(app_client: AppClient, backend: str) -> None:
    app, client = app_client
    episode = await seed_episode(app.state.runtime, await seed_show(app.state.runtime))
    data, size, url = episode.data, len(episode.data), episode.url()

    full = await client.get(url)
    assert full.status_code == 200 and full.content == data
    assert full.headers["content-type"] == "audio/mpeg"
    assert full.headers["content-length"] == str(size)
    assert full.headers["accept-ranges"] == "bytes"
    assert full.headers["cache-control"] == "public, max-age=86400"
    assert full.headers["etag"].startswith('"') and len(full.headers["etag"]) == 66

    head = await client.head(url)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(size)
    assert head.headers["accept-ranges"] == "bytes"
    assert head.headers["content-type"] == "audio/mpeg"

    cases = {
        "bytes=0-1": (0, 1),  # Apple's probe
        "bytes=100-": (100, size - 1),
        "bytes=-500": (size - 500, size - 1),
        f"bytes=10-{size + 1000}": (10, size - 1),
        f"bytes=-{size + 5}": (0, size - 1),
        "bytes=0-": (0, size - 1),
        f"bytes={size - 1}-{size - 1}": (size - 1, size - 1),
    }
    for header, (start, end) in cases.items():
        part = await client.get(url, headers={"Range": header})
        assert part.status_code == 206, header
        assert part.headers["content-range"] == f"bytes {start}-{end}/{size}"
        assert part.headers["content-length"] == str(end - start + 1)
        assert part.content == data[start : end + 1]
        part_head = await client.head(url, headers={"Range": header})
        assert part_head.status_code == 206 and part_head.content == b""
        assert part_head.headers["content-range"] == f"bytes {start}-{end}/{size}"
        assert part_head.headers["content-length"] == str(end - start + 1)

    for header in (f"bytes={size}-", f"bytes={size + 10}-{size + 20}", "bytes=-0"):
        refused = await client.get(url, headers={"Range": header})
        assert refused.status_code == 416, header
        assert refused.headers["content-range"] == f"bytes */{size}"
        assert refused.json()["error"]["code"] == "range_not_satisfiable"

    for ignored in ("bytes=0-1,5-6", "bytes=9-5", "lines=1-2", "bytes=x-"):
        whole = await client.get(url, headers={"Range": ignored})
        assert whole.status_code == 200 and whole.content == data, ignored

    not_modified = await client.get(url, headers={"If-None-Match": full.headers["etag"]})
    assert not_modified.status_code == 304 and not_modified.content == b""


@pytest.mark.parametrize(
    "backend", ["postgres"], indirect=True
)  # S3 comes with the scaled-out backend
async def test_object_storage_redirects(app_client: AppClient, backend: str) -> None:
    app, client = app_client
    episode = await seed_episode(app.state.runtime, await seed_show(app.state.runtime))
    for method in ("GET", "HEAD"):
        response = await client.request(method, episode.url(), headers={"Range": "bytes=0-1"})
        assert response.status_code == 302 and response.content == b""
        assert response.headers["cache-control"] == "no-store"
        location = response.headers["location"]
        assert episode.storage_key in location and "X-Amz-Signature" in location
        assert "X-Amz-Expires=3600" in location  # AMPHORA_MEDIA_URL_SECONDS
    async with httpx.AsyncClient() as outside:
        fetched = await outside.get(location, headers={"Range": "bytes=0-1"})
    assert fetched.status_code == 206 and fetched.content == episode.data[:2]


async def test_who_may_see_which_file(app_client: AppClient, backend: str) -> None:
    app, client = app_client
    runtime = app.state.runtime
    show = await seed_show(runtime)
    other_show = await seed_show(runtime)
    episode = await seed_episode(runtime, show)
    other = await seed_episode(runtime, other_show)
    draft = await seed_episode(runtime, show, publish_at=None)
    scheduled = await seed_episode(runtime, show, publish_at=timedelta(hours=1))
    deleted = await seed_episode(runtime, show, deleted=True)

    assert _ok(await client.get(episode.url()), backend)
    assert _ok(await client.head(episode.url()), backend)
    unknown = [
        episode.url(ext="m4a"),  # the extension must be the file's
        episode.url(ext="MP3"),
        episode.url(slug="no-such-show"),
        episode.url(slug=other_show.slug),  # a slug of another show
        other.url(slug=show.slug),  # another show's episode under this show's slug
        f"/e/{show.slug}/{episode.id}/{other.media_id}.mp3",  # another episode's file
        f"/e/{show.slug}/{other.id}/{episode.media_id}.mp3",
        f"/e/{show.slug}/not-a-uuid/{episode.media_id}.mp3",
        f"/e/{show.slug}/{episode.id.hex}/{episode.media_id}.mp3",  # one spelling per id
        f"/e/{show.slug}/{str(episode.id).upper()}/{episode.media_id}.mp3",
        f"/e/{show.slug}/{episode.id}/nope.mp3",
        f"/e/{show.slug}/{episode.id}/{episode.media_id}",
        draft.url(),
        scheduled.url(),
        deleted.url(),
    ]
    for url in unknown:
        _not_found(await client.get(url))
        assert (await client.head(url)).status_code == 404, url

    # A renamed show keeps answering on its old slug; another show's old slug does not count.
    await add_old_slug(runtime, show, "the-old-name")
    await add_old_slug(runtime, other_show, "someone-elses-old-name")
    assert _ok(await client.get(episode.url(slug="the-old-name")), backend)
    _not_found(await client.get(episode.url(slug="someone-elses-old-name")))

    # Going public later, or the show being deleted, changes the answer.
    await set_row(runtime, Episode, draft.id, publish_at=utcnow())
    assert _ok(await client.get(draft.url()), backend)
    await set_row(runtime, Show, show.id, deleted_at=utcnow())
    _not_found(await client.get(episode.url()))
    _not_found(await client.get(episode.url(slug="the-old-name")))
    assert _ok(await client.get(other.url()), backend)


async def test_premium_needs_a_current_subscriber(app_client: AppClient, backend: str) -> None:
    app, client = app_client
    runtime = app.state.runtime
    show = await seed_show(runtime)
    other_show = await seed_show(runtime)
    premium = await seed_episode(runtime, show, premium=True)
    free = await seed_episode(runtime, show)
    subscriber_id, key = await seed_subscriber(runtime, show)
    _, revoked = await seed_subscriber(runtime, show, revoked=True)
    _, expired = await seed_subscriber(runtime, show, expires_at=utcnow() - timedelta(minutes=1))
    later_id, later = await seed_subscriber(runtime, show, expires_at=utcnow() + timedelta(days=1))
    _, elsewhere = await seed_subscriber(runtime, other_show)

    _not_found(await client.get(premium.url()))
    for bad in (revoked, expired, elsewhere, "amp_sub_guessed", "x" * 5000):
        _not_found(await client.get(premium.url(key=bad)))
        assert (await client.head(premium.url(key=bad))).status_code == 404
    for good in (key, later):
        served = await client.get(premium.url(key=good))
        assert _ok(served, backend)
        if backend == "sqlite":
            assert served.headers["cache-control"] == "private"
            assert served.content == premium.data
    assert _ok(await client.get(free.url(key="amp_sub_unknown")), backend)
    assert _ok(await client.get(free.url(key=key)), backend)

    await app.state.hits.flush()
    rows = await hits_of(runtime)
    assert [(h.media_id, h.subscriber_id) for h in rows] == [
        (premium.media_id, subscriber_id),
        (premium.media_id, later_id),
        (free.media_id, None),  # an unknown key names nobody, and a free file is served
        (free.media_id, subscriber_id),
    ]
    assert len(rows) == 4  # 404s are not logged


async def test_replaced_audio_keeps_the_old_url_working(
    client: httpx.AsyncClient, team: Team, backend: str
) -> None:
    past = (utcnow() - timedelta(days=1)).isoformat()
    made = await client.post(
        f"{team.show_url}/episodes",
        json={"title": "Replaced", "publish_at": past},
        headers=team.editor.headers,
    )
    assert made.status_code == 201, made.text
    episode_id = made.json()["id"]
    audio_url = f"{API}/episodes/{episode_id}/audio"
    headers = {**team.editor.headers, "content-type": "audio/mpeg"}
    first_mp3, second_mp3 = tone_mp3(2, frequency=440), tone_mp3(3, frequency=660)
    first = (await client.put(audio_url, content=first_mp3, headers=headers)).json()["media"]
    second = (await client.put(audio_url, content=second_mp3, headers=headers)).json()["media"]
    slug = team.show["slug"]
    for media, data in ((first, first_mp3), (second, second_mp3)):
        url = f"/e/{slug}/{episode_id}/{media['id']}.{media['extension']}"
        served = await client.get(url, headers={"Range": "bytes=0-1"})
        if backend == "sqlite":
            assert served.status_code == 206 and served.content == data[:2]
        else:
            assert served.status_code == 302
