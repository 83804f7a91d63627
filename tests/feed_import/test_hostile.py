"""Hostile and broken sources: each import fails with a stated reason and leaves no show."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from amphora.runtime import Runtime
from tests.fakes.oldhost import OldHost
from tests.feed_import.sample import feed_xml, start_import, wait_for_status
from tests.helpers import API, Account

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<rss version="2.0"><channel><title>&xxe;</title>
<item><guid>1</guid><title>&xxe;</title></item></channel></rss>"""

LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
]>
<rss version="2.0"><channel><title>&lol5;</title></channel></rss>"""


async def _fails(
    client: httpx.AsyncClient, account: Account, runtime: Runtime, url: str
) -> dict[str, Any]:
    started = await start_import(client, account, url)
    final = await wait_for_status(client, account, started["id"], "done", "failed", "verifying")
    assert final["status"] == "failed", final
    assert final["error"]["message"]
    assert final["show_id"] is None
    shows = (await client.get(f"{API}/shows", headers=account.headers)).json()
    assert shows["items"] == []
    staging = runtime.settings.resolved_data_dir / "imports" / started["id"]
    assert not staging.exists()
    return final


@pytest.mark.parametrize(
    ("body", "options", "code"),
    [
        (XXE, {}, "feed_unparseable"),
        (LAUGHS, {}, "feed_unparseable"),
        (b"<!doctype html><html><body>Not a feed</body></html>", {}, "feed_unparseable"),
        (b"", {"announced_length": 1024**3}, "fetch_too_large"),  # says 1 GB up front
        (b"", {"endless": True}, "fetch_too_large"),  # never ends: cut at the 50 MB cap
        (b"<rss><channel><title>x</title>", {"drip_seconds": 0.5}, "fetch_timeout"),
        (b"", {"status": 500}, "fetch_http_error"),
    ],
    ids=["xxe", "billion-laughs", "html-page", "1gb", "endless", "slow-drip", "error"],
)
async def test_hostile_feeds_are_refused(
    client: httpx.AsyncClient,
    account: Account,
    runtime: Runtime,
    host: OldHost,
    body: bytes,
    options: dict[str, Any],
    code: str,
) -> None:
    url = host.put("/feed.xml", body, content_type="application/rss+xml", **options)
    final = await _fails(client, account, runtime, url)
    assert final["error"]["code"] == code, final
    assert "root:" not in str(final)  # the entity never resolved


async def test_redirects_to_private_addresses_and_loops_are_refused(
    client: httpx.AsyncClient, account: Account, runtime: Runtime, host: OldHost
) -> None:
    metadata = host.put("/meta", location="http://169.254.169.254/latest/meta-data/")
    final = await _fails(client, account, runtime, metadata)
    assert final["error"]["code"] == "url_not_allowed"
    for n in range(10):
        host.put(f"/loop/{n}", location=host.url(f"/loop/{n + 1}"))
    final = await _fails(client, account, runtime, host.url("/loop/0"))
    assert final["error"]["code"] == "too_many_redirects"


async def test_an_empty_feed_imports_nothing(
    client: httpx.AsyncClient, account: Account, runtime: Runtime, host: OldHost
) -> None:
    url = host.put("/feed.xml", feed_xml(host, ""))
    final = await _fails(client, account, runtime, url)
    assert final["error"]["code"] == "nothing_imported"
