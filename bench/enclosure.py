"""Throughput of the enclosure endpoint (``/e/…``) on local files, against nginx, and the hit log.

One show on SQLite with local storage; its published episode's media is a ~50 MiB MP3 (a
one-minute 320 kb/s tone from ``amphora.media.testaudio``, repeated: MPEG frames concatenate)
written into storage with a ``media_files`` row, before the server starts. Then, with `wrk`
at 64 keep-alive connections, every request ``Range: bytes=0-1048575`` (one MiB, ``206``):

1. ``amphora``: `amphora serve`, hit recording on (the default): 5 s warm-up, 30 s measured;
   the server is stopped (its shutdown writes every hit still queued) and the ``hits`` rows are
   counted: they must equal the enclosure requests wrk sent, exactly.
2. ``amphora_no_hits``: the same with ``AMPHORA_RECORD_HITS=false`` (the cost of recording);
   no row may be added.
3. ``nginx``: the Debian package, one worker, ``sendfile on``, serving the same file under the
   same load (a reference for what the machine can do).

Exact counting: wrk stops at the end of its duration with requests in flight, which the server
has logged but wrk never counts. So the Lua script sends the enclosure request for the
measured seconds only, then switches every connection to ``GET /healthz`` (not logged) for a
tail of a few seconds: when wrk stops, no enclosure request is in flight. The script counts the
enclosure requests it issued; with no socket error and no error status, each one was answered.

Reported per run: ``requests`` (enclosure requests), ``requests_per_s`` and ``mib_per_s`` over
the measured window, the server's CPU use (100 = one core) and wrk's errors; then the hit
check and the ratios. wrk and the servers share this machine's CPUs.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    base_env,
    cpu_seconds,
    create_user,
    db_upgrade,
    exit_on_sigterm,
    free_port,
    nginx_server,
    running_server,
    settings_for,
    temp_dir,
    write_result,
)

NAME = "enclosure"
CONNECTIONS = 64
WARMUP_S = 5
DURATION_S = 30
TAIL_S = 5  # /healthz only, so that no enclosure request is cut off when wrk stops
RANGE = "bytes=0-1048575"
RANGE_BYTES = 1024 * 1024
FILE_MIB = 50
REQUEST_TIMEOUT_S = 10

# Sends the enclosure request for `measure` seconds (a monotonic clock through LuaJIT's FFI),
# then /healthz; counts the enclosure requests sent, per thread.
WRK_LUA = r"""
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]]
local ts = ffi.new("bench_timespec")
local function now()
  ffi.C.clock_gettime(1, ts)  -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) / 1e9
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
  if #threads == 1 then
    -- wrk calls request() once on the first thread's state, right after init(), to check
    -- the request; that one is never sent, so it is not counted.
    thread:set("verifying", true)
  end
end

function init(args)
  measure = tonumber(args[1])
  enclosure = wrk.format("GET", args[2])
  tail = wrk.format("GET", "/healthz")
  started = now()
  issued = 0
end

function request()
  if verifying then
    verifying = false
    return enclosure
  end
  if now() - started < measure then
    issued = issued + 1
    return enclosure
  end
  return tail
end

function done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do
    total = total + thread:get("issued")
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"enclosure_requests": %d, "all_requests": %d, "duration_us": %d, ' ..
    '"bytes": %d, "latency_max_us": %d, "errors": {"connect": %d, "read": %d, ' ..
    '"write": %d, "status": %d, "timeout": %d}}\n',
    total, summary.requests, summary.duration, summary.bytes, latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end
"""

# --- seeding -------------------------------------------------------------------------------------


async def _mp3_chunks(target_bytes: int) -> AsyncIterator[bytes]:
    from amphora.media.testaudio import tone_mp3

    minute = tone_mp3(60, bitrate_kbps=320, id3=False)
    written = 0
    while written < target_bytes:
        yield minute
        written += len(minute)


async def seed(env: Mapping[str, str], email: str) -> tuple[str, Path, int]:
    """A show with one published episode whose media is ~50 MiB: ``(path, file, size)``."""
    from sqlalchemy import select

    from amphora.kit.db import Database, new_id
    from amphora.models import Episode, MediaFile, User
    from amphora.runtime import build_storage
    from amphora.show.schemas import ShowCreate
    from amphora.show.service import create_show

    settings = settings_for(env)
    db = Database(settings.resolved_database_url)
    storage = build_storage(settings)
    try:
        media_id = new_id()
        async with db.session() as session:
            user = await session.scalar(select(User).where(User.email == email))
            assert user is not None
            access = await create_show(
                session, user=user, data=ShowCreate(title="Bench Show"), base_url=settings.base_url
            )
            show = access.show
            key = f"media/{show.id}/{media_id}.mp3"
            stored = await storage.write(
                key, _mp3_chunks(FILE_MIB * 1024 * 1024), content_type="audio/mpeg"
            )
            episode = Episode(
                show_id=show.id,
                guid=str(new_id()),
                title="Fifty megabytes",
                publish_at=datetime.now(UTC) - timedelta(days=1),
            )
            session.add(episode)
            await session.flush()
            session.add(
                MediaFile(
                    id=media_id,
                    owner_id=user.id,
                    show_id=show.id,
                    episode_id=episode.id,
                    storage_key=key,
                    kind="audio",
                    container="mp3",
                    content_type="audio/mpeg",
                    extension="mp3",
                    size=stored.size,
                    sha256=stored.sha256_hex,
                    duration_s=stored.size * 8 / 320_000,
                    bitrate=320_000,
                )
            )
            await session.flush()
            episode.media_id = media_id
            path = f"/e/{show.slug}/{episode.id}/{media_id}.mp3"
        local = storage.local_path(key)
        assert local is not None
        return path, local, stored.size
    finally:
        await storage.close()
        await db.dispose()


# --- load ----------------------------------------------------------------------------------------


def run_wrk(base_url: str, path: str, script: Path, measure_s: int, tail_s: int) -> dict[str, Any]:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed (apt-get install wrk)")
    threads = max(1, min(os.cpu_count() or 1, 4))
    command = [
        wrk,
        f"-t{threads}",
        f"-c{CONNECTIONS}",
        f"-d{measure_s + tail_s}s",
        f"--timeout={REQUEST_TIMEOUT_S}s",
        "-H",
        f"Range: {RANGE}",
        "-s",
        str(script),
        base_url,
        "--",
        str(measure_s),
        path,
    ]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=measure_s + tail_s + 60, check=False
    )
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("WRK_JSON ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    raw = json.loads(lines[-1].removeprefix("WRK_JSON "))
    raw["threads"] = threads
    return raw


def measured(raw: dict[str, Any], cpu_s: float) -> dict[str, Any]:
    requests = raw["enclosure_requests"]
    return {
        "requests": requests,
        "requests_per_s": round(requests / DURATION_S, 1),
        "mib_per_s": round(requests * RANGE_BYTES / DURATION_S / 1024**2, 1),
        "server_cpu_percent": round(100 * cpu_s / (DURATION_S + TAIL_S), 1),
        # The slowest answer (any request): under TAIL_S, no enclosure request was cut off.
        "latency_max_ms": round(raw["latency_max_us"] / 1000, 1),
        "errors": raw["errors"],
    }


def check_range(base_url: str, path: str, size: int) -> None:
    response = httpx.get(base_url + path, headers={"Range": RANGE}, timeout=30)
    expected = f"bytes 0-{RANGE_BYTES - 1}/{size}"
    if response.status_code != 206 or response.headers.get("content-range") != expected:
        raise RuntimeError(
            f"{base_url}{path} answered {response.status_code} "
            f"{response.headers.get('content-range')!r}, expected 206 {expected!r}"
        )
    if len(response.content) != RANGE_BYTES:
        raise RuntimeError(f"got {len(response.content)} bytes, expected {RANGE_BYTES}")


def load(base_url: str, path: str, script: Path, pid: int) -> tuple[int, dict[str, Any]]:
    """Warm-up then the measured run; the enclosure requests of both, and the measured figures."""
    warm = run_wrk(base_url, path, script, WARMUP_S, TAIL_S)
    before = cpu_seconds(pid)
    raw = run_wrk(base_url, path, script, DURATION_S, TAIL_S)
    result = measured(raw, cpu_seconds(pid) - before)
    errors = sum(warm["errors"].values()) + sum(raw["errors"].values())
    result["errors_total_with_warmup"] = errors
    slowest = max(warm["latency_max_us"], raw["latency_max_us"]) / 1e6
    result["tail_covers_slowest_request"] = slowest < TAIL_S
    return warm["enclosure_requests"] + raw["enclosure_requests"], result


def count_hits(db_path: Path) -> dict[str, int]:
    with sqlite3.connect(db_path) as conn:
        rows, partial, full_bytes = conn.execute(
            "SELECT count(*), coalesce(sum(status = 206), 0), "
            "coalesce(sum(bytes_sent = ?), 0) FROM hits",
            (RANGE_BYTES,),
        ).fetchone()
    return {"rows": rows, "status_206": partial, "bytes_sent_1mib": full_bytes}


def amphora_run(
    env: dict[str, str], data_dir: Path, port: int, path: str, size: int, script: Path
) -> tuple[int, dict[str, Any]]:
    with running_server(env, data_dir, port) as server:
        check_range(server.base_url, path, size)
        sent, result = load(server.base_url, path, script, server.pid)
        if server.proc.poll() is not None:
            raise RuntimeError("server died during the load:\n" + server.log_tail())
    # running_server stopped it (SIGTERM): the lifespan wrote every queued hit.
    return sent + 1, result  # + the check_range request


def request_path_cost_us(rows: int = 50_000) -> float:
    """CPU time recording adds to one request: build the row (hash the address, cut the texts)
    and queue it. Measured in-process, since under load it drowns in run-to-run noise."""
    import uuid

    from amphora.delivery.hits import HitRecorder, hit_row
    from amphora.kit.clock import utcnow

    recorder = HitRecorder(None, secret_key="bench", batch_size=rows + 1)  # type: ignore[arg-type]
    ids = [uuid.uuid4() for _ in range(3)]
    started = time.process_time()
    for n in range(rows):
        recorder.record(
            hit_row(
                key=recorder.key,
                at=utcnow(),
                show_id=ids[0],
                episode_id=ids[1],
                media_id=ids[2],
                subscriber_id=None,
                method="GET",
                status=206,
                range_header=RANGE,
                bytes_sent=RANGE_BYTES,
                client_address=f"2001:db8:{n % 5000:x}::1",
                user_agent="AppleCoreMedia/1.0.0.20E247 (iPhone; U; CPU OS 16_4 like Mac OS X)",
                referer=None,
                session_id="3E2B8E5D-6F0A-4C55-9C8B-1B7A0B6A9F10",
            )
        )
    return round((time.process_time() - started) / rows * 1e6, 2)


# --- main ----------------------------------------------------------------------------------------


def main() -> dict[str, Any]:
    with temp_dir() as root:
        script = root / "enclosure.lua"
        script.write_text(WRK_LUA)
        data_dir = root / "data"
        port = free_port()
        env = base_env(data_dir, port)
        db_upgrade(env)
        email, password = f"bench-{secrets.token_hex(4)}@example.com", secrets.token_urlsafe(18)
        create_user(env, email, "Pw-" + password, "Bench User")
        started = time.perf_counter()
        path, file, size = asyncio.run(seed(env, email))
        seed_s = round(time.perf_counter() - started, 1)

        sent_on, on = amphora_run(env, data_dir, port, path, size, script)
        hits = count_hits(data_dir / "amphora.db")
        off_env = {**env, "AMPHORA_RECORD_HITS": "false"}
        _, off = amphora_run(off_env, data_dir, port, path, size, script)
        rows_after_off = count_hits(data_dir / "amphora.db")["rows"]

        location = f"location = /enclosure.mp3 {{ alias {file}; default_type audio/mpeg; }}"
        with nginx_server(location, workers=1, files=[file], within=root) as (base, pid):
            check_range(base, "/enclosure.mp3", size)
            _, reference = load(base, "/enclosure.mp3", script, pid)

    equal = hits["rows"] == sent_on
    return write_result(
        NAME,
        {
            "file_bytes": size,
            "range": RANGE,
            "connections": CONNECTIONS,
            "warmup_s": WARMUP_S,
            "duration_s": DURATION_S,
            "tail_s": TAIL_S,
            "client": "wrk",
            "seed_s": seed_s,
            "runs": {"amphora": on, "amphora_no_hits": off, "nginx": reference},
            "hits": {
                "enclosure_requests_sent": sent_on,
                **hits,
                "equal": equal,
                "rows_added_with_recording_off": rows_after_off - hits["rows"],
            },
            "recording_request_path_us": request_path_cost_us(),
            "recording_cost_percent": round(
                100 * (off["requests_per_s"] - on["requests_per_s"]) / off["requests_per_s"], 1
            ),
            "amphora_vs_nginx": round(on["requests_per_s"] / reference["requests_per_s"], 3),
            "met": {
                "hits_equal": equal,
                "rows_all_206_of_1mib": hits["status_206"]
                == hits["bytes_sent_1mib"]
                == hits["rows"],
                "no_rows_when_off": rows_after_off == hits["rows"],
                "no_errors": all(r["errors_total_with_warmup"] == 0 for r in (on, off, reference)),
                "tail_covers_slowest_request": on["tail_covers_slowest_request"],
            },
        },
    )


if __name__ == "__main__":
    exit_on_sigterm()
    main()
