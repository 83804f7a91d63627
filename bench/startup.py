"""Start-up time and idle memory of `amphora serve` on SQLite (the embedded default).

Each run uses a fresh data dir, so start-up includes applying every migration, creating the
secret key and the job store: what a first `amphora serve` does. Start-up is measured from
spawning the process to the first 200 from ``/readyz``; idle RSS (the process and any
children) 3 s after that, with no traffic.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    base_env,
    exit_on_sigterm,
    free_port,
    rss_mb,
    start_server,
    stop_server,
    temp_dir,
    wait_ready,
    write_result,
)

NAME = "startup"
RUNS = 5
IDLE_WAIT_S = 3.0
TARGETS = {"startup_s_target": 3, "idle_rss_mb_target": 120}


def one_run() -> dict[str, Any]:
    with temp_dir() as root:
        port = free_port()
        data_dir = root / "data"
        server = start_server(base_env(data_dir, port), data_dir, port)
        try:
            startup_s = wait_ready(server)
            time.sleep(IDLE_WAIT_S)
            if server.proc.poll() is not None:
                raise RuntimeError("server exited while idle:\n" + server.log_tail())
            rss = rss_mb(server.pid, children=True)
            own_rss = rss_mb(server.pid, children=False)
        finally:
            stop_started = time.perf_counter()
            exit_code = stop_server(server)
            stop_s = time.perf_counter() - stop_started
    return {
        "startup_s": round(startup_s, 3),
        "idle_rss_mb": round(rss, 1),
        "idle_rss_mb_main_process": round(own_rss, 1),
        # uvicorn re-raises the SIGTERM after its graceful shutdown, hence -15.
        "exit_code": exit_code,
        "stop_s": round(stop_s, 3),
    }


def _summary(values: list[float], digits: int) -> dict[str, float]:
    return {
        "min": round(min(values), digits),
        "median": round(statistics.median(values), digits),
        "max": round(max(values), digits),
    }


def main() -> dict[str, Any]:
    runs = [one_run() for _ in range(RUNS)]
    startup = _summary([r["startup_s"] for r in runs], 3)
    rss = _summary([r["idle_rss_mb"] for r in runs], 1)
    result = {
        "backend": "sqlite",
        "runs": RUNS,
        "idle_wait_s": IDLE_WAIT_S,
        "startup_s": startup,
        "idle_rss_mb": rss,
        "per_run": runs,
        "targets": TARGETS,
        # Judged on the median of the runs; "_all_runs" asks the same of the worst run.
        "met": {
            "startup_s": startup["median"] <= TARGETS["startup_s_target"],
            "idle_rss_mb": rss["median"] <= TARGETS["idle_rss_mb_target"],
            "startup_s_all_runs": startup["max"] <= TARGETS["startup_s_target"],
            "idle_rss_mb_all_runs": rss["max"] <= TARGETS["idle_rss_mb_target"],
        },
    }
    return write_result(NAME, result)


if __name__ == "__main__":
    exit_on_sigterm()
    main()
