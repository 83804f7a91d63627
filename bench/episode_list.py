"""Latency of ``GET /api/v1/shows/{id}/episodes`` on a show with 10,000 episodes.

For each backend (SQLite embedded; PostgreSQL + Redis): the show and its episodes (each with
a stored-file row, as published episodes have audio) are seeded straight into the database
(``bench/seed.py``), then a server is started and the list is read over one keep-alive
connection, one request at a time (latency, not throughput): the first page, a 20-page walk
along ``next_cursor``, the same walk with ``status=published``, and deep cursors (pages 50,
100, 150 and the last). One untimed walk over every page warms up and collects the cursors.

The number of SQL statements per request is counted in-process (``httpx.ASGITransport``
against ``create_app``, with a ``before_cursor_execute`` listener): ``limit=5`` and
``limit=50`` must send the same number, or the page loads something per episode.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    StatementRecorder,
    backend_env,
    create_user,
    db_upgrade,
    exit_on_sigterm,
    explain,
    free_port,
    in_process_client,
    latency_summary,
    login,
    new_credentials,
    profile_requests,
    running_server,
    temp_dir,
    wanted_backends,
    write_result,
)
from seed import seed_catalog

NAME = "episode_list"
EPISODES = 10_000
PAGE = 50
WALK_PAGES = 20
DEEP_PAGES = (50, 100, 150, 200)  # 1-based page numbers; 200 is the last at 50 a page
ROUNDS = 6  # each: 1 first page + 20 + 20 walked pages + 4 deep pages = 45 requests
TARGETS = {"p95_ms_target": 30}
REQUEST_TIMEOUT_S = 30


def _get(client: httpx.Client, path: str, params: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    response = client.get(path, params=params)
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise RuntimeError(f"GET {path} {params} → {response.status_code}: {response.text[:500]}")
    return elapsed, response.json()


def walk(
    client: httpx.Client, path: str, pages: int | None, **params: Any
) -> tuple[list[float], list[str | None]]:
    """Follow ``next_cursor`` for ``pages`` pages (None: to the end); durations and the cursor
    each page was read with (None for the first)."""
    times: list[float] = []
    cursors: list[str | None] = []
    cursor: str | None = None
    while pages is None or len(times) < pages:
        query = {"limit": PAGE, **params, **({"cursor": cursor} if cursor else {})}
        elapsed, page = _get(client, path, query)
        if len(page["items"]) == 0:
            raise RuntimeError(f"empty page at {len(times) + 1}")
        times.append(elapsed)
        cursors.append(cursor)
        cursor = page["next_cursor"]
        if cursor is None:
            break
    return times, cursors


def measure(base_url: str, token: str, show_id: str) -> dict[str, Any]:
    path = f"/api/v1/shows/{show_id}/episodes"
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=REQUEST_TIMEOUT_S) as client:
        # Warm-up (untimed): every page once, which also collects the cursors of deep pages.
        _, cursors = walk(client, path, None)
        if len(cursors) != EPISODES // PAGE:
            raise RuntimeError(f"walked {len(cursors)} pages, expected {EPISODES // PAGE}")
        walk(client, path, WALK_PAGES, status="published")
        deep = [cursors[n - 1] for n in DEEP_PAGES]
        kinds: dict[str, list[float]] = {
            "first_page": [],
            "walk_20": [],
            "walk_20_published": [],
            "deep_cursor": [],
        }
        first_page_bytes = len(client.get(path, params={"limit": PAGE}).content)
        for _ in range(ROUNDS):
            kinds["first_page"].append(_get(client, path, {"limit": PAGE})[0])
            kinds["walk_20"] += walk(client, path, WALK_PAGES)[0]
            kinds["walk_20_published"] += walk(client, path, WALK_PAGES, status="published")[0]
            for cursor in deep:
                elapsed, _ = _get(client, path, {"limit": PAGE, "cursor": cursor})
                kinds["deep_cursor"].append(elapsed)
    every = [t for times in kinds.values() for t in times]
    return {
        "requests": len(every),
        "latency_ms": latency_summary(every),
        "by_kind_ms": {kind: latency_summary(times) for kind, times in kinds.items()},
        "first_page_bytes": first_page_bytes,
        "deep_pages": list(DEEP_PAGES),
    }


async def count_statements(env: dict[str, str], token: str, show_id: str) -> dict[str, Any]:
    """Statements per request in-process: ``limit=5`` vs ``limit=50`` on several pages; plus
    where the time of one ``limit=50`` request goes and the plan of its slowest statement."""
    path = f"/api/v1/shows/{show_id}/episodes"
    headers = {"Authorization": f"Bearer {token}"}
    async with in_process_client(env) as (client, app):
        engine = app.state.runtime.db.engine
        first = await client.get(path, params={"limit": PAGE}, headers=headers)
        first.raise_for_status()
        published = await client.get(
            path, params={"limit": PAGE, "status": "published"}, headers=headers
        )
        published.raise_for_status()
        cases = {
            "first_page": {},
            "second_page": {"cursor": first.json()["next_cursor"]},
            "published_second_page": {
                "status": "published",
                "cursor": published.json()["next_cursor"],
            },
        }
        counts: dict[str, dict[str, int]] = {}
        statements: list[str] = []
        with StatementRecorder(engine) as recorder:
            for _ in range(3):  # warm the in-process app (statement caches, pool)
                await client.get(path, params={"limit": PAGE}, headers=headers)
            for case, params in cases.items():
                counts[case] = {}
                for limit in (5, PAGE):
                    recorder.clear()
                    response = await client.get(
                        path, params={**params, "limit": limit}, headers=headers
                    )
                    response.raise_for_status()
                    if len(response.json()["items"]) != limit:
                        raise RuntimeError(f"{case}: expected {limit} items")
                    counts[case][f"limit_{limit}"] = len(recorder.statements)
                    if case == "first_page" and limit == PAGE:
                        statements = recorder.summary()
            recorder.clear()
            started = time.perf_counter()
            response = await client.get(path, params={"limit": PAGE}, headers=headers)
            total = time.perf_counter() - started
            response.raise_for_status()
            slowest = recorder.slowest()
            timing = {
                "request_ms": round(total * 1000, 2),
                "sql_ms": round(recorder.db_seconds * 1000, 2),
                "statements": len(recorder.statements),
            }
        plan = await explain(engine, slowest) if slowest is not None else []
        profile = await profile_requests(client, path, params={"limit": PAGE}, headers=headers)
    return {
        "counts": counts,
        "constant": all(len(set(c.values())) == 1 for c in counts.values()),
        "statements_first_page_limit_50": statements,
        "in_process_limit_50": timing,
        "slowest_statement_plan": plan,
        "profile_limit_50": profile,
    }


def bench_backend(backend: str) -> dict[str, Any]:
    with temp_dir() as root:
        port = free_port()
        data_dir = root / "data"
        with backend_env(backend, data_dir, port) as env:
            db_upgrade(env)
            email, password = new_credentials()
            create_user(env, email, password, "Bench User")
            seeded = asyncio.run(
                seed_catalog(env, email, [("Bench Episode List", EPISODES)], media=True)
            )
            show_id = str(seeded.show_ids[0])
            with running_server(env, data_dir, port) as server:
                token = login(server.base_url, email, password)
                result = measure(server.base_url, token, show_id)
                if server.proc.poll() is not None:
                    raise RuntimeError("server died during the run:\n" + server.log_tail())
            result["sql"] = asyncio.run(count_statements(env, token, show_id))
    result["seed_s"] = seeded.seconds
    result["met"] = {
        "p95_ms": result["latency_ms"]["p95"] < TARGETS["p95_ms_target"],
        "constant_statements": result["sql"]["constant"],
    }
    return {"backend": backend, **result}


def main() -> dict[str, Any]:
    results = [bench_backend(backend) for backend in wanted_backends()]
    return write_result(
        NAME,
        {
            "path": "/api/v1/shows/{id}/episodes",
            "episodes": EPISODES,
            "page_size": PAGE,
            "connections": 1,
            "targets": TARGETS,
            "backends": {r.pop("backend"): r for r in results},
            "met": all(all(r["met"].values()) for r in results),
        },
    )


if __name__ == "__main__":
    exit_on_sigterm()
    main()
