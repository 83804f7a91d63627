"""OPML 2.0 subscription lists (STANDARDS.md §6), built with lxml."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from email.utils import format_datetime

from lxml import etree  # type: ignore[import-untyped]

__all__ = ["build_opml"]

# XML 1.0 forbids these characters; drop them rather than let lxml raise on user text.
_ILLEGAL_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _clean(value: str) -> str:
    return _ILLEGAL_XML.sub("", value).strip()


def build_opml(
    title: str,
    outlines: Sequence[tuple[str, str, str | None]],
    *,
    created: datetime | None = None,
) -> bytes:
    """An OPML 2.0 document listing feeds: one ``<outline type="rss">`` per
    ``(text, xml_url, html_url)``. ``created`` (default: now) becomes ``dateCreated``."""
    created = created or datetime.now(UTC)
    created = created.replace(tzinfo=UTC) if created.tzinfo is None else created.astimezone(UTC)
    root = etree.Element("opml", version="2.0")
    head = etree.SubElement(root, "head")
    etree.SubElement(head, "title").text = _clean(title)
    etree.SubElement(head, "dateCreated").text = format_datetime(created)
    body = etree.SubElement(root, "body")
    for text, xml_url, html_url in outlines:
        attrib = {"type": "rss", "text": _clean(text), "title": _clean(text)}
        attrib["xmlUrl"] = _clean(xml_url)
        if html_url:
            attrib["htmlUrl"] = _clean(html_url)
        etree.SubElement(body, "outline", attrib)
    out: bytes = etree.tostring(root, encoding="UTF-8", pretty_print=True)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + out
