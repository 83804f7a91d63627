"""Importing a show from another host: a 1,000-item feed's metadata; 100 files of 20 MB.

The "old host" is the Debian package's nginx on loopback, serving static files from the
bench's temp dir (a feed, show artwork, MP3s; byte ranges as any CDN does), so that the
source is never the bottleneck. Amphora is allowed to fetch from it with
``AMPHORA_FETCH_ALLOWED_NETWORKS=127.0.0.0/8`` (loopback is refused by default).

``metadata``: a generated RSS feed of 1,000 items shaped like a real one (notes in HTML,
enclosure, duration, season and number, explicit, a guest). ``POST /api/v1/imports`` with
``mirror_media: false`` (enclosures stay on the old host), then ``GET /api/v1/imports/{id}``
every 20 ms until ``done``: end-to-end time, three runs, each into a fresh server. For
comparison, in this process on the same bytes: ``feedparser.parse`` alone, and Amphora's own
parser (``amphora.feed_import.parse.parse_feed``) alone.

``mirror``: a feed of 100 items, each with its own 20 MiB MP3 (a one-minute 320 kb/s tone
repeated, made distinct by an ID3 title), imported with ``mirror_media: true``. Measured:
from the first byte of media fetched to the import being ``done``, total media bytes over
that time (the downloads run as jobs, ``import_concurrency`` at a time, each probed and
hashed like an upload), and the resident memory of the process that runs the jobs, sampled
every 50 ms: on SQLite the ``amphora serve`` process (the job consumer runs inside it), on
PostgreSQL + Redis a separate ``amphora worker``. Checked afterwards: 100 episodes, each with
media of the file's exact size.

MB here are MiB (2^20 bytes).
"""

from __future__ import annotations

import contextlib
import statistics
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    backend_env,
    create_user,
    exit_on_sigterm,
    free_port,
    login,
    new_credentials,
    nginx_server,
    rss_mb,
    running_server,
    start_server,
    stop_server,
    temp_dir,
    wanted_backends,
    write_result,
)

NAME = "feed_import"
MIB = 1024 * 1024
METADATA_ITEMS = 1000
METADATA_RUNS = 3
PARSE_RUNS = 5
MIRROR_FILES = 100
FILE_MB = 20
POLL_S = {"metadata": 0.02, "mirror": 0.25}  # how often the import is asked for its status
SAMPLE_EVERY_S = 0.05
IMPORT_TIMEOUT_S = 600
TARGETS = {
    "metadata_import_s_target": 3.0,
    "mirror_mb_s_target": 150,
    "worker_peak_rss_mb_target": 250,
}


# --- the old host's files -----------------------------------------------------------------------


def _item(n: int, enclosure_url: str, length: int, published: datetime) -> str:
    guest = f"https://example.com/guests/{n % 50}"
    return f"""
    <item>
      <title>Episode {n}: notes from the lighthouse, part {n % 7 + 1}</title>
      <guid isPermaLink="false">oldhost-{n:05d}-7d1f2c</guid>
      <pubDate>{format_datetime(published)}</pubDate>
      <link>https://lighthouse.example.com/episodes/{n}</link>
      <description><![CDATA[<p>In episode {n} we talk to the keeper about storms, ships and the
        <a href="https://lighthouse.example.com/log/{n}">logbook</a>.</p>
        <ul><li>00:00 Welcome</li><li>05:10 The storm of {1900 + n % 120}</li>
        <li>31:00 Listener mail</li></ul>]]></description>
      <enclosure url="{enclosure_url}" length="{length}" type="audio/mpeg"/>
      <itunes:duration>{n % 3600 // 60:02d}:{n % 60:02d}</itunes:duration>
      <itunes:season>{n // 100 + 1}</itunes:season>
      <itunes:episode>{n}</itunes:episode>
      <itunes:episodeType>full</itunes:episodeType>
      <itunes:explicit>{"yes" if n % 10 == 0 else "no"}</itunes:explicit>
      <podcast:person role="guest" href="{guest}">Guest {n % 50}</podcast:person>
    </item>"""


def feed_document(base: str, items: list[tuple[str, int]]) -> bytes:
    """An RSS feed with one item per ``(enclosure URL, length)``, newest first."""
    newest = datetime(2026, 11, 1, 7, tzinfo=UTC)
    body = "".join(
        _item(n, url, length, newest - timedelta(days=len(items) - n))
        for n, (url, length) in reversed(list(enumerate(items, start=1)))
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd"
     xmlns:podcast="https://podcastindex.org/namespace/1.0"
     xmlns:content="http://purl.org/rss/1.0/modules/content/">
  <channel>
    <title>The Lighthouse Hour</title>
    <link>https://lighthouse.example.com/</link>
    <description>Stories from the coast, every week.</description>
    <language>en-US</language>
    <itunes:author>Ada Lovelace</itunes:author>
    <itunes:owner><itunes:name>Ada</itunes:name><itunes:email>ada@example.com</itunes:email></itunes:owner>
    <itunes:image href="{base}/art.jpg"/>
    <itunes:category text="History"/>
    <itunes:explicit>false</itunes:explicit>
    <podcast:funding url="https://lighthouse.example.com/support">Support us</podcast:funding>
    {body}
  </channel>
</rss>""".encode()


def artwork() -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (1400, 1400), (30, 90, 140)).save(out, "JPEG", quality=85)
    return out.getvalue()


def write_mp3s(media_dir: Path) -> list[int]:
    """MIRROR_FILES distinct MP3s of FILE_MB each: one encoded tone, repeated, behind an ID3
    tag with the file's own title (so no two files have the same bytes or hash)."""
    from amphora.media.testaudio import _id3_tag, tone_mp3

    once = tone_mp3(60, bitrate_kbps=320, id3=False)
    audio = once * -(-FILE_MB * MIB // len(once))  # at least FILE_MB
    media_dir.mkdir(parents=True)
    sizes = []
    for n in range(1, MIRROR_FILES + 1):
        data = _id3_tag(f"Episode {n}", None) + audio
        (media_dir / f"ep{n}.mp3").write_bytes(data)
        sizes.append(len(data))
    return sizes


# --- measuring ----------------------------------------------------------------------------------


class RssSampler(threading.Thread):
    """Samples ``rss_mb(pid)`` (process and children) every 50 ms until stopped."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.samples: list[float] = []
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                self.samples.append(rss_mb(self.pid))
            except Exception:  # the process went away
                return
            self._halt.wait(SAMPLE_EVERY_S)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)


def run_import(api: httpx.Client, feed_url: str, *, mirror_media: bool) -> tuple[float, Any]:
    """``(seconds from the POST to done, the import)``."""
    started = time.perf_counter()
    created = api.post("/api/v1/imports", json={"feed_url": feed_url, "mirror_media": mirror_media})
    if created.status_code != 202:
        raise RuntimeError(f"POST /imports → {created.status_code}: {created.text}")
    import_id = created.json()["id"]
    while True:
        state = api.get(f"/api/v1/imports/{import_id}").json()
        if state["status"] in {"done", "failed", "cancelled"}:
            break
        if time.perf_counter() - started > IMPORT_TIMEOUT_S:
            raise TimeoutError(f"import still {state['status']} after {IMPORT_TIMEOUT_S} s")
        time.sleep(POLL_S["mirror" if mirror_media else "metadata"])
    elapsed = time.perf_counter() - started
    if state["status"] != "done":
        raise RuntimeError(f"import {state['status']}: {state['error']} {state['problems'][:5]}")
    return elapsed, state


def episodes_of(api: httpx.Client, show_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 200, **({"cursor": cursor} if cursor else {})}
        page = api.get(f"/api/v1/shows/{show_id}/episodes", params=params)
        page.raise_for_status()
        body = page.json()
        items += body["items"]
        cursor = body.get("next_cursor")
        if not cursor:
            return items


@contextlib.contextmanager
def server_with_user(
    backend: str, root: Path, **overrides: str
) -> Iterator[tuple[httpx.Client, int, Mapping[str, str]]]:
    """A fresh server (and, with Redis, a worker) with one verified user: ``(api, pid of the
    process that runs the jobs, env)``."""
    port = free_port()
    data_dir = root / f"data-{backend}-{time.monotonic_ns()}"
    settings = {
        "AMPHORA_FETCH_ALLOWED_NETWORKS": "127.0.0.0/8",
        "AMPHORA_DEFAULT_STORAGE_QUOTA_BYTES": str(10**12),
        **overrides,
    }
    with backend_env(backend, data_dir, port, **settings) as env:
        email, password = new_credentials()
        with running_server(env, data_dir, port) as server, worker(env, backend) as worker_pid:
            create_user(env, email, password, "Bench User")
            token = login(server.base_url, email, password)
            headers = {"Authorization": f"Bearer {token}"}
            with httpx.Client(base_url=server.base_url, headers=headers, timeout=120) as api:
                yield api, worker_pid or server.pid, env


@contextlib.contextmanager
def worker(env: Mapping[str, str], backend: str) -> Iterator[int | None]:
    """``amphora worker`` when jobs go through Redis (its pid); nothing on SQLite."""
    if backend == "sqlite":
        yield None
        return
    process = start_server(env, Path(env["AMPHORA_DATA_DIR"]), 0, command="worker")
    try:
        yield process.pid
    finally:
        stop_server(process)


def parse_alone(data: bytes, url: str) -> dict[str, Any]:
    """Median ms of feedparser and of our parser on the same bytes (after one warm-up)."""
    import feedparser  # type: ignore[import-untyped]

    from amphora.feed_import.parse import parse_feed

    timings: dict[str, list[float]] = {"feedparser_ms": [], "amphora_parse_feed_ms": []}
    checks = {
        "feedparser_entries": len(feedparser.parse(data).entries),
        "amphora_items": len(parse_feed(data, url=url).items),
    }
    for _ in range(PARSE_RUNS):
        started = time.perf_counter()
        feedparser.parse(data)
        timings["feedparser_ms"].append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        parse_feed(data, url=url)
        timings["amphora_parse_feed_ms"].append((time.perf_counter() - started) * 1000)
    return {k: round(statistics.median(v), 1) for k, v in timings.items()} | checks


def metadata(backend: str, root: Path, base: str, feed_url: str) -> dict[str, Any]:
    runs = []
    for _ in range(METADATA_RUNS):
        with server_with_user(backend, root) as (api, _pid, _env):
            elapsed, state = run_import(api, feed_url, mirror_media=False)
            episodes = episodes_of(api, state["show_id"])
        published = [e for e in episodes if e["status"] == "published"]
        if len(published) != METADATA_ITEMS or state["problems"]:
            raise RuntimeError(
                f"{len(published)} of {METADATA_ITEMS} published; problems {state['problems'][:5]}"
            )
        runs.append(round(elapsed, 3))
    return {"end_to_end_s": statistics.median(runs), "runs_s": runs}


def mirror(backend: str, root: Path, feed_url: str, sizes: list[int]) -> dict[str, Any]:
    with server_with_user(backend, root) as (api, job_pid, env):
        sampler = RssSampler(job_pid)
        baseline = rss_mb(job_pid)
        sampler.start()
        try:
            elapsed, state = run_import(api, feed_url, mirror_media=True)
        finally:
            sampler.stop()
        episodes = episodes_of(api, state["show_id"])
        concurrency = env.get("AMPHORA_IMPORT_CONCURRENCY", "4 (default)")
    got = sorted((e["media"] or {}).get("size", 0) for e in episodes)
    if got != sorted(sizes) or any(e["status"] != "published" for e in episodes):
        raise RuntimeError(f"media after the import: {got[:5]}… of {len(episodes)} episodes")
    total_mb = sum(sizes) / MIB
    return {
        "files": len(sizes),
        "total_mb": round(total_mb, 1),
        "import_concurrency": concurrency,
        "end_to_end_s": round(elapsed, 2),
        "throughput_mb_s": round(total_mb / elapsed, 1),
        "progress": state["progress"],
        "job_process": "amphora serve (embedded jobs)" if backend == "sqlite" else "amphora worker",
        "job_process_rss_mb": {
            "before": round(baseline, 1),
            "peak": round(max(sampler.samples, default=baseline), 1),
            "samples": len(sampler.samples),
        },
    }


def main() -> dict[str, Any]:
    results: dict[str, Any] = {}
    with temp_dir() as root:
        site = root / "site"
        site.mkdir()
        (site / "art.jpg").write_bytes(artwork())
        started = time.perf_counter()
        sizes = write_mp3s(site / "media")
        build_s = round(time.perf_counter() - started, 1)
        files = sorted(p for p in site.rglob("*") if p.is_file())
        locations = f"location / {{ root {site}; }}"
        with nginx_server(locations, workers=1, files=files, within=root) as (base, _pid):
            meta_doc = feed_document(
                base, [(f"{base}/media/old-{n}.mp3", 48_000_000) for n in range(METADATA_ITEMS)]
            )
            mirror_doc = feed_document(
                base, [(f"{base}/media/ep{n}.mp3", size) for n, size in enumerate(sizes, 1)]
            )
            for name, doc in (("metadata.xml", meta_doc), ("mirror.xml", mirror_doc)):
                (site / name).write_bytes(doc)
                (site / name).chmod(0o644)
            results["parse_alone"] = parse_alone(meta_doc, f"{base}/metadata.xml")
            results["feed_bytes"] = len(meta_doc)
            for backend in wanted_backends():
                results[backend] = {
                    "metadata": metadata(backend, root, base, f"{base}/metadata.xml"),
                    "mirror": mirror(backend, root, f"{base}/mirror.xml", sizes),
                }
    met = {}
    for backend in wanted_backends():
        figures = results[backend]
        met[backend] = {
            "metadata_import_s": figures["metadata"]["end_to_end_s"]
            < TARGETS["metadata_import_s_target"],
            "mirror_mb_s": figures["mirror"]["throughput_mb_s"] >= TARGETS["mirror_mb_s_target"],
            "worker_peak_rss_mb": figures["mirror"]["job_process_rss_mb"]["peak"]
            < TARGETS["worker_peak_rss_mb_target"],
        }
    return write_result(
        NAME,
        {
            "items": METADATA_ITEMS,
            "mirror_files": MIRROR_FILES,
            "file_mb": FILE_MB,
            "mp3_build_s": build_s,
            "targets": TARGETS,
            **results,
            "met": met,
        },
    )


if __name__ == "__main__":
    exit_on_sigterm()
    main()
