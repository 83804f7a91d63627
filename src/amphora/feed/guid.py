"""The ``podcast:guid`` of a feed (STANDARDS.md §3): a UUIDv5 over the feed URL.

The guid is assigned once, from the feed URL of that moment, and then stored: it follows the
show when its feed moves, so never recompute it for an existing show, and keep the guid of an
imported feed that already has one.
"""

from __future__ import annotations

import re
import uuid

__all__ = ["PODCAST_NAMESPACE", "podcast_guid"]

PODCAST_NAMESPACE = uuid.UUID("ead4c236-bf58-58c6-a2c6-a6b28d128cb6")

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def podcast_guid(feed_url: str) -> str:
    """UUIDv5 in the Podcasting 2.0 namespace over ``feed_url`` without its scheme
    (``https://``, ``http://``) and trailing slashes: ``podnews.net/rss`` →
    ``9b024349-ccf0-5f69-a609-6b82873eab3c``."""
    seed = _SCHEME.sub("", feed_url.strip()).rstrip("/")
    return str(uuid.uuid5(PODCAST_NAMESPACE, seed))
