"""Feed rendering in-process: the pure builders of ``amphora.feed.builder``, no server, no DB.

Measured (wall time, ms; the median of several runs after one warm-up):

- ``build_1000`` / ``build_10000``: ``build_feed`` over 1,000 and 10,000 typical episodes
  (every item rendered, the channel built, the fragments assembled);
- ``reassemble_10000_one_edit``: what the serving layer does after one episode changed in a
  10,000-episode feed: 9,999 cached item fragments, one ``render_item``, one ``assemble``;
- ``feedgen_1000``: python-feedgen with its podcast (iTunes) extension building the same 1,000
  episodes. feedgen knows no Podcasting 2.0 tags, so it writes less than we do (no
  podcast:season/episode/transcript/person/chapters); the comparison favours it.
  ``build_1000_without_pc20_lists`` is our builder over the same episodes without
  transcripts, persons and chapters, closer to what feedgen writes.

Run it on an otherwise idle machine: on shared CPUs the medians move by tens of percent.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import exit_on_sigterm, write_result

from amphora.feed.builder import assemble, build_feed, render_item
from amphora.feed.data import Enclosure, FeedChannel, FeedItem, TranscriptLink

NAME = "feed_render"
RUNS_SMALL = 15  # 1,000-item feeds and the re-assembly
RUNS_LARGE = 5  # 10,000-item feeds
TARGETS = {
    "build_1000_ms_target": 150,
    "build_10000_ms_target": 1500,
    "reassemble_10000_ms_target": 150,
}

CDN = "https://cdn.example.com/bench"
SITE = "https://bench.example.com"
NOTES = (
    "<p>In this episode we talk about <strong>things</strong> &amp; other things, with a "
    '<a href="https://example.com/ref" rel="noopener noreferrer nofollow">reference</a>.</p>'
    "<ul><li>Chapter one: the beginning</li><li>Chapter two: the middle</li>"
    "<li>Chapter three: the end — with Ümlauts</li></ul>"
    "<p>Thanks to our supporters. Music by someone nice. Transcript available.</p>"
)
HOST = {"name": "Alex Host", "role": "host", "group": "cast", "href": "https://alex.example.com"}


def channel() -> FeedChannel:
    return FeedChannel(
        title="Bench Show",
        self_url=f"{SITE}/rss.xml",
        description_html="<p>A show to measure feed rendering.</p>",
        language="en",
        link=SITE,
        hubs=("https://pubsubhubbub.appspot.com/",),
        image_url=f"{CDN}/art.jpg",
        categories=[{"category": "Technology"}],
        author="Alex Host",
        owner_name="Alex Host",
        owner_email="alex@example.com",
        podcast_guid="44c15997-40a9-5d38-ac9a-32b3f4f22f42",
        persons=[HOST],
        funding=[{"url": "https://ko-fi.com/bench", "label": "Support the show"}],
        last_build_date=datetime(2024, 1, 1, tzinfo=UTC),
    )


def item(n: int) -> FeedItem:
    """A typical published episode: notes, audio, numbering, a transcript, chapters, a host."""
    return FeedItem(
        guid=f"bench-episode-{n:06d}",
        title=f"Episode {n}: a title of ordinary length",
        description_html=NOTES,
        link=f"{SITE}/episodes/{n}",
        pub_date=datetime(2000, 1, 1, 6, 0, tzinfo=UTC) + timedelta(days=n),
        enclosure=Enclosure(f"{CDN}/media/{n}.mp3", 30_000_000 + n, "audio/mpeg"),
        duration_s=1800.0 + n % 1800,
        explicit=False,
        season=1 + n // 100,
        number=Decimal(n),
        transcripts=(TranscriptLink(f"{CDN}/transcripts/{n}.vtt", "text/vtt", "en"),),
        chapters_url=f"{CDN}/chapters/{n}.json",
        persons=[HOST],
    )


def feedgen_build(chan: FeedChannel, items: list[FeedItem]) -> bytes:
    from feedgen.feed import FeedGenerator

    fg = FeedGenerator()
    fg.load_extension("podcast")
    fg.title(chan.title)
    fg.link(href=chan.link, rel="alternate")
    fg.link(href=chan.self_url, rel="self")
    fg.description("A show to measure feed rendering.")
    fg.language(chan.language)
    fg.podcast.itunes_image(chan.image_url)
    fg.podcast.itunes_category("Technology")
    fg.podcast.itunes_author(chan.author)
    fg.podcast.itunes_owner(name=chan.owner_name, email=chan.owner_email)
    fg.podcast.itunes_explicit("no")
    for it in items:
        assert it.enclosure is not None and it.pub_date is not None
        entry = fg.add_entry(order="append")
        entry.guid(it.guid, permalink=False)
        entry.title(it.title)
        entry.link(href=it.link)
        entry.description(it.description_html)
        entry.content(it.description_html, type="CDATA")
        entry.enclosure(it.enclosure.url, str(it.enclosure.length), it.enclosure.type)
        entry.published(it.pub_date)
        entry.podcast.itunes_duration(round(it.duration_s or 0))
        entry.podcast.itunes_explicit("no")
        entry.podcast.itunes_season(it.season)
        entry.podcast.itunes_episode(int(it.number or 0))
        entry.podcast.itunes_episode_type(it.episode_type)
    out: bytes = fg.rss_str(pretty=False)
    return out


def _summary(samples: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(samples), 2),
        "min": round(min(samples), 2),
        "max": round(max(samples), 2),
        "runs": len(samples),
    }


def measure(fns: dict[str, Callable[[], Any]], runs: int) -> dict[str, dict[str, float]]:
    """Time each function ``runs`` times (ms) after one warm-up each. The functions take turns
    run by run, so a burst of load elsewhere on the machine hits all of them alike."""
    for fn in fns.values():
        fn()
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(runs):
        for name, fn in fns.items():
            started = time.perf_counter()
            fn()
            samples[name].append((time.perf_counter() - started) * 1000)
    return {name: _summary(values) for name, values in samples.items()}


def main() -> dict[str, Any]:
    chan = channel()
    items = [item(n) for n in range(10_000, 0, -1)]  # newest first, as served
    small = items[:1000]
    # The same episodes without the Podcasting 2.0 lists feedgen cannot write.
    plain = [replace(it, transcripts=(), persons=[], chapters_url=None) for it in small]
    cache = [render_item(it) for it in items]
    edited = replace(items[5000], title="An edited title")

    def reassemble() -> bytes:
        fragments = list(cache)
        fragments[5000] = render_item(edited)
        return assemble(chan, fragments)

    ms = measure(
        {
            "build_1000": lambda: build_feed(chan, small),
            "build_1000_without_pc20_lists": lambda: build_feed(chan, plain),
            "feedgen_1000": lambda: feedgen_build(chan, small),
            "reassemble_10000_one_edit": reassemble,
        },
        RUNS_SMALL,
    )
    ms |= measure({"build_10000": lambda: build_feed(chan, items)}, RUNS_LARGE)
    median = {name: summary["median"] for name, summary in ms.items()}

    result = {
        "ms": ms,
        "bytes": {
            "feed_1000": len(build_feed(chan, small)),
            "feed_10000": len(build_feed(chan, items)),
            "feedgen_1000": len(feedgen_build(chan, small)),
        },
        "speedup_vs_feedgen_1000": round(median["feedgen_1000"] / median["build_1000"], 2),
        "targets": TARGETS,
        "met": {
            "build_1000": median["build_1000"] < TARGETS["build_1000_ms_target"],
            "build_10000": median["build_10000"] < TARGETS["build_10000_ms_target"],
            "reassemble_10000": median["reassemble_10000_one_edit"]
            < TARGETS["reassemble_10000_ms_target"],
            "faster_than_feedgen": median["build_1000"] < median["feedgen_1000"],
            "faster_than_feedgen_like_for_like": median["build_1000_without_pc20_lists"]
            < median["feedgen_1000"],
        },
    }
    return write_result(NAME, result)


if __name__ == "__main__":
    exit_on_sigterm()
    main()
