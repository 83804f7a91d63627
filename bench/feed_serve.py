"""Serving feeds: the render pipeline in-process, then the cached feed over HTTP against nginx.

1. Render pipeline (in-process, ``amphora.feed.service.serve_feed`` on a real database, SQLite;
   ``--postgres`` adds PostgreSQL + Redis). Two shows are seeded straight into the database, one
   with 1,000 and one with 10,000 published episodes, each with a ``media_files`` row, ~1 KB of
   HTML notes, two persons, season and number. Measured (ms, wall time):

   - ``cold_1000`` / ``cold_10000``: a miss with an empty item-fragment cache (a fresh
     ``amphora.feed.loader.FRAGMENTS``) and the show's cached feeds invalidated: slug, listing,
     every episode loaded and rendered, the document assembled (median of 7 / 3);
   - ``rerender_10000_one_edit``: one episode's title changed in one write session that bumps
     the episode's and the show's ``version`` (as the API does); its commit hook invalidates the
     cached feed; then the next ``serve_feed`` miss, with 9,999 fragments still cached (median
     of 7);
   - ``cached_hit_us``: ``serve_feed`` answering from the cache (µs; identity and gzip, for both
     shows);
   - ``event_loop_lag_ms``: a ticker task (``asyncio.sleep(0.005)`` in a loop) runs during the
     10,000-episode renders; its worst lateness is how long the loop was blocked.

   One untimed render of each feed comes first (the process's first render also warms
   SQLAlchemy's statement caches), reported as ``first_render_in_process_ms``.

2. Cached feed over HTTP: ``amphora serve`` (embedded defaults: SQLite, in-process cache, one
   process) on the same data dir; ``wrk -t2 -c64`` with ``Accept-Encoding: gzip`` on
   ``/feeds/<1,000-episode show>.xml`` (requests/s, latency, errors), then the same with
   ``If-None-Match: <the gzip ETag>`` (every answer must be a 304). Then nginx serving the very
   same gzip bytes as a static file (``Content-Encoding: gzip``), with 2 worker processes and
   with 1, under the same wrk flags (and its own ETag for the 304 run). Each wrk run is preceded
   by an unmeasured warm-up. For reference: amphora's ``/healthz`` under the same load (the
   framework's floor) and a bare ASGI callable on uvicorn answering the same bytes and 304s
   (the server stack's ceiling); and, in-process, the median cost of one request through the
   app's ASGI callable, of the feed route's function alone, of a cache hit and of a thread hop.

Options: ``--quick`` (5 s per wrk run instead of 30), ``--duration S``, ``--postgres``,
``--only render|http``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import gzip
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping, MutableMapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import psutil  # type: ignore[import-untyped]

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    StatementRecorder,
    backend_env,
    cpu_seconds,
    create_user,
    db_upgrade,
    exit_on_sigterm,
    fetch,
    foreground_process,
    free_port,
    new_credentials,
    nginx_server,
    percentile,
    running_server,
    settings_for,
    temp_dir,
    write_result,
)
from seed import TextGen, analyze, create_shows, episode_row, insert_media, media_row

NAME = "feed_serve"
SHOWS = (("Bench Feed Small", 1_000), ("Bench Feed Large", 10_000))
BATCH = 2_000
RUNS_COLD_SMALL = 7
RUNS_COLD_LARGE = 3
RUNS_EDIT = 7
CACHED_HITS = 2_000
PER_REQUEST_SAMPLES = 2_000
TICK_S = 0.005

WRK_THREADS = 2
CONNECTIONS = 64
DURATION_S = 30
QUICK_DURATION_S = 5
WARMUP_S = 5
QUICK_WARMUP_S = 2
REQUEST_TIMEOUT_S = 10

TARGETS = {
    # Given for this benchmark.
    "amphora_vs_nginx_target": 0.5,  # requests/s ratio, gzip 200s, nginx with 2 workers
    "not_modified_rps_target": 5_000,
    # The budgets of bench/feed_render.py (pure builders), applied here end to end.
    "cold_1000_ms_target": 150,
    "cold_10000_ms_target": 1_500,
    "rerender_10000_ms_target": 150,
    # Ours: the loop must keep answering other requests during a big render.
    "event_loop_lag_ms_target": 100,
}

# wrk: one JSON line at the end. With WRK_COUNT_STATUS in place of COUNT_STATUS the script also
# counts every response's status (wrk then hands each response to Lua: used for the 304 runs,
# whose bodies are empty); the 200 runs are checked by bytes per response and wrk's own error
# count (status >= 400) instead, so that wrk spends no time copying big bodies into Lua.
WRK_LUA = r"""
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  s200 = 0
  s304 = 0
  other = 0
end

COUNT_STATUS

function done(summary, latency, requests)
  local a, b, c = 0, 0, 0
  for _, thread in ipairs(threads) do
    a = a + thread:get("s200")
    b = b + thread:get("s304")
    c = c + thread:get("other")
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"status": {"200": %d, "304": %d, "other": %d}, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"latency_us": {"mean": %.1f, "max": %d, "p50": %d, "p90": %d, "p99": %d, ' ..
    '"p99.9": %d}}\n',
    summary.requests, summary.duration, summary.bytes, a, b, c,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.max, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9)))
end
"""
WRK_COUNT_STATUS = """
function response(status, headers, body)
  if status == 200 then
    s200 = s200 + 1
  elseif status == 304 then
    s304 = s304 + 1
  else
    other = other + 1
  end
end
"""

# Served by common.nginx_server: the gzip bytes of the feed as a static file.
NGINX_LOCATION = """
location = {path} {{
    alias {file};
    default_type application/rss+xml;
    charset utf-8;
    add_header Content-Encoding gzip;
    add_header Vary Accept-Encoding;
    add_header Cache-Control "public, no-cache";
}}
"""


# --- seeding ---------------------------------------------------------------------------------


@dataclass
class SeededShow:
    show_id: uuid.UUID
    slug: str
    episodes: int
    episode_ids: list[uuid.UUID]  # newest first, as in the feed


def notes(gen: TextGen, slug: str, n: int) -> str:
    """~1 KB of show notes as an editor writes them: paragraphs, emphasis, a list of links."""
    links = "".join(
        f'<li><a href="https://example.com/{slug}/{n}/{k}">{gen.title()}</a></li>' for k in range(3)
    )
    first = " ".join(gen.sentence() for _ in range(3))
    second = " ".join(gen.sentence() for _ in range(2))
    html = (
        f"<p>{first}</p><p>In this episode: <strong>{gen.title()}</strong>. {second}</p>"
        f"<ul>{links}</ul>"
    )
    while len(html) < 950:
        html += f"<p>{gen.sentence()}</p>"
    return html


async def seed(env: Mapping[str, str], email: str) -> tuple[list[SeededShow], dict[str, Any]]:
    """Both shows with their published episodes and media rows; ``(shows, info)``."""
    from sqlalchemy import insert

    from amphora.kit.db import Database
    from amphora.models import Episode

    started = time.perf_counter()
    gen = TextGen(seed=7, surnames=500)
    settings = settings_for(env)
    db = Database(settings.resolved_database_url)
    note_bytes: list[int] = []
    try:
        async with db.session() as session:
            user, created = await create_shows(
                session, gen, email, [title for title, _ in SHOWS], settings.base_url
            )
            owner_id, host = user.id, user.display_name
            shows = [
                SeededShow(show.id, show.slug, count, [])
                for show, (_title, count) in zip(created, SHOWS, strict=True)
            ]
        now = datetime.now(UTC)
        for show in shows:
            count = show.episodes
            for start in range(0, count, BATCH):
                episodes: list[dict[str, Any]] = []
                files: list[dict[str, Any]] = []
                for i in range(start, min(start + BATCH, count)):
                    publish_at = now - timedelta(days=count - i, minutes=gen.rng.randint(0, 600))
                    description = notes(gen, show.slug, i)
                    note_bytes.append(len(description.encode()))
                    episode = episode_row(
                        show.show_id,
                        i,
                        count,
                        now,
                        title=gen.title(),
                        description=description,
                        publish_at=publish_at,
                        persons=[
                            {"name": host, "role": "host"},
                            {"name": gen.persons()[0]["name"], "role": "guest"},
                        ],
                        # Already announced: the steady state. Unannounced episodes would
                        # make the server's `announce_due` job invalidate the feed mid-run.
                        announced_at=publish_at,
                    )
                    episodes.append(episode)
                    files.append(
                        media_row(
                            owner_id,
                            episode,
                            now,
                            size=gen.rng.randint(20_000_000, 90_000_000),
                            duration_s=float(gen.rng.randint(1200, 5400)),
                        )
                    )
                async with db.session() as session:
                    await session.execute(insert(Episode), episodes)
                    await insert_media(session, files)
                show.episode_ids.extend(e["id"] for e in episodes)
            show.episode_ids.reverse()  # newest first
        await analyze(db, ("episodes", "media_files", "shows"))
    finally:
        await db.dispose()
    info = {
        "seed_s": round(time.perf_counter() - started, 1),
        "notes_bytes_mean": round(statistics.fmean(note_bytes)),
    }
    return shows, info


# --- render pipeline (in-process) --------------------------------------------------------------


class LagTicker:
    """Sleeps ``TICK_S`` in a loop and records how late each wake-up was (ms): how long the
    event loop could not run anything else."""

    def __init__(self) -> None:
        self.lags: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            started = time.perf_counter()
            await asyncio.sleep(TICK_S)
            self.lags.append((time.perf_counter() - started - TICK_S) * 1000)

    async def __aenter__(self) -> LagTicker:
        self._task = asyncio.create_task(self._run())
        await asyncio.sleep(0)  # let it take its first tick
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with suppress(asyncio.CancelledError):
            await self._task

    @property
    def worst(self) -> float:
        return max(self.lags, default=0.0)


class GcPauses:
    """The garbage collector's pauses while active (they stop every thread)."""

    def __init__(self) -> None:
        self.pauses: list[float] = []
        self.full = 0
        self._started = 0.0

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        self.pauses.append((time.perf_counter() - self._started) * 1000)
        self.full += info["generation"] == 2

    def __enter__(self) -> GcPauses:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *_: object) -> None:
        gc.callbacks.remove(self._callback)


@dataclass
class Run:
    ms: float
    sql_ms: float
    gc_ms: float
    gc_longest_ms: float
    gc_full: int
    lag_ms: float | None


def summarize(runs: list[Run]) -> dict[str, Any]:
    times = [r.ms for r in runs]
    out: dict[str, Any] = {
        "median": round(statistics.median(times), 2),
        "min": round(min(times), 2),
        "max": round(max(times), 2),
        "runs": len(runs),
        "sql_execute_ms_median": round(statistics.median(r.sql_ms for r in runs), 2),
        "gc_pause_ms_median": round(statistics.median(r.gc_ms for r in runs), 2),
        "gc_longest_pause_ms": round(max(r.gc_longest_ms for r in runs), 2),
        "gc_full_collections_median": statistics.median(r.gc_full for r in runs),
    }
    lags = [r.lag_ms for r in runs if r.lag_ms is not None]
    if lags:
        out["event_loop_lag_ms_max"] = round(max(lags), 2)
        out["event_loop_lag_ms_per_run"] = [round(lag, 2) for lag in lags]
    return out


async def render_bench(env: Mapping[str, str], shows: list[SeededShow]) -> dict[str, Any]:
    import amphora.feed.loader as loader
    from amphora.feed.changes import feed_tag
    from amphora.feed.service import Format, Served, serve_feed
    from amphora.kit.cache import CACHE_KEY
    from amphora.kit.db import Database
    from amphora.kit.jobs import ENQUEUE_KEY
    from amphora.kit.ratelimit import RateLimiter
    from amphora.models import Episode, Show
    from amphora.runtime import Runtime, build_cache, build_storage, make_jobs

    settings = settings_for(env)
    cache = build_cache(settings)
    # As open_runtime builds it, except that jobs sent by commit hooks are only counted: no
    # job consumer runs here, and none should find them later in a shared queue.
    enqueued: list[str] = []
    db = Database(
        settings.resolved_database_url,
        session_info={ENQUEUE_KEY: lambda name, _args: enqueued.append(name), CACHE_KEY: cache},
    )
    runtime = Runtime(
        settings=settings,
        db=db,
        storage=build_storage(settings),
        jobs=make_jobs(settings),
        limiter=RateLimiter(settings.redis_url),
        cache=cache,
    )
    await cache.start_listener()
    # As `amphora serve` does once started: what is alive now stays out of later collections.
    from amphora.app import release_startup_memory

    release_startup_memory()
    small, large = shows
    load_before = os.getloadavg()[0]
    fragment_budget = loader.FRAGMENTS.max_bytes

    def fresh_fragments() -> None:
        loader.FRAGMENTS = loader.FragmentCache(fragment_budget)

    def serve(show: SeededShow, encoding: Any = "identity") -> Callable[[], Awaitable[Served]]:
        return lambda: serve_feed(runtime, slug=show.slug, fmt=Format.rss, encoding=encoding)

    async def timed(show: SeededShow, *, ticker: bool = False) -> tuple[Run, Served]:
        """One ``serve_feed`` of ``show``; garbage of earlier runs collected first."""
        gc.collect()
        tick = LagTicker()
        with StatementRecorder(db.engine) as recorder, GcPauses() as pauses:
            if ticker:
                await tick.__aenter__()
            try:
                started = time.perf_counter()
                served = await serve(show)()
                elapsed = (time.perf_counter() - started) * 1000
            finally:
                if ticker:
                    await tick.__aexit__()
        items = served.body.count(b"<item>")
        if items != show.episodes or served.stale:
            raise RuntimeError(f"{show.slug}: {items} items (stale={served.stale})")
        run = Run(
            ms=elapsed,
            sql_ms=recorder.db_seconds * 1000,
            gc_ms=sum(pauses.pauses),
            gc_longest_ms=max(pauses.pauses, default=0.0),
            gc_full=pauses.full,
            lag_ms=tick.worst if ticker else None,
        )
        return run, served

    async def cold(show: SeededShow, runs: int) -> list[Run]:
        out = []
        for _ in range(runs):
            fresh_fragments()
            await cache.invalidate([feed_tag(show.show_id)])
            out.append((await timed(show, ticker=show is large))[0])
        return out

    try:
        first: dict[str, float] = {}
        for show in shows:  # untimed warm-up; the first render also checks the feed
            fresh_fragments()
            await cache.invalidate([feed_tag(show.show_id)])
            first[str(show.episodes)] = round((await timed(show))[0].ms, 2)
        feed_bytes = {str(s.episodes): len((await serve(s)()).body) for s in shows}

        cold_small = summarize(await cold(small, RUNS_COLD_SMALL))
        cold_large = summarize(await cold(large, RUNS_COLD_LARGE))

        # One edit, written as the API's update_episode writes it, then the next miss.
        key = f"feed:{Format.rss}:{large.slug}"
        await serve(large)()  # the fragments of the current versions are cached
        edits: list[Run] = []
        rng = random.Random(3)
        for run in range(RUNS_EDIT):
            episode_id = rng.choice(large.episode_ids)
            title = f"Edited title {run} {uuid.uuid4().hex[:8]}"
            async with db.session() as session:
                episode = await session.get(Episode, episode_id)
                show_row = await session.get(Show, large.show_id)
                assert episode is not None and show_row is not None
                episode.title = title
                episode.version += 1
                show_row.version += 1
            found = await cache.get(key)
            if found is None or found.fresh:
                raise RuntimeError("the commit did not invalidate the cached feed")
            measured, served = await timed(large, ticker=True)
            if f"<title>{title}</title>".encode() not in served.body:
                raise RuntimeError("the re-rendered feed lacks the edited title")
            edits.append(measured)
        rerender = summarize(edits)

        hits: dict[str, Any] = {}
        for show in shows:
            for encoding in ("identity", "gzip"):
                call = serve(show, encoding)
                await call()  # compresses once (gzip)
                samples = []
                for _ in range(CACHED_HITS):
                    started = time.perf_counter()
                    served = await call()
                    samples.append((time.perf_counter() - started) * 1e6)
                    if served.stale:
                        raise RuntimeError("stale hit")
                samples.sort()
                hits[f"{encoding}_{show.episodes}"] = {
                    "median": round(statistics.median(samples), 1),
                    "p99": round(percentile(samples, 99), 1),
                    "count": len(samples),
                }
        stored = await cache.get(key)
        entry_bytes = len(stored.value) if stored else 0
    finally:
        await runtime.aclose()

    return {
        "feed_bytes": feed_bytes,
        "cache_entry_bytes_10000": entry_bytes,
        "first_render_in_process_ms": first,
        "ms": {
            "cold_1000": cold_small,
            "cold_10000": cold_large,
            "rerender_10000_one_edit": rerender,
        },
        "cached_hit_us": hits,
        "event_loop_lag_ms_max": max(
            cold_large["event_loop_lag_ms_max"], rerender["event_loop_lag_ms_max"]
        ),
        "jobs_enqueued_by_commits": len(enqueued),
        # Other work on the machine slows every figure down: see how busy it was.
        "load_average_1m": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
    }


T = TypeVar("T")


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """On uvloop when available, like `amphora serve` (uvicorn picks it)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


@contextmanager
def seeded(backend: str, root: Path) -> Iterator[tuple[dict[str, str], list[SeededShow], Any]]:
    """A migrated database with a user and both shows: ``(env, shows, seed info)``."""
    with backend_env(backend, root / f"data-{backend}", free_port()) as env:
        db_upgrade(env)
        email, password = new_credentials()
        create_user(env, email, password, "Bench Host")
        shows, info = asyncio.run(seed(env, email))
        yield env, shows, info


# --- HTTP --------------------------------------------------------------------------------------

# The ceiling of any Python app on this server stack: uvicorn (uvloop, httptools, as `amphora
# serve` runs it) with a bare ASGI callable answering the same bytes and the same 304s.
BARE_APP = r"""
import sys

import uvicorn

body_file, port, etag = sys.argv[1], int(sys.argv[2]), sys.argv[3].encode()
with open(body_file, "rb") as f:
    body = f.read()
ok = [
    (b"content-type", b"application/rss+xml; charset=utf-8"),
    (b"content-encoding", b"gzip"),
    (b"etag", etag),
    (b"vary", b"Accept-Encoding"),
    (b"content-length", str(len(body)).encode()),
]
not_modified = [(b"etag", etag), (b"vary", b"Accept-Encoding")]


async def app(scope, receive, send):
    for name, value in scope["headers"]:
        if name == b"if-none-match" and value == etag:
            await send({"type": "http.response.start", "status": 304, "headers": not_modified})
            await send({"type": "http.response.body", "body": b""})
            return
    await send({"type": "http.response.start", "status": 200, "headers": ok})
    await send({"type": "http.response.body", "body": body})


uvicorn.run(
    app, host="127.0.0.1", port=port, lifespan="off", access_log=False, log_config=None,
    server_header=False,
)
"""


def run_wrk(url: str, headers: list[str], seconds: int, script: Path) -> dict[str, Any]:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed (apt-get install wrk)")
    command = [
        wrk,
        f"-t{WRK_THREADS}",
        f"-c{CONNECTIONS}",
        f"-d{seconds}s",
        f"--timeout={REQUEST_TIMEOUT_S}s",
        "-s",
        str(script),
    ]
    for header in headers:
        command += ["-H", header]
    command.append(url)
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=seconds + 60, check=False
    )
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("WRK_JSON ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    raw: dict[str, Any] = json.loads(lines[-1].removeprefix("WRK_JSON "))
    return raw


@dataclass
class Load:
    """One wrk configuration: where, with which headers, what every answer must be."""

    url: str
    headers: list[str]
    status: int
    body_bytes: int  # of each answer (0 for 304s)


def machine_busy_seconds() -> float:
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))


def measure(
    load: Load, pid: int, seconds: int, warmup_s: int, scripts: dict[str, Path]
) -> dict[str, Any]:
    """An unmeasured warm-up, then the measured wrk run."""
    script = scripts["status"] if load.status == 304 else scripts["plain"]
    warm = run_wrk(load.url, load.headers, warmup_s, script)
    before, busy_before = cpu_seconds(pid), machine_busy_seconds()
    raw = run_wrk(load.url, load.headers, seconds, script)
    cpu, busy = cpu_seconds(pid) - before, machine_busy_seconds() - busy_before
    requests = raw["requests"]
    duration_s = raw["duration_us"] / 1e6
    errors = raw["errors"]
    result: dict[str, Any] = {
        "requests": requests,
        "requests_per_s": round(requests / duration_s, 1),
        "latency_ms": {k: round(v / 1000, 2) for k, v in raw["latency_us"].items()},
        "bytes_per_response": round(raw["bytes"] / requests) if requests else 0,
        "mib_per_s": round(raw["bytes"] / duration_s / 1024**2, 1),
        # 100 = one core. The machine figure counts every process (wrk, the server, and
        # whatever else runs here): on 2 cores it tops out at 200.
        "server_cpu_percent": round(100 * cpu / duration_s, 1),
        "server_cpu_ms_per_request": round(1000 * cpu / requests, 3) if requests else None,
        "machine_cpu_percent": round(100 * busy / duration_s, 1),
        "load_average_1m_after": round(os.getloadavg()[0], 2),
        "errors": errors,
        "errors_in_warmup": sum(warm["errors"].values()),
    }
    if load.status == 304:
        result["status"] = raw["status"]
        result["all_304"] = raw["status"]["304"] == requests and requests > 0
    else:
        # Headers are a few hundred bytes: every answer carried the whole body.
        per = raw["bytes"] / requests if requests else 0
        result["full_bodies"] = load.body_bytes < per < load.body_bytes + 2048
    result["ok"] = (
        sum(errors.values()) == 0
        and result["errors_in_warmup"] == 0
        and result.get("all_304", result.get("full_bodies", False))
    )
    return result


@contextmanager
def nginx(body: bytes, path: str, workers: int) -> Iterator[tuple[str, int]]:
    """nginx serving ``body`` (gzip bytes) at ``path``: ``(base URL, master pid)``."""
    with temp_dir("amphora-bench-static-") as root:
        file = root / "feed.xml.gz"
        file.write_bytes(body)
        location = NGINX_LOCATION.format(path=path, file=file)
        with nginx_server(location, workers=workers, files=[file], within=root) as served:
            yield served


@contextmanager
def bare_uvicorn(body: bytes, etag: str) -> Iterator[tuple[str, int]]:
    with temp_dir("amphora-bench-bare-") as root:
        file = root / "feed.xml.gz"
        file.write_bytes(body)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        command = [sys.executable, "-c", BARE_APP, str(file), str(port), etag]
        with foreground_process(command, base + "/", "uvicorn") as pid:
            yield base, pid


# --- in-process cost of one request -------------------------------------------------------------


async def per_request(env: Mapping[str, str], slug: str, etag: str) -> dict[str, Any]:
    """Median µs of one request through the app's ASGI callable (no socket, no server): which
    part of a feed request is the feed code and which is the framework around it."""
    import anyio
    from starlette.requests import Request

    from amphora.app import create_app
    from amphora.feed.router import rss_feed
    from amphora.feed.service import Format, serve_feed

    app = create_app(settings_for(env), run_jobs=False)
    runtime = app.state.runtime
    path = f"/feeds/{slug}.xml"

    def scope(target: str, headers: dict[str, str]) -> dict[str, Any]:
        return {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": target,
            "raw_path": target.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"127.0.0.1")]
            + [(k.encode(), v.encode()) for k, v in headers.items()],
            "client": ("127.0.0.1", 40000),
            "server": ("127.0.0.1", 80),
        }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    statuses: list[int] = []

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    def asgi(target: str, headers: dict[str, str], status: int) -> Callable[[], Awaitable[Any]]:
        async def call() -> None:
            await app(scope(target, headers), receive, send)
            if statuses.pop() != status:
                raise RuntimeError(f"{target} {headers}: not {status}")

        return call

    def endpoint(headers: dict[str, str]) -> Callable[[], Awaitable[Any]]:
        # The route's own function: serve_feed plus building the response, no framework.
        return lambda: rss_feed(slug, Request(scope(path, headers)), runtime)

    gz = {"accept-encoding": "gzip"}
    cases: dict[str, Callable[[], Awaitable[Any]]] = {
        "healthz": asgi("/healthz", {}, 200),
        "not_found_every_route_tried": asgi("/no/such/path", {}, 404),
        "feed_gzip_200": asgi(path, gz, 200),
        "feed_gzip_304": asgi(path, {**gz, "if-none-match": etag}, 304),
        "feed_endpoint_only_gzip_304": endpoint({**gz, "if-none-match": etag}),
        "serve_feed_cached_gzip": lambda: serve_feed(
            runtime, slug=slug, fmt=Format.rss, encoding="gzip"
        ),
        # What a plain `def` dependency (amphora.deps.get_runtime) costs: a worker thread.
        "thread_hop": lambda: anyio.to_thread.run_sync(lambda: None),
    }
    result: dict[str, Any] = {}
    try:
        for name, call in cases.items():
            for _ in range(200):
                await call()
            samples = []
            for _ in range(PER_REQUEST_SAMPLES):
                started = time.perf_counter()
                await call()
                samples.append((time.perf_counter() - started) * 1e6)
            result[name] = round(statistics.median(samples), 1)
    finally:
        await runtime.aclose()
    result["framework_share_of_feed_304"] = round(
        result["feed_gzip_304"] - result["feed_endpoint_only_gzip_304"], 1
    )
    return {"median_us": result, "samples": PER_REQUEST_SAMPLES}


def http_bench(
    env: dict[str, str], slug: str, episodes: int, seconds: int, warmup_s: int
) -> dict[str, Any]:
    path = f"/feeds/{slug}.xml"
    gz = {"Accept-Encoding": "gzip"}
    header = ["Accept-Encoding: gzip"]
    runs: dict[str, Any] = {}
    with temp_dir("amphora-bench-wrk-") as scripts_dir:
        scripts = {"plain": scripts_dir / "plain.lua", "status": scripts_dir / "status.lua"}
        scripts["plain"].write_text(WRK_LUA.replace("COUNT_STATUS", ""))
        scripts["status"].write_text(WRK_LUA.replace("COUNT_STATUS", WRK_COUNT_STATUS))

        def both(name: str, base: str, pid: int, body: bytes, etag: str) -> None:
            url = base + path
            runs[name] = measure(Load(url, header, 200, len(body)), pid, seconds, warmup_s, scripts)
            not_modified = Load(url, [*header, f"If-None-Match: {etag}"], 304, 0)
            runs[name + "_304"] = measure(not_modified, pid, seconds, warmup_s, scripts)

        data_dir = Path(env["AMPHORA_DATA_DIR"])
        port = int(env["AMPHORA_PORT"])
        with running_server(env, data_dir, port) as server:
            url = server.base_url + path
            status, headers, body = fetch(url, gz)  # renders and caches the feed
            if status != 200 or headers.get("content-encoding") != "gzip":
                raise RuntimeError(f"{url}: {status} {headers}")
            etag = headers["etag"]
            if not etag.endswith('-gzip"'):
                raise RuntimeError(f"unexpected ETag {etag}")
            items = gzip.decompress(body).count(b"<item>")
            if items != episodes:
                raise RuntimeError(f"the feed has {items} items, expected {episodes}")
            if fetch(url, {**gz, "If-None-Match": etag})[0] != 304:
                raise RuntimeError(f"If-None-Match {etag} did not answer 304")
            amphora_headers = {k: v for k, v in headers.items() if k != "date"}
            both("amphora", server.base_url, server.pid, body, etag)
            healthz = Load(server.base_url + "/healthz", [], 200, 15)
            runs["amphora_healthz"] = measure(healthz, server.pid, seconds, warmup_s, scripts)
            if server.proc.poll() is not None:
                raise RuntimeError("server died during the load:\n" + server.log_tail())
        in_process = run_async(per_request(env, slug, etag))

        with bare_uvicorn(body, etag) as (base, pid):
            both("bare_uvicorn", base, pid, body, etag)
        for workers in (2, 1):
            with nginx(body, path, workers) as (base, pid):
                status, headers, served = fetch(base + path, gz)
                if status != 200 or served != body or headers.get("content-encoding") != "gzip":
                    raise RuntimeError(f"nginx: {status} {headers}")
                both(
                    f"nginx_{workers}_worker{'s' if workers > 1 else ''}",
                    base,
                    pid,
                    body,
                    headers["etag"],
                )

    amphora_rps = runs["amphora"]["requests_per_s"]
    return {
        "path": "/feeds/{slug}.xml",
        "episodes": episodes,
        "gzip_bytes": len(body),
        "amphora_response_headers": amphora_headers,
        "wrk": {
            "threads": WRK_THREADS,
            "connections": CONNECTIONS,
            "duration_s": seconds,
            "warmup_s": warmup_s,
        },
        "amphora_processes": 1,
        "runs": runs,
        "amphora_vs_nginx_2_workers": round(
            amphora_rps / runs["nginx_2_workers"]["requests_per_s"], 3
        ),
        "amphora_vs_nginx_1_worker": round(
            amphora_rps / runs["nginx_1_worker"]["requests_per_s"], 3
        ),
        "amphora_vs_bare_uvicorn": round(amphora_rps / runs["bare_uvicorn"]["requests_per_s"], 3),
        "in_process_per_request": in_process,
    }


# --- main --------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description="Feed serving: render pipeline and HTTP.")
    parser.add_argument("--quick", action="store_true", help="5 s wrk runs (2 s warm-up)")
    parser.add_argument("--duration", type=int, help="seconds per measured wrk run (default 30)")
    parser.add_argument(
        "--postgres", action="store_true", help="also run the render part on PostgreSQL + Redis"
    )
    parser.add_argument("--only", choices=("render", "http"), help="run one part only")
    args = parser.parse_args(argv)
    seconds = args.duration or (QUICK_DURATION_S if args.quick else DURATION_S)
    warmup_s = QUICK_WARMUP_S if args.quick else WARMUP_S

    render: dict[str, Any] = {}
    served: dict[str, Any] | None = None
    with temp_dir() as root:
        with seeded("sqlite", root) as (env, shows, info):
            if args.only != "http":
                render["sqlite"] = {**info, **run_async(render_bench(env, shows))}
            if args.only != "render":
                small = shows[0]
                served = http_bench(env, small.slug, small.episodes, seconds, warmup_s)
                served["seed_s"] = info["seed_s"]
        if args.postgres and args.only != "http":
            with seeded("postgresql", root) as (env, shows, info):
                render["postgresql"] = {**info, **run_async(render_bench(env, shows))}

    met: dict[str, bool] = {}
    for backend, figures in render.items():
        ms = figures["ms"]
        met[f"{backend}_cold_1000"] = ms["cold_1000"]["median"] < TARGETS["cold_1000_ms_target"]
        met[f"{backend}_cold_10000"] = ms["cold_10000"]["median"] < TARGETS["cold_10000_ms_target"]
        met[f"{backend}_rerender_10000"] = (
            ms["rerender_10000_one_edit"]["median"] < TARGETS["rerender_10000_ms_target"]
        )
        met[f"{backend}_event_loop_lag"] = (
            figures["event_loop_lag_ms_max"] < TARGETS["event_loop_lag_ms_target"]
        )
    if served is not None:
        runs = served["runs"]
        met["amphora_vs_nginx"] = (
            served["amphora_vs_nginx_2_workers"] >= TARGETS["amphora_vs_nginx_target"]
        )
        met["not_modified_rps"] = (
            runs["amphora_304"]["requests_per_s"] >= TARGETS["not_modified_rps_target"]
        )
        met["http_no_errors_and_right_statuses"] = all(r["ok"] for r in runs.values())
    result: dict[str, Any] = {
        "render": render,
        "http": served,
        "targets": TARGETS,
        "met": met,
    }
    return write_result(NAME, result)


if __name__ == "__main__":
    exit_on_sigterm()
    main()
