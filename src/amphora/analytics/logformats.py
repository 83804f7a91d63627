"""Access-log lines as plain data: Apache/nginx "combined" and CloudFront standard logs.

Pure functions, no I/O: a line in, a :class:`LogLine` (or None for a line that is not one of
the format's) out. Imports read millions of lines, so the hot path is kept lean: precompiled
patterns, no ``strptime`` (timestamps are cut apart by position and the last few are
remembered: a log holds many lines per second), and decoding only when a field needs it.

Combined (``%h %l %u [%t] "%r" %>s %b "%{Referer}i" "%{User-agent}i"``): fields may be
followed by more (many sites append a request time or a forwarded-for); the "common" format,
without referer and user agent, is read too. Quotes inside a quoted field are escaped (Apache
``\\"``, nginx ``\\x22``); so are bytes outside printable ASCII.

CloudFront standard (legacy) logs: tab-separated, the fields named by the ``#Fields:`` header
(the documented order until one is seen), date and time in UTC, user agent and referer
URL-encoded.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from typing import NamedTuple, Protocol
from urllib.parse import unquote

__all__ = [
    "CLOUDFRONT_FIELDS",
    "FORMATS",
    "CloudFrontParser",
    "CombinedParser",
    "LineParser",
    "LogLine",
    "parse_combined",
    "parse_timestamp",
    "parser_for",
]

FORMATS = ("combined", "cloudfront")


class LogLine(NamedTuple):
    at: datetime  # aware, UTC
    method: str
    path: str  # percent-decoded, without the query
    query: str | None
    status: int
    bytes_sent: int
    client_address: str
    user_agent: str | None
    referer: str | None
    request_id: str | None = None  # CloudFront's x-edge-request-id


class LineParser(Protocol):
    """Reads the lines of one file, in order (a format with headers keeps state)."""

    def parse(self, line: str) -> LogLine | None:
        """The line as data, or None when it is not a line of this format."""
        ...

    def directive(self, line: str) -> bool:
        """Consume a line starting with ``#``: True if the format has such lines (headers,
        comments), False if it is simply not a line of this format."""
        ...


# --- timestamps ----------------------------------------------------------------------------------

_MONTHS = {
    name: number
    for number, name in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}
_STAMPS: dict[str, datetime | None] = {}
_STAMPS_MAX = 4096  # lines of a log come roughly in order: a few recent seconds are enough


def _stamp(text: str) -> datetime | None:
    # "10/Oct/2000:13:55:36 -0700", cut by position (and checked by its separators).
    if (
        len(text) != 26
        or text[2] != "/"
        or text[6] != "/"
        or text[11] != ":"
        or text[14] != ":"
        or text[17] != ":"
        or text[20] != " "
    ):
        return None
    month = _MONTHS.get(text[3:6])
    sign = text[21]
    digits = text[0:2] + text[7:11] + text[12:14] + text[15:17] + text[18:20] + text[22:26]
    if month is None or sign not in "+-" or not digits.isdigit() or not digits.isascii():
        return None
    try:
        at = datetime(
            int(text[7:11]),
            month,
            int(text[0:2]),
            int(text[12:14]),
            int(text[15:17]),
            int(text[18:20]),
            tzinfo=UTC,
        )
    except ValueError:
        return None
    offset = int(text[22:24]) * 60 + int(text[24:26])
    if offset:
        at -= timedelta(minutes=offset if sign == "+" else -offset)
    return at


def parse_timestamp(text: str) -> datetime | None:
    """A combined log's ``%t`` (``10/Oct/2000:13:55:36 -0700``, no brackets) in UTC."""
    memo = _STAMPS
    try:
        return memo[text]
    except KeyError:
        pass
    at = _stamp(text)
    if len(memo) >= _STAMPS_MAX:
        memo.clear()
    memo[text] = at
    return at


# --- combined ------------------------------------------------------------------------------------

_QUOTED = r'"([^"\\]*(?:\\.[^"\\]*)*)"'  # a quoted field, backslash escapes inside
_COMBINED = re.compile(
    r"(\S+) \S+ \S+ \[([^\]]+)\] "
    + _QUOTED
    + r" (\d{3}) (\d+|-)(?: "
    + _QUOTED
    + " "
    + _QUOTED
    + ")?"
)


def _unescape(value: str) -> str:
    """Undo the server's escaping: ``\\"``, ``\\\\``, ``\\xHH`` (bytes, UTF-8 as a rule)."""
    try:
        raw = codecs.escape_decode(value.encode("utf-8", "surrogateescape"))[0]
    except ValueError:  # a stray backslash at the very end
        return value
    return bytes(raw).decode("utf-8", "replace")


def _field(value: str | None) -> str | None:
    if not value or value == "-":
        return None
    return _unescape(value) if "\\" in value else value


def _target(target: str) -> tuple[str, str | None] | None:
    """(decoded path, query) of a request target; absolute URIs (proxy requests) lose their
    scheme and host. None for what is no target at all."""
    if not target.startswith("/"):
        scheme, sep, rest = target.partition("://")
        if not sep or not scheme.isalpha():
            return None
        slash = rest.find("/")
        target = rest[slash:] if slash >= 0 else "/"
    path, sep, query = target.partition("?")
    if "%" in path:
        path = unquote(path)
    return path, (query if sep else None)


def parse_combined(line: str) -> LogLine | None:
    """One line of a combined (or common) access log; None when it is not one."""
    match = _COMBINED.match(line)
    if match is None:
        return None
    address, stamp, request, status, size, referer, agent = match.groups()
    at = parse_timestamp(stamp)
    if at is None:
        return None
    if "\\" in request:
        request = _unescape(request)
    method, _, rest = request.partition(" ")
    # "GET /path HTTP/1.1"; HTTP/0.9 has no protocol; a target with a raw space keeps it.
    target, _, protocol = rest.rpartition(" ")
    if not protocol.startswith("HTTP/"):
        target = rest
    parsed = _target(target)
    if parsed is None or not method.isalpha():
        return None
    return LogLine(
        at,
        method,
        parsed[0],
        parsed[1],
        int(status),
        0 if size == "-" else int(size),
        address,
        _field(agent),
        _field(referer),
    )


class CombinedParser:
    """Combined lines have no headers: a line starting with ``#`` is simply not one."""

    @staticmethod
    def parse(line: str) -> LogLine | None:
        return parse_combined(line)

    @staticmethod
    def directive(line: str) -> bool:
        return False


# --- CloudFront ----------------------------------------------------------------------------------

# The standard (legacy) log's fields, in the order AWS documents (and writes when no header
# says otherwise).
CLOUDFRONT_FIELDS: tuple[str, ...] = (
    "date",
    "time",
    "x-edge-location",
    "sc-bytes",
    "c-ip",
    "cs-method",
    "cs(Host)",
    "cs-uri-stem",
    "sc-status",
    "cs(Referer)",
    "cs(User-Agent)",
    "cs-uri-query",
    "cs(Cookie)",
    "x-edge-result-type",
    "x-edge-request-id",
    "x-host-header",
    "cs-protocol",
    "cs-bytes",
    "time-taken",
    "x-forwarded-for",
    "ssl-protocol",
    "ssl-cipher",
    "x-edge-response-result-type",
    "cs-protocol-version",
    "fle-status",
    "fle-encrypted-fields",
    "c-port",
    "time-to-first-byte",
    "x-edge-detailed-result-type",
    "sc-content-type",
    "sc-content-len",
    "sc-range-start",
    "sc-range-end",
)
_REQUIRED = ("date", "time", "c-ip", "cs-method", "cs-uri-stem", "sc-status")


def _decoded(value: str) -> str | None:
    if not value or value == "-":
        return None
    return unquote(value) if "%" in value else value


def _digits(value: str) -> int | None:
    return int(value) if value.isdigit() and value.isascii() else None


class CloudFrontParser:
    """Lines of one CloudFront standard log file; ``#Fields:`` headers set the columns."""

    def __init__(self, fields: Sequence[str] = CLOUDFRONT_FIELDS) -> None:
        self._times: dict[tuple[str, str], datetime | None] = {}
        self.use(fields)

    def use(self, fields: Sequence[str]) -> None:
        index = {name: position for position, name in enumerate(fields)}
        self._complete = all(name in index for name in _REQUIRED)
        missing = len(fields)  # one past the named fields: always the padding ""
        self._pick = itemgetter(
            *(
                index.get(name, missing)
                for name in (
                    "date",
                    "time",
                    "c-ip",
                    "cs-method",
                    "cs-uri-stem",
                    "cs-uri-query",
                    "sc-status",
                    "sc-bytes",
                    "cs(User-Agent)",
                    "cs(Referer)",
                    "x-edge-request-id",
                    "sc-content-len",
                )
            )
        )
        self._width = missing + 1
        self._needed = 1 + max(index[name] for name in _REQUIRED) if self._complete else 0

    def directive(self, line: str) -> bool:
        if line.startswith("#Fields:"):
            self.use(line[len("#Fields:") :].split())
        return True  # "#Version: 1.0" and any other comment

    def _time(self, day: str, clock: str) -> datetime | None:
        key = (day, clock)
        try:
            return self._times[key]
        except KeyError:
            pass
        at = None
        if len(day) == 10 and len(clock) == 8 and day[4] == day[7] == "-":
            digits = day[0:4] + day[5:7] + day[8:10] + clock[0:2] + clock[3:5] + clock[6:8]
            if digits.isdigit() and digits.isascii() and clock[2] == clock[5] == ":":
                try:
                    at = datetime(
                        int(day[0:4]),
                        int(day[5:7]),
                        int(day[8:10]),
                        int(clock[0:2]),
                        int(clock[3:5]),
                        int(clock[6:8]),
                        tzinfo=UTC,
                    )
                except ValueError:
                    at = None
        if len(self._times) >= _STAMPS_MAX:
            self._times.clear()
        self._times[key] = at
        return at

    def parse(self, line: str) -> LogLine | None:
        if not self._complete:
            return None
        parts = line.split("\t")
        if len(parts) < self._needed:
            return None
        short = self._width - len(parts)
        if short > 0:
            parts.extend([""] * short)  # fields the line lacks (or the header does) read as ""
        day, clock, address, method, stem, query, status, sent, agent, referer, rid, length = (
            self._pick(parts)
        )
        at = self._time(day, clock)
        code = _digits(status)
        if at is None or code is None or not stem.startswith("/") or not method.isalpha():
            return None
        if not address or address == "-":
            return None
        size = _digits(sent) or 0
        # sc-bytes counts the response headers too; the body was at most Content-Length (a
        # `bytes=0-1` probe must still read as the 2 bytes it was).
        declared = _digits(length)
        if declared is not None and declared < size:
            size = declared
        return LogLine(
            at,
            method,
            unquote(stem) if "%" in stem else stem,
            None if query in ("", "-") else query,
            code,
            size,
            address,
            _decoded(agent),
            _decoded(referer),
            None if rid in ("", "-") else rid,
        )


def parser_for(fmt: str) -> LineParser:
    """A fresh parser for one file of ``fmt`` (one of :data:`FORMATS`)."""
    if fmt == "combined":
        return CombinedParser()
    if fmt == "cloudfront":
        return CloudFrontParser()
    raise ValueError(f"unknown log format {fmt!r} (one of: {', '.join(FORMATS)})")
