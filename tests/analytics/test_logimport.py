"""Access-log import: lines matched to the show's episode files (ours, former slugs, the old
host's URLs), hits written once however often a file comes, through the API and the CLI."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from amphora.analytics import logs_router
from amphora.analytics.geo import GeoIP
from amphora.analytics.logimport import import_log
from amphora.cli import app as cli_app
from amphora.delivery.hits import client_hash, client_hash_key
from amphora.kit.clock import utcnow
from amphora.models import (
    Episode,
    Hit,
    ImportFile,
    ImportItem,
    LogImport,
    MediaFile,
    ShowImport,
)
from amphora.models.import_file import FileKind
from amphora.runtime import Runtime, make_jobs, open_runtime
from amphora.settings import Settings
from tests.analytics.geodb import build_geodb
from tests.catalog import Team
from tests.delivery.seed import (
    SeededEpisode,
    SeededShow,
    add_old_slug,
    seed_episode,
    seed_show,
)
from tests.helpers import API

AppClient = tuple[Any, httpx.AsyncClient]
APPLE = "AppleCoreMedia/1.0.0.20E247 (iPhone; U; CPU OS 16_4 like Mac OS X; en_us)"
OVERCAST = "Overcast/3.0 (+http://overcast.fm/; iOS podcast app)"
OLD_HOST_URL = "https://traffic.oldhost.example/lighthouse/ep1.mp3?awCollectionId=12"
TRACKED_URL = "https://dts.podtrac.example/redirect.mp3/cdn.oldhost.example/lighthouse/ep3.mp3"


# --- the catalog ---------------------------------------------------------------------------------


@dataclass
class Catalog:
    show: SeededShow
    former_slug: str
    episode: SeededEpisode  # ours, its file replaced once
    old_media_id: uuid.UUID  # the file the import brought over (superseded since)
    remote_id: uuid.UUID  # imported without mirroring: its audio stays at the old host
    other: SeededEpisode  # an episode of another show


async def _add_media(runtime: Runtime, episode: SeededEpisode, *, filename: str) -> uuid.UUID:
    """A new file for the episode (the old one superseded), as replacing the audio does."""
    async with runtime.db.session() as session:
        old = await session.get(MediaFile, episode.media_id)
        assert old is not None
        old.original_filename = filename
        old.superseded_at = utcnow()
        new = MediaFile(
            owner_id=old.owner_id,
            show_id=old.show_id,
            episode_id=old.episode_id,
            storage_key=f"media/{old.show_id}/{uuid.uuid4()}.mp3",
            kind="audio",
            container="mp3",
            content_type="audio/mpeg",
            extension="mp3",
            size=old.size,
            sha256=old.sha256,
            duration_s=old.duration_s,
            bitrate=old.bitrate,
        )
        session.add(new)
        await session.flush()
        row = await session.get(Episode, episode.id)
        assert row is not None
        row.media_id = new.id
        return new.id


async def seed_catalog(runtime: Runtime, show: SeededShow) -> Catalog:
    former = f"old-{show.slug}"[:80]
    await add_old_slug(runtime, show, former)
    episode = await seed_episode(runtime, show)
    old_media_id = episode.media_id
    episode.media_id = await _add_media(runtime, episode, filename="ep1.mp3")
    async with runtime.db.session() as session:
        # The show came from another host: the import remembers where each file was.
        imp = ShowImport(owner_id=show.owner_id, show_id=show.id, feed_url="https://x.example/f")
        session.add(imp)
        await session.flush()
        item = ImportItem(import_id=imp.id, episode_id=episode.id, guid="ep1", digest="0" * 64)
        session.add(item)
        await session.flush()
        session.add(
            ImportFile(
                import_id=imp.id,
                item_id=item.id,
                key="k" * 64,
                kind=FileKind.media,
                url=OLD_HOST_URL,
            )
        )
        remote = Episode(
            show_id=show.id,
            guid="ep3",
            title="Still at the old host",
            publish_at=utcnow() - timedelta(days=2),
            remote_media={"url": TRACKED_URL, "length": 1000, "type": "audio/mpeg"},
        )
        session.add(remote)
        await session.flush()
        remote_id = remote.id
    other = await seed_episode(runtime, await seed_show(runtime))
    return Catalog(show, former, episode, old_media_id, remote_id, other)


def team_show(team: Team) -> SeededShow:
    show = team.show
    return SeededShow(uuid.UUID(show["id"]), show["slug"], uuid.UUID(show["owner_id"]))


# --- log lines -----------------------------------------------------------------------------------

# A week ago: in the past and inside the hit retention whenever the suite runs.
T0 = (utcnow() - timedelta(days=7)).replace(hour=8, minute=15, second=0, microsecond=0)


@dataclass
class Line:
    text: str
    ip: str
    at: datetime
    method: str = "GET"
    status: int = 200
    size: int = 0
    agent: str | None = None
    referer: str | None = None


def combined(
    path: str,
    *,
    ip: str = "203.0.113.7",
    seconds: int = 0,
    method: str = "GET",
    status: int = 200,
    size: int = 1000,
    agent: str | None = APPLE,
    referer: str | None = None,
) -> Line:
    at = T0 + timedelta(seconds=seconds)
    # Logged in the server's local time (UTC+1 here): stored in UTC.
    stamp = (at + timedelta(hours=1)).strftime("%d/%b/%Y:%H:%M:%S +0100")
    text = (
        f'{ip} - - [{stamp}] "{method} {path} HTTP/1.1" {status} {size} '
        f'"{referer or "-"}" "{agent or "-"}"'
    )
    return Line(text, ip, at, method, status, size, agent, referer)


def our_url(catalog: Catalog, *, slug: str | None = None, media: uuid.UUID | None = None) -> str:
    episode = catalog.episode
    return f"/e/{slug or catalog.show.slug}/{episode.id}/{media or episode.media_id}.mp3"


@dataclass
class Log:
    text: str
    matched: list[tuple[Line, uuid.UUID, uuid.UUID | None]]  # line, episode, media
    unmatched: int
    malformed: int

    @property
    def lines(self) -> int:
        return len(self.matched) + self.unmatched + self.malformed

    def body(self) -> bytes:
        return self.text.encode()


def sample_log(catalog: Catalog) -> Log:
    episode, remote = catalog.episode, catalog.remote_id
    probe = combined(our_url(catalog) + "?key=abc", status=206, size=2, referer="https://ex.com/")
    former = combined(
        our_url(catalog, slug=catalog.former_slug, media=catalog.old_media_id),
        ip="2001:db8:7:1::10",
        seconds=5,
        agent=OVERCAST,
        size=52_000,
    )
    old_host = combined("/lighthouse/ep1.mp3?awCollectionId=12", ip="198.51.100.4", seconds=9)
    tracked = combined("/lighthouse/ep3.mp3", ip="198.51.100.5", seconds=12, method="HEAD", size=0)
    other = combined(catalog.other.url(), seconds=20)
    feed = combined("/feed.xml", seconds=21)
    matched = [
        (probe, episode.id, episode.media_id),
        (former, episode.id, catalog.old_media_id),
        (old_host, episode.id, catalog.old_media_id),  # the file the import brought
        (tracked, remote, None),  # not ours: no media file
        (probe, episode.id, episode.media_id),  # the very same line again: another request
    ]
    text = "\n".join(
        [
            probe.text,
            former.text,
            "",  # blank lines are not lines
            old_host.text,
            tracked.text,
            other.text,
            'this is not a log line "at all"',
            feed.text,
            probe.text,
        ]
    )
    return Log(text + "\r\n", matched, unmatched=2, malformed=1)


async def hits_of_show(runtime: Runtime, show_id: uuid.UUID) -> list[Hit]:
    async with runtime.db.session(write=False) as session:
        return list(
            await session.scalars(select(Hit).where(Hit.show_id == show_id).order_by(Hit.id))
        )


def check_hits(rows: list[Hit], log: Log, settings: Settings, source: str) -> None:
    key = client_hash_key(settings.resolved_secret_key)
    expected = sorted(
        (
            line.at,
            episode_id,
            media_id,
            line.method,
            line.status,
            line.size,
            client_hash(key, line.ip),
            line.agent,
            line.referer,
        )
        for line, episode_id, media_id in log.matched
    )
    got = sorted(
        (
            h.at,
            h.episode_id,
            h.media_id,
            h.method,
            h.status,
            h.bytes_sent,
            h.client_hash,
            h.user_agent,
            h.referer,
        )
        for h in rows
    )
    assert got == expected
    for hit in rows:
        assert hit.source == source
        assert hit.range is None and hit.subscriber_id is None and hit.session_id is None
        assert hit.dedupe_key is not None and len(hit.dedupe_key) == 32
        int(hit.dedupe_key, 16)
    assert len({h.dedupe_key for h in rows}) == len(rows)


def counts(body: dict[str, Any]) -> tuple[int, int, int, int, int]:
    return (
        body["lines"],
        body["imported"],
        body["duplicates"],
        body["unmatched"],
        body["malformed"],
    )


# --- through the API -----------------------------------------------------------------------------


def logs_url(team: Team, fmt: str = "combined") -> str:
    return f"{team.show_url}/analytics/logs?format={fmt}"


async def post_log(
    client: httpx.AsyncClient,
    team: Team,
    body: bytes,
    *,
    fmt: str = "combined",
    content_type: str = "text/plain",
    name: str | None = None,
) -> httpx.Response:
    url = logs_url(team, fmt) + (f"&name={name}" if name else "")
    headers = {**team.editor.headers, "Content-Type": content_type}
    return await client.post(url, content=body, headers=headers)


async def test_import_matches_counts_and_never_doubles(
    app_client: AppClient, team: Team, settings: Settings
) -> None:
    app, client = app_client
    runtime: Runtime = app.state.runtime
    catalog = await seed_catalog(runtime, team_show(team))
    log = sample_log(catalog)

    first = await post_log(client, team, log.body(), name="access.log")
    assert first.status_code == 201, first.text
    body = first.json()
    assert counts(body) == (log.lines, len(log.matched), 0, log.unmatched, log.malformed)
    assert body["format"] == "combined" and body["file_name"] == "access.log"
    assert body["show_id"] == team.show["id"] and body["user_id"] == team.editor.id
    rows = await hits_of_show(runtime, catalog.show.id)
    check_hits(rows, log, settings, "log:combined")
    assert await hits_of_show(runtime, catalog.other.show.id) == []  # unmatched: not theirs

    # The same file again, gzipped, or the two one after the other in one file: nothing new.
    again = await post_log(client, team, log.body())
    assert counts(again.json()) == (log.lines, 0, len(log.matched), log.unmatched, log.malformed)
    zipped = await post_log(
        client, team, gzip.compress(log.body()), content_type="application/gzip"
    )
    assert zipped.status_code == 201, zipped.text
    assert zipped.json()["imported"] == 0 and zipped.json()["duplicates"] == len(log.matched)
    assert len(await hits_of_show(runtime, catalog.show.id)) == len(log.matched)

    # A later file overlapping this one (gzip members concatenated, as `cat a.gz b.gz` makes):
    # only its new line is new.
    later = combined(our_url(catalog), ip="192.0.2.77", seconds=3600, agent=OVERCAST)
    overlap = gzip.compress(log.body()) + gzip.compress(later.text.encode() + b"\n")
    more = await post_log(client, team, overlap, content_type="application/octet-stream")
    assert more.status_code == 201, more.text
    assert counts(more.json()) == (
        log.lines + 1,
        1,
        len(log.matched),
        log.unmatched,
        log.malformed,
    )
    rows = await hits_of_show(runtime, catalog.show.id)
    check_hits(
        rows,
        Log("", [*log.matched, (later, catalog.episode.id, catalog.episode.media_id)], 0, 0),
        settings,
        "log:combined",
    )

    # Viewers see the imports, newest first.
    listed = await client.get(f"{team.show_url}/analytics/logs", headers=team.viewer.headers)
    assert listed.status_code == 200, listed.text
    imports = listed.json()
    assert [i["imported"] for i in imports] == [1, 0, 0, len(log.matched)]
    assert imports[-1]["id"] == body["id"]


async def test_cloudfront_logs(app_client: AppClient, team: Team, settings: Settings) -> None:
    app, client = app_client
    runtime: Runtime = app.state.runtime
    catalog = await seed_catalog(runtime, team_show(team))
    fields = "date time c-ip cs-method cs-uri-stem sc-status sc-bytes cs(User-Agent) cs(Referer)"
    at = T0 + timedelta(minutes=1)
    line = Line("", "2001:db8::99", at, "GET", 206, 4096, APPLE, None)
    text = "\n".join(
        [
            "#Version: 1.0",
            "#Fields: " + fields,
            "\t".join(
                [
                    at.strftime("%Y-%m-%d"),
                    at.strftime("%H:%M:%S"),
                    line.ip,
                    "GET",
                    our_url(catalog),
                    "206",
                    "4096",
                    APPLE.replace(" ", "%20"),
                    "-",
                ]
            ),
            f"{T0:%Y-%m-%d}\t08:16:00\t203.0.113.9\tGET\t/other.mp3\t200\t1\tUA\t-",
            "broken\tline",
        ]
    )
    response = await post_log(client, team, text.encode(), fmt="cloudfront")
    assert response.status_code == 201, response.text
    assert counts(response.json()) == (3, 1, 0, 1, 1)
    rows = await hits_of_show(runtime, catalog.show.id)
    check_hits(
        rows,
        Log("", [(line, catalog.episode.id, catalog.episode.media_id)], 0, 0),
        settings,
        "log:cloudfront",
    )


async def test_who_may_import_and_see(app_client: AppClient, team: Team) -> None:
    _, client = app_client
    body = combined("/a.mp3").text.encode()
    for account, expected in ((team.stranger, 404), (team.viewer, 403)):
        response = await client.post(
            logs_url(team), content=body, headers={**account.headers, "Content-Type": "text/plain"}
        )
        assert response.status_code == expected, response.text
    missing = f"{API}/shows/{uuid.uuid4()}/analytics/logs"
    unknown = await client.post(
        missing + "?format=combined", content=body, headers=team.owner.headers
    )
    assert unknown.status_code == 404
    hidden = await client.get(f"{team.show_url}/analytics/logs", headers=team.stranger.headers)
    assert hidden.status_code == 404
    assert (await client.get(f"{team.show_url}/analytics/logs")).status_code == 401


async def test_what_is_no_log_is_refused(
    app_client: AppClient, team: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, client = app_client
    html = b"<html>\n<body>Not a log</body>\n</html>\n"
    refused = await post_log(client, team, html)
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "not_a_log"
    combined_as_cloudfront = await post_log(
        client, team, combined("/a.mp3").text.encode(), fmt="cloudfront"
    )
    assert combined_as_cloudfront.json()["error"]["code"] == "not_a_log"
    broken = await post_log(
        client, team, b"\x1f\x8b\x08\x00garbage", content_type="application/gzip"
    )
    assert broken.status_code == 422 and broken.json()["error"]["code"] == "bad_gzip"
    whole = gzip.compress(
        b"".join(b"%d %s\n" % (n, combined("/a.mp3").text.encode()) for n in range(99))
    )
    cut = await post_log(client, team, whole[: len(whole) // 2])
    assert cut.status_code == 422 and cut.json()["error"]["code"] == "bad_gzip"
    wrong_format = await post_log(client, team, b"", fmt="w3c")
    assert wrong_format.status_code == 422
    json_body = await post_log(client, team, b"{}", content_type="application/json")
    assert json_body.status_code == 415
    empty = await post_log(client, team, b"")
    assert empty.status_code == 201 and counts(empty.json()) == (0, 0, 0, 0, 0)

    # Too large: declared up front, or found out while streaming.
    monkeypatch.setattr(logs_router, "MAX_LOG_BYTES", 1000)
    big = (combined("/a.mp3").text + "\n").encode() * 20
    declared = await post_log(client, team, big)
    assert declared.status_code == 413

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(big), 100):
            yield big[start : start + 100]

    streamed = await client.post(logs_url(team), content=chunks(), headers={**team.editor.headers})
    assert streamed.status_code == 413
    listed = await client.get(f"{team.show_url}/analytics/logs", headers=team.owner.headers)
    assert [i["lines"] for i in listed.json()] == [0]  # only the empty file was recorded


async def test_long_lines_and_located_hits(
    app_client: AppClient, team: Team, settings: Settings, tmp_path: Path
) -> None:
    app, client = app_client
    runtime: Runtime = app.state.runtime
    catalog = await seed_catalog(runtime, team_show(team))
    # A 200 KB "line" is no log line, and is not held whole either.
    good = combined(our_url(catalog), ip="198.51.100.7")
    body = b"A" * 200_000 + b"\n" + good.text.encode() + b"\n" + b"B" * 70_000
    response = await post_log(client, team, body)
    assert response.status_code == 201, response.text
    assert counts(response.json()) == (3, 1, 0, 0, 2)

    geo = GeoIP(build_geodb(tmp_path / "city.mmdb"))
    located = combined(our_url(catalog), ip="2001:db8:5::1", seconds=60)
    record = await import_log(
        runtime.db,
        show_id=catalog.show.id,
        user_id=None,
        fmt="combined",
        lines=[located.text.encode(), good.text.encode()],
        file_name=None,
        key=client_hash_key(settings.resolved_secret_key),
        geo=geo,
    )
    assert (record.imported, record.duplicates) == (1, 1)
    rows = await hits_of_show(runtime, catalog.show.id)
    assert {(h.client_hash, h.country, h.region) for h in rows} == {
        (client_hash(client_hash_key(settings.resolved_secret_key), good.ip), None, None),
        (
            client_hash(client_hash_key(settings.resolved_secret_key), located.ip),
            "FR",
            "FR-IDF",
        ),
    }


async def test_big_files_are_written_in_many_transactions(
    app_client: AppClient, team: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    from amphora.analytics import logimport

    monkeypatch.setattr(logimport, "LINES_PER_BATCH", 7)
    monkeypatch.setattr(logimport, "ROWS_PER_WRITE", 5)
    monkeypatch.setattr(logimport, "ROWS_PER_STATEMENT", 2)
    app, client = app_client
    runtime: Runtime = app.state.runtime
    catalog = await seed_catalog(runtime, team_show(team))
    lines = [combined(our_url(catalog), ip=f"192.0.2.{n}", seconds=n).text for n in range(1, 48)]
    lines[10] = "not a line"
    lines[20] = combined("/feed.xml").text
    body = ("\n".join(lines) + "\n").encode()
    first = await post_log(client, team, gzip.compress(body), content_type="application/gzip")
    assert counts(first.json()) == (47, 45, 0, 1, 1)
    second = await post_log(client, team, body)
    assert counts(second.json()) == (47, 0, 45, 1, 1)
    assert len(await hits_of_show(runtime, catalog.show.id)) == 45
    # Stored times compare as any other: the hits of the first half minute.
    async with runtime.db.session(write=False) as session:
        early = await session.scalars(
            select(Hit.at).where(
                Hit.show_id == catalog.show.id, Hit.at < T0 + timedelta(seconds=30)
            )
        )
        assert sorted(early) == [
            T0 + timedelta(seconds=n) for n in range(1, 30) if n not in (11, 21)
        ]


# --- the command ---------------------------------------------------------------------------------

SECRET = "cli-secret-" + "y" * 40


@pytest.fixture
def cli_data(tmp_path: Path, sqlite_template: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    import os

    for name in list(os.environ):
        if name.startswith("AMPHORA_"):
            monkeypatch.delenv(name)
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(sqlite_template, data / "amphora.db")
    monkeypatch.setenv("AMPHORA_DATA_DIR", str(data))
    monkeypatch.setenv("AMPHORA_SECRET_KEY", SECRET)
    monkeypatch.setenv("AMPHORA_LOG_LEVEL", "WARNING")
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.chdir(tmp_path)  # no stray .env file
    return Settings(data_dir=data, secret_key=SECRET)


def test_import_logs_command(cli_data: Settings, tmp_path: Path) -> None:
    async def seed() -> Catalog:
        runtime = open_runtime(cli_data, make_jobs(cli_data))
        try:
            return await seed_catalog(runtime, await seed_show(runtime))
        finally:
            await runtime.aclose()

    catalog = asyncio.run(seed())
    log = sample_log(catalog)
    plain = tmp_path / "access.log"
    plain.write_text(log.text)
    zipped = tmp_path / "access.log.1.gz"
    zipped.write_bytes(gzip.compress(log.body()))
    runner = CliRunner()
    args = ["analytics", "import-logs", "--show", catalog.show.slug, "--format", "combined"]

    result = runner.invoke(cli_app, [*args, str(plain), str(zipped)])
    assert result.exit_code == 0, result.output
    n, m = log.lines, len(log.matched)
    assert (
        f"access.log: {n} lines, {m} imported, 0 duplicates, {log.unmatched} unmatched, "
        f"{log.malformed} malformed" in result.output
    )
    assert f"access.log.1.gz: {n} lines, 0 imported, {m} duplicates" in result.output

    async def stored() -> tuple[list[Hit], list[LogImport]]:
        runtime = open_runtime(cli_data, make_jobs(cli_data))
        try:
            async with runtime.db.session(write=False) as session:
                imports = list(
                    await session.scalars(select(LogImport).order_by(LogImport.created_at))
                )
            return await hits_of_show(runtime, catalog.show.id), imports
        finally:
            await runtime.aclose()

    rows, imports = asyncio.run(stored())
    check_hits(rows, log, cli_data, "log:combined")
    assert [(i.file_name, i.user_id, i.imported) for i in imports] == [
        ("access.log", None, m),
        ("access.log.1.gz", None, 0),
    ]

    missing = runner.invoke(cli_app, [*args, str(plain), str(tmp_path / "nope.log")])
    assert missing.exit_code == 2 and "nope.log" in missing.output
    no_show = runner.invoke(cli_app, [*args[:3], "no-such-show", str(plain)])
    assert no_show.exit_code == 2 and "no-such-show" in no_show.output
    bad_format = runner.invoke(cli_app, [*args[:5], "w3c", str(plain)])
    assert bad_format.exit_code == 2
    junk = tmp_path / "junk.txt"
    junk.write_text("hello\nworld\n")
    refused = runner.invoke(cli_app, [*args, str(junk), str(plain)])
    assert refused.exit_code == 1
    assert "junk.txt" in refused.output and f"{n} lines, 0 imported" in refused.output


def test_dedupe_keys_depend_on_the_show_and_the_line() -> None:
    # The key is a function of (show, line, occurrence): equal lines of two shows differ, and
    # the n-th copy of a line in a file is another request than the first.
    from amphora.analytics.logimport import _Reader

    line = combined("/a.mp3").text.encode()
    one = _Reader(show_id=uuid.uuid4(), fmt="combined", targets={}, key=b"k", geo=None)
    two = _Reader(show_id=uuid.uuid4(), fmt="combined", targets={}, key=b"k", geo=None)
    first, second = one.dedupe_key(line, T0), one.dedupe_key(line, T0)
    assert len({first, second, two.dedupe_key(line, T0)}) == 3
    again = _Reader(show_id=one.show_id, fmt="combined", targets={}, key=b"k", geo=None)
    assert [again.dedupe_key(line, T0), again.dedupe_key(line, T0)] == [first, second]
    # The line's second leads (so the unique index grows at its end, as time goes).
    assert first[:8] == second[:8] == f"{int(T0.timestamp()):08x}"
    assert hashlib.sha256(line).hexdigest()[:24] not in first  # the show is hashed in too
