"""RSS 2.0 podcast feeds (Apple + Podcasting 2.0) built with lxml from plain feed data.

The serving layer caches one serialized fragment per episode, so the API is split in two:
:func:`render_item` turns one :class:`FeedItem` into the bytes of its ``<item>`` (or
``<podcast:liveItem>``), and :func:`assemble` builds the ``<channel>`` and splices cached
fragments into it. A feed of 10,000 episodes thus re-renders after one edit by serializing one
item and concatenating bytes. :func:`build_feed` does both for callers without a cache.

Every element is built as an lxml tree, never by string templating, so user text is escaped by
lxml. Characters XML 1.0 forbids (control characters, lone surrogates) are dropped first, as
lxml would raise on them. Empty values are omitted: no element is emitted without content or
attributes. Rules the output follows: STANDARDS.md §1 (Apple) and §3 (Podcasting 2.0).

This module is the public entry point and builds whole documents; the parts live in
:mod:`amphora.feed.item` (one episode), :mod:`amphora.feed.channel` (the show),
:mod:`amphora.feed.elements` (value formatting, shared elements) and
:mod:`amphora.feed.xmlnames` (namespaces, tag names). Import from here: the names callers use
(``NSMAP``, the namespace URIs, ``DESCRIPTION_MAX_BYTES``, ``rfc2822``) are re-exported.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from lxml import etree  # type: ignore[import-untyped]

from amphora.feed.channel import channel_element
from amphora.feed.data import FeedChannel, FeedItem
from amphora.feed.elements import DESCRIPTION_MAX_BYTES, rfc2822
from amphora.feed.item import item_element, render_item
from amphora.feed.xmlnames import ATOM_NS, CONTENT_NS, ITUNES_NS, NSMAP, PODCAST_NS

__all__ = [
    "ATOM_NS",
    "CONTENT_NS",
    "DESCRIPTION_MAX_BYTES",
    "ITUNES_NS",
    "NSMAP",
    "PODCAST_NS",
    "assemble",
    "build_feed",
    "build_feed_tree",
    "render_item",
    "rfc2822",
]

XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'


def assemble(
    channel: FeedChannel, items: Iterable[bytes], live_items: Iterable[bytes] = ()
) -> bytes:
    """The complete feed document: the channel built from ``channel`` with the fragments of
    :func:`render_item` inserted before ``</channel>``, live items first, order kept."""
    rss, _ = channel_element(channel)
    shell: bytes = etree.tostring(rss, encoding="UTF-8")
    cut = shell.rindex(b"</channel>")
    return b"".join((XML_DECLARATION, shell[:cut], *live_items, *items, shell[cut:]))


def build_feed(channel: FeedChannel, items: Sequence[FeedItem]) -> bytes:
    """:func:`assemble` over freshly rendered items; live items go first, order kept."""
    live = [render_item(item) for item in items if item.live is not None]
    regular = [render_item(item) for item in items if item.live is None]
    return assemble(channel, regular, live)


def build_feed_tree(channel: FeedChannel, items: Sequence[FeedItem]) -> etree._Element:
    """The same document as :func:`build_feed`, as one lxml tree (``<rss>``).

    For callers that want to inspect or post-process a feed, and for the tests proving that
    fragment assembly produces the document a single tree would."""
    rss, ch = channel_element(channel)
    for item in items:
        if item.live is not None:
            ch.append(item_element(item))
    for item in items:
        if item.live is None:
            ch.append(item_element(item))
    return rss
