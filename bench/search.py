"""Latency of ``GET /api/v1/search`` over 200,000 episodes in 4 shows of one user.

For each backend (SQLite FTS5; PostgreSQL tsvector + GIN, with Redis): the shows and episodes
are seeded straight into the database (``bench/seed.py``, which also writes the search index
rows and, on PostgreSQL, runs ``ANALYZE``), then a server is started and queries are sent over
one keep-alive connection, one at a time, after one untimed pass over every query. Four kinds
of query rotate:

- ``rare``: a guest's made-up surname (in a few dozen episodes);
- ``common``: one of the most frequent content words (in about a third of the episodes);
- ``two_word``: two words of middling frequency (both must match);
- ``prefix``: the first four letters of several words (``stor`` → story, storm, storage, …).

Afterwards, in-process (``httpx.ASGITransport`` against ``create_app``): how many documents
each query matches, how a request of each kind splits into SQL and the rest, and the plan of
its slowest statement (``EXPLAIN QUERY PLAN`` / ``EXPLAIN (ANALYZE, BUFFERS)``).
"""

from __future__ import annotations

import asyncio
import itertools
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
    running_server,
    temp_dir,
    wanted_backends,
    write_result,
)
from seed import TextGen, seed_catalog

NAME = "search"
SHOWS = 4
EPISODES_PER_SHOW = 50_000
PER_KIND = 60  # timed requests per kind of query: 240 in all
LIMIT = 20
TARGETS = {"p95_ms_target": 50}
REQUEST_TIMEOUT_S = 60


def queries() -> dict[str, list[str]]:
    """The same generator (and seed) as the seeding, so the rare names do occur."""
    gen = TextGen(seed=1)
    mid = gen.mid_terms(20)
    return {
        "rare": [name.lower() for name in gen.surnames[::400][:10]],
        "common": gen.common_terms(5),
        "two_word": [f"{a} {b}" for a, b in zip(mid[::2], mid[1::2], strict=True)],
        "prefix": gen.prefixes(5),
    }


def measure(base_url: str, token: str, kinds: dict[str, list[str]]) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    times: dict[str, list[float]] = {kind: [] for kind in kinds}
    hits: dict[str, list[int]] = {kind: [] for kind in kinds}
    with httpx.Client(base_url=base_url, headers=headers, timeout=REQUEST_TIMEOUT_S) as client:

        def one(q: str) -> tuple[float, int]:
            started = time.perf_counter()
            response = client.get("/api/v1/search", params={"q": q, "limit": LIMIT})
            elapsed = time.perf_counter() - started
            if response.status_code != 200:
                raise RuntimeError(f"search {q!r} → {response.status_code}: {response.text[:500]}")
            return elapsed, len(response.json()["items"])

        for q in itertools.chain.from_iterable(kinds.values()):  # warm-up, untimed
            one(q)
        cycles = {kind: itertools.cycle(qs) for kind, qs in kinds.items()}
        for _ in range(PER_KIND):
            for kind, cycle in cycles.items():  # interleaved: kinds share the same conditions
                elapsed, count = one(next(cycle))
                times[kind].append(elapsed)
                hits[kind].append(count)
    empty = {kind: sum(1 for n in counts if n == 0) for kind, counts in hits.items()}
    if any(empty.values()):
        raise RuntimeError(f"queries without hits: {empty}")
    every = [t for ts in times.values() for t in ts]
    return {
        "requests": len(every),
        "latency_ms": latency_summary(every),
        "by_kind_ms": {kind: latency_summary(ts) for kind, ts in times.items()},
    }


async def inspect(env: dict[str, str], token: str, kinds: dict[str, list[str]]) -> dict[str, Any]:
    from sqlalchemy import text

    headers = {"Authorization": f"Bearer {token}"}
    out: dict[str, Any] = {}
    async with in_process_client(env) as (client, app):
        engine = app.state.runtime.db.engine
        sqlite = engine.dialect.name == "sqlite"
        for kind, qs in kinds.items():
            async with engine.connect() as conn:
                matches = []
                for q in qs:
                    words = q.split()
                    if sqlite:
                        sql = "SELECT count(*) FROM search_fts WHERE search_fts MATCH :m"
                        param = " ".join(f'"{w}"*' for w in words)
                    else:
                        sql = (
                            "SELECT count(*) FROM search_documents "
                            "WHERE tsv @@ to_tsquery('simple', :m)"
                        )
                        param = " & ".join(f"{w}:*" for w in words)
                    matches.append(int((await conn.execute(text(sql), {"m": param})).scalar_one()))
            q = qs[0]
            for _ in range(2):  # warm
                warm = await client.get("/api/v1/search", params={"q": q}, headers=headers)
                warm.raise_for_status()
            with StatementRecorder(engine) as recorder:
                started = time.perf_counter()
                response = await client.get(
                    "/api/v1/search", params={"q": q, "limit": LIMIT}, headers=headers
                )
                total = time.perf_counter() - started
                response.raise_for_status()
            slowest = recorder.slowest()
            out[kind] = {
                "queries": qs,
                "matching_documents": {
                    "min": min(matches),
                    "mean": round(sum(matches) / len(matches)),
                    "max": max(matches),
                },
                "in_process": {
                    "q": q,
                    "request_ms": round(total * 1000, 2),
                    "sql_ms": round(recorder.db_seconds * 1000, 2),
                    "statements": recorder.summary(),
                },
                "slowest_statement": " ".join(slowest.sql.split()) if slowest else None,
                "slowest_statement_plan": await explain(engine, slowest) if slowest else [],
            }
    return out


def bench_backend(backend: str) -> dict[str, Any]:
    kinds = queries()
    with temp_dir() as root:
        port = free_port()
        data_dir = root / "data"
        with backend_env(backend, data_dir, port) as env:
            db_upgrade(env)
            email, password = new_credentials()
            create_user(env, email, password, "Bench User")
            shows = [(f"Bench Search {i + 1}", EPISODES_PER_SHOW) for i in range(SHOWS)]
            seeded = asyncio.run(seed_catalog(env, email, shows))
            with running_server(env, data_dir, port) as server:
                token = login(server.base_url, email, password)
                result = measure(server.base_url, token, kinds)
                if server.proc.poll() is not None:
                    raise RuntimeError("server died during the run:\n" + server.log_tail())
            result["queries"] = asyncio.run(inspect(env, token, kinds))
    result["seed_s"] = seeded.seconds
    result["episodes"] = seeded.episodes
    result["met"] = {"p95_ms": result["latency_ms"]["p95"] < TARGETS["p95_ms_target"]}
    return {"backend": backend, **result}


def main() -> dict[str, Any]:
    results = [bench_backend(backend) for backend in wanted_backends()]
    return write_result(
        NAME,
        {
            "path": "/api/v1/search",
            "shows": SHOWS,
            "episodes": SHOWS * EPISODES_PER_SHOW,
            "limit": LIMIT,
            "connections": 1,
            "targets": TARGETS,
            "backends": {r.pop("backend"): r for r in results},
            "met": all(all(r["met"].values()) for r in results),
        },
    )


if __name__ == "__main__":
    exit_on_sigterm()
    main()
