"""An export imported into Amphora again (as another creator would on another server): every
field, status, file and tag comes back unchanged, and exporting the imported show gives the
same archive. Zips that are no export are refused at the upload and leave nothing."""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path
from typing import Any

import httpx

from amphora.feed_import.archive import archives_dir
from amphora.runtime import Runtime
from tests.catalog import Team
from tests.feed_import.sample import wait_for_status
from tests.feed_import.test_export import build_catalog, fetch, sha, wait_finished
from tests.helpers import API, Account

ZIP = {"Content-Type": "application/zip"}


async def export_zip(client: httpx.AsyncClient, show_url: str, account: Account) -> bytes:
    posted = await client.post(f"{show_url}/export", headers=account.headers)
    assert posted.status_code == 202, posted.text
    export = await wait_finished(client, f"{show_url}/exports/{posted.json()['id']}", account)
    assert export["status"] == "done", export
    download = export["download_url"].removeprefix("http://testserver")
    return (await fetch(client, download, headers=account.headers)).content


def _files(archive: zipfile.ZipFile, entry: dict[str, Any] | None) -> Any:
    """A file entry of the manifest as what it holds (paths name rows, so they differ)."""
    if entry is None:
        return None
    data = archive.read(entry["path"])
    assert sha(data) == entry.get("sha256", sha(data))
    return {**{k: v for k, v in entry.items() if k != "path"}, "sha256": sha(data)}


def comparable(data: bytes) -> tuple[dict[str, Any], bytes]:
    """The manifest without what names rows of one server (ids, paths, the slug), and the
    feed with every row id replaced by its place, so that two servers' archives compare
    equal."""
    archive = zipfile.ZipFile(io.BytesIO(data))
    manifest = json.loads(archive.read("manifest.json"))
    series = {s["id"]: s["name"] for s in manifest["series"]}
    episodes = []
    for entry in manifest["episodes"]:
        fields = dict(entry["fields"])
        fields["series_id"] = series.get(fields["series_id"])
        episodes.append(
            {
                "fields": fields,
                "remote_media": entry["remote_media"],
                "media": _files(archive, entry["media"]),
                "artwork": _files(archive, entry["artwork"]),
                "transcripts": [_files(archive, t) for t in entry["transcripts"]],
                "chapters": archive.read(entry["chapters"]["path"]) if entry["chapters"] else None,
            }
        )
    feed = archive.read("feed.xml")
    ids = [entry["id"] for entry in manifest["episodes"]]
    ids += [Path(t["path"]).stem for e in manifest["episodes"] for t in e["transcripts"]]
    for place, row_id in enumerate(ids):
        feed = feed.replace(row_id.encode(), f"row-{place}".encode())
    feed = re.sub(rb"<lastBuildDate>[^<]*</lastBuildDate>", b"", feed)
    feed = feed.replace(f"/feeds/{manifest['show']['slug']}.xml".encode(), b"/feeds/SLUG.xml")
    show = {k: v for k, v in manifest["show"].items() if k != "slug"}
    return {
        "show": show,
        "artwork": _files(archive, manifest["artwork"]),
        "series": [{k: v for k, v in s.items() if k != "id"} for s in manifest["series"]],
        "episodes": episodes,
    }, feed


async def test_an_export_imports_back_unchanged(
    client: httpx.AsyncClient, team: Team, runtime: Runtime
) -> None:
    made = await build_catalog(client, team)
    first = await export_zip(client, team.show_url, team.owner)

    mover = team.stranger  # a creator on "another server": this one, with the show taken
    started = await client.post(f"{API}/imports", content=first, headers={**mover.headers, **ZIP})
    assert started.status_code == 202, started.text
    assert started.json()["source"] == "archive"
    status = await wait_for_status(client, mover, started.json()["id"], "done", "failed")
    assert status["status"] == "done", status
    assert status["problems"] == []
    progress = status["progress"]
    assert progress["items_total"] == 4  # the trashed episode was not exported
    assert progress["files_done"] == progress["files_total"] > 0

    show = (await client.get(f"{API}/shows/{status['show_id']}", headers=mover.headers)).json()
    assert show["title"] == team.show["title"]
    assert show["slug"] != team.show["slug"]  # taken here; kept where it is free
    episodes = (
        await client.get(f"{API}/shows/{show['id']}/episodes", headers=mover.headers)
    ).json()
    items = episodes["items"] if isinstance(episodes, dict) else episodes
    by_title = {e["title"]: e for e in items}
    assert by_title.keys() == {"The Keeper's Log", "Bonus", "Next week", "Draft"}
    for name in ("published", "premium", "scheduled", "draft"):
        assert by_title[made[name]["title"]]["guid"] == made[name]["guid"], name

    # The whole archive again, from the imported show: the same show, files and feed.
    second = await export_zip(client, f"{API}/shows/{show['id']}", mover)
    before, after = comparable(first), comparable(second)
    assert after[0] == before[0]
    assert after[1] == before[1]

    # The public feed lists the same episodes with the same guids and dates.
    feeds = [
        (await client.get(f"/feeds/{slug}.xml")).text for slug in (team.show["slug"], show["slug"])
    ]
    guids = [re.findall(r"<guid[^>]*>([^<]*)</guid>", feed) for feed in feeds]
    dates = [re.findall(r"<pubDate>([^<]*)</pubDate>", feed) for feed in feeds]
    assert guids[0] == guids[1] == [made["published"]["guid"]]  # premium: subscribers only
    assert dates[0] == dates[1]

    # The uploaded zip is gone once the import ended.
    folder = archives_dir(runtime.settings)
    assert not list(folder.glob("*.zip"))


async def test_a_zip_that_is_no_export_is_refused_at_the_upload(
    client: httpx.AsyncClient, team: Team, runtime: Runtime
) -> None:
    headers = {**team.owner.headers, **ZIP}
    folder = archives_dir(runtime.settings)

    def zipped(**members: bytes | str) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for name, data in members.items():
                archive.writestr(name, data)
        return buffer.getvalue()

    manifest = {"format": "amphora-export", "version": 1, "show": {"title": "T"}}
    cases = {
        "not a zip": b"PK\x03\x04 but nothing after",
        "no manifest": zipped(**{"feed.xml": b"<rss/>"}),
        "not JSON": zipped(**{"manifest.json": b"{nope"}),
        "another format": zipped(**{"manifest.json": b'{"format": "other"}'}),
        "a newer version": zipped(**{"manifest.json": json.dumps({**manifest, "version": 9})}),
        "a bad show": zipped(
            **{"manifest.json": json.dumps({**manifest, "show": {"title": "", "explicit": 3}})}
        ),
    }
    for case, body in cases.items():
        answer = await client.post(f"{API}/imports", content=body, headers=headers)
        assert answer.status_code == 422, (case, answer.text)
        assert answer.json()["error"]["code"] == "archive_invalid", case
    assert not folder.exists() or not any(folder.iterdir())
    listed = await client.get(f"{API}/imports", headers=team.owner.headers)
    assert listed.json() == []
