"""Round-trip fidelity on real-world feeds: serve each from a local old host (generated media,
transcripts, chapters and artwork behind every URL it names), import it, build our feed, and
compare item by item with the source.

What is compared: guid, title, pubDate, enclosure length and type (against the file actually
served), duration (against the file's real length), episode, season, episode type, explicit,
and every ``podcast:`` element of the source (tag, attributes, text) — on the channel and on
each item. URLs of files we re-host (transcripts, chapters, images) are our own afterwards, so
for those only the rest of the element is compared. Nothing is allowed to go missing.
"""

from __future__ import annotations

import json
import re
from datetime import UTC
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import feedparser
import httpx
import pytest
from lxml import etree

from amphora.feed_import.values import parse_date
from amphora.media.testaudio import tone_mp3
from tests.catalog import image_bytes
from tests.fakes.oldhost import OldHost
from tests.fakes.smtp import Mailbox
from tests.feed_import.sample import start_import, wait_for_status
from tests.helpers import API, Account

FEEDS = Path(__file__).resolve().parents[3] / "shared" / "data" / "feeds" / "real-world"
PODCAST_NS = {
    "https://podcastindex.org/namespace/1.0",
    "https://github.com/Podcastindex-org/podcast-namespace/blob/main/docs/1.0.md",
}
ITUNES = "http://www.itunes.com/dtds/podcast-1.0.dtd"
# Elements pointing at a file we bring over and serve ourselves afterwards: the URL is ours
# then, and so is the type (the file's real one, e.g. chapters declared as plain JSON).
REHOSTED = {"transcript": {"url", "type"}, "chapters": {"url", "type"}}
# Tags not carried over, on purpose. podping says whether the host announces changes by
# podping: a fact of the server (its operator's setting), not of the show.
UNMODELED = {
    "podping",
    "tracker",  # not in the namespace: a PeerTube extension naming a BitTorrent tracker
}
# What the namespace requires of a tag: a source tag without it is invalid, so the import
# reports it as a problem instead of carrying it.
REQUIRED = {
    "person": {"": "a name"},
    "valueRecipient": {"address": "", "type": "", "split": ""},
}
# Values a tag says that mean the same as leaving it out.
NEUTRAL = {("complete", False), ("block", False)}
AUDIO = tone_mp3(0.5)
ART = image_bytes(1400, 1400)
TRANSCRIPTS = {
    "text/vtt": "WEBVTT\n\n00:00:00.000 --> 00:00:00.400\nHello.\n",
    "application/srt": "1\n00:00:00,000 --> 00:00:00,400\nHello.\n",
    "application/x-subrip": "1\n00:00:00,000 --> 00:00:00,400\nHello.\n",
    "application/json": '{"version": "1.0.0", "segments": [{"startTime": 0, "endTime": 0.4,'
    ' "body": "Hello."}]}',
    "text/html": "<cite>Host:</cite><time>0:00</time><p>Hello.</p>",
    "text/plain": "Hello.",
}
CHAPTERS = json.dumps({"version": "1.2.0", "chapters": [{"startTime": 0, "title": "Start"}]})


def _feeds() -> list[Path]:
    if not FEEDS.is_dir():
        return []
    return sorted(p for p in FEEDS.glob("*.xml"))


def _podcast(element: etree._Element) -> bool:
    return isinstance(element.tag, str) and etree.QName(element).namespace in PODCAST_NS


def _read(source: bytes) -> etree._Element:
    """The source as an importer sees it: broken-but-common feeds recovered, entities off."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, recover=True)
    return etree.fromstring(source.lstrip(), parser)


def _serve_everything(host: OldHost, source: bytes) -> bytes:
    """The source with every file URL it names moved to the old host, which serves a real file
    of the right kind there. The URLs are replaced in the bytes as published, so whatever is
    broken about the feed reaches the importer as it is."""
    root = _read(source)
    served: dict[str, str] = {}

    def move(element: etree._Element, attribute: str, body: bytes | str, kind: str) -> None:
        original = element.get(attribute)
        if original and original not in served:
            path = f"/files/{len(served)}{Path(original.split('?')[0]).suffix[:6]}"
            served[original] = host.put(path, body, content_type=kind)

    for enclosure in root.iter("enclosure"):
        move(enclosure, "url", AUDIO, "audio/mpeg")
    for image in root.iter(f"{{{ITUNES}}}image"):
        move(image, "href", ART, "image/jpeg")
    for element in root.iter():
        if not _podcast(element):
            continue
        name = etree.QName(element).localname
        if name == "transcript":
            kind = (element.get("type") or "text/plain").lower()
            move(element, "url", TRANSCRIPTS.get(kind, TRANSCRIPTS["text/plain"]), kind)
        elif name == "chapters":
            move(element, "url", CHAPTERS, "application/json+chapters")
    # Longest first: a URL that begins another one must not cut into it.
    for original in sorted(served, key=len, reverse=True):
        for spelling in {original, escape(original), escape(original, {'"': "&quot;"})}:
            for quote in ('"', "'"):
                source = source.replace(
                    f"{quote}{spelling}{quote}".encode(),
                    f"{quote}{served[original]}{quote}".encode(),
                )
    return source


# --- comparing ------------------------------------------------------------------------------------


_NUMBER = re.compile(r"^[+-]?\d+(\.\d+)?$")


def _value(name: str, attribute: str, raw: str) -> Any:
    """One spelling per value: what means the same must compare equal."""
    text = " ".join(raw.split())
    lowered = text.lower()
    if lowered in {"yes", "true"}:
        return True
    if lowered in {"no", "false"}:
        return False
    if _NUMBER.match(text):
        try:
            return Decimal(text).normalize()
        except InvalidOperation:
            return text
    if attribute in {"pubdate", "dtstart", "start", "end"}:
        try:
            moment = parse_date(text)
        except ValueError:
            return text
        if moment is not None:
            return moment.astimezone(UTC)
    # Keywords, MIME types and language tags (BCP 47) ignore case.
    if attribute in {
        "role",
        "group",
        "medium",
        "protocol",
        "type",
        "method",
        "rel",
        "lang",
        "language",
    }:
        return lowered
    return text


# Values the namespace defines as the default when an attribute is absent.
DEFAULTS = {
    "person": {"role": "host", "group": "cast"},
    "valueRecipient": {"fee": "false"},
    "alternateEnclosure": {"default": "false"},
}
# Spellings some publishers use for an attribute the namespace spells otherwise.
ALIASES = {("alternateEnclosure", "language"): "lang", ("locked", "email"): "owner"}


def _valid(element: etree._Element) -> bool:
    required = REQUIRED.get(etree.QName(element).localname, {})
    return all(
        (element.text or "").strip() if key == "" else (element.get(key) or "").strip()
        for key in required
    )


def _signature(element: etree._Element) -> tuple[Any, ...]:
    name = etree.QName(element).localname
    skip = REHOSTED.get(name, set())
    found = {
        ALIASES.get((name, key.lower()), key.lower()): value
        for key, value in element.attrib.items()
        if key not in skip and not key.startswith("{") and value.strip()
    }
    merged = {**DEFAULTS.get(name, {}), **found}
    attributes = tuple(sorted((key, _value(name, key, value)) for key, value in merged.items()))
    children = tuple(
        sorted((_signature(c) for c in element if _podcast(c) and _valid(c)), key=repr)
    )
    own_text = element.text or ""
    return (name, attributes, _value(name, "", own_text) if own_text.strip() else "", children)


def _srcset_images(element: etree._Element) -> list[tuple[Any, ...]]:
    """The legacy ``podcast:images srcset`` is carried as one ``podcast:image`` per entry."""
    images = []
    for entry in (element.get("srcset") or "").split(","):
        href, _, width = entry.strip().partition(" ")
        attributes = [("href", href)]
        if width.strip().endswith("w"):
            attributes.append(("width", _value("image", "width", width.strip()[:-1])))
        images.append(("image", tuple(sorted(attributes)), "", ()))
    return images


def _podcast_tags(parent: etree._Element) -> list[tuple[Any, ...]]:
    tags: list[tuple[Any, ...]] = []
    for child in parent:
        name = etree.QName(child).localname if _podcast(child) else None
        if name is None or name in UNMODELED or name == "liveItem":  # items: compared apart
            continue
        if not _valid(child):
            continue
        if name == "images":
            tags += _srcset_images(child)
        else:
            signature = _signature(child)
            if signature[1] or (name, signature[2]) not in NEUTRAL:
                tags.append(signature)
    return tags


def _items(root: etree._Element) -> dict[str, etree._Element]:
    found: dict[str, etree._Element] = {}
    channel = root.find("channel")
    assert channel is not None
    for item in channel:
        if item.tag == "item" or (_podcast(item) and etree.QName(item).localname == "liveItem"):
            guid = (item.findtext("guid") or "").strip()
            if not guid:
                enclosure = item.find("enclosure")
                guid = enclosure.get("url", "") if enclosure is not None else ""
            if guid and guid not in found:
                found[guid] = item
    return found


def _explicit(text: str | None) -> bool:
    return (text or "").strip().lower() in {"yes", "true", "explicit"}


def _missing(source: list[tuple[Any, ...]], ours: list[tuple[Any, ...]]) -> list[Any]:
    left = list(ours)
    lost = []
    for tag in source:
        if tag in left:
            left.remove(tag)
        else:
            lost.append(tag)
    return lost


def _compare(source: bytes, ours: bytes, reported: set[tuple[str, str]]) -> list[str]:
    """Every difference that matters, as readable lines (empty: nothing lost). A tag the
    import reported as a problem where it was (invalid at the source, or beyond what the
    namespace allows, such as a 40-character episode ``display``) is not counted as lost: the
    creator was told."""
    lost: list[str] = []
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    src_root, our_root = _read(source), etree.fromstring(ours, parser)
    src_channel, our_channel = src_root.find("channel"), our_root.find("channel")
    assert src_channel is not None and our_channel is not None
    for tag in _missing(_podcast_tags(src_channel), _podcast_tags(our_channel)):
        if ("channel", f"podcast:{tag[0]}") not in reported:
            lost.append(f"channel: {tag}")
    src_items, our_items = _items(src_root), _items(our_root)
    src_parsed = {e.get("id") or e.enclosures[0].href: e for e in feedparser.parse(source).entries}
    our_parsed = {e.id: e for e in feedparser.parse(ours).entries}
    for guid, src_item in src_items.items():
        if guid not in our_items:
            lost.append(f"item {guid}: missing")
            continue
        for tag in _missing(_podcast_tags(src_item), _podcast_tags(our_items[guid])):
            if (f"item {guid}", f"podcast:{tag[0]}") not in reported:
                lost.append(f"item {guid}: {tag}")
        src, our = src_parsed.get(guid), our_parsed.get(guid)
        if src is None or our is None:  # a liveItem: feedparser does not list those
            continue
        defaults = {"itunes_episodetype": "full"}  # what an app assumes when it is absent
        for key in ("title", "itunes_episode", "itunes_season", "itunes_episodetype"):
            if src.get(key) is None and key not in defaults:
                continue  # absent at the source (we may add it, e.g. from podcast:episode)
            wanted = (src.get(key) or defaults.get(key, "")).strip()
            if wanted != (our.get(key) or defaults.get(key, "")).strip():
                lost.append(f"item {guid}: {key} {src.get(key)!r} became {our.get(key)!r}")
        if src.get("published_parsed") and src.published_parsed != our.get("published_parsed"):
            lost.append(
                f"item {guid}: pubDate {src.get('published')!r} -> {our.get('published')!r}"
            )
        src_explicit = src_item.findtext(f"{{{ITUNES}}}explicit")
        our_explicit = our_items[guid].findtext(f"{{{ITUNES}}}explicit")
        if src_explicit is not None and _explicit(src_explicit) != _explicit(our_explicit):
            lost.append(f"item {guid}: explicit {src_explicit!r} -> {our_explicit!r}")
        if src.get("enclosures"):
            (enclosure,) = our.enclosures
            if int(enclosure.length) != len(AUDIO) or enclosure.type != "audio/mpeg":
                lost.append(f"item {guid}: enclosure {enclosure.length} {enclosure.type}")
            if not our.get("itunes_duration"):
                lost.append(f"item {guid}: no duration")
    return lost


def _summary(lost: list[str]) -> str:
    """One line per kind of loss (with a count and the first example): readable in CI."""
    kinds: dict[str, list[str]] = {}
    for line in lost:
        scope, _, what = line.partition(": ")
        kind = what.split(",")[0].split(" ")[0]
        kinds.setdefault(f"{scope.split(' ')[0]} {kind}", []).append(line)
    return "\n".join(f"{len(v)} x {k}: {v[0][:400]}" for k, v in kinds.items())


@pytest.mark.parametrize("path", _feeds(), ids=lambda p: p.stem)
async def test_real_world_feed_survives_the_move(
    client: httpx.AsyncClient, account: Account, host: OldHost, mailbox: Mailbox, path: Path
) -> None:
    source = _serve_everything(host, path.read_bytes())
    url = host.put("/feed.xml", source, content_type="application/rss+xml")
    started = await start_import(client, account, url)
    status = await wait_for_status(client, account, started["id"], "done", "failed", "verifying")
    if status["status"] == "verifying":  # podcast:locked yes: the owner's code, as a creator would
        mail = await mailbox.wait_for(status["verify_email"])
        code = re.search(r"\b(\d{6})\b", mail.text)
        assert code is not None
        verified = await client.post(
            f"{API}/imports/{started['id']}/verify", json={"code": code[1]}, headers=account.headers
        )
        assert verified.status_code == 200, verified.text
        status = await wait_for_status(client, account, started["id"], "done", "failed")
    if not _items(_read(source)):
        assert status["status"] == "failed" and status["error"]["code"] == "nothing_imported"
        return
    assert status["status"] == "done", status
    failed_files = [p for p in status["problems"] if p["field"] in {"media", "transcript"}]
    assert not failed_files, failed_files
    show = (await client.get(f"{API}/shows/{status['show_id']}", headers=account.headers)).json()
    ours = await client.get(f"/feeds/{show['slug']}.xml")
    assert ours.status_code == 200
    reported = {(p["where"], p["field"]) for p in status["problems"]}
    lost = _compare(source, ours.content, reported)
    assert not lost, _summary(lost)
