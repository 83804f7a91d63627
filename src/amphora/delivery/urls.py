"""The public URLs of everything a feed points at. They end in the file's real extension
(Apple checks it), and a URL's bytes never change: new content gets a new URL."""

from __future__ import annotations

import uuid


def feed_url(base_url: str, slug: str) -> str:
    return f"{base_url}/feeds/{slug}.xml"


def json_feed_url(base_url: str, slug: str) -> str:
    return f"{base_url}/feeds/{slug}.json"


def private_feed_url(base_url: str, slug: str, token: str) -> str:
    return f"{base_url}/feeds/{slug}/private/{token}.xml"


def enclosure_url(
    base_url: str,
    slug: str,
    episode_id: uuid.UUID | str,
    media_id: uuid.UUID | str,
    extension: str,
    *,
    subscriber_token: str | None = None,
) -> str:
    """``/e/{slug}/{episode}/{media}.{ext}``; in a private feed, ``?key=`` names the subscriber
    (premium files need it, and it lets analytics count per subscriber)."""
    url = f"{base_url}/e/{slug}/{episode_id}/{media_id}.{extension}"
    return f"{url}?key={subscriber_token}" if subscriber_token else url


def transcript_url(base_url: str, transcript_id: uuid.UUID | str, extension: str) -> str:
    return f"{base_url}/transcripts/{transcript_id}.{extension}"


def chapters_url(base_url: str, episode_id: uuid.UUID | str, version: int) -> str:
    # The episode version is in the path so that edited chapters get a new URL.
    return f"{base_url}/chapters/{episode_id}/{version}.json"
