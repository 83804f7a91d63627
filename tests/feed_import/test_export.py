"""Show export through the API on both backends: the zip's layout, manifest, files and feed;
who may export; downloads (local Range, S3 redirect); failures that leave nothing behind; and
the retention job."""

from __future__ import annotations

import hashlib
import io
import json
import os
import time
import uuid
import zipfile
from datetime import datetime, timedelta
from typing import Any

import feedparser
import httpx
from lxml import etree
from sqlalchemy import select

from amphora.delivery.urls import feed_url
from amphora.episode.schemas import EpisodeFields
from amphora.feed.guid import podcast_guid
from amphora.feed_import.export_tasks import expire_exports, export_show
from amphora.kit.clock import utcnow
from amphora.models import MediaFile, ShowExport
from amphora.runtime import Runtime
from amphora.show.schemas import ShowFields
from tests.catalog import Team, image_bytes
from tests.feed.test_serving import NS, VTT, _episode
from tests.helpers import API, Account, eventually

CHAPTERS = {
    "version": "1.2.0",
    "chapters": [{"startTime": 0, "title": "Intro"}, {"startTime": 1, "title": "Storm"}],
}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def fetch(
    client: httpx.AsyncClient,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    range_: str | None = None,
) -> httpx.Response:
    """GET through the app; a redirect to object storage is followed (with the Range only:
    the presigned URL is the credential)."""
    ranged = {"Range": range_} if range_ else {}
    response = await client.get(url, headers={**(headers or {}), **ranged})
    if response.status_code == 302:
        async with httpx.AsyncClient() as outside:
            response = await outside.get(response.headers["location"], headers=ranged)
    return response


async def insert_export(runtime: Runtime, team: Team, **values: Any) -> uuid.UUID:
    """An export row written directly (a state the API cannot be asked for on the spot)."""
    async with runtime.db.session() as session:
        export = ShowExport(
            show_id=uuid.UUID(team.show["id"]), requested_by=uuid.UUID(team.owner.id), **values
        )
        session.add(export)
        await session.flush()
        return export.id


async def wait_finished(client: httpx.AsyncClient, url: str, account: Account) -> dict[str, Any]:
    async def finished() -> bool:
        status = (await client.get(url, headers=account.headers)).json()["status"]
        return status in ("done", "failed")

    await eventually(finished, timeout=60)
    read: dict[str, Any] = (await client.get(url, headers=account.headers)).json()
    return read


async def build_catalog(client: httpx.AsyncClient, team: Team) -> dict[str, dict[str, Any]]:
    """Show artwork, a series; a published episode with transcript, chapters and artwork, a
    premium one, a scheduled one, a draft without media, and one in the trash."""
    editor = team.editor.headers
    art = await client.put(
        f"{team.show_url}/artwork",
        files={"file": ("cover.jpg", image_bytes(1400, 1400))},
        headers=editor,
    )
    assert art.status_code == 200, art.text
    series = await client.post(
        f"{team.show_url}/series",
        json={"name": "Logbooks", "description": "From the keeper's desk.", "position": 2},
        headers=editor,
    )
    assert series.status_code == 201, series.text
    now = utcnow()
    published = await _episode(
        client,
        team,
        title="The Keeper's Log",
        publish_at=(now - timedelta(hours=2)).isoformat(),
        season=1,
        number=3,
        series_id=series.json()["id"],
        persons=[{"name": "Ada Lovelace", "role": "host"}],
    )
    base = f"{API}/episodes/{published['id']}"
    transcript = await client.post(
        f"{base}/transcripts",
        files={"file": ("captions.vtt", VTT, "text/vtt")},
        data={"language": "en", "captions": "true"},
        headers=editor,
    )
    assert transcript.status_code == 201, transcript.text
    chapters = await client.put(f"{base}/chapters", json=CHAPTERS, headers=editor)
    assert chapters.status_code == 200, chapters.text
    episode_art = await client.put(
        f"{base}/artwork",
        files={"file": ("ep.png", image_bytes(1400, 1400, "PNG"))},
        headers=editor,
    )
    assert episode_art.status_code == 200, episode_art.text
    premium = await _episode(
        client, team, title="Bonus", premium=True, publish_at=(now - timedelta(hours=1)).isoformat()
    )
    scheduled = await _episode(
        client, team, title="Next week", publish_at=(now + timedelta(days=3)).isoformat()
    )
    draft = await _episode(client, team, audio=False, title="Draft", publish_at=None)
    trashed = await _episode(client, team, title="Trashed")
    gone = await client.delete(f"{API}/episodes/{trashed['id']}", headers=editor)
    assert gone.status_code == 200, gone.text
    return {
        "published": published,
        "premium": premium,
        "scheduled": scheduled,
        "draft": draft,
        "trashed": trashed,
        "series": series.json(),
    }


async def test_export_holds_every_episode_file_and_a_relative_feed(
    client: httpx.AsyncClient, team: Team, runtime: Runtime, backend: str
) -> None:
    owner = team.owner.headers
    made = await build_catalog(client, team)
    exports = f"{team.show_url}/exports"

    # While one export is queued, asking again answers that one, and it cannot be downloaded.
    waiting = await insert_export(runtime, team, status="queued")
    again = await client.post(f"{team.show_url}/export", headers=owner)
    assert again.status_code == 202, again.text
    assert again.json()["id"] == str(waiting) and again.json()["download_url"] is None
    early = await client.get(f"{exports}/{waiting}/download", headers=owner)
    assert early.status_code == 409 and early.json()["error"]["code"] == "export_not_ready"
    # Its job (run here by hand), then once more: a done export is left alone.
    await export_show.body(runtime, str(waiting))
    first = (await client.get(f"{exports}/{waiting}", headers=owner)).json()
    assert first["status"] == "done", first
    await export_show.body(runtime, str(waiting))
    assert (await client.get(f"{exports}/{waiting}", headers=owner)).json() == first

    # None is running now: a request queues a new one, built by the job consumer.
    posted = await client.post(f"{team.show_url}/export", headers=owner)
    assert posted.status_code == 202, posted.text
    assert posted.json()["id"] != str(waiting)
    assert posted.json()["status"] in ("queued", "running", "done")
    export = await wait_finished(client, f"{exports}/{posted.json()['id']}", team.owner)
    assert export["status"] == "done" and export["error"] is None, export
    listed = await client.get(exports, headers=owner)
    assert [e["id"] for e in listed.json()] == [export["id"], str(waiting)]
    assert export["download_url"] == (
        f"http://testserver{API}/shows/{team.show['id']}/exports/{export['id']}/download"
    )

    # The download: streamed with ranges from local files, a redirect with S3.
    download = export["download_url"].removeprefix("http://testserver")
    served = await client.get(download, headers=owner)
    if backend == "sqlite":
        assert served.status_code == 200
        assert served.headers["content-type"] == "application/zip"
        day = datetime.fromisoformat(export["finished_at"]).date().isoformat()
        assert served.headers["content-disposition"] == (
            f'attachment; filename="{team.show["slug"]}-export-{day}.zip"'
        )
    else:
        assert served.status_code == 302 and "X-Amz-Signature" in served.headers["location"]
    data = (await fetch(client, download, headers=owner)).content
    assert len(data) == export["size"]
    part = await fetch(client, download, headers=owner, range_="bytes=100-1099")
    assert part.status_code == 206 and part.content == data[100:1100]

    archive = zipfile.ZipFile(io.BytesIO(data))
    assert archive.testzip() is None
    names = set(archive.namelist())
    assert len(names) == export["files"]
    manifest = json.loads(archive.read("manifest.json"))
    assert manifest["format"] == "amphora-export" and manifest["version"] == 1
    assert manifest["generator"].startswith("Amphora ")
    assert datetime.fromisoformat(manifest["exported_at"]).utcoffset() == timedelta(0)

    # The show: every editable field as stored, plus slug and podcast:guid; not new_feed_url.
    show = (await client.get(team.show_url, headers=owner)).json()
    expected_keys = (set(ShowFields.model_fields) - {"new_feed_url"}) | {"podcast_guid"}
    assert set(manifest["show"]) == expected_keys
    for key in expected_keys - {"podcast_guid"}:
        assert manifest["show"][key] == show[key], key
    slug = show["slug"]
    assert manifest["show"]["podcast_guid"] == podcast_guid(feed_url("http://testserver", slug))
    show_art = manifest["artwork"]
    assert show_art["path"] == "artwork/show.jpg" and show_art["content_type"] == "image/jpeg"
    art_bytes = archive.read(show_art["path"])
    assert show_art["sha256"] == sha(art_bytes) and show_art["size"] == len(art_bytes)
    assert (await fetch(client, show["artwork"]["url"])).content == art_bytes
    assert manifest["series"] == [
        {
            "id": made["series"]["id"],
            "name": "Logbooks",
            "description": "From the keeper's desk.",
            "position": 2,
        }
    ]

    # Episodes: out of the trash only, by publication (drafts last), every field as the API
    # reads it.
    order = ["published", "premium", "scheduled", "draft"]
    assert [e["id"] for e in manifest["episodes"]] == [made[name]["id"] for name in order]
    assert not [n for n in names if made["trashed"]["id"] in n]
    entries = {name: manifest["episodes"][n] for n, name in enumerate(order)}
    reads = {
        name: (await client.get(f"{API}/episodes/{made[name]['id']}", headers=owner)).json()
        for name in order
    }
    for name in order:
        fields, read = entries[name]["fields"], reads[name]
        assert set(fields) == set(EpisodeFields.model_fields)
        assert fields == {key: read[key] for key in fields}, name
        assert entries[name]["remote_media"] is None
    assert entries["published"]["fields"]["number"] == reads["published"]["number"] is not None
    assert entries["published"]["fields"]["series_id"] == made["series"]["id"]
    assert entries["draft"]["fields"]["publish_at"] is None

    # Media files: hashes as recorded, and the very bytes the enclosure URLs serve.
    subscriber = await client.post(
        f"{team.show_url}/subscribers", json={"name": "Grace"}, headers=team.editor.headers
    )
    key = subscriber.json()["token"]
    for name in ("published", "premium", "scheduled"):
        media, read = entries[name]["media"], reads[name]["media"]
        episode_id = made[name]["id"]
        assert media["path"] == f"media/{episode_id}.mp3"
        assert media["content_type"] == "audio/mpeg"
        stored = archive.read(media["path"])
        assert media["sha256"] == read["sha256"] == sha(stored)
        assert media["size"] == read["size"] == len(stored)
        assert media["original_filename"] == read["original_filename"]
        if name != "scheduled":  # a scheduled episode's file is not served yet
            url = f"/e/{slug}/{episode_id}/{read['id']}.mp3"
            served_media = await fetch(client, f"{url}?key={key}" if name == "premium" else url)
            assert served_media.status_code == 200 and served_media.content == stored
    draft = entries["draft"]
    assert (draft["media"], draft["artwork"], draft["transcripts"], draft["chapters"]) == (
        None,
        None,
        [],
        None,
    )

    # The published episode's companions.
    published_id = made["published"]["id"]
    entry, read = entries["published"], reads["published"]
    episode_art = entry["artwork"]
    assert episode_art["path"] == f"artwork/{published_id}.png"
    assert episode_art["content_type"] == "image/png"
    assert episode_art["sha256"] == sha(archive.read(episode_art["path"]))
    assert (await fetch(client, read["artwork"]["url"])).content == archive.read(
        episode_art["path"]
    )
    [transcript] = entry["transcripts"]
    transcript_id = read["transcripts"][0]["id"]
    assert transcript["path"] == f"transcripts/{transcript_id}.vtt"
    assert (transcript["content_type"], transcript["language"], transcript["captions"]) == (
        "text/vtt",
        "en",
        True,
    )
    transcript_bytes = archive.read(transcript["path"])
    assert transcript["sha256"] == sha(transcript_bytes)
    assert transcript["size"] == len(transcript_bytes)
    assert (await fetch(client, f"/transcripts/{transcript_id}.vtt")).content == transcript_bytes
    assert entry["chapters"] == {"path": f"chapters/{published_id}.json"}
    chapters = archive.read(entry["chapters"]["path"])
    served_chapters = await client.get(f"/chapters/{published_id}/{read['version']}.json")
    assert chapters == served_chapters.content
    assert [c["title"] for c in json.loads(chapters)["chapters"]] == ["Intro", "Storm"]
    for name in names:  # text is deflated; media and images, compressed already, are stored
        info = archive.getinfo(name)
        expected = (
            zipfile.ZIP_STORED if name.startswith(("media/", "artwork/")) else zipfile.ZIP_DEFLATED
        )
        assert info.compress_type == expected, name

    # feed.xml: valid RSS of every published episode (premium too) with relative file URLs.
    feed = archive.read("feed.xml")
    parsed = feedparser.parse(feed)
    assert not parsed.bozo, parsed.bozo_exception
    assert len(parsed.entries) == 2
    enclosures = {e.enclosures[0].href for e in parsed.entries}
    assert enclosures == {
        entries["published"]["media"]["path"],
        entries["premium"]["media"]["path"],
    }
    assert enclosures <= names
    root = etree.fromstring(feed)
    assert root.xpath("/rss/channel/itunes:image/@href", namespaces=NS) == ["artwork/show.jpg"]
    assert root.xpath("/rss/channel/itunes:block", namespaces=NS) == []
    [item] = root.xpath(f"/rss/channel/item[guid='{read['guid']}']", namespaces=NS)
    assert item.xpath("itunes:image/@href", namespaces=NS) == [episode_art["path"]]
    assert item.xpath("podcast:transcript/@url", namespaces=NS) == [transcript["path"]]
    assert item.xpath("podcast:chapters/@url", namespaces=NS) == [entry["chapters"]["path"]]
    for path in ("/e/", "/artwork/", "/transcripts/", "/chapters/"):
        assert f"http://testserver{path}".encode() not in feed, path

    # Only show admins export; other members get 403, strangers 404.
    export_url = f"{exports}/{export['id']}"
    for account, expected_status in (
        (team.editor, 403),
        (team.viewer, 403),
        (team.stranger, 404),
    ):
        for method, url in (
            ("POST", f"{team.show_url}/export"),
            ("GET", exports),
            ("GET", export_url),
            ("GET", f"{export_url}/download"),
        ):
            answer = await client.request(method, url, headers=account.headers)
            assert answer.status_code == expected_status, (account.email, method, url)

    # Another show's export is unknown here, even to this show's owner.
    other_show = await client.post(
        f"{API}/shows", json={"title": "Elsewhere"}, headers=team.stranger.headers
    )
    other = await client.post(
        f"{API}/shows/{other_show.json()['id']}/export", headers=team.stranger.headers
    )
    assert other.status_code == 202, other.text
    for url in (f"{exports}/{other.json()['id']}", f"{exports}/{other.json()['id']}/download"):
        assert (await client.get(url, headers=owner)).status_code == 404


async def test_a_missing_file_fails_the_export_and_leaves_nothing(
    client: httpx.AsyncClient, team: Team, runtime: Runtime
) -> None:
    episode = await _episode(client, team, title="Lost at sea")
    async with runtime.db.session(write=False) as session:
        key = await session.scalar(
            select(MediaFile.storage_key).where(MediaFile.id == uuid.UUID(episode["media"]["id"]))
        )
    assert key is not None
    await runtime.storage.delete(key)

    posted = await client.post(f"{team.show_url}/export", headers=team.owner.headers)
    assert posted.status_code == 202, posted.text
    url = f"{team.show_url}/exports/{posted.json()['id']}"
    export = await wait_finished(client, url, team.owner)
    assert export["status"] == "failed" and export["download_url"] is None
    assert "missing from storage" in export["error"] and "Lost at sea" in export["error"]
    assert export["size"] is None
    assert await runtime.storage.list_keys("exports") == []
    temp = runtime.settings.resolved_data_dir / "exports"
    assert not temp.exists() or list(temp.iterdir()) == []
    refused = await client.get(f"{url}/download", headers=team.owner.headers)
    assert refused.status_code == 409


async def test_old_exports_expire_and_abandoned_ones_do_not_block(
    client: httpx.AsyncClient, team: Team, runtime: Runtime
) -> None:
    owner = team.owner.headers
    show_id = team.show["id"]
    rows = {}
    for name, age in (("old", timedelta(days=8)), ("recent", timedelta(days=1))):
        export_id = uuid.uuid4()
        key = f"exports/{show_id}/{export_id}.zip"
        stored = await runtime.storage.write_bytes(key, b"PK zip bytes", content_type="x/y")
        rows[name] = await insert_export(
            runtime,
            team,
            id=export_id,
            status="done",
            storage_key=key,
            size=stored.size,
            files=2,
            finished_at=utcnow() - age,
        )
    temp = runtime.settings.resolved_data_dir / "exports"
    temp.mkdir(parents=True, exist_ok=True)
    abandoned, fresh = temp / "a.zip.part", temp / "b.zip.part"
    abandoned.write_bytes(b"x")
    fresh.write_bytes(b"x")
    two_days_ago = time.time() - 2 * 86400
    os.utime(abandoned, (two_days_ago, two_days_ago))

    await expire_exports.body(runtime)

    async def expired() -> bool:
        read = await client.get(f"{team.show_url}/exports/{rows['old']}", headers=owner)
        return bool(read.json()["status"] == "expired")

    await eventually(expired)
    assert await runtime.storage.list_keys("exports") == [f"exports/{show_id}/{rows['recent']}.zip"]
    gone = await client.get(f"{team.show_url}/exports/{rows['old']}/download", headers=owner)
    assert gone.status_code == 410 and gone.json()["error"]["code"] == "export_expired"
    kept = await client.get(f"{team.show_url}/exports/{rows['recent']}", headers=owner)
    assert kept.json()["status"] == "done" and kept.json()["download_url"] is not None
    assert not abandoned.exists() and fresh.exists()

    # An export whose worker died (no heartbeat for long) does not block a new request.
    dead = await insert_export(
        runtime, team, status="running", updated_at=utcnow() - timedelta(hours=1)
    )
    posted = await client.post(f"{team.show_url}/export", headers=owner)
    assert posted.status_code == 202 and posted.json()["id"] != str(dead)
    dead_read = (await client.get(f"{team.show_url}/exports/{dead}", headers=owner)).json()
    assert dead_read["status"] == "failed" and "abandoned" in dead_read["error"]
    await wait_finished(client, f"{team.show_url}/exports/{posted.json()['id']}", team.owner)
