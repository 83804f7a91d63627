"""Latency and throughput of ``GET /api/v1/users/me`` (bearer-token auth + one user read).

For each backend (SQLite embedded; PostgreSQL + Redis) a fresh server is started, a verified
user is created with `amphora user create`, logged in, and the route is loaded at 50
concurrent keep-alive connections: 5 s warm-up, then 20 s measured. The load comes from
`wrk` if it is installed, otherwise from a Python (asyncio + httpx) generator; the JSON says
which (``client``). Both run on the same machine as the server and share its CPUs.
After the measured run, 5 s at a single connection are recorded for context
(``single_connection``: the service time without queueing); targets ignore it.

``BENCH_CLIENT=httpx`` forces the Python generator; ``BENCH_BACKENDS=sqlite`` runs a subset.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    Server,
    backend_env,
    cpu_seconds,
    create_user,
    exit_on_sigterm,
    free_port,
    login,
    percentile,
    rss_mb,
    running_server,
    temp_dir,
    write_result,
)

NAME = "users_me"
BACKENDS = ["sqlite", "postgresql"]
CONNECTIONS = 50
WARMUP_S = 5
DURATION_S = 20
SINGLE_S = 5  # informational run at 1 connection after the measured one
REQUEST_TIMEOUT_S = 5
PATH = "/api/v1/users/me"
TARGETS = {"p99_ms_target": 25, "errors_target": 0}
WRK_SCRIPT = Path(__file__).resolve().parent / "wrk_report.lua"


# --- load generators ----------------------------------------------------------------------------


def run_wrk(url: str, token: str, duration_s: int, connections: int) -> dict[str, Any]:
    wrk = shutil.which("wrk")
    assert wrk is not None
    threads = max(1, min(os.cpu_count() or 1, 4, connections))
    command = [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration_s}s",
        f"--timeout={REQUEST_TIMEOUT_S}s",
        "--latency",
        "-H",
        f"Authorization: Bearer {token}",
        "-s",
        str(WRK_SCRIPT),
        url,
    ]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=duration_s + 60, check=False
    )
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("WRK_JSON ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    raw = json.loads(lines[-1].removeprefix("WRK_JSON "))
    lat = raw["latency_us"]
    errors = raw["errors"]
    duration = raw["duration_us"] / 1e6
    return {
        "client": "wrk",
        "client_threads": threads,
        "connections": connections,
        "requests": raw["requests"],
        "duration_s": round(duration, 3),
        "requests_per_s": round(raw["requests"] / duration, 1),
        "latency_ms": {
            "mean": round(lat["mean"] / 1000, 2),
            "p50": round(lat["p50"] / 1000, 2),
            "p75": round(lat["p75"] / 1000, 2),
            "p90": round(lat["p90"] / 1000, 2),
            "p99": round(lat["p99"] / 1000, 2),
            "p99.9": round(lat["p99.9"] / 1000, 2),
            "max": round(lat["max"] / 1000, 2),
        },
        "non_2xx": raw["non_2xx"],
        "socket_errors": {k: errors[k] for k in ("connect", "read", "write", "timeout")},
    }


async def _httpx_load(url: str, token: str, duration_s: float, connections: int) -> dict[str, Any]:
    latencies: list[float] = []
    counts = {"non_2xx": 0, "connect": 0, "read": 0, "write": 0, "timeout": 0}
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(
        limits=limits, timeout=REQUEST_TIMEOUT_S, headers=headers
    ) as client:
        started = time.perf_counter()
        stop_at = started + duration_s

        async def worker() -> None:
            while time.perf_counter() < stop_at:
                t0 = time.perf_counter()
                try:
                    response = await client.get(url)
                except httpx.TimeoutException:
                    counts["timeout"] += 1
                    continue
                except httpx.ConnectError:
                    counts["connect"] += 1
                    await asyncio.sleep(0.01)
                    continue
                except httpx.WriteError:
                    counts["write"] += 1
                    continue
                except httpx.TransportError:
                    counts["read"] += 1
                    continue
                latencies.append(time.perf_counter() - t0)
                if not 200 <= response.status_code <= 299:
                    counts["non_2xx"] += 1

        await asyncio.wait_for(
            asyncio.gather(*(worker() for _ in range(connections))),
            timeout=duration_s + REQUEST_TIMEOUT_S + 30,
        )
        elapsed = time.perf_counter() - started
    latencies.sort()
    ms = [x * 1000 for x in latencies]
    return {
        "client": "httpx",
        "client_threads": 1,
        "connections": connections,
        "requests": len(ms),
        "duration_s": round(elapsed, 3),
        "requests_per_s": round(len(ms) / elapsed, 1),
        "latency_ms": {
            "mean": round(sum(ms) / len(ms), 2) if ms else 0.0,
            "p50": round(percentile(ms, 50), 2),
            "p75": round(percentile(ms, 75), 2),
            "p90": round(percentile(ms, 90), 2),
            "p99": round(percentile(ms, 99), 2),
            "p99.9": round(percentile(ms, 99.9), 2),
            "max": round(ms[-1], 2) if ms else 0.0,
        },
        "non_2xx": counts["non_2xx"],
        "socket_errors": {k: counts[k] for k in ("connect", "read", "write", "timeout")},
    }


def run_httpx(url: str, token: str, duration_s: int, connections: int) -> dict[str, Any]:
    return asyncio.run(_httpx_load(url, token, duration_s, connections))


def pick_client() -> str:
    wanted = os.environ.get("BENCH_CLIENT", "").strip().lower()
    if wanted in {"wrk", "httpx"}:
        if wanted == "wrk" and shutil.which("wrk") is None:
            raise RuntimeError("BENCH_CLIENT=wrk but wrk is not installed")
        return wanted
    return "wrk" if shutil.which("wrk") else "httpx"


# --- one backend --------------------------------------------------------------------------------


def load(server: Server, token: str, client: str) -> dict[str, Any]:
    url = f"{server.base_url}{PATH}"
    run = run_wrk if client == "wrk" else run_httpx
    run(url, token, WARMUP_S, CONNECTIONS)
    cpu_before = cpu_seconds(server.pid)
    measured = run(url, token, DURATION_S, CONNECTIONS)
    cpu_used = cpu_seconds(server.pid) - cpu_before
    measured["server_cpu_percent"] = round(100 * cpu_used / measured["duration_s"], 1)
    measured["server_rss_mb_after"] = round(rss_mb(server.pid), 1)
    # Context, not judged: one connection shows the service time without queueing.
    single = run(url, token, SINGLE_S, 1)
    measured["single_connection"] = {
        k: single[k] for k in ("requests_per_s", "latency_ms", "non_2xx", "socket_errors")
    }
    return measured


def bench_backend(backend: str, client: str) -> dict[str, Any]:
    with temp_dir() as root:
        port = free_port()
        data_dir = root / "data"
        with (
            backend_env(backend, data_dir, port) as env,
            running_server(env, data_dir, port) as server,
        ):
            email = f"bench-{secrets.token_hex(4)}@example.com"
            password = "Pw-" + secrets.token_urlsafe(18)
            create_user(env, email, password, "Bench User")
            token = login(server.base_url, email, password)
            check = httpx.get(
                f"{server.base_url}{PATH}",
                headers={"Authorization": f"Bearer {token}"},
                timeout=10,
            )
            if check.status_code != 200:
                raise RuntimeError(f"{PATH} answered {check.status_code}: {check.text}")
            # That first request also stamped the token's last_used_at (a write that is then
            # skipped for 15 min), so the load below measures the read-only steady state.
            result = load(server, token, client)
            if server.proc.poll() is not None:
                raise RuntimeError("server died during the load:\n" + server.log_tail())
    errors = sum(result["socket_errors"].values())
    result["met"] = {
        # A run that got no answer at all (a stalled server) meets nothing.
        "p99_ms": result["requests"] > 0 and result["latency_ms"]["p99"] < TARGETS["p99_ms_target"],
        "zero_errors": result["requests"] > 0 and errors == 0 and result["non_2xx"] == 0,
    }
    return {"backend": backend, **result}


def main() -> dict[str, Any]:
    wanted = [b.strip() for b in os.environ.get("BENCH_BACKENDS", "").split(",") if b.strip()]
    backends = wanted or BACKENDS
    client = pick_client()
    results = [bench_backend(backend, client) for backend in backends]
    return write_result(
        NAME,
        {
            "path": PATH,
            "client": client,
            "connections": CONNECTIONS,
            "warmup_s": WARMUP_S,
            "duration_s": DURATION_S,
            "token_prewarmed": True,
            "targets": TARGETS,
            "backends": {r.pop("backend"): r for r in results},
            "met": all(all(r["met"].values()) for r in results),
        },
    )


if __name__ == "__main__":
    exit_on_sigterm()
    main()
