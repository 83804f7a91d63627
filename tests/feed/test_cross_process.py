"""Two real `amphora serve` processes sharing PostgreSQL and Redis: an edit through one is in
the feed the other serves at once (its in-memory copy is dropped by the Redis invalidation)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from amphora.settings import Settings
from tests.fakes.smtp import Mailbox
from tests.helpers import API, eventually, verified_account


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(settings: Settings, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AMPHORA_")}
    for name in Settings.model_fields:
        value: Any = getattr(settings, name)
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        elif isinstance(value, list):
            value = ",".join(map(str, value))
        env[f"AMPHORA_{name.upper()}"] = str(value)
    env["AMPHORA_PORT"] = str(port)
    env["AMPHORA_BASE_URL"] = "http://amphora.test"  # both processes publish the same URLs
    return env


@pytest.fixture
def two_servers(settings_factory: Any, tmp_path: Path) -> Iterator[tuple[str, str]]:
    settings: Settings = settings_factory()
    processes, urls = [], []
    # Two web processes and a worker (for the mails and jobs), as deployed at scale.
    for name, command in (("a", "serve"), ("b", "serve"), ("worker", "worker")):
        port = _free_port()
        log = (tmp_path / f"server-{name}.log").open("wb")
        processes.append(
            subprocess.Popen(
                [sys.executable, "-c", "from amphora.cli import app; app()", command],
                env=_env(settings, port),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
        if command == "serve":
            urls.append(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 60
        for url in urls:
            while True:
                try:
                    if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    logs = [p.read_text() for p in tmp_path.glob("server-*.log")]
                    raise AssertionError(f"servers did not start: {logs}")
                time.sleep(0.2)
        yield urls[0], urls[1]
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_an_edit_in_one_process_reaches_the_feed_of_the_other(
    two_servers: tuple[str, str], mailbox: Mailbox
) -> None:
    url_a, url_b = two_servers
    async with httpx.AsyncClient(base_url=url_a) as a, httpx.AsyncClient(base_url=url_b) as b:
        owner = await verified_account(a, mailbox)
        created = await a.post(f"{API}/shows", json={"title": "Two Rooms"}, headers=owner.headers)
        assert created.status_code == 201, created.text
        show = created.json()
        feed = f"/feeds/{show['slug']}.xml"
        before_b = await b.get(feed)  # B renders and keeps the feed in its memory
        assert before_b.status_code == 200 and b"<title>Two Rooms</title>" in before_b.content
        assert (await b.get(feed)).headers["etag"] == before_b.headers["etag"]

        for title in ("Edited Through A", "And Again"):
            edited = await a.patch(
                f"{API}/shows/{show['id']}", json={"title": title}, headers=owner.headers
            )
            assert edited.status_code == 200
            expected = f"<title>{title}</title>".encode()

            async def b_serves_the_edit(expected: bytes = expected) -> bool:
                # Pub/sub delivery to B takes well under a millisecond; allow a moment.
                return expected in (await b.get(feed)).content

            await eventually(b_serves_the_edit, timeout=2)
            after_a, after_b = await a.get(feed), await b.get(feed)
            assert after_a.headers["etag"] == after_b.headers["etag"]
