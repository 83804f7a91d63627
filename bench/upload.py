"""A resumable upload of a ≥ 500 MiB MP3 in 8 MiB ``PATCH`` ranges (SQLite, local files).

One server in the embedded setup (SQLite, files in the data dir, in-process jobs), with a
storage quota and upload ceiling above the file. The MP3 is a 10-minute 320 kb/s tone encoded
once (no ID3 tag) and repeated: MPEG frames concatenate into one valid stream. The client
keeps it in memory and sends each range as a ``memoryview`` over one keep-alive
``http.client`` connection, so it copies nothing and is not the bottleneck.

Three uploads run one after the other (each to a new episode): disk write-back makes single
runs vary a lot. Measured for each: the server's resident memory (process and children), sampled
every 50 ms from a thread — baseline before the first range, peak during the ``PATCH`` phase
and during processing — the ``PATCH`` phase's throughput and the server's CPU use during it,
and the time from ``POST …/complete`` (which probes the file before answering 202) until
``GET /uploads/{id}`` says ``done``. Judged: the median throughput, and the highest RSS of any
run above the first baseline. MB here are MiB (2^20 bytes).
"""

from __future__ import annotations

import http.client
import json
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    backend_env,
    cpu_seconds,
    create_user,
    exit_on_sigterm,
    free_port,
    login,
    new_credentials,
    rss_mb,
    running_server,
    temp_dir,
    write_result,
)

NAME = "upload"
MIB = 1024 * 1024
MIN_SIZE = 500 * MIB
CHUNK = 8 * MIB
TONE_SECONDS = 600
RUNS = 3  # uploads one after the other on the same server
BITRATE_KBPS = 320
SAMPLE_EVERY_S = 0.05
BASELINE_S = 2.0
PROCESS_TIMEOUT_S = 600
REQUEST_TIMEOUT_S = 120
TARGETS = {"rss_growth_mb_target": 50, "throughput_mb_s_target": 200}


def build_mp3() -> tuple[bytes, int]:
    """``(file, copies)``: a tone MP3 without ID3 repeated until it is at least MIN_SIZE."""
    from amphora.media.testaudio import tone_mp3

    once = tone_mp3(TONE_SECONDS, bitrate_kbps=BITRATE_KBPS, id3=False)
    copies = -(-MIN_SIZE // len(once))
    return once * copies, copies


class RssSampler(threading.Thread):
    """Samples ``rss_mb(pid)`` every 50 ms; ``mark(phase)`` starts attributing samples to it."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.phase = "baseline"
        self.samples: dict[str, list[float]] = {}
        self._halt = threading.Event()

    def mark(self, phase: str) -> None:
        self.phase = phase

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                value = rss_mb(self.pid)
            except Exception:  # the process went away: stop sampling
                return
            self.samples.setdefault(self.phase, []).append(value)
            self._halt.wait(SAMPLE_EVERY_S)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)


def send_ranges(port: int, token: str, upload_id: str, data: bytes) -> int:
    """PATCH every range in order over one connection; returns the requests sent."""
    view = memoryview(data)
    total = len(data)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT_S)
    sent = 0
    try:
        for first in range(0, total, CHUNK):
            last = min(first + CHUNK, total) - 1
            conn.request(
                "PATCH",
                f"/api/v1/uploads/{upload_id}",
                body=view[first : last + 1],
                headers={
                    "Authorization": f"Bearer {token}",
                    "Content-Type": "application/octet-stream",
                    "Content-Range": f"bytes {first}-{last}/{total}",
                },
            )
            response = conn.getresponse()
            body = response.read()
            if response.status != 200:
                raise RuntimeError(f"PATCH {first}-{last} → {response.status}: {body[:500]!r}")
            offset = json.loads(body)["offset"]
            if offset != last + 1:
                raise RuntimeError(f"offset {offset} after range ending at {last}")
            sent += 1
    finally:
        conn.close()
    return sent


def upload_once(
    api: httpx.Client, port: int, token: str, pid: int, show_id: str, data: bytes
) -> dict[str, Any]:
    """One episode, one upload of ``data``: timings and the server's RSS around it."""
    episode = api.post(f"/api/v1/shows/{show_id}/episodes", json={"title": "A long one"})
    episode.raise_for_status()
    episode_id = episode.json()["id"]
    created = api.post(
        "/api/v1/uploads",
        json={
            "filename": "long.mp3",
            "size": len(data),
            "content_type": "audio/mpeg",
            "episode_id": episode_id,
        },
    )
    if created.status_code != 201:
        raise RuntimeError(f"POST /uploads → {created.status_code}: {created.text}")
    upload_id = created.json()["id"]

    sampler = RssSampler(pid)
    sampler.start()
    try:
        time.sleep(BASELINE_S)
        sampler.mark("patch")
        cpu_before = cpu_seconds(pid)
        started = time.perf_counter()
        requests = send_ranges(port, token, upload_id, data)
        patch_s = time.perf_counter() - started
        patch_cpu_s = cpu_seconds(pid) - cpu_before

        sampler.mark("processing")
        started = time.perf_counter()
        completed = api.post(f"/api/v1/uploads/{upload_id}/complete")
        complete_request_s = time.perf_counter() - started
        if completed.status_code != 202:
            raise RuntimeError(f"complete → {completed.status_code}: {completed.text}")
        deadline = started + PROCESS_TIMEOUT_S
        while True:
            state = api.get(f"/api/v1/uploads/{upload_id}").json()
            if state["status"] in {"done", "failed"}:
                break
            if time.perf_counter() > deadline:
                status = state["status"]
                raise TimeoutError(f"upload still {status} after {PROCESS_TIMEOUT_S} s")
            time.sleep(0.1)
        processing_s = time.perf_counter() - started
    finally:
        sampler.stop()
    if state["status"] != "done":
        raise RuntimeError(f"upload failed: {state.get('error_code')}: {state.get('error')}")
    media = api.get(f"/api/v1/episodes/{episode_id}").json()["media"]
    if media is None or media["size"] != len(data):
        raise RuntimeError(f"episode media after the upload: {media}")

    samples = sampler.samples
    baseline = statistics.median(samples["baseline"])
    patch_peak = max(samples.get("patch", [baseline]))
    processing_peak = max(samples.get("processing", [baseline]))
    return {
        "patch_requests": requests,
        "patch_s": round(patch_s, 2),
        "throughput_mb_s": round(len(data) / MIB / patch_s, 1),
        # 100 = one core busy for the whole PATCH phase (threads of the server add up).
        "server_cpu_percent_patch": round(100 * patch_cpu_s / patch_s, 1),
        "complete_request_s": round(complete_request_s, 2),
        "complete_to_done_s": round(processing_s, 2),
        "rss_mb": {
            "baseline": round(baseline, 1),
            "peak_patch": round(patch_peak, 1),
            "peak_processing": round(processing_peak, 1),
            "growth": round(max(patch_peak, processing_peak) - baseline, 1),
            "samples": {phase: len(values) for phase, values in samples.items()},
        },
        "media": {k: media[k] for k in ("size", "duration_s", "bitrate")},
    }


def run(base_url: str, port: int, token: str, pid: int, data: bytes) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=REQUEST_TIMEOUT_S) as api:
        show = api.post("/api/v1/shows", json={"title": "Bench Uploads"})
        show.raise_for_status()
        runs = [upload_once(api, port, token, pid, show.json()["id"], data) for _ in range(RUNS)]
    throughput = [r["throughput_mb_s"] for r in runs]
    first_baseline = runs[0]["rss_mb"]["baseline"]
    peak = max(max(r["rss_mb"]["peak_patch"], r["rss_mb"]["peak_processing"]) for r in runs)
    return {
        "file_mb": round(len(data) / MIB, 1),
        "chunk_mb": CHUNK // MIB,
        "runs": len(runs),
        # Judged: the median run's throughput; the highest RSS of any run over the first
        # baseline (so that memory kept from one upload to the next counts too).
        "throughput_mb_s": statistics.median(throughput),
        "throughput_mb_s_min_max": [min(throughput), max(throughput)],
        "complete_to_done_s": statistics.median(r["complete_to_done_s"] for r in runs),
        "rss_mb": {
            "baseline": first_baseline,
            "peak": peak,
            "growth": round(peak - first_baseline, 1),
        },
        "per_run": runs,
    }


def main() -> dict[str, Any]:
    started = time.perf_counter()
    data, copies = build_mp3()
    build_s = time.perf_counter() - started
    with temp_dir() as root:
        port = free_port()
        data_dir = root / "data"
        with backend_env(
            "sqlite",
            data_dir,
            port,
            AMPHORA_DEFAULT_STORAGE_QUOTA_BYTES=str(10**12),
            AMPHORA_MAX_UPLOAD_BYTES=str(4 * 1024**3),
        ) as env:
            email, password = new_credentials()
            with running_server(env, data_dir, port) as server:
                create_user(env, email, password, "Bench User")
                token = login(server.base_url, email, password)
                result = run(server.base_url, port, token, server.pid, data)
                if server.proc.poll() is not None:
                    raise RuntimeError("server died during the run:\n" + server.log_tail())
    result["met"] = {
        "rss_growth_mb": result["rss_mb"]["growth"] < TARGETS["rss_growth_mb_target"],
        "throughput_mb_s": result["throughput_mb_s"] > TARGETS["throughput_mb_s_target"],
    }
    return write_result(
        NAME,
        {
            "backend": "sqlite",
            "mp3": {
                "tone_s": TONE_SECONDS,
                "bitrate_kbps": BITRATE_KBPS,
                "copies": copies,
                "build_s": round(build_s, 1),
            },
            "targets": TARGETS,
            **result,
        },
    )


if __name__ == "__main__":
    exit_on_sigterm()
    main()
