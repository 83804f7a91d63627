"""Read a podcast feed (RSS 2.0 or Atom 1.0) into the checked, plain values the importer needs.

Pure: bytes in, :class:`~amphora.feed_import.parsed.ParsedFeed` out, no I/O and no database.
Strict only where it must be: bytes that are not XML, XML that is not a feed, and any document
declaring entities (XXE, "billion laughs") raise :class:`FeedParseError`. Everything else is
lenient, because real feeds are sloppy and an import should carry over all it can
(STANDARDS.md §6): a value that does not pass is left out, an item without any identity is
skipped, and each such loss is reported as a :class:`~amphora.feed_import.parsed.Problem`.

Tags are matched by namespace *meaning*, not spelling: both Podcasting 2.0 namespace URIs, the
iTunes URI in any capitalisation and the Atom URI with a trailing slash all count.
"""

from __future__ import annotations

import codecs
import html
import re
from collections.abc import Callable
from functools import lru_cache
from html.entities import name2codepoint
from typing import Any, TypeVar
from urllib.parse import urljoin, urlsplit

from lxml import etree  # type: ignore[import-untyped]

from amphora.episode.schemas import EpisodeFields
from amphora.feed_import import values as v
from amphora.feed_import.parsed import (
    ParsedFeed,
    ParsedItem,
    Problem,
    RemoteFile,
    RemoteTranscript,
)
from amphora.kit.errors import AmphoraError
from amphora.kit.html import html_to_text
from amphora.show.podcast_types import Medium
from amphora.show.schemas import ShowFields

__all__ = ["FeedParseError", "parse_feed"]

T = TypeVar("T")
Kids = dict[str, list[etree._Element]]


class FeedParseError(AmphoraError):
    """The bytes are not a feed we can read at all (or not one we are willing to read)."""

    status_code = 422
    code = "feed_unparseable"
    message = "The feed could not be read."


# --- bytes to tree -----------------------------------------------------------------------------

_WIDE_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),  # before UTF-16 LE: it starts with the same two bytes
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
    (b"<\x00?\x00", "utf-16-le"),  # no BOM: recognised by how "<?" is encoded
    (b"\x00<\x00?", "utf-16-be"),
)
_DECLARED_ENCODING = re.compile(r"""^(<\?xml[^>]*?)\s+encoding\s*=\s*(["'])[^"']*\2""")
_PROLOG = re.compile(rb"(?:\s+|<\?.*?\?>|<!--.*?-->)*", re.DOTALL)
_DTD_TOKEN = re.compile(rb"""["'\[\]>]|<!--|<!ENTITY""", re.IGNORECASE)
_CONTROL_BYTES = bytes(b for b in range(0x20) if b not in b"\t\n\r")
# A bare "&" (or an HTML-only entity) outside CDATA and comments: the commonest breakage.
_AMPERSAND = re.compile(
    rb"<!\[CDATA\[.*?\]\]>|<!--.*?-->|&(?!#\d+;|#x[0-9a-fA-F]+;)(?P<name>[A-Za-z][A-Za-z0-9]*;)?",
    re.DOTALL,
)
_XML_ENTITIES = {b"amp;", b"lt;", b"gt;", b"quot;", b"apos;"}
_RECOVERED = "the feed is not well-formed XML; recovered what could be read"


def _parser(*, recover: bool) -> etree.XMLParser:
    # A fresh parser per document: lxml parser objects must not be shared between threads.
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        recover=recover,
        remove_blank_text=False,
    )


def _as_utf8(data: bytes) -> bytes:
    """UTF-16/32 documents re-encoded as UTF-8, so the byte-level checks below see ASCII."""
    for bom, codec in _WIDE_BOMS:
        if data.startswith(bom):
            try:
                text = data.decode(codec)
            except UnicodeDecodeError as exc:
                raise FeedParseError(f"The feed is not valid {codec.upper()}.") from exc
            return _DECLARED_ENCODING.sub(r"\1", text.lstrip(), count=1).encode("utf-8")
    return data.removeprefix(codecs.BOM_UTF8).lstrip()


def _declares_entities(data: bytes) -> bool:
    """Whether a DOCTYPE before the root element declares entities (or cannot be read)."""
    prolog = _PROLOG.match(data)
    start = prolog.end() if prolog else 0
    if data[start : start + 9].upper() != b"<!DOCTYPE":
        return False
    pos, in_subset = start + 9, False
    while (token := _DTD_TOKEN.search(data, pos)) is not None:
        found, pos = token.group(0), token.end()
        if found in (b'"', b"'", b"<!--"):  # skip quoted strings and comments whole
            end = data.find(b"-->" if found == b"<!--" else found, pos)
            if end < 0:
                return True
            pos = end + (3 if found == b"<!--" else 1)
        elif found == b"[":
            in_subset = True
        elif found == b"]":
            in_subset = False
        elif found == b">" and not in_subset:
            return False
        elif found.upper() == b"<!ENTITY":
            return True
    return True  # an unterminated DOCTYPE: refuse rather than guess


def _repair(data: bytes) -> bytes:
    """Fix what breaks most feeds: stray control characters and unescaped ampersands."""

    def fix(match: re.Match[bytes]) -> bytes:
        found = match.group(0)
        if not found.startswith(b"&"):
            return found  # CDATA or a comment: left exactly as written
        name = match["name"]
        if name is None:
            return b"&amp;"
        if name in _XML_ENTITIES:
            return found
        codepoint = name2codepoint.get(name[:-1].decode("ascii"))
        return b"&#%d;" % codepoint if codepoint else b"&amp;" + name

    return _AMPERSAND.sub(fix, data.translate(None, _CONTROL_BYTES))


def _not_xml(data: bytes, error: Exception) -> FeedParseError:
    if data[:1] in (b"{", b"["):
        return FeedParseError("The document is JSON, not an RSS or Atom feed.")
    return FeedParseError(f"The document is not XML, so not an RSS or Atom feed ({error}).")


def _load(data: bytes, problems: list[Problem]) -> etree._Element:
    data = _as_utf8(data)
    if not data:
        raise FeedParseError("The feed is empty.")
    if _declares_entities(data):
        raise FeedParseError(
            "The feed declares XML entities in a DOCTYPE; entity declarations are not allowed."
        )
    try:
        root = etree.fromstring(data, _parser(recover=False))
    except etree.XMLSyntaxError as error:
        repaired = _repair(data)
        try:
            root = etree.fromstring(repaired, _parser(recover=False))
        except etree.XMLSyntaxError:
            try:
                root = etree.fromstring(repaired, _parser(recover=True))
            except etree.XMLSyntaxError:
                root = None
        if root is None:
            raise _not_xml(data, error) from error
        problems.append(Problem("channel", "xml", f"{_RECOVERED} ({error})"))
    dtd = root.getroottree().docinfo.internalDTD
    if dtd is not None and any(True for _ in dtd.iterentities()):  # belt and braces
        raise FeedParseError("The feed declares XML entities; entity declarations are not allowed.")
    return root


# --- names and text ----------------------------------------------------------------------------

_NAMESPACES = {
    "itunes.com/dtds/podcast-1.0.dtd": "itunes",
    "podcastindex.org/namespace/1.0": "podcast",
    "github.com/podcastindex-org/podcast-namespace/blob/main/docs/1.0.md": "podcast",
    "purl.org/rss/1.0/modules/content": "content",
    "w3.org/2005/atom": "atom",
    "google.com/schemas/play-podcasts/1.0": "googleplay",
    "purl.org/dc/elements/1.1": "dc",
}


@lru_cache(maxsize=1024)
def _name(tag: str) -> str:
    """``"{http://www.itunes.com/DTDs/Podcast-1.0.dtd}image"`` → ``"itunes:image"``."""
    if not tag.startswith("{"):
        return tag
    uri, _, local = tag[1:].partition("}")
    key = uri.strip().lower().split("://", 1)[-1].removeprefix("www.").rstrip("/")
    prefix = _NAMESPACES.get(key)
    return f"{prefix}:{local}" if prefix else tag


def _kids(element: etree._Element) -> Kids:
    """The child elements by canonical name, in document order (one pass per element)."""
    found: Kids = {}
    for child in element:
        if isinstance(child.tag, str):  # comments and processing instructions are skipped
            found.setdefault(_name(child.tag), []).append(child)
    return found


def _first(kids: Kids, name: str) -> etree._Element | None:
    found = kids.get(name)
    return found[0] if found else None


def _text(element: etree._Element | None) -> str:
    if element is None:
        return ""
    if len(element) == 0:
        return str(element.text or "").strip()
    return "".join(element.itertext()).strip()


def _rich(element: etree._Element | None) -> str:
    """Text that is HTML: escaped or CDATA HTML, or (in sloppy feeds) raw XHTML children."""
    if element is None:
        return ""
    if len(element):
        inner = [etree.tostring(c, encoding="unicode", with_tail=True) for c in element]
        return ((element.text or "") + "".join(inner)).strip()
    text = str(element.text or "").strip()
    return html.escape(text, quote=False) if element.get("type") == "text" else text  # Atom


def _attr(element: etree._Element, name: str) -> str | None:
    value = element.get(name)
    return str(value).strip() or None if value is not None else None


def _lower(value: str | None) -> str | None:
    return value.lower() if value else None


def _itunes_image(el: etree._Element | None) -> str:
    """``itunes:image href`` (some feeds put the URL in the text instead)."""
    return "" if el is None else (_attr(el, "href") or _text(el))


def _atom_link(kids: Kids, rel: str) -> str:
    for el in kids.get("atom:link", []):
        if (el.get("rel") or "alternate") == rel and el.get("href"):
            return str(el.get("href")).strip()
    return ""


def _atom_title(el: etree._Element | None) -> str:
    if el is not None and el.get("type") in ("html", "xhtml"):
        return " ".join(html_to_text(_rich(el)).split())
    return _text(el)


# --- what each tag carries ---------------------------------------------------------------------

# "field=attribute:kind", where "." is the element's text and kind one of str (the default),
# lower, upper, url, num, bool, date. Most Podcasting 2.0 tags differ only in these names, so
# one table and one reader replace a function per tag.
_SPECS = {
    "podcast:person": "name=. role=role:lower group=group:lower img=img:url href=href:url",
    "podcast:location": "name=. rel=rel:lower geo=geo osm=osm country=country:upper",
    "podcast:funding": "url=url:url label=.",
    "podcast:txt": "value=. purpose=purpose",
    "podcast:socialInteract": "protocol=protocol:lower uri=uri account_id=accountId"
    " account_url=accountUrl:url priority=priority:num",
    "podcast:license": "identifier=. url=url:url",
    "podcast:chat": (
        "server=server protocol=protocol account_id=accountId space=space embed_url=embedUrl:url"
    ),
    "podcast:image": "href=href:url alt=alt aspect_ratio=aspect-ratio width=width:num"
    " height=height:num type=type:lower purpose=purpose",
    "podcast:value": "type=type method=method suggested=suggested",
    "podcast:valueRecipient": "name=name type=type address=address split=split:num"
    " custom_key=customKey custom_value=customValue fee=fee:bool",
    "podcast:valueTimeSplit": "start_time=startTime:num duration=duration:num"
    " remote_start_time=remoteStartTime:num remote_percentage=remotePercentage:num",
    "podcast:remoteItem": "feed_guid=feedGuid feed_url=feedUrl:url item_guid=itemGuid"
    " medium=medium title=title",
    "podcast:updateFrequency": "text=. complete=complete:bool dtstart=dtstart:date rrule=rrule",
    "podcast:trailer": "title=. url=url:url pubdate=pubdate:date length=length:num type=type"
    " season=season:num",
    "podcast:soundbite": "start_time=startTime:num duration=duration:num title=.",
    "podcast:alternateEnclosure": "type=type length=length:num bitrate=bitrate:num"
    " height=height:num lang=lang title=title rel=rel codecs=codecs default=default:bool",
    "podcast:source": "uri=uri content_type=contentType",
    "podcast:integrity": "type=type value=value",
    "podcast:contentLink": "href=href:url text=.",
    "podcast:liveItem": "status=status:lower start=start:date end=end:date",
    "podcast:liveValue": "uri=uri protocol=protocol",
}
_SHAPES = {
    tag: [
        (field, *(spec + ":str").split(":")[:2])
        for field, spec in (p.split("=") for p in s.split())
    ]
    for tag, s in _SPECS.items()
}
# field → tag, read alike on the channel and on items (lists, then single elements)
_LISTS = {
    "persons": "podcast:person",
    "locations": "podcast:location",
    "funding": "podcast:funding",
    "txt": "podcast:txt",
    "social_interact": "podcast:socialInteract",
}
_SINGLES = {"license": "podcast:license", "chat": "podcast:chat"}
_SHOW_LISTS = {"trailers": "podcast:trailer"}
_SHOW_SINGLES = {"update_frequency": "podcast:updateFrequency"}
_ITEM_LISTS = {"soundbites": "podcast:soundbite", "content_links": "podcast:contentLink"}
# field → the tag it came from, for Problems
_SHOW_TAGS = {
    **_LISTS, **_SINGLES, **_SHOW_LISTS, **_SHOW_SINGLES,
    "subtitle": "itunes:subtitle", "categories": "itunes:category", "explicit": "itunes:explicit",
    "show_type": "itunes:type", "author": "itunes:author", "owner_name": "itunes:owner",
    "owner_email": "itunes:owner", "medium": "podcast:medium", "locked": "podcast:locked",
    "complete": "itunes:complete", "block": "podcast:block", "value": "podcast:value",
    "images": "podcast:image", "podroll": "podcast:podroll", "publisher": "podcast:publisher",
}  # fmt: skip
_ITEM_TAGS = {
    **_SHOW_TAGS, **_ITEM_LISTS,
    "episode_type": "itunes:episodeType", "season": "itunes:season",
    "season_name": "podcast:season", "number": "itunes:episode",
    "number_display": "podcast:episode", "block": "itunes:block",
    "alternate_enclosures": "podcast:alternateEnclosure", "live": "podcast:liveItem",
}  # fmt: skip
_PLAIN: dict[str, Callable[[str], Any]] = {
    "str": str,
    "lower": str.lower,
    "upper": str.upper,
    "num": v.parse_number,
}
_LENIENT: dict[str, Callable[[str], Any]] = {"bool": v.parse_bool, "date": v.parse_date}
_MEDIA = {medium.value.lower(): medium.value for medium in Medium}
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


# --- the walk ----------------------------------------------------------------------------------


class _Reader:
    """Reads one document; collects the Problems met on the way."""

    def __init__(self, problems: list[Problem], base_url: str | None) -> None:
        self.problems = problems
        self.base_url = base_url

    def note(self, where: str, field: str, message: str) -> None:
        self.problems.append(Problem(where, field, message))

    def lenient(self, parse: Callable[[str], T], raw: str | None, where: str, tag: str) -> T | None:
        if not raw:
            return None
        try:
            return parse(raw)
        except ValueError as exc:
            self.note(where, tag, f"{exc}; left out")
            return None

    def url(self, raw: str | None) -> str | None:
        raw = (raw or "").strip()
        if raw and self.base_url and not urlsplit(raw).scheme:
            return urljoin(self.base_url, raw)  # relative to the feed's own address
        return raw or None

    def shape(self, el: etree._Element, where: str) -> dict[str, Any]:
        """The values of one element as its ``_SPECS`` entry names them."""
        tag = _name(el.tag)
        values: dict[str, Any] = {}
        for field, attr, kind in _SHAPES[tag]:
            raw = _text(el) if attr == "." else _attr(el, attr)
            if not raw:
                continue
            if kind in _PLAIN:
                values[field] = _PLAIN[kind](raw)
            elif kind == "url":
                values[field] = self.url(raw)
            else:
                values[field] = self.lenient(_LENIENT[kind], raw, where, tag)
        return values

    def tagged(
        self, kids: Kids, lists: dict[str, str], singles: dict[str, str], where: str
    ) -> dict[str, Any]:
        values: dict[str, Any] = {
            field: [self.shape(el, where) for el in kids.get(tag, [])]
            for field, tag in lists.items()
        }
        for field, tag in singles.items():
            if (el := _first(kids, tag)) is not None:
                values[field] = self.shape(el, where)
        return values

    def shared(self, kids: Kids, where: str) -> dict[str, Any]:
        """What channel and items carry alike."""
        values = self.tagged(kids, _LISTS, _SINGLES, where)
        values["images"] = [self.shape(el, where) for el in kids.get("podcast:image", [])]
        if not values["images"]:
            # The deprecated podcast:images srcset ("url 512w, url 1500w") says the same.
            for el in kids.get("podcast:images", [])[:1]:
                for candidate in (el.get("srcset") or "").split(","):
                    href, _, width = candidate.strip().partition(" ")
                    width = width.strip()
                    size = v.parse_number(width[:-1]) if width.endswith("w") else None
                    values["images"].append({"href": self.url(href), "width": size})
        if found := kids.get("podcast:value"):
            if len(found) > 1:
                self.note(where, "podcast:value", "more than one value block; kept the first")
            values["value"] = self.value(found[0], where)
        return values

    def value(self, el: etree._Element, where: str) -> dict[str, Any]:
        """``podcast:value`` with its recipients and time splits; a split names a remote item
        (a song played in the episode, say) or recipients of its own."""
        shaped = self.shape(el, where)
        kids = _kids(el)
        shaped["recipients"] = self.recipients(kids, where)
        shaped["time_splits"] = []
        for split in kids.get("podcast:valueTimeSplit", []):
            shaped_split = self.shape(split, where)
            split_kids = _kids(split)
            if remote := split_kids.get("podcast:remoteItem"):
                shaped_split["remote_item"] = self.shape(remote[0], where)
            shaped_split["recipients"] = self.recipients(split_kids, where)
            shaped["time_splits"].append(shaped_split)
        return shaped

    def recipients(self, kids: Kids, where: str) -> list[dict[str, Any]]:
        return [self.shape(r, where) for r in kids.get("podcast:valueRecipient", [])]

    def description(self, candidates: list[etree._Element | None], where: str) -> str | None:
        """The first non-empty candidate, sanitised (and cut to what the schema stores)."""
        raw = next((text for el in candidates if (text := _rich(el))), "")
        clean, cut = v.html_value(raw)
        if cut:
            self.note(where, "description", f"longer than {v.HTML_MAX} characters; shortened")
        return clean

    def flag(self, kids: Kids, tag: str, where: str) -> bool | None:
        return self.lenient(v.parse_bool, _text(_first(kids, tag)), where, tag)

    def explicit(self, kids: Kids, where: str) -> bool | None:
        raw = _text(_first(kids, "itunes:explicit"))
        return self.lenient(v.parse_explicit, raw, where, "itunes:explicit")

    # -- channel ----------------------------------------------------------------------------

    def channel(self, channel: etree._Element, kids: Kids, atom: bool) -> ParsedFeed:
        where = "channel"
        if atom:
            title = _atom_title(_first(kids, "atom:title"))
            notes = [_first(kids, "itunes:summary"), _first(kids, "atom:subtitle")]
            link, language = _atom_link(kids, "alternate"), channel.get(_XML_LANG) or ""
            rights = _text(_first(kids, "atom:rights"))
            image = _text(_first(kids, "atom:logo")) or _text(_first(kids, "atom:icon"))
            writer = _first(kids, "atom:author")
            author = _text(_first(_kids(writer), "atom:name")) if writer is not None else ""
        else:
            title = _text(_first(kids, "title"))
            # content:encoded is the rich one, description the common one, itunes:summary last.
            names = ("content:encoded", "description", "itunes:summary")
            notes = [_first(kids, name) for name in names]
            link, language = _text(_first(kids, "link")), _text(_first(kids, "language"))
            rights, author = _text(_first(kids, "copyright")), ""
            image = ""
            if (el := _first(kids, "image")) is not None:  # <image><url>, or url="…" in some
                image = _text(_first(_kids(el), "url")) or _attr(el, "url") or ""
        title = title or _text(_first(kids, "itunes:title"))
        if not title:
            title = "Untitled show"
            self.note(where, "title", "the feed has no title; imported as 'Untitled show'")
        owner = _kids(el) if (el := _first(kids, "itunes:owner")) is not None else {}
        show: dict[str, Any] = {
            "title": title,
            "subtitle": _text(_first(kids, "itunes:subtitle")),
            "description": self.description(notes, where),
            "language": v.normalise_language(language),
            "categories": self.categories(kids, where),
            "explicit": self.explicit(kids, where),
            "show_type": _text(_first(kids, "itunes:type")).lower(),
            "author": _text(_first(kids, "itunes:author")) or author,
            "owner_name": _text(_first(owner, "itunes:name")),
            "owner_email": _text(_first(owner, "itunes:email")),
            "copyright": rights,
            "link": self.url(link),
            "locked": self.flag(kids, "podcast:locked", where),
            "complete": self.flag(kids, "itunes:complete", where) or None,  # only Yes counts
            "block": self.block(kids, where),
            **self.shared(kids, where),
            **self.tagged(kids, _SHOW_LISTS, _SHOW_SINGLES, where),
        }
        if (el := _first(kids, "podcast:medium")) is not None:
            show["medium"] = _MEDIA.get(_text(el).lower())
            if show["medium"] is None:
                self.note(where, "podcast:medium", f"'{_text(el)}' is not a known medium")
        if (el := _first(kids, "podcast:podroll")) is not None:
            show["podroll"] = [
                self.shape(r, where) for r in _kids(el).get("podcast:remoteItem", [])
            ]
        if (el := _first(kids, "podcast:publisher")) is not None:
            remote = _first(_kids(el), "podcast:remoteItem")
            show["publisher"] = None if remote is None else self.shape(remote, where)
        locked = _first(kids, "podcast:locked")
        return ParsedFeed(
            show=v.checked(
                ShowFields, v.clean(show), where=where, tags=_SHOW_TAGS, problems=self.problems
            ),
            items=[],
            problems=self.problems,
            podcast_guid=self.lenient(
                v.parse_uuid, _text(_first(kids, "podcast:guid")), where, "podcast:guid"
            ),
            image_url=self.url(_itunes_image(_first(kids, "itunes:image")) or image),
            self_url=self.url(_atom_link(kids, "self")),
            new_feed_url=self.url(_text(_first(kids, "itunes:new-feed-url"))),
            # A lock we cannot read counts as a lock: the importer then asks for proof.
            locked=locked is not None and show["locked"] is not False,
            # The spec names the attribute owner; some generators write email.
            locked_owner=None
            if locked is None
            else _attr(locked, "owner") or _attr(locked, "email"),
            format="atom" if atom else "rss",
        )

    def block(self, kids: Kids, where: str) -> dict[str, Any] | None:
        block: dict[str, Any] = {"all": bool(self.flag(kids, "itunes:block", where))}
        platforms = []
        for el in kids.get("podcast:block", []):
            if self.lenient(v.parse_bool, _text(el), where, "podcast:block"):
                service = _lower(_attr(el, "id"))
                if service:
                    platforms.append(service)
                else:
                    block["all"] = True  # podcast:block without an id: every platform
        block["platforms"] = platforms
        return block if block["all"] or platforms else None

    def categories(self, kids: Kids, where: str) -> list[dict[str, str | None]]:
        found: list[tuple[str, str | None]] = []
        for el in kids.get("itunes:category", []):
            parent = _attr(el, "text")
            if not parent:
                self.note(where, "itunes:category", "a category without a name; left out")
                continue
            named = [_attr(c, "text") for c in _kids(el).get("itunes:category", [])]
            subs: list[str | None] = [s for s in named if s] or [None]
            for sub in subs:
                result, note = v.map_category(parent, sub)
                if note:
                    self.note(where, "itunes:category", note)
                if result is not None and result not in found:
                    found.append(result)
        if len(found) > 5:
            self.note(where, "itunes:category", "more than 5 categories; kept the first 5")
        return [{"category": c, "subcategory": s} for c, s in found[:5]]

    # -- items ------------------------------------------------------------------------------

    def item(self, el: etree._Element, n: int, atom: bool, seen: set[str]) -> ParsedItem | None:
        kids = _kids(el)
        # Apple compares guids trimmed; inside, the guid is kept exactly as written.
        guid = _text(_first(kids, "atom:id" if atom else "guid"))
        enclosure = self.enclosure(kids, atom, f"item {guid}" if guid else f"item #{n}")
        if not guid:
            if enclosure is None:
                self.note(f"item #{n}", "guid", "no guid and no enclosure; item skipped")
                return None
            guid = enclosure.url
            self.note(f"item {guid}", "guid", "no guid; the enclosure URL is used (as Apple does)")
        where = f"item {guid}"
        if guid in seen or len(guid) > 2048:
            why = "another item has the same guid" if guid in seen else "the guid is too long"
            self.note(where, "guid", f"{why}; item skipped")
            return None
        seen.add(guid)
        if atom:
            title = _atom_title(_first(kids, "atom:title"))
            notes = [_first(kids, "atom:content"), _first(kids, "atom:summary")]
            link = _atom_link(kids, "alternate")
            date = _text(_first(kids, "atom:published")) or _text(_first(kids, "atom:updated"))
        else:
            title = _text(_first(kids, "title"))
            notes = [_first(kids, "content:encoded"), _first(kids, "description")]
            link = _text(_first(kids, "link"))
            date = _text(_first(kids, "pubDate")) or _text(_first(kids, "dc:date"))
        description = self.description([*notes, _first(kids, "itunes:summary")], where)
        title = title or _text(_first(kids, "itunes:title"))
        if not title:
            text = " ".join(html_to_text(description or "").split())
            title = v.shorten(text, 255) or "Untitled episode"
            self.note(where, "title", f"the item has no title; imported as '{title}'")
        fields: dict[str, Any] = {
            "title": title,
            "subtitle": _text(_first(kids, "itunes:subtitle")),
            "description": description,
            "episode_type": _text(_first(kids, "itunes:episodeType")).lower(),
            "explicit": self.explicit(kids, where),
            "link": self.url(link),
            "block": self.flag(kids, "itunes:block", where) or None,  # only Yes counts
            **self.numbering(kids, where),
            **self.shared(kids, where),
            **self.tagged(kids, _ITEM_LISTS, {}, where),
            "alternate_enclosures": [
                self.alternate(alt, where) for alt in kids.get("podcast:alternateEnclosure", [])
            ],
        }
        live_item = _name(el.tag) == "podcast:liveItem"
        if live_item:
            fields["live"] = self.shape(el, where)
            if (live_value := _first(kids, "podcast:liveValue")) is not None:
                fields["live"]["value"] = self.shape(live_value, where)
        fields = v.checked(
            EpisodeFields, v.clean(fields), where=where, tags=_ITEM_TAGS, problems=self.problems
        )
        if live_item and "live" not in fields:
            # Imported without its live facts it would pass for an ordinary episode.
            self.note(where, "podcast:liveItem", "no usable status and start; item skipped")
            return None
        chapters = _first(kids, "podcast:chapters")
        chapters_url = None if chapters is None else self.url(chapters.get("url"))
        duration = _text(_first(kids, "itunes:duration"))
        return ParsedItem(
            guid=guid,
            fields=fields,
            pub_date=self.lenient(v.parse_date, date, where, "pubDate"),
            enclosure=enclosure,
            duration_s=self.lenient(v.parse_duration, duration, where, "itunes:duration"),
            image_url=self.url(_itunes_image(_first(kids, "itunes:image"))),
            transcripts=self.transcripts(kids, where),
            chapters=None
            if chapters is None or chapters_url is None
            else RemoteFile(chapters_url, _lower(_attr(chapters, "type"))),
        )

    def enclosure(self, kids: Kids, atom: bool, where: str) -> RemoteFile | None:
        if atom:
            found = [el for el in kids.get("atom:link", []) if el.get("rel") == "enclosure"]
        else:
            found = kids.get("enclosure", [])
        if not found:
            return None
        if len(found) > 1:
            self.note(where, "enclosure", "more than one enclosure; kept the first (as Apple does)")
        url = self.url(found[0].get("href" if atom else "url"))
        if url is None:
            self.note(where, "enclosure", "an enclosure without a URL; left out")
            return None
        length = self.lenient(v.parse_int, _attr(found[0], "length"), where, "enclosure")
        kind = _lower(_attr(found[0], "type"))
        return RemoteFile(
            url=url, type=kind, length=None if length is None or length < 0 else length
        )

    def numbering(self, kids: Kids, where: str) -> dict[str, Any]:
        """itunes:season/episode; podcast:season/episode fill in and add their names."""
        values: dict[str, Any] = {}
        for key, name_key, itunes, podcast, attr in (
            ("season", "season_name", "itunes:season", "podcast:season", "name"),
            ("number", "number_display", "itunes:episode", "podcast:episode", "display"),
        ):
            number = self.lenient(v.parse_decimal, _text(_first(kids, itunes)), where, itunes)
            if (el := _first(kids, podcast)) is not None:
                other = self.lenient(v.parse_decimal, _text(el), where, podcast)
                number = other if number is None else number
                if other is not None and other == number:
                    values[name_key] = _attr(el, attr)
                elif other is not None:
                    self.note(
                        where, podcast, f"{other} differs from {itunes} {number}; kept {number}"
                    )
            # number is a Decimal field; a season must be whole (2.5 is reported, not rounded).
            values[key] = number if key == "number" or number is None else float(number)
        return values

    def alternate(self, el: etree._Element, where: str) -> dict[str, Any]:
        values = self.shape(el, where)
        if "lang" not in values and _attr(el, "language"):
            values["lang"] = _attr(el, "language")  # the spec says lang; many write language
        parts = _kids(el)
        values["sources"] = [self.shape(s, where) for s in parts.get("podcast:source", [])]
        if (integrity := _first(parts, "podcast:integrity")) is not None:
            values["integrity"] = self.shape(integrity, where)
        return values

    def transcripts(self, kids: Kids, where: str) -> list[RemoteTranscript]:
        found = []
        for el in kids.get("podcast:transcript", []):
            url, kind = self.url(el.get("url")), _lower(_attr(el, "type"))
            if url is None or kind is None:
                self.note(where, "podcast:transcript", "a transcript needs a url and a type")
                continue
            language = v.normalise_language(el.get("language") or "") or None
            if language and not v.LANGUAGE.match(language):
                self.note(where, "podcast:transcript", f"'{language}' is not a language code")
                language = None
            captions = _lower(_attr(el, "rel")) == "captions"
            found.append(RemoteTranscript(url=url, type=kind, language=language, captions=captions))
        return found


# --- entry point -------------------------------------------------------------------------------


def parse_feed(data: bytes, *, url: str | None = None) -> ParsedFeed:
    """Parse a feed document; ``url`` (where it was fetched from) resolves relative links.

    Raises :class:`FeedParseError` for empty input, non-XML, XML that is no RSS or Atom feed,
    and documents that declare entities. Anything else that is wrong becomes a Problem.
    """
    problems: list[Problem] = []
    root = _load(data, problems)
    name = _name(root.tag) if isinstance(root.tag, str) else ""
    local = name.rpartition("}")[2].rpartition(":")[2]
    if name == "atom:feed":
        channel, atom = root, True
        kids = _kids(root)
        entries = kids.get("atom:entry", [])
    elif local.lower() == "rss":
        found = next(
            (c for c in root if isinstance(c.tag, str) and _name(c.tag) == "channel"), None
        )
        if found is None:
            raise FeedParseError("The document is an <rss> without a <channel>: there is no feed.")
        channel, atom = found, False
        kids = _kids(channel)
        wanted = ("item", "podcast:liveItem")
        entries = [c for c in channel if isinstance(c.tag, str) and _name(c.tag) in wanted]
    elif local.lower() == "html":
        raise FeedParseError("The document is an HTML page, not an RSS or Atom feed.")
    elif local == "RDF":
        raise FeedParseError("RSS 1.0 (RDF) feeds are not supported; only RSS 2.0 and Atom.")
    else:
        raise FeedParseError(f"The document is XML but not a feed (its root is <{local}>).")
    reader = _Reader(problems, url)
    feed = reader.channel(channel, kids, atom)
    seen: set[str] = set()
    for n, entry in enumerate(entries, 1):
        if (item := reader.item(entry, n, atom, seen)) is not None:
            feed.items.append(item)
    return feed
