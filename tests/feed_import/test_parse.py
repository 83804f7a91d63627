"""The feed parser: real-world feeds read like feedparser reads them, every tag lands in the
right shape, sloppy values become Problems, and unsafe or non-feed documents are refused."""

from __future__ import annotations

import calendar
import codecs
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from amphora.episode.schemas import EpisodeCreate, EpisodeFields
from amphora.feed_import.parse import FeedParseError, parse_feed
from amphora.feed_import.parsed import ParsedFeed, ParsedItem, RemoteFile, RemoteTranscript
from amphora.feed_import.values import map_category, parse_date, parse_duration
from amphora.show.schemas import ShowCreate, ShowFields

feedparser = pytest.importorskip("feedparser")

REAL_WORLD = Path(__file__).resolve().parents[3] / "shared" / "data" / "feeds" / "real-world"
REAL_FILES = sorted(p.name for p in REAL_WORLD.glob("*.xml")) if REAL_WORLD.is_dir() else []

ITUNES = "http://www.itunes.com/dtds/podcast-1.0.dtd"
PODCAST = "https://podcastindex.org/namespace/1.0"
OLD_PODCAST = "https://github.com/Podcastindex-org/podcast-namespace/blob/main/docs/1.0.md"
CONTENT = "http://purl.org/rss/1.0/modules/content/"
ATOM = "http://www.w3.org/2005/Atom"
MP3 = "https://cdn.example.com/ep.mp3"


def rss(
    channel: str = "", items: str = "", *, podcast: str = PODCAST, itunes: str = ITUNES
) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<rss version="2.0" xmlns:itunes="{itunes}" xmlns:podcast="{podcast}" '
        f'xmlns:content="{CONTENT}" xmlns:atom="{ATOM}">'
        f"<channel><title>The Show</title>{channel}{items}</channel></rss>"
    ).encode()


def item(body: str = "", *, guid: str | None = "ep-1", enclosure: str | None = MP3) -> str:
    parts = ["<item>", "<title>Episode</title>" if "<title>" not in body else ""]
    if guid is not None:
        parts.append(f"<guid>{guid}</guid>")
    if enclosure is not None:
        parts.append(f'<enclosure url="{enclosure}" length="1000" type="audio/mpeg"/>')
    return "".join([*parts, body, "</item>"])


def one(body: str, **kwargs: Any) -> tuple[ParsedItem, ParsedFeed]:
    feed = parse_feed(rss(items=item(body, **kwargs)))
    assert len(feed.items) == 1
    return feed.items[0], feed


def messages(feed: ParsedFeed, field: str | None = None) -> list[str]:
    return [p.message for p in feed.problems if field is None or p.field == field]


# --- real-world feeds ---------------------------------------------------------------------------

# What each real feed loses or has changed; every other file imports without a single Problem.
REAL_PROBLEMS: dict[str, dict[str, int]] = {
    "SOM.xml": {"itunes:category": 1},  # <itunes:category text=""/>
    "dk-podcast.xml": {"guid": 1},  # one item with an empty <guid/>
    "homegrown-hits.xml": {"podcast:value": 1},  # a recipient without an address
    # 10 placeholder recipients (all attributes empty) and one "&gtgt;" typo in the notes
    "no-agenda.xml": {"podcast:value": 20, "xml": 1, "itunes:category": 1},
    "pc20rss.xml": {"podcast:person": 2, "itunes:category": 1},  # empty persons; News & Politics
    "podverse-test-feed.xml": {"itunes:category": 2},
    "sentimental-garbage.xml": {"itunes:category": 1},  # Arts > Literature
    "themnshow.xml": {"podcast:episode": 1},  # a display name over 32 characters
}


def _real(name: str) -> bytes:
    if not REAL_FILES:
        pytest.skip(f"the real-world feeds are not there ({REAL_WORLD})")
    return (REAL_WORLD / name).read_bytes()


@pytest.mark.parametrize("name", REAL_FILES or ["(missing)"])
def test_real_world_feed_parses_and_validates(name: str) -> None:
    feed = parse_feed(_real(name))
    ShowFields.model_validate(feed.show)
    assert ShowCreate(**feed.show).title == feed.show["title"]
    for parsed in feed.items:
        EpisodeFields.model_validate(parsed.fields)
        assert EpisodeCreate(**parsed.fields).title == parsed.fields["title"]
        assert parsed.pub_date is None or parsed.pub_date.tzinfo == UTC
    assert Counter(p.field for p in feed.problems) == Counter(REAL_PROBLEMS.get(name, {}))


@pytest.mark.parametrize("name", REAL_FILES or ["(missing)"])
def test_real_world_feed_matches_feedparser(name: str) -> None:
    data = _real(name)
    ours = [i for i in parse_feed(data).items if "live" not in i.fields]  # feedparser has none
    theirs = feedparser.parse(data).entries
    assert len(ours) == len(theirs)
    for mine, entry in zip(ours, theirs, strict=True):
        enclosures = [link["href"] for link in entry.get("links", []) if link["rel"] == "enclosure"]
        assert (mine.enclosure.url if mine.enclosure else None) == (enclosures or [None])[0]
        if entry.get("id"):
            assert mine.guid == entry["id"]
        else:  # an empty guid: Apple (and we) fall back to the enclosure URL
            assert mine.enclosure is not None and mine.guid == mine.enclosure.url
        assert mine.fields["title"] == entry["title"]
        if entry.get("published_parsed"):
            assert mine.pub_date is not None
            assert int(mine.pub_date.timestamp()) == calendar.timegm(entry["published_parsed"])


def test_real_world_empty_feed_is_a_show_without_episodes() -> None:
    feed = parse_feed(_real("empty.xml"))
    assert feed.items == [] and feed.problems == []
    assert feed.show["title"] == "Podcasting 2.0 Namespace Example"
    assert feed.show["language"] == "en-us"
    assert feed.show["categories"] == [{"category": "News"}, {"category": "Technology"}]
    assert feed.show["explicit"] is False
    assert feed.image_url == "https://example.com/images/pci_avatar-massive.jpg"  # text form


def test_real_world_podcasting20_values() -> None:
    show = parse_feed(_real("themnshow.xml"))
    assert show.podcast_guid == "7a2d292c-8656-5fcf-88d2-31b10e54d7c7"
    assert show.locked is False and show.locked_owner == "mike@mikeneumann.show"
    assert show.show["block"]["platforms"][:3] == ["acast", "amazon", "anchor"]
    assert show.show["block"]["all"] is False
    assert show.show["publisher"]["medium"] == "publisher"
    assert show.show["trailers"][1]["season"] == 1
    episode = show.items[1]
    assert episode.fields["season_name"] == "Breakfasts with Dr. Tim"
    assert episode.transcripts[0].language == "en" and episode.transcripts[0].captions
    locked = parse_feed(_real("pc20rss.xml"))
    assert locked.locked is True and locked.locked_owner == "adam@curry.com"
    live = [i for i in parse_feed(_real("podverse-test-feed.xml")).items if "live" in i.fields]
    assert [i.fields["live"]["status"] for i in live] == ["live"] * 4
    assert parse_feed(_real("publisher.xml")).show["medium"] == "publisher"


# --- dates, durations, flags, categories ------------------------------------------------------

JUNE_15 = datetime(2019, 6, 15, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "raw",
    [
        "Sat, 15 Jun 2019 10:00:00 +0000",
        "Sat, 15 Jun 2019 10:00:00 GMT",
        "Sat, 15 Jun 2019 10:00:00 UT",
        "Sat, 15 Jun 2019 10:00:00 Z",
        "Sat, 15 Jun 2019 06:00:00 EDT",
        "Sat, 15 Jun 2019 05:00:00 EST",
        "Sat, 15 Jun 2019 03:00:00 PDT",
        "Sat, 15 Jun 2019 12:00:00 CEST",
        "Sat, 15 Jun 2019 12:00:00 GMT+2",
        "Sat, 15 Jun 2019 12:00:00 +02:00",
        "Sat, 15 Jun 2019 04:30:00 UTC-05:30",
        "Sat, 15 Jun 2019 10:00 +0000",  # no seconds
        "15 Jun 2019 10:00:00 +0000",  # no weekday
        "Mon, 15 Jun 2019 10:00:00 +0000",  # the wrong weekday
        "Saturday, 15 June 2019 10:00:00 GMT",  # long names
        "Sat, 15 Jun 19 10:00:00 +0000",  # two-digit year
        "sat, 15 jun 2019 10:00:00 +0000",  # lower case
        "  Sat,  15   Jun  2019   10:00:00   +0000 ",  # extra spaces
        "Sat, 15 Jun 2019 10:00:00+0000",  # zone glued on
        "Sat, 15 Jun 2019 10:00:00 +0000 (UTC)",  # a comment after the zone
        "Sat, 15 Jun 2019 10:00:00",  # no zone: UTC
        "Jun 15, 2019 10:00 AM",
        "2019-06-15T10:00:00Z",
        "2019-06-15T12:00:00+02:00",
        "2019-06-15T10:00:00.000Z",
        "2019-06-15T10:00:00.0000001Z",  # more digits than Python reads
        "2019-06-15 10:00:00",
        "2019-06-15t10:00:00z",
        "2019-06-15T05:00:00.000 -0500",  # a space before the offset
        "2019-06-14T24:00:00-10:00",  # ISO 8601's end-of-day 24:00
    ],
)
def test_dates_in_every_common_shape(raw: str) -> None:
    assert parse_date(raw) == JUNE_15


def test_single_digit_day_date_only_and_pm() -> None:
    assert parse_date("Wed, 5 Jun 2019 10:00:00 +0000") == datetime(2019, 6, 5, 10, tzinfo=UTC)
    assert parse_date("15 Jun 2019") == datetime(2019, 6, 15, tzinfo=UTC)
    assert parse_date("2019-06-15") == datetime(2019, 6, 15, tzinfo=UTC)
    assert parse_date("Thu, 13 Jun 2019 10:30 pm") == datetime(2019, 6, 13, 22, 30, tzinfo=UTC)
    assert parse_date("") is None


@pytest.mark.parametrize("raw", ["garbage", "Sat, 15 Jun 2019 10:00:00 XYZ", "32 Jun 2019", "1:30"])
def test_unreadable_dates_raise(raw: str) -> None:
    with pytest.raises(ValueError, match="not a date"):
        parse_date(raw)


def test_unreadable_pub_date_is_a_problem_not_a_failure() -> None:
    parsed, feed = one("<pubDate>sometime last week</pubDate>")
    assert parsed.pub_date is None
    assert messages(feed, "pubDate") == ["'sometime last week' is not a date we can read; left out"]


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [
        ("3600", 3600.0),
        ("1014.708375", 1014.708375),
        ("59:30", 3570.0),
        ("75:30", 4530.0),  # minutes may exceed 59 when they lead
        ("1:02:03", 3723.0),
        ("01:02:03", 3723.0),
        ("1:02:03.5", 3723.5),
        ("1:02:03,5", 3723.5),
        ("0:00:00", 0.0),
        ("45 min", 2700.0),
        ("90 sec", 90.0),
        ("1h 5m", 3900.0),
        ("1 hr 5 min 3 sec", 3903.0),
        ("", None),
    ],
)
def test_durations(raw: str, seconds: float | None) -> None:
    assert parse_duration(raw) == seconds


@pytest.mark.parametrize("raw", ["abc", "1:75", "1:60:00", "-5", "1:2:3:4", "about an hour"])
def test_garbage_duration_is_a_problem(raw: str) -> None:
    parsed, feed = one(f"<itunes:duration>{raw}</itunes:duration>")
    assert parsed.duration_s is None
    assert messages(feed, "itunes:duration") == [f"'{raw}' is not a duration we can read; left out"]


@pytest.mark.parametrize(
    ("raw", "explicit"),
    [
        *[("yes", True), ("Yes", True), ("true", True), ("TRUE", True), ("explicit", True)],
        *[("no", False), ("No", False), ("false", False), ("clean", False), ("Clean", False)],
    ],
)
def test_explicit_variants(raw: str, explicit: bool) -> None:
    feed = parse_feed(rss(f"<itunes:explicit>{raw}</itunes:explicit>"))
    assert feed.show["explicit"] is explicit
    assert feed.problems == []


def test_unknown_explicit_value_is_a_problem() -> None:
    feed = parse_feed(rss("<itunes:explicit>maybe</itunes:explicit>"))
    assert "explicit" not in feed.show
    assert messages(feed, "itunes:explicit") == ["'maybe' is neither true nor false; left out"]


@pytest.mark.parametrize(
    ("parent", "sub", "expected"),
    [
        ("Games & Hobbies", None, ("Leisure", None)),
        ("Games & Hobbies", "Video Games", ("Leisure", "Video Games")),
        ("Games & Hobbies", "Automotive", ("Leisure", "Automotive")),
        ("Games & Hobbies", "Aviation", ("Leisure", "Aviation")),
        ("Games & Hobbies", "Hobbies", ("Leisure", "Hobbies")),
        ("Games & Hobbies", "Other Games", ("Leisure", "Games")),
        ("Science & Medicine", None, ("Science", None)),
        ("Science & Medicine", "Medicine", ("Health & Fitness", "Medicine")),
        ("Technology", "Podcasting", ("Technology", None)),
        ("Technology", "Gadgets", ("Technology", None)),
        ("Technology", "Tech News", ("News", "Tech News")),
        ("Technology", "Software How-To", ("Education", "How To")),
        ("Society & Culture", "History", ("History", None)),
        ("Government & Organizations", None, ("Government", None)),
        ("Religion & Spirituality", "Other", ("Religion & Spirituality", None)),
        ("Sports & Recreation", None, ("Sports", None)),
        ("Education", "Educational Technology", ("Education", None)),
        ("Education", "Higher Education", ("Education", None)),
        ("Education", "K-12", ("Education", None)),
        ("Arts", "Literature", ("Arts", "Books")),
        ("Health", None, ("Health & Fitness", None)),
        ("Health", "Fitness & Nutrition", ("Health & Fitness", "Fitness")),
        ("Business", "Business News", ("News", "Business News")),
        ("Business", "Shopping", ("Business", None)),
        ("News & Politics", None, ("News", None)),
        ("tv & film", "film reviews", ("TV & Film", "Film Reviews")),  # other capitals
    ],
)
def test_old_and_miscased_categories_map_to_current_ones(
    parent: str, sub: str | None, expected: tuple[str, str | None]
) -> None:
    found, note = map_category(parent, sub)
    assert found == expected
    assert note is not None and "imported as" in note


@pytest.mark.parametrize("name", ["Kids & Family", "Music", "TV & Film", "True Crime"])
def test_current_categories_stay(name: str) -> None:
    assert map_category(name, None) == ((name, None), None)


def test_categories_in_the_feed() -> None:
    feed = parse_feed(
        rss(
            '<itunes:category text="Games &amp; Hobbies">'
            '<itunes:category text="Video Games"/></itunes:category>'
            '<itunes:category text="Arts"><itunes:category text="Books"/>'
            '<itunes:category text="Knitting"/></itunes:category>'
            '<itunes:category text="Cooking Shows"/>'
            '<itunes:category text="Leisure">'
            '<itunes:category text="Video Games"/></itunes:category>'
            '<itunes:category text="History"/><itunes:category text="Comedy"/>'
            '<itunes:category text="Music"/><itunes:category text="Science"/>'
        )
    )
    assert feed.show["categories"] == [
        {"category": "Leisure", "subcategory": "Video Games"},  # mapped, then not repeated
        {"category": "Arts", "subcategory": "Books"},
        {"category": "Arts"},  # the unknown subcategory keeps its parent
        {"category": "History"},
        {"category": "Comedy"},
    ]
    assert messages(feed, "itunes:category") == [
        "'Games & Hobbies > Video Games' is not a current Apple Podcasts category; "
        "imported as 'Leisure > Video Games'",
        "'Arts > Knitting' is not an Apple Podcasts category; kept 'Arts'",
        "'Cooking Shows' is not an Apple Podcasts category",
        "more than 5 categories; kept the first 5",
    ]


# --- namespaces and formats -------------------------------------------------------------------

PERSON = '<podcast:person role="Host" href="https://ada.example">Ada</podcast:person>'


@pytest.mark.parametrize(
    "namespace",
    [PODCAST, OLD_PODCAST, "http://podcastindex.org/namespace/1.0", OLD_PODCAST.lower() + "/"],
)
def test_both_podcast_namespace_uris(namespace: str) -> None:
    feed = parse_feed(rss(PERSON + "<podcast:locked>yes</podcast:locked>", podcast=namespace))
    assert feed.show["persons"] == [
        {"name": "Ada", "role": "host", "group": "cast", "href": "https://ada.example"}
    ]
    assert feed.locked is True


def test_itunes_namespace_in_other_capitals() -> None:
    feed = parse_feed(
        rss(
            "<itunes:author>Ada</itunes:author>",
            item("<itunes:duration>61</itunes:duration>"),
            itunes="http://www.itunes.com/DTDs/Podcast-1.0.dtd",
        )
    )
    assert feed.show["author"] == "Ada"
    assert feed.items[0].duration_s == 61.0


def test_atom_feed() -> None:
    data = f"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="{ATOM}" xmlns:itunes="{ITUNES}" xml:lang="en-GB">
  <title>Atom Show</title>
  <subtitle>About things</subtitle>
  <link rel="self" href="https://example.com/atom.xml"/>
  <link href="https://example.com/"/>
  <author><name>Ada</name></author>
  <logo>https://example.com/logo.png</logo>
  <rights>CC BY</rights>
  <entry>
    <id>urn:uuid:1234</id>
    <title type="html">Part &lt;b&gt;one&lt;/b&gt;</title>
    <published>2019-06-15T10:00:00Z</published>
    <updated>2020-01-01T00:00:00Z</updated>
    <link rel="alternate" href="https://example.com/one"/>
    <link rel="enclosure" href="https://example.com/one.mp3" type="audio/mpeg" length="42"/>
    <summary>Short</summary>
    <content type="html">&lt;p&gt;Long &lt;script&gt;x()&lt;/script&gt;notes&lt;/p&gt;</content>
  </entry>
  <entry>
    <id>urn:uuid:5678</id>
    <title>Part two</title>
    <updated>2019-06-16T10:00:00Z</updated>
    <content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml"><p>Two</p></div></content>
  </entry>
</feed>""".encode()
    feed = parse_feed(data)
    assert feed.format == "atom"
    assert feed.self_url == "https://example.com/atom.xml"
    assert feed.image_url == "https://example.com/logo.png"
    assert feed.show == {
        "title": "Atom Show",
        "description": "About things",
        "language": "en-gb",
        "author": "Ada",
        "copyright": "CC BY",
        "link": "https://example.com/",
    }
    first, second = feed.items
    assert first.guid == "urn:uuid:1234"
    assert first.fields == {
        "title": "Part one",
        "description": "<p>Long notes</p>",
        "link": "https://example.com/one",
    }
    assert first.pub_date == JUNE_15  # published wins over updated
    assert first.enclosure == RemoteFile("https://example.com/one.mp3", "audio/mpeg", 42)
    assert second.pub_date == datetime(2019, 6, 16, 10, tzinfo=UTC)
    assert second.fields["description"] == "<p>Two</p>"


# --- sloppy documents and items ---------------------------------------------------------------


def test_broken_but_common_feed_is_recovered_with_a_problem() -> None:
    data = rss(
        "<copyright>AT&T and R&D &copy; 2020</copyright>",
        item("<title>Tom & Jerry\x0b</title><description><![CDATA[A & B]]></description>"),
    )
    feed = parse_feed(data)
    assert feed.show["copyright"] == "AT&T and R&D © 2020"
    assert feed.items[0].fields["title"] == "Tom & Jerry"
    assert feed.items[0].fields["description"] == "A &amp; B"  # CDATA left as written
    [problem] = feed.problems
    assert problem.field == "xml"
    assert problem.message.startswith(
        "the feed is not well-formed XML; recovered what could be read"
    )


def test_truncated_feed_keeps_what_came_before_the_cut() -> None:
    data = rss(items=item(guid="a") + item(guid="b"))[:-40]  # cut inside the second item
    feed = parse_feed(data)
    assert [i.guid for i in feed.items] == ["a", "b"]
    assert messages(feed, "xml")


def test_leading_bom_and_whitespace_and_utf16() -> None:
    data = rss(item())
    assert parse_feed(codecs.BOM_UTF8 + b"\n\n  " + data).items[0].guid == "ep-1"
    wide = data.decode().replace('encoding="UTF-8"', 'encoding="UTF-16"')
    assert parse_feed(codecs.BOM_UTF16_LE + wide.encode("utf-16-le")).show["title"] == "The Show"
    assert parse_feed(wide.encode("utf-16-le")).show["title"] == "The Show"  # no BOM


def test_missing_guid_falls_back_to_the_enclosure_url() -> None:
    parsed, feed = one("", guid=None)
    assert parsed.guid == MP3
    assert feed.problems[0].where == f"item {MP3}"
    assert messages(feed, "guid") == ["no guid; the enclosure URL is used (as Apple does)"]


def test_guid_is_kept_as_written_apart_from_surrounding_space() -> None:
    parsed, _ = one("", guid="\n   Tag:Example.COM,2019:/Ep 1?x=1&amp;y=2  \n")
    assert parsed.guid == "Tag:Example.COM,2019:/Ep 1?x=1&y=2"


def test_duplicate_guid_skips_the_second_item() -> None:
    feed = parse_feed(
        rss(
            items=item("<title>First</title>", guid="same")
            + item("<title>Again</title>", guid="same")
        )
    )
    assert [i.fields["title"] for i in feed.items] == ["First"]
    assert [(p.where, p.message) for p in feed.problems] == [
        ("item same", "another item has the same guid; item skipped")
    ]


def test_item_without_guid_or_enclosure_is_skipped_and_the_others_survive() -> None:
    items = item(guid="a") + item("<title>Lost</title>", guid=None, enclosure=None) + item(guid="c")
    feed = parse_feed(rss(items=items))
    assert [i.guid for i in feed.items] == ["a", "c"]
    assert [(p.where, p.field, p.message) for p in feed.problems] == [
        ("item #2", "guid", "no guid and no enclosure; item skipped")
    ]


def test_item_with_guid_but_no_enclosure_is_kept() -> None:
    parsed, feed = one("", enclosure=None)
    assert parsed.enclosure is None and feed.problems == []


def test_enclosure_length_that_is_not_a_number() -> None:
    body = '<enclosure url="https://x.example/a.mp3" length="about 3 MB" type="Audio/MPEG"/>'
    parsed, feed = one(body, enclosure=None)
    assert parsed.enclosure == RemoteFile("https://x.example/a.mp3", "audio/mpeg", None)
    assert messages(feed, "enclosure") == ["'about 3 MB' is not a number; left out"]


def test_title_fallbacks() -> None:
    feed = parse_feed(
        rss(
            items="<item><guid>a</guid><description>&lt;p&gt;What we did&lt;/p&gt;</description>"
            "</item><item><guid>b</guid></item>"
            f"<item><guid>c</guid><title>{'x' * 300}</title></item>"
        )
    )
    titles = [i.fields["title"] for i in feed.items]
    assert titles == ["What we did", "Untitled episode", "x" * 254 + "…"]
    assert messages(feed, "title") == [
        "the item has no title; imported as 'What we did'",
        "the item has no title; imported as 'Untitled episode'",
        "title: longer than 255 characters; shortened",
    ]


def test_one_bad_value_costs_only_that_value() -> None:
    feed = parse_feed(
        rss(
            "<language>English</language>"
            "<itunes:owner><itunes:name>Ada</itunes:name><itunes:email>not-an-email</itunes:email>"
            "</itunes:owner>"
            '<podcast:person img="not a url">Ada</podcast:person>'
            "<podcast:person>Bob</podcast:person>"
            '<podcast:person href="https://x.example"></podcast:person>'
            '<podcast:funding url="nope">Tip</podcast:funding>'
        )
    )
    assert feed.show["persons"] == [
        {"name": "Ada", "role": "host", "group": "cast"},
        {"name": "Bob", "role": "host", "group": "cast"},
    ]
    assert feed.show["owner_name"] == "Ada"
    for gone in ("language", "owner_email", "funding"):
        assert gone not in feed.show
    assert {p.field for p in feed.problems} == {
        "language",
        "itunes:owner",
        "podcast:person",
        "podcast:funding",
    }
    assert "persons[2] left out: persons[2].name is missing" in messages(feed, "podcast:person")


def test_long_description_is_cut_to_what_the_schema_stores() -> None:
    notes = "<p>" + "word " * 12_000 + "</p>"
    feed = parse_feed(rss(f"<description><![CDATA[{notes}]]></description>"))
    assert len(feed.show["description"]) <= 50_000
    assert feed.show["description"].endswith("…</p>")
    assert messages(feed, "description") == ["longer than 50000 characters; shortened"]


def test_relative_urls_resolve_against_the_feed_url() -> None:
    body = (
        '<itunes:image href="/art/1.jpg"/>'
        '<podcast:chapters url="ch.json" type="application/json+chapters"/>'
    )
    feed = parse_feed(
        rss(items=item(body, enclosure="media/1.mp3")), url="https://h.example/show/feed.xml"
    )
    parsed = feed.items[0]
    assert parsed.enclosure is not None
    assert parsed.enclosure.url == "https://h.example/show/media/1.mp3"
    assert parsed.image_url == "https://h.example/art/1.jpg"
    assert parsed.chapters == RemoteFile(
        "https://h.example/show/ch.json", "application/json+chapters"
    )


# --- descriptions -----------------------------------------------------------------------------


def test_content_encoded_is_preferred_and_sanitised() -> None:
    body = (
        "<description>Plain summary</description>"
        "<itunes:summary>iTunes summary</itunes:summary>"
        "<content:encoded><![CDATA[<p>Rich <a href='https://x.example'>notes</a></p>"
        "<script>alert(1)</script><img src=x onerror=alert(2)>]]></content:encoded>"
    )
    parsed, _ = one(body)
    assert parsed.fields["description"] == (
        '<p>Rich <a href="https://x.example" rel="noopener noreferrer nofollow">notes</a></p>'
    )


def test_description_then_summary_when_there_is_no_content_encoded() -> None:
    parsed, _ = one("<description></description><itunes:summary>From iTunes</itunes:summary>")
    assert parsed.fields["description"] == "From iTunes"
    feed = parse_feed(
        rss("<description>Channel notes</description><itunes:summary>No</itunes:summary>")
    )
    assert feed.show["description"] == "Channel notes"


def test_plain_text_description_is_kept_as_text() -> None:
    parsed, _ = one("<description>Line one\n\nLine two &amp; more</description>")
    assert parsed.fields["description"] == "Line one\n\nLine two &amp; more"


# --- Podcasting 2.0 and iTunes tags, shape by shape ---------------------------------------------

CHANNEL_TAGS = """
<itunes:subtitle>Short</itunes:subtitle>
<itunes:type>Serial</itunes:type>
<itunes:complete>Yes</itunes:complete>
<itunes:block>no</itunes:block>
<itunes:new-feed-url>https://new.example/feed.xml</itunes:new-feed-url>
<itunes:image href="https://example.com/art.jpg"/>
<atom:link rel="self" href="https://old.example/feed.xml"/>
<language>en-US</language>
<podcast:guid>917393e3-1b1e-5cef-ace4-edaa54e1f810</podcast:guid>
<podcast:locked owner="ada@example.com">yes</podcast:locked>
<podcast:medium>musicL</podcast:medium>
<podcast:funding url="https://example.com/tip">Tip jar</podcast:funding>
<podcast:person role="Guest" group="Writing" img="https://example.com/ada.jpg"
  href="https://ada.example/">Ada</podcast:person>
<podcast:location geo="geo:30.2672,97.7431" osm="R113314" country="us">Austin, TX</podcast:location>
<podcast:license url="https://example.com/license">my-license</podcast:license>
<podcast:podroll>
  <podcast:remoteItem feedGuid="bf53592d-b888-586d-80d3-4a949d8e8b13" feedUrl="https://a.example/rss"/>
  <podcast:remoteItem feedGuid="856cd618-7f34-57ea-9b84-3600f1f65e7f" itemGuid="ep-9" medium="music"
    title="A song"/>
</podcast:podroll>
<podcast:updateFrequency complete="true" dtstart="2023-04-01T12:00:00+02:00"
  rrule="FREQ=WEEKLY">Weekly</podcast:updateFrequency>
<podcast:trailer pubdate="Thu, 01 Apr 2021 08:00:00 EST" url="https://example.com/trailer.mp3"
  length="12345" type="audio/mpeg" season="2">Coming soon</podcast:trailer>
<podcast:value type="lightning" method="keysend" suggested="0.00000005000">
  <podcast:valueRecipient name="Host" type="node" address="02abc" split="90"/>
  <podcast:valueRecipient name="App" type="node" address="03def" customKey="112111100"
    customValue="wal_1" split="10" fee="true"/>
</podcast:value>
<podcast:txt purpose="applepodcastsverify">abc-123</podcast:txt>
<podcast:socialInteract protocol="activitypub" uri="https://social.example/@show/1"
  accountId="@show" accountUrl="https://social.example/@show" priority="1"/>
<podcast:chat server="irc.zeronode.net" protocol="irc" accountId="@ada" space="#show"/>
<podcast:image href="https://example.com/wide.jpg" alt="Wide art" aspect-ratio="16/9" width="1920"
  height="1080" type="image/jpeg" purpose="banner"/>
<podcast:block>no</podcast:block>
<podcast:block id="spotify">yes</podcast:block>
<podcast:block id="YouTube">yes</podcast:block>
<podcast:publisher>
  <podcast:remoteItem medium="publisher" feedGuid="003af0a0-6a45-55bf-b765-68e3d349551a"
    feedUrl="https://pub.example/publisher.xml"/>
</podcast:publisher>
"""


def test_every_channel_tag_lands_in_its_shape() -> None:
    feed = parse_feed(rss(CHANNEL_TAGS))
    assert feed.problems == []
    assert feed.podcast_guid == "917393e3-1b1e-5cef-ace4-edaa54e1f810"
    assert feed.locked is True and feed.locked_owner == "ada@example.com"
    assert feed.image_url == "https://example.com/art.jpg"
    assert feed.self_url == "https://old.example/feed.xml"
    assert feed.new_feed_url == "https://new.example/feed.xml"
    assert feed.show == {
        "title": "The Show",
        "subtitle": "Short",
        "language": "en-us",
        "show_type": "serial",
        "medium": "musicL",
        "locked": True,
        "complete": True,
        "block": {"all": False, "platforms": ["spotify", "youtube"]},
        "funding": [{"url": "https://example.com/tip", "label": "Tip jar"}],
        "persons": [
            {
                "name": "Ada",
                "role": "guest",
                "group": "writing",
                "img": "https://example.com/ada.jpg",
                "href": "https://ada.example/",
            }
        ],
        "locations": [
            {"name": "Austin, TX", "geo": "geo:30.2672,97.7431", "osm": "R113314", "country": "US"}
        ],
        "license": {"identifier": "my-license", "url": "https://example.com/license"},
        "podroll": [
            {
                "feed_guid": "bf53592d-b888-586d-80d3-4a949d8e8b13",
                "feed_url": "https://a.example/rss",
            },
            {
                "feed_guid": "856cd618-7f34-57ea-9b84-3600f1f65e7f",
                "item_guid": "ep-9",
                "medium": "music",
                "title": "A song",
            },
        ],
        "update_frequency": {
            "text": "Weekly",
            "complete": True,
            "dtstart": "2023-04-01T10:00:00Z",
            "rrule": "FREQ=WEEKLY",
        },
        "trailers": [
            {
                "title": "Coming soon",
                "url": "https://example.com/trailer.mp3",
                "pubdate": "2021-04-01T13:00:00Z",
                "length": 12345,
                "type": "audio/mpeg",
                "season": 2,
            }
        ],
        "value": {
            "type": "lightning",
            "method": "keysend",
            "suggested": "5.000E-8",  # Decimal("0.00000005000") in pydantic's JSON form
            "recipients": [
                {"name": "Host", "type": "node", "address": "02abc", "split": 90, "fee": False},
                {
                    "name": "App",
                    "type": "node",
                    "address": "03def",
                    "split": 10,
                    "custom_key": "112111100",
                    "custom_value": "wal_1",
                    "fee": True,
                },
            ],
            "time_splits": [],
        },
        "txt": [{"value": "abc-123", "purpose": "applepodcastsverify"}],
        "social_interact": [
            {
                "protocol": "activitypub",
                "uri": "https://social.example/@show/1",
                "account_id": "@show",
                "account_url": "https://social.example/@show",
                "priority": 1,
            }
        ],
        "chat": {
            "server": "irc.zeronode.net",
            "protocol": "irc",
            "account_id": "@ada",
            "space": "#show",
        },
        "images": [
            {
                "href": "https://example.com/wide.jpg",
                "alt": "Wide art",
                "aspect_ratio": "16/9",
                "width": 1920,
                "height": 1080,
                "type": "image/jpeg",
                "purpose": "banner",
            }
        ],
        "publisher": {
            "feed_guid": "003af0a0-6a45-55bf-b765-68e3d349551a",
            "feed_url": "https://pub.example/publisher.xml",
            "medium": "publisher",
        },
    }
    ShowCreate(**feed.show)


@pytest.mark.parametrize(
    ("tags", "block"),
    [
        ("<itunes:block>Yes</itunes:block>", {"all": True, "platforms": []}),
        ("<podcast:block>yes</podcast:block>", {"all": True, "platforms": []}),
        ('<podcast:block id="apple">yes</podcast:block>', {"all": False, "platforms": ["apple"]}),
        ('<itunes:block>no</itunes:block><podcast:block id="x">no</podcast:block>', None),
    ],
)
def test_block(tags: str, block: dict[str, Any] | None) -> None:
    assert parse_feed(rss(tags)).show.get("block") == block


def test_unknown_medium_bad_guid_and_unreadable_lock() -> None:
    feed = parse_feed(
        rss(
            "<podcast:medium>radio</podcast:medium><podcast:guid>not-a-uuid</podcast:guid>"
            "<podcast:locked>perhaps</podcast:locked>"
        )
    )
    assert "medium" not in feed.show and feed.podcast_guid is None
    assert feed.locked is True  # a lock we cannot read is treated as a lock
    assert messages(feed) == [
        "'perhaps' is neither yes nor no; left out",
        "'radio' is not a known medium",
        "'not-a-uuid' is not a UUID; left out",
    ]


def test_deprecated_podcast_images_srcset_is_read_when_there_is_no_podcast_image() -> None:
    feed = parse_feed(
        rss(
            '<podcast:images srcset="https://e.example/a.jpg 512w, https://e.example/b.jpg 1500w"/>'
        )
    )
    assert feed.show["images"] == [
        {"href": "https://e.example/a.jpg", "width": 512},
        {"href": "https://e.example/b.jpg", "width": 1500},
    ]


ITEM_TAGS = """
<itunes:subtitle>Sub</itunes:subtitle>
<itunes:episodeType>Bonus</itunes:episodeType>
<itunes:season>2</itunes:season>
<itunes:episode>7</itunes:episode>
<itunes:explicit>clean</itunes:explicit>
<itunes:block>Yes</itunes:block>
<itunes:duration>1:02:03</itunes:duration>
<itunes:image href="https://example.com/ep.jpg"/>
<link>https://example.com/ep7</link>
<pubDate>Sat, 15 Jun 2019 10:00:00 GMT</pubDate>
<podcast:season name="Second wind">2</podcast:season>
<podcast:episode display="Ch. 7">7</podcast:episode>
<podcast:transcript url="https://example.com/ep7.vtt" type="text/vtt" language="en-US"
  rel="captions"/>
<podcast:transcript url="https://example.com/ep7.json" type="application/json"/>
<podcast:chapters url="https://example.com/ep7.chapters.json" type="application/json+chapters"/>
<podcast:soundbite startTime="73.5" duration="60">The storm</podcast:soundbite>
<podcast:soundbite startTime="1" duration="2"/>
<podcast:person role="guest">Bob</podcast:person>
<podcast:location geo="geo:-27.86,153.3" country="AU">Gold Coast</podcast:location>
<podcast:license>cc-by-4.0</podcast:license>
<podcast:funding url="https://example.com/ep7/tip">Tip this one</podcast:funding>
<podcast:alternateEnclosure type="audio/opus" length="1234" bitrate="64000" lang="en" title="Opus"
    codecs="opus" default="true">
  <podcast:integrity type="sri" value="sha384-abc"/>
  <podcast:source uri="https://example.com/ep7.opus"/>
  <podcast:source uri="ipfs://Qm123" contentType="audio/opus"/>
</podcast:alternateEnclosure>
<podcast:contentLink href="https://youtube.example/watch?v=1">Watch it</podcast:contentLink>
<podcast:value type="lightning" method="keysend">
  <podcast:valueRecipient type="node" address="02abc" split="100"/>
  <podcast:valueTimeSplit startTime="60" duration="237.5" remotePercentage="95">
    <podcast:remoteItem feedGuid="917393e3-1b1e-5cef-ace4-edaa54e1f810" itemGuid="song-7"/>
  </podcast:valueTimeSplit>
  <podcast:valueTimeSplit startTime="400" duration="30" remoteStartTime="12">
    <podcast:valueRecipient type="node" address="03guest" split="50"/>
  </podcast:valueTimeSplit>
  <podcast:valueTimeSplit startTime="500" duration="30"/>
</podcast:value>
<podcast:socialInteract protocol="disabled" uri="-"/>
<podcast:chat server="chat.example" protocol="xmpp"/>
<podcast:txt>verify-me</podcast:txt>
<podcast:image href="https://example.com/ep7-wide.jpg" width="1600" height="900"/>
"""


def test_every_item_tag_lands_in_its_shape() -> None:
    parsed, feed = one(ITEM_TAGS)
    [problem] = feed.problems  # the time split that names no one to pay
    assert (problem.where, problem.field) == ("item ep-1", "podcast:value")
    assert "time_splits[2] left out" in problem.message
    assert parsed.pub_date == JUNE_15
    assert parsed.duration_s == 3723.0
    assert parsed.image_url == "https://example.com/ep.jpg"
    assert parsed.enclosure == RemoteFile(MP3, "audio/mpeg", 1000)
    assert parsed.chapters == RemoteFile(
        "https://example.com/ep7.chapters.json", "application/json+chapters"
    )
    assert parsed.transcripts == [
        RemoteTranscript("https://example.com/ep7.vtt", "text/vtt", "en-us", captions=True),
        RemoteTranscript("https://example.com/ep7.json", "application/json"),
    ]
    assert parsed.fields == {
        "title": "Episode",
        "subtitle": "Sub",
        "episode_type": "bonus",
        "season": 2,
        "season_name": "Second wind",
        "number": "7",
        "number_display": "Ch. 7",
        "explicit": False,
        "link": "https://example.com/ep7",
        "block": True,
        "persons": [{"name": "Bob", "role": "guest", "group": "cast"}],
        "locations": [{"name": "Gold Coast", "geo": "geo:-27.86,153.3", "country": "AU"}],
        "funding": [{"url": "https://example.com/ep7/tip", "label": "Tip this one"}],
        "soundbites": [
            {"start_time": 73.5, "duration": 60.0, "title": "The storm"},
            {"start_time": 1.0, "duration": 2.0, "title": ""},
        ],
        "license": {"identifier": "cc-by-4.0"},
        "value": {
            "type": "lightning",
            "method": "keysend",
            "recipients": [{"type": "node", "address": "02abc", "split": 100, "fee": False}],
            "time_splits": [  # the third names no one to pay: left out, as a problem
                {
                    "start_time": 60.0,
                    "duration": 237.5,
                    "remote_percentage": 95,
                    "remote_item": {
                        "feed_guid": "917393e3-1b1e-5cef-ace4-edaa54e1f810",
                        "item_guid": "song-7",
                    },
                    "recipients": [],
                },
                {
                    "start_time": 400.0,
                    "duration": 30.0,
                    "remote_start_time": 12.0,
                    "recipients": [
                        {"type": "node", "address": "03guest", "split": 50, "fee": False}
                    ],
                },
            ],
        },
        "social_interact": [{"protocol": "disabled", "uri": "-"}],
        "chat": {"server": "chat.example", "protocol": "xmpp"},
        "alternate_enclosures": [
            {
                "type": "audio/opus",
                "length": 1234,
                "bitrate": 64000.0,
                "lang": "en",
                "title": "Opus",
                "codecs": "opus",
                "default": True,
                "sources": [
                    {"uri": "https://example.com/ep7.opus"},
                    {"uri": "ipfs://Qm123", "content_type": "audio/opus"},
                ],
                "integrity": {"type": "sri", "value": "sha384-abc"},
            }
        ],
        "content_links": [{"href": "https://youtube.example/watch?v=1", "text": "Watch it"}],
        "txt": [{"value": "verify-me"}],
        "images": [{"href": "https://example.com/ep7-wide.jpg", "width": 1600, "height": 900}],
    }
    EpisodeCreate(**parsed.fields)


def test_podcast_season_and_episode_fill_in_and_disagree() -> None:
    parsed, feed = one(
        '<podcast:season name="Pilot">1</podcast:season>'
        '<podcast:episode display="½">2.5</podcast:episode>'
    )
    assert (parsed.fields["season"], parsed.fields["season_name"]) == (1, "Pilot")
    assert (parsed.fields["number"], parsed.fields["number_display"]) == ("2.5", "½")
    parsed, feed = one(
        '<itunes:season>3</itunes:season><podcast:season name="Other">4</podcast:season>'
    )
    assert parsed.fields["season"] == 3 and "season_name" not in parsed.fields
    assert messages(feed, "podcast:season") == ["4 differs from itunes:season 3; kept 3"]


def test_zero_season_and_word_episode_are_problems() -> None:
    parsed, feed = one("<itunes:season>0</itunes:season><itunes:episode>five</itunes:episode>")
    assert "season" not in parsed.fields and "number" not in parsed.fields
    assert {p.field for p in feed.problems} == {"itunes:season", "itunes:episode"}


def test_live_items_become_items_in_document_order() -> None:
    live = (
        '<podcast:liveItem status="LIVE" start="2024-08-02T00:12:00.000-04:00" '
        'end="2024-08-02T01:12:00Z"><title>On air</title><guid>live-1</guid>'
        '<enclosure url="https://stream.example/live" type="audio/mpeg" length=""/>'
        '<podcast:contentLink href="https://stream.example">Listen</podcast:contentLink>'
        '<podcast:liveValue uri="wss://value.example/event/9" protocol="socket.io"/>'
        "</podcast:liveItem>"
    )
    feed = parse_feed(rss(items=item(guid="before") + live + item(guid="after")))
    assert [i.guid for i in feed.items] == ["before", "live-1", "after"]
    on_air = feed.items[1]
    assert on_air.fields["live"] == {
        "status": "live",
        "start": "2024-08-02T04:12:00Z",
        "end": "2024-08-02T01:12:00Z",
        "value": {"uri": "wss://value.example/event/9", "protocol": "socket.io"},
    }
    assert on_air.enclosure == RemoteFile("https://stream.example/live", "audio/mpeg", None)
    assert "live" not in feed.items[0].fields and "live" not in feed.items[2].fields


def test_live_item_without_a_usable_start_is_skipped() -> None:
    live = '<podcast:liveItem status="pending" start="soon"><guid>l</guid></podcast:liveItem>'
    feed = parse_feed(rss(items=live + item()))
    assert [i.guid for i in feed.items] == ["ep-1"]
    assert messages(feed, "podcast:liveItem")[-1] == "no usable status and start; item skipped"


# --- refused documents ------------------------------------------------------------------------

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<rss version="2.0"><channel><title>&xxe;</title></channel></rss>"""

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<rss version="2.0"><channel><title>&lol4;</title></channel></rss>"""


@pytest.mark.parametrize(
    "data",
    [
        XXE,
        BILLION_LAUGHS,
        XXE.replace(b"<!ENTITY xxe", b"<!-- ]> --><!ENTITY xxe"),  # a comment hiding the end
        XXE.replace(b"<!ENTITY xxe SYSTEM", b'<!ATTLIST x y "]>"><!ENTITY % xxe SYSTEM'),
        codecs.BOM_UTF16_LE + XXE.decode().encode("utf-16-le"),
    ],
)
def test_entity_declarations_are_refused(data: bytes) -> None:
    with pytest.raises(FeedParseError) as caught:
        parse_feed(data)
    assert caught.value.status_code == 422 and caught.value.code == "feed_unparseable"
    assert "entity declarations are not allowed" in caught.value.message
    assert "root:" not in caught.value.message  # nothing of /etc/passwd ever comes back


def test_a_doctype_without_entities_is_fine() -> None:
    data = rss(item()).replace(
        b"<rss",
        b'<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN" '
        b'"http://my.netscape.com/publish/formats/rss-0.91.dtd">\n<rss',
        1,
    )
    assert parse_feed(data).items[0].guid == "ep-1"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "The feed is empty."),
        (b"  \n\t ", "The feed is empty."),
        (b'{"version": "https://jsonfeed.org/version/1.1", "items": []}', "JSON, not an RSS"),
        (
            b"<!DOCTYPE html><html><head><title>Hi</title></head><body><p>x<br></body></html>",
            "HTML page",
        ),
        (b"<html><body>Welcome</body></html>", "HTML page"),
        (b"just some text", "not XML"),
        (b'<?xml version="1.0"?><note><to>Ada</to></note>', "its root is <note>"),
        (b'<rss version="2.0"><title>No channel</title></rss>', "without a <channel>"),
        (
            b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"/>',
            "RSS 1.0 (RDF) feeds are not supported",
        ),
    ],
)
def test_non_feeds_are_refused_with_a_clear_message(data: bytes, message: str) -> None:
    with pytest.raises(FeedParseError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_feed(data)


# --- speed --------------------------------------------------------------------------------------


def test_a_thousand_item_feed_parses_well_under_a_second() -> None:
    body = (
        "<title>Episode {n}</title><pubDate>Sat, 15 Jun 2019 10:00:00 GMT</pubDate>"
        "<description><![CDATA[<p>Notes for <a href='https://e.example/{n}'>episode {n}</a>.</p>]]>"
        "</description><itunes:duration>1:02:03</itunes:duration><itunes:episode>{n}</itunes:episode>"
        "<itunes:explicit>false</itunes:explicit><itunes:image href='https://e.example/{n}.jpg'/>"
        "<podcast:person role='host' img='https://e.example/a.jpg'>Ada</podcast:person>"
        "<podcast:transcript url='https://e.example/{n}.vtt' type='text/vtt'/>"
        "<podcast:chapters url='https://e.example/{n}.json' type='application/json+chapters'/>"
    )
    items = "".join(
        item(body.format(n=n), guid=f"guid-{n}", enclosure=f"https://e.example/{n}.mp3")
        for n in range(1, 1001)
    )
    data = rss(items=items)
    started = time.perf_counter()
    feed = parse_feed(data)
    elapsed = time.perf_counter() - started
    assert len(feed.items) == 1000 and feed.problems == []
    assert feed.items[-1].fields["number"] == "1000"
    assert elapsed < 1.0, f"{elapsed:.2f} s for 1,000 items"
