"""How the feed checker reads a parsed feed: namespaces, text, URLs, dates, which item is where.

Small helpers shared by the Apple checks (:mod:`.apple`) and the Podcasting 2.0 checks
(:mod:`.namespace`); the underscored names are internal to the ``amphora.feed.rules`` package.
"""

from __future__ import annotations

import re
from datetime import datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

from lxml import etree  # type: ignore[import-untyped]

from amphora.feed.rules.catalogue import _Report

ITUNES_NS = "http://www.itunes.com/dtds/podcast-1.0.dtd"
CONTENT_NS = "http://purl.org/rss/1.0/modules/content/"
PODCAST_NS = "https://podcastindex.org/namespace/1.0"
ATOM_NS = "http://www.w3.org/2005/Atom"
_I, _P, _A = "{" + ITUNES_NS + "}", "{" + PODCAST_NS + "}", "{" + ATOM_NS + "}"

_RFC2822 = re.compile(
    r"^(?:(Mon|Tue|Wed|Thu|Fri|Sat|Sun), )?\d{1,2} "
    r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} "
    r"\d{2}:\d{2}(:\d{2})? ([+-]\d{4}|GMT|UT|UTC|[ECMP][SD]T|Z)$"
)
_POSITIVE_INT = re.compile(r"^[1-9][0-9]*$")


def _text(el: etree._Element | None) -> str:
    return (el.text or "").strip() if el is not None else ""


def _is_url(value: str, *, https_only: bool = False) -> bool:
    parts = urlsplit(value)
    return parts.scheme in (("https",) if https_only else ("http", "https")) and bool(parts.netloc)


def _is_iso8601(value: str) -> bool:
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _date_problem(value: str) -> str | None:
    """Why ``value`` is not an RFC 2822 date with the right weekday (None when it is)."""
    if not _RFC2822.match(value):
        return "is not written as an RFC 2822 date (like Sat, 15 Jun 2019 10:00:00 +0000)"
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return "is not a real date"
    weekday = value.split(",", 1)[0] if "," in value else None
    if weekday is not None and weekday != parsed.strftime("%a"):
        return f"says {weekday}, but that day is a {parsed.strftime('%A')}"
    return None


def _check_date(value: str, label: str, where: str, report: _Report) -> None:
    problem = _date_problem(value)
    if problem is not None:
        report.add(where, "date.bad", label=label, value=value, problem=problem)


def _where_of(el: etree._Element, wheres: dict[etree._Element, str]) -> str:
    """The item (or live item) ``el`` belongs to, or the channel."""
    if el in wheres:
        return wheres[el]
    return next((wheres[a] for a in el.iterancestors() if a in wheres), "channel")
