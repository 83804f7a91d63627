"""The one fetcher for every URL a user gives us (feed imports, remote media, artwork).

A podcast host that fetches arbitrary URLs on behalf of its users is an open proxy into its own
network unless every request is fenced in. The threats handled here:

- **SSRF.** Only ``http``/``https``, no credentials in the URL. The host name is resolved and
  *every* address it resolves to is checked; loopback, private, link-local (cloud metadata at
  169.254.169.254), multicast, reserved, unspecified, shared (CGNAT) and other non-global
  addresses are refused, also when hidden in IPv4-mapped, 6to4, Teredo or NAT64 IPv6 forms.
  ``AMPHORA_FETCH_ALLOWED_NETWORKS`` lists networks reachable anyway (tests, intranets).
- **DNS rebinding.** The check happens inside the connection itself (``GuardedBackend``, an
  httpcore network backend): the name is resolved once, checked, and the socket is opened to
  the very address that was checked — there is no second lookup an attacker's DNS server could
  answer differently. TLS SNI and the ``Host`` header still carry the name (httpcore takes SNI
  from the URL's origin, not from the address connected to).
- **Redirects to private addresses.** Redirects are followed by hand, and every new URL goes
  through the same scheme/credential checks and, on connection, the same address check.
- **Endless redirects.** At most ``MAX_REDIRECTS`` (5).
- **Slow drip.** Connect timeout 10 s, a read timeout per call, and a total deadline
  (``anyio.fail_after``) so a server sending one byte every few seconds cannot hold us forever.
- **Huge bodies.** ``max_bytes`` is enforced while reading — a ``Content-Length`` above it is
  refused before reading, and a body without one is cut off as soon as it passes the cap.
- **Decompression bombs.** gzip is decoded here, not by httpx (whose decoder inflates a whole
  network chunk at once, ~1000x its size): ``zlib`` is asked for at most the remaining budget
  plus one byte, so the decoded body never grows past the cap, whatever the compression ratio.

Fetching is slow and talks to strangers: never call it while a database transaction is open.
Fetch first, then open the session and store the result (or do it in a job).
"""

from __future__ import annotations

import functools
import ipaddress
import socket
import ssl
import zlib
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import httpcore
import httpx

import amphora
from amphora.kit.errors import AmphoraError
from amphora.settings import Settings

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

FEED_MAX_BYTES = 50 * 1024**2
MAX_REDIRECTS = 5
CONNECT_TIMEOUT = 10.0
DEFAULT_DEADLINE = 300.0
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# Headers that must not follow a redirect to another origin.
CREDENTIAL_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})
NAT64 = ipaddress.ip_network("64:ff9b::/96")


# --- errors -------------------------------------------------------------------------------------


class FetchError(AmphoraError):
    """A user-given URL could not be fetched."""

    status_code = 422
    code = "fetch_failed"
    message = "The URL could not be fetched."


class UrlNotAllowed(FetchError):
    code = "url_not_allowed"
    message = "This URL may not be fetched."


class TooManyRedirects(FetchError):
    code = "too_many_redirects"
    message = f"The URL redirected more than {MAX_REDIRECTS} times."


class FetchTooLarge(FetchError):
    code = "fetch_too_large"
    message = "The response is larger than allowed."


class FetchTimeout(FetchError):
    code = "fetch_timeout"
    message = "The server took too long to answer."


class FetchHttpError(FetchError):
    code = "fetch_http_error"
    message = "The server answered with an error."


class Redirected(FetchError):
    """A redirect the caller asked not to follow (``stop_at``); ``details`` say where to."""

    code = "redirected"

    def __init__(self, target: str) -> None:
        super().__init__(f"The URL redirects to {target}.", details={"location": target})


# --- address checks -----------------------------------------------------------------------------


def user_agent(settings: Settings) -> str:
    return f"Amphora/{amphora.__version__} (+{settings.base_url})"


def allowed_networks(settings: Settings) -> tuple[IPNetwork, ...]:
    return tuple(
        ipaddress.ip_network(item, strict=False) for item in settings.fetch_allowed_networks
    )


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address carries (and would reach through a translator)."""
    found: list[ipaddress.IPv4Address] = []
    if ip.ipv4_mapped is not None:
        found.append(ip.ipv4_mapped)
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.extend(ip.teredo)
    if ip in NAT64:
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


def _own_reason(ip: IPAddress) -> str | None:
    for flag, reason in (
        (ip.is_unspecified, "an unspecified address"),
        (ip.is_loopback, "a loopback address"),
        (ip.is_link_local, "a link-local address"),
        (ip.is_multicast, "a multicast address"),
        (ip.is_reserved, "a reserved address"),
        (ip.is_private, "a private address"),
    ):
        if flag:
            return reason
    if not ip.is_global:
        return "not a public address"
    return None


def blocked_reason(ip: IPAddress, allowed: Sequence[IPNetwork] = ()) -> str | None:
    """Why connecting to ``ip`` is refused, or ``None`` when it is fine."""
    if any(ip.version == net.version and ip in net for net in allowed):
        return None
    if isinstance(ip, ipaddress.IPv6Address):
        for inner in _embedded_ipv4(ip):
            if any(inner in net for net in allowed if net.version == 4):
                continue
            reason = _own_reason(inner)
            if reason:
                return f"{reason} ({inner}) inside an IPv6 address"
        if ip.ipv4_mapped is not None:
            return None  # the mapped IPv4 address is what is reached, and it passed
    return _own_reason(ip)


async def _lookup(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (a module function so tests can stand in for DNS)."""
    infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def _parse_ip(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None


async def resolve_checked(host: str, port: int, allowed: Sequence[IPNetwork]) -> list[str]:
    """Resolve ``host`` and return its addresses, refusing if ANY of them is not allowed.

    Refusing on any (rather than dropping the bad ones) means a name that points at both a public
    and an internal address is treated as hostile, which it usually is.
    """
    literal = _parse_ip(host)
    if literal is not None:
        candidates = [str(literal)]
    else:
        try:
            candidates = await _lookup(host, port)
        except OSError as exc:
            raise FetchError(f"The host name {host!r} could not be resolved.") from exc
    addresses: list[str] = []
    for text in candidates:
        ip = _parse_ip(text.split("%", 1)[0])  # a scoped IPv6 address is link-local anyway
        if ip is None:
            raise UrlNotAllowed(f"The host {host!r} resolved to an unusable address {text!r}.")
        reason = blocked_reason(ip, allowed)
        if reason:
            shown = host if str(ip) == host.strip("[]") else f"{host} ({ip})"
            raise UrlNotAllowed(
                f"Refusing to fetch from {shown}: {reason}.",
                details={"host": host, "address": str(ip), "reason": reason},
            )
        if str(ip) not in addresses:
            addresses.append(str(ip))
    if not addresses:
        raise FetchError(f"The host name {host!r} did not resolve to any address.")
    return addresses


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolve and check, then connect to exactly the checked address (no second lookup)."""

    def __init__(
        self,
        allowed: Sequence[IPNetwork] = (),
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self.allowed = tuple(allowed)
        self.inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's signature)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        with anyio.fail_after(timeout):
            addresses = await resolve_checked(host, port, self.allowed)
        last: Exception | None = None
        for address in addresses:  # happy-eyeballs-lite: the first that answers
            try:
                return await self.inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's signature)
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise UrlNotAllowed("Unix sockets may not be fetched.")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport with its connection pool running on a ``GuardedBackend``."""

    def __init__(self, allowed: Sequence[IPNetwork] = ()) -> None:
        context = _ssl_context()
        super().__init__(verify=context, trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=context, network_backend=GuardedBackend(allowed)
        )


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """One for every fetch: loading the CA bundle costs tens of milliseconds of CPU, which an
    import of a thousand files would otherwise spend a thousand times."""
    return httpx.create_ssl_context()


# --- URL checks ---------------------------------------------------------------------------------


def check_url(url: str | httpx.URL) -> httpx.URL:
    """Scheme and credentials; the address is checked when connecting."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise UrlNotAllowed(f"Not a valid URL: {str(url)[:200]!r}.") from exc
    if parsed.scheme not in {"http", "https"}:
        raise UrlNotAllowed(
            f"Only http and https URLs can be fetched, not {parsed.scheme or 'none'!r}."
        )
    if parsed.userinfo:
        raise UrlNotAllowed("URLs with a user name or password cannot be fetched.")
    if not parsed.host:
        raise UrlNotAllowed("The URL has no host.")
    return parsed


# --- fetching -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fetched:
    status: int
    final_url: str
    headers: httpx.Headers
    body: bytes


class _Decoder:
    """gzip/deflate decoding that never produces more than the remaining budget."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        self._zlib = zlib.decompressobj(zlib.MAX_WBITS | 32) if encoding else None

    def decode(self, data: bytes, budget: int) -> Iterable[bytes]:
        """Decoded pieces of ``data``; stops once more than ``budget`` bytes came out."""
        if self._zlib is None:
            yield data
            return
        produced = 0
        while data and produced <= budget:
            try:
                out = self._zlib.decompress(data, budget - produced + 1)
            except zlib.error as exc:
                raise FetchError(f"The {self.encoding} response body is corrupt.") from exc
            produced += len(out)
            if out:
                yield out
            if self._zlib.eof:  # concatenated gzip members
                data = self._zlib.unused_data
                self._zlib = zlib.decompressobj(zlib.MAX_WBITS | 32)
            else:
                data = self._zlib.unconsumed_tail

    def flush(self) -> bytes:
        return self._zlib.flush() if self._zlib is not None else b""


class FetchResponse:
    """A response whose body is read with ``iter_bytes()``, capped at ``max_bytes``."""

    def __init__(self, response: httpx.Response, max_bytes: int) -> None:
        self.response = response
        self.max_bytes = max_bytes
        self.status = response.status_code
        self.final_url = str(response.url)
        self.headers = response.headers

    def _too_large(self) -> FetchTooLarge:
        return FetchTooLarge(
            f"The response from {self.final_url} is larger than {self.max_bytes} bytes.",
            details={"max_bytes": self.max_bytes},
        )

    async def iter_bytes(self) -> AsyncIterator[bytes]:
        encoding = self.headers.get("content-encoding", "").strip().lower()
        if encoding in {"", "identity"}:
            encoding = ""
        elif encoding not in {"gzip", "x-gzip", "deflate"}:
            raise FetchError(f"Unsupported content encoding {encoding!r}.")
        decoder = _Decoder(encoding)
        raw = decoded = 0
        # Pieces as they come off the socket (httpcore reads up to 64 KiB at a time):
        # re-chunking them to a fixed size only costs time.
        async for chunk in self.response.aiter_raw():
            raw += len(chunk)
            if raw > self.max_bytes:
                raise self._too_large()
            for piece in decoder.decode(chunk, self.max_bytes - decoded):
                decoded += len(piece)
                if decoded > self.max_bytes:
                    raise self._too_large()
                yield piece
        tail = decoder.flush()
        if tail:
            decoded += len(tail)
            if decoded > self.max_bytes:
                raise self._too_large()
            yield tail

    async def read(self) -> bytes:
        return b"".join([piece async for piece in self.iter_bytes()])


def _same_origin(a: httpx.URL, b: httpx.URL) -> bool:
    return (a.scheme, a.host, a.port) == (b.scheme, b.host, b.port)


@asynccontextmanager
async def _open(
    client: httpx.AsyncClient,
    url: httpx.URL,
    headers: dict[str, str],
    max_bytes: int,
    stop_at: Callable[[str], bool] | None,
) -> AsyncIterator[FetchResponse]:
    for _ in range(MAX_REDIRECTS + 1):
        request = client.build_request("GET", url, headers=headers)
        response = await client.send(request, stream=True)
        try:
            location = response.headers.get("location")
            if response.status_code in REDIRECT_STATUSES and location:
                target = check_url(response.url.join(location))
                if stop_at is not None and stop_at(str(target)):
                    raise Redirected(str(target))
                if not _same_origin(url, target):
                    headers = {
                        k: v for k, v in headers.items() if k.lower() not in CREDENTIAL_HEADERS
                    }
                url = target
                continue
            if not 200 <= response.status_code < 300:
                raise FetchHttpError(
                    f"{response.url} answered HTTP {response.status_code}.",
                    details={"status": response.status_code, "url": str(response.url)},
                )
            length = response.headers.get("content-length", "")
            if length.isdigit() and int(length) > max_bytes:
                raise FetchTooLarge(
                    f"The response from {response.url} announces {length} bytes, "
                    f"more than the {max_bytes} allowed.",
                    details={"max_bytes": max_bytes, "content_length": int(length)},
                )
            yield FetchResponse(response, max_bytes)
            return
        finally:
            await response.aclose()
    raise TooManyRedirects(details={"max_redirects": MAX_REDIRECTS, "last_url": str(url)})


@asynccontextmanager
async def fetch_stream(
    url: str,
    *,
    settings: Settings,
    max_bytes: int,
    timeout: float = 30.0,  # noqa: ASYNC109 (per read; `deadline` bounds the whole call)
    deadline: float = DEFAULT_DEADLINE,
    headers: Mapping[str, str] | None = None,
    accept_gzip: bool = True,
    stop_at: Callable[[str], bool] | None = None,
) -> AsyncIterator[FetchResponse]:
    """GET ``url`` safely; yields a 2xx response whose ``iter_bytes()`` enforces ``max_bytes``.

    ``timeout`` bounds each read (connecting gets 10 s); ``deadline`` bounds everything from the
    first lookup to leaving the ``async with`` block. A redirect to a URL for which
    ``stop_at`` is true is not followed: :class:`Redirected` names it.
    """
    start = check_url(url)
    sent = {
        "User-Agent": user_agent(settings),
        "Accept-Encoding": "gzip" if accept_gzip else "identity",
        **(headers or {}),
    }
    client = httpx.AsyncClient(
        transport=GuardedTransport(allowed_networks(settings)),
        timeout=httpx.Timeout(timeout, connect=CONNECT_TIMEOUT),
        follow_redirects=False,
        trust_env=False,  # no proxies or .netrc credentials from the environment
    )
    try:
        with anyio.fail_after(deadline):
            async with client, _open(client, start, sent, max_bytes, stop_at) as response:
                yield response
    except TimeoutError as exc:
        raise FetchTimeout(
            f"Fetching {url} took longer than {deadline:g} seconds.",
            details={"deadline": deadline},
        ) from exc
    except httpx.TimeoutException as exc:
        raise FetchTimeout(f"Fetching {url} timed out ({type(exc).__name__}).") from exc
    except httpx.HTTPError as exc:
        raise FetchError(f"Fetching {url} failed: {exc or type(exc).__name__}.") from exc


async def fetch(
    url: str,
    *,
    settings: Settings,
    max_bytes: int,
    timeout: float = 30.0,  # noqa: ASYNC109 (per read; `deadline` bounds the whole call)
    deadline: float = DEFAULT_DEADLINE,
    headers: Mapping[str, str] | None = None,
    accept_gzip: bool = True,
    stop_at: Callable[[str], bool] | None = None,
) -> Fetched:
    """GET ``url`` safely and return the whole (decoded, capped) body."""
    async with fetch_stream(
        url,
        settings=settings,
        max_bytes=max_bytes,
        timeout=timeout,
        deadline=deadline,
        headers=headers,
        accept_gzip=accept_gzip,
        stop_at=stop_at,
    ) as response:
        body = await response.read()
    return Fetched(
        status=response.status,
        final_url=response.final_url,
        headers=response.headers,
        body=body,
    )
