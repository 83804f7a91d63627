"""Access-log import speed: ``amphora analytics import-logs`` on a generated combined log.

One show with 100 released episodes on SQLite (and PostgreSQL with ``BENCH_BACKENDS``); a log
of ``BENCH_LOG_LINES`` lines (default 1,000,000) in nginx's combined format, every line a
request for one of the show's enclosure URLs (probes, ranges and whole files from 50,000
listeners and a handful of apps), written to a file. Measured, as a user runs it (a separate
process, start-up included):

- ``first``: the first import (every line becomes a hit);
- ``again``: the same file gzipped and imported again (every line is a duplicate: nothing is
  written, every line is still read, parsed and checked).

Target: at least 100,000 lines per second.
"""

from __future__ import annotations

import gzip
import os
import random
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
import seed

LINES = int(os.environ.get("BENCH_LOG_LINES", "1000000"))
EPISODES = 100
AGENTS = [
    "AppleCoreMedia/1.0.0.20E247 (iPhone; U; CPU OS 16_4 like Mac OS X; en_us)",
    "Spotify/8.5.68 iOS/13.4 (iPhone9,3)",
    "Overcast/3.0 (+http://overcast.fm/; iOS podcast app)",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0 Safari/537.36",
    "PocketCasts/1.0 (Pocket Casts - Android)",
]


async def _show(env: dict[str, str]) -> tuple[str, list[str]]:
    """The show's slug and its episodes' enclosure paths."""
    from sqlalchemy import select, update

    from amphora.kit.db import Database
    from amphora.models import Episode, MediaFile, Show

    email, password = common.new_credentials()
    common.create_user(env, email, password, "Bench")
    seeded = await seed.seed_catalog(env, email, [("Logged elsewhere", EPISODES)], media=True)
    db = Database(common.settings_for(env).resolved_database_url)
    try:
        async with db.session() as session:
            show_id = seeded.show_ids[0]
            await session.execute(
                update(Episode)
                .where(Episode.show_id == show_id)
                .values(publish_at=datetime.now(UTC) - timedelta(days=30))
            )
            slug = await session.scalar(select(Show.slug).where(Show.id == show_id))
            rows = await session.execute(
                select(MediaFile.episode_id, MediaFile.id, MediaFile.extension).where(
                    MediaFile.show_id == show_id
                )
            )
            paths = [f"/e/{slug}/{e}/{m}.{x}" for e, m, x in rows]
        assert slug is not None
        return slug, paths
    finally:
        await db.dispose()


def write_log(path: Path, paths: list[str]) -> None:
    rng = random.Random(3)
    start = datetime.now(UTC) - timedelta(days=7)
    step = 7 * 86400 / LINES
    with path.open("w") as out:
        for n in range(LINES):
            at = start + timedelta(seconds=n * step)
            listener = rng.randrange(50_000)
            ip = f"10.{listener >> 16 & 255}.{listener >> 8 & 255}.{listener & 255}"
            kind = rng.random()
            if kind < 0.3:
                status, sent = 206, 2
            elif kind < 0.8:
                status, sent = 206, rng.randrange(100_000, 5_000_000)
            else:
                status, sent = 200, 48_000_000
            out.write(
                f"{ip} - - [{at.strftime('%d/%b/%Y:%H:%M:%S +0000')}] "
                f'"GET {rng.choice(paths)} HTTP/1.1" {status} {sent} "-" '
                f'"{rng.choice(AGENTS)}"\n'
            )


def timed_import(env: dict[str, str], slug: str, file: Path) -> dict[str, Any]:
    started = time.perf_counter()
    done = subprocess.run(
        [*common.amphora_command(), "analytics", "import-logs", str(file), "--show", slug],
        env=env,
        cwd=env["AMPHORA_DATA_DIR"],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"import failed: {done.stdout}\n{done.stderr}")
    return {
        "seconds": round(seconds, 2),
        "lines_per_s": round(LINES / seconds),
        "output": done.stdout.strip().splitlines()[-1:],
    }


def run_backend(backend: str) -> dict[str, Any]:
    import asyncio

    with (
        common.temp_dir() as data_dir,
        common.backend_env(backend, data_dir, common.free_port()) as env,
    ):
        common.db_upgrade(env)
        slug, paths = asyncio.run(_show(env))
        log = data_dir / "access.log"
        write_log(log, paths)
        first = timed_import(env, slug, log)
        packed = data_dir / "access.log.gz"
        with log.open("rb") as raw, gzip.open(packed, "wb", compresslevel=1) as out:
            shutil.copyfileobj(raw, out)
        again = timed_import(env, slug, packed)
        return {"lines": LINES, "first": first, "again": again}


def main() -> None:
    common.exit_on_sigterm()
    results = {backend: run_backend(backend) for backend in common.wanted_backends()}
    met = all(r["first"]["lines_per_s"] >= 100_000 for r in results.values())
    common.write_result("log_import", {"backends": results, "met": met})


if __name__ == "__main__":
    main()
