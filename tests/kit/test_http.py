"""The guarded fetcher against a real HTTP server on loopback that misbehaves on request."""

from __future__ import annotations

import gzip
import ipaddress
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpcore
import pytest

import amphora
from amphora.kit import http as fetcher
from amphora.kit.http import (
    FetchError,
    FetchHttpError,
    FetchTimeout,
    FetchTooLarge,
    GuardedBackend,
    TooManyRedirects,
    UrlNotAllowed,
    blocked_reason,
    fetch,
    fetch_stream,
    resolve_checked,
)
from amphora.settings import Settings

BOMB = gzip.compress(b"\0" * (20 * 1024 * 1024))  # ~20 KB on the wire, 20 MB decoded
HELLO = b"<rss>hello</rss>"


@dataclass(frozen=True)
class Seen:
    path: str
    headers: dict[str, str]
    client: str


@dataclass
class Server:
    base_url: str = ""
    port: int = 0
    seen: list[Seen] = field(default_factory=list)


def _handler(server: Server) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _send(self, status: int, body: bytes, **headers: str) -> None:
            self.send_response(status)
            headers.setdefault("Content-Length", str(len(body)))
            for name, value in headers.items():
                self.send_header(name.replace("_", "-"), value)
            self.end_headers()
            self.wfile.write(body)

        def _chunk(self, data: bytes) -> None:
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            server.seen.append(
                Seen(
                    parts.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    self.client_address[0],
                )
            )
            path = parts.path
            if path == "/ok":
                self._send(200, HELLO, Content_Type="application/rss+xml")
            elif path == "/gzip":
                self._send(200, gzip.compress(HELLO * 100), Content_Encoding="gzip")
            elif path == "/redirect":
                self._send(302, b"", Location=query["to"])
            elif path.startswith("/chain/"):
                left = int(path.rsplit("/", 1)[1])
                if left == 0:
                    self._send(200, HELLO)
                else:
                    self._send(301, b"", Location=f"/chain/{left - 1}")
            elif path == "/big":
                self._send(200, b"x" * 5000)
            elif path == "/big-chunked":
                self.send_response(200)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                try:
                    for _ in range(50):
                        self._chunk(b"x" * 1000)
                    self.wfile.write(b"0\r\n\r\n")
                except OSError:
                    pass
            elif path == "/bomb":
                self._send(200, BOMB, Content_Encoding="gzip")
            elif path == "/drip":
                self.send_response(200)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                try:
                    for _ in range(200):
                        self._chunk(b".")
                        time.sleep(0.1)
                    self.wfile.write(b"0\r\n\r\n")
                except OSError:
                    pass
            else:
                self._send(404, b"Not Found")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    state = Server()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    state.port = httpd.server_address[1]
    state.base_url = f"http://127.0.0.1:{state.port}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path, base_url="https://pods.example", fetch_allowed_networks=["127.0.0.0/8"]
    )


@pytest.fixture
def strict(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path)


# --- settings -----------------------------------------------------------------------------------


def test_allowed_networks_setting_parses_and_validates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AMPHORA_FETCH_ALLOWED_NETWORKS", "127.0.0.0/8, 10.1.0.0/16")
    settings = Settings(data_dir=tmp_path)
    assert settings.fetch_allowed_networks == ["127.0.0.0/8", "10.1.0.0/16"]
    assert fetcher.allowed_networks(settings)[1] == ipaddress.ip_network("10.1.0.0/16")
    with pytest.raises(ValueError, match="does not appear to be"):
        Settings(data_dir=tmp_path, fetch_allowed_networks=["not-a-network"])


# --- address and URL checks ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("10.1.2.3", "private"),
        ("192.168.0.10", "private"),
        ("172.16.5.4", "private"),
        ("169.254.169.254", "link-local"),
        ("100.64.0.1", "not a public"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fe80::1", "link-local"),
        ("fc00::1", "private"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:169.254.169.254", "link-local"),
        ("2002:7f00:1::", "loopback"),  # 6to4 wrapping 127.0.0.1
        ("64:ff9b::a00:1", "private"),  # NAT64 wrapping 10.0.0.1
    ],
)
def test_non_public_addresses_are_refused(address: str, reason: str) -> None:
    found = blocked_reason(ipaddress.ip_address(address))
    assert found is not None and reason in found


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"])
def test_public_addresses_pass(address: str) -> None:
    assert blocked_reason(ipaddress.ip_address(address)) is None


def test_allow_list_opens_only_its_networks() -> None:
    allowed = [ipaddress.ip_network("127.0.0.0/8")]
    assert blocked_reason(ipaddress.ip_address("127.0.0.1"), allowed) is None
    assert blocked_reason(ipaddress.ip_address("10.0.0.1"), allowed) is not None
    assert blocked_reason(ipaddress.ip_address("::1"), allowed) is not None


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/feed",
        "http://localhost/feed",
        "http://10.0.0.7/feed",
        "http://192.168.1.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/feed",
        "http://[::ffff:127.0.0.1]/feed",
        "http://2130706433/feed",  # 127.0.0.1 as one decimal number
    ],
)
async def test_internal_urls_are_refused(url: str, strict: Settings) -> None:
    with pytest.raises(UrlNotAllowed) as caught:
        await fetch(url, settings=strict, max_bytes=1000)
    assert caught.value.code == "url_not_allowed"
    assert caught.value.status_code == 422
    assert caught.value.message.startswith("Refusing to fetch from")


async def test_loopback_refusal_names_the_address_and_why(strict: Settings, server: Server) -> None:
    with pytest.raises(UrlNotAllowed) as caught:
        await fetch(f"{server.base_url}/ok", settings=strict, max_bytes=1000)
    assert "127.0.0.1" in caught.value.message
    assert "loopback" in caught.value.message
    assert caught.value.details["address"] == "127.0.0.1"
    assert server.seen == [] or all(s.path != "/ok" for s in server.seen)


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("file:///etc/passwd", "Only http and https"),
        ("ftp://example.com/feed.xml", "Only http and https"),
        ("gopher://example.com/", "Only http and https"),
        ("http://user:pw@example.com/feed", "user name or password"),
        ("https://user@example.com/feed", "user name or password"),
    ],
)
async def test_schemes_and_credentials_are_refused(url: str, words: str, strict: Settings) -> None:
    with pytest.raises(UrlNotAllowed, match=words):
        await fetch(url, settings=strict, max_bytes=1000)


async def test_resolve_checked_refuses_if_any_address_is_internal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def lookup(host: str, port: int) -> list[str]:
        return ["93.184.215.14", "10.0.0.5"]

    monkeypatch.setattr(fetcher, "_lookup", lookup)
    with pytest.raises(UrlNotAllowed, match=r"evil\.example \(10\.0\.0\.5\): a private address"):
        await resolve_checked("evil.example", 80, [])


# --- connecting to the checked address ------------------------------------------------------------


class _RecordingBackend(httpcore.AsyncNetworkBackend):
    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    async def connect_tcp(self, host: str, port: int, **kwargs: Any) -> Any:  # type: ignore[override]
        self.calls.append((host, port))
        raise httpcore.ConnectError("recorded only")


async def test_backend_refuses_a_name_resolving_to_a_private_address(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def lookup(host: str, port: int) -> list[str]:
        return ["192.168.1.20"]

    monkeypatch.setattr(fetcher, "_lookup", lookup)
    inner = _RecordingBackend()
    backend = GuardedBackend([], inner=inner)
    with pytest.raises(UrlNotAllowed, match="private"):
        await backend.connect_tcp("rebind.example", 443)
    assert inner.calls == []  # never connected anywhere


async def test_backend_connects_to_the_checked_address_not_the_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answers = iter([["93.184.215.14"], ["10.0.0.1"]])  # a rebinding DNS server's two answers

    async def lookup(host: str, port: int) -> list[str]:
        return next(answers)

    monkeypatch.setattr(fetcher, "_lookup", lookup)
    inner = _RecordingBackend()
    with pytest.raises(httpcore.ConnectError):
        await GuardedBackend([], inner=inner).connect_tcp("rebind.example", 80)
    assert inner.calls == [("93.184.215.14", 80)]


async def test_fetch_by_name_reaches_the_checked_address_with_the_name_as_host(
    monkeypatch: pytest.MonkeyPatch, settings: Settings, server: Server
) -> None:
    lookups: list[str] = []

    async def lookup(host: str, port: int) -> list[str]:
        lookups.append(host)
        return ["127.0.0.1"]

    monkeypatch.setattr(fetcher, "_lookup", lookup)
    result = await fetch(
        f"http://feeds.example:{server.port}/ok", settings=settings, max_bytes=1000
    )
    assert result.body == HELLO
    assert lookups == ["feeds.example"]
    seen = server.seen[-1]
    assert seen.path == "/ok"
    assert seen.client == "127.0.0.1"
    assert seen.headers["host"] == f"feeds.example:{server.port}"


# --- fetching -----------------------------------------------------------------------------------


async def test_normal_fetch_returns_the_body_and_sends_the_user_agent(
    settings: Settings, server: Server
) -> None:
    result = await fetch(
        f"{server.base_url}/ok", settings=settings, max_bytes=1000, headers={"X-Test": "1"}
    )
    assert result.status == 200
    assert result.body == HELLO
    assert result.final_url == f"{server.base_url}/ok"
    assert result.headers["content-type"] == "application/rss+xml"
    seen = server.seen[-1]
    assert seen.headers["user-agent"] == f"Amphora/{amphora.__version__} (+https://pods.example)"
    assert seen.headers["accept-encoding"] == "gzip"
    assert seen.headers["x-test"] == "1"


async def test_gzip_is_decoded(settings: Settings, server: Server) -> None:
    result = await fetch(f"{server.base_url}/gzip", settings=settings, max_bytes=10_000)
    assert result.body == HELLO * 100


async def test_redirects_are_followed(settings: Settings, server: Server) -> None:
    result = await fetch(f"{server.base_url}/chain/5", settings=settings, max_bytes=1000)
    assert result.body == HELLO
    assert result.final_url == f"{server.base_url}/chain/0"


async def test_six_redirects_are_too_many(settings: Settings, server: Server) -> None:
    with pytest.raises(TooManyRedirects) as caught:
        await fetch(f"{server.base_url}/chain/6", settings=settings, max_bytes=1000)
    assert caught.value.code == "too_many_redirects"


@pytest.mark.parametrize(
    "target",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/",
        "http://[::1]:8080/",
    ],
)
async def test_redirect_to_an_internal_address_is_refused(
    target: str, settings: Settings, server: Server
) -> None:
    with pytest.raises(UrlNotAllowed) as caught:
        await fetch(f"{server.base_url}/redirect?to={target}", settings=settings, max_bytes=1000)
    assert caught.value.code == "url_not_allowed"


async def test_redirect_to_another_scheme_is_refused(settings: Settings, server: Server) -> None:
    with pytest.raises(UrlNotAllowed, match="Only http and https"):
        await fetch(
            f"{server.base_url}/redirect?to=file:///etc/passwd", settings=settings, max_bytes=1000
        )


async def test_announced_length_over_the_cap_is_refused(settings: Settings, server: Server) -> None:
    with pytest.raises(FetchTooLarge) as caught:
        await fetch(f"{server.base_url}/big", settings=settings, max_bytes=4999)
    assert caught.value.code == "fetch_too_large"
    assert caught.value.details["content_length"] == 5000


async def test_unannounced_body_over_the_cap_is_cut_off(settings: Settings, server: Server) -> None:
    with pytest.raises(FetchTooLarge):
        await fetch(f"{server.base_url}/big-chunked", settings=settings, max_bytes=10_000)
    ok = await fetch(f"{server.base_url}/big-chunked", settings=settings, max_bytes=50_000)
    assert len(ok.body) == 50_000


async def test_stream_stops_as_soon_as_the_cap_is_passed(
    settings: Settings, server: Server
) -> None:
    received = 0
    with pytest.raises(FetchTooLarge):
        async with fetch_stream(
            f"{server.base_url}/big-chunked", settings=settings, max_bytes=2500
        ) as response:
            async for piece in response.iter_bytes():
                received += len(piece)
    assert received <= 2500


async def test_gzip_bomb_does_not_expand_past_the_cap(settings: Settings, server: Server) -> None:
    assert len(BOMB) < 100_000
    largest = 0
    with pytest.raises(FetchTooLarge):
        async with fetch_stream(
            f"{server.base_url}/bomb", settings=settings, max_bytes=1_000_000
        ) as response:
            async for piece in response.iter_bytes():
                largest = max(largest, len(piece))
    assert largest <= 1_000_001


async def test_slow_drip_hits_the_deadline(settings: Settings, server: Server) -> None:
    started = time.monotonic()
    with pytest.raises(FetchTimeout) as caught:
        await fetch(
            f"{server.base_url}/drip", settings=settings, max_bytes=1000, timeout=5, deadline=1.0
        )
    assert time.monotonic() - started < 3
    assert caught.value.code == "fetch_timeout"


async def test_http_errors_carry_the_status(settings: Settings, server: Server) -> None:
    with pytest.raises(FetchHttpError) as caught:
        await fetch(f"{server.base_url}/missing", settings=settings, max_bytes=1000)
    assert caught.value.code == "fetch_http_error"
    assert caught.value.details["status"] == 404


async def test_connection_refused_is_a_fetch_error(settings: Settings) -> None:
    with pytest.raises(FetchError) as caught:
        await fetch("http://127.0.0.1:9/", settings=settings, max_bytes=1000, deadline=10)
    assert caught.value.code == "fetch_failed"
