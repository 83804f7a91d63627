"""Run the benchmarks and gather their results: ``python bench/run.py [name ...]``.

Each benchmark runs as its own subprocess (a fresh interpreter, so one cannot skew the next);
its JSON result is read back from ``bench/results/<name>.json``. The combined summary is
printed and written to ``bench/results/summary.json``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import BENCH_DIR, RESULTS_DIR, exit_on_sigterm, write_result

BENCHMARKS = [
    "startup",
    "users_me",
    "episode_list",
    "search",
    "upload",
    "feed_render",
    "feed_serve",
    "enclosure",
    "feed_import",
    "analytics_process",
    "log_import",
]
TIMEOUT_S = 30 * 60  # per benchmark; each one also bounds its own waits


def run_one(name: str) -> dict[str, Any]:
    result_path = RESULTS_DIR / f"{name}.json"
    result_path.unlink(missing_ok=True)  # never report a stale result as this run's
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, str(BENCH_DIR / f"{name}.py")],
        cwd=BENCH_DIR.parent,
        stdout=sys.stderr,  # keep our stdout for the summary; results are read from files
    )
    try:
        code: int | str = proc.wait(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        _stop(proc)
        code = "timeout"
    except BaseException:  # interrupted: stop the benchmark, then pass the interrupt on
        _stop(proc)
        raise
    elapsed = round(time.perf_counter() - started, 1)
    if code != 0 or not result_path.exists():
        return {"ok": False, "exit_code": code, "elapsed_s": elapsed}
    return {"ok": True, "elapsed_s": elapsed, "result": json.loads(result_path.read_text())}


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM lets a benchmark stop its servers and drop its databases; SIGKILL after 60 s."""
    proc.terminate()
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def main(names: list[str] | None = None) -> dict[str, Any]:
    names = names or BENCHMARKS
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        raise SystemExit(f"unknown benchmark(s) {unknown}; choose from {BENCHMARKS}")
    results: dict[str, Any] = {}
    for name in names:
        print(f"--- {name}", file=sys.stderr, flush=True)
        results[name] = run_one(name)
    summary = {
        "benchmarks": results,
        "all_ok": all(r["ok"] for r in results.values()),
        "all_met": all(r["ok"] and _met(r["result"]) for r in results.values()),
    }
    return write_result("summary", summary)


def _met(result: dict[str, Any]) -> bool:
    met = result.get("met")
    if isinstance(met, dict):
        return all(bool(v) for v in met.values())
    return bool(met)


if __name__ == "__main__":
    exit_on_sigterm()
    summary = main(sys.argv[1:])
    sys.exit(0 if summary["all_ok"] else 1)
