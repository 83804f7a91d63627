"""The Podcasting 2.0 namespace table: where each podcast:* tag may stand, and its values.

Every ``podcast:*`` element of a feed is checked against the table of STANDARDS.md §3 (allowed
parents, how many per parent, required attributes, empty values, length limits, https links),
then by the value check of its tag, if it has one (``_VALUE_CHECKS``).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable

from lxml import etree  # type: ignore[import-untyped]

from amphora.feed.rules.catalogue import _SETTINGS, _Report
from amphora.feed.rules.reading import (
    _P,
    _POSITIVE_INT,
    _check_date,
    _is_iso8601,
    _is_url,
    _text,
    _where_of,
)

__all__ = ["check_podcast_tags"]

# podcast:* tags: allowed parents, maximum count per parent, required attributes (§3 table).
_ITEM = frozenset({"item", "liveItem"})
_ANY = _ITEM | {"channel"}
_CHANNEL = frozenset({"channel"})
_TAGS: dict[str, tuple[frozenset[str], int | None, tuple[str, ...]]] = {
    "locked": (_CHANNEL, 1, ()),
    "transcript": (_ITEM, None, ("url", "type")),
    "funding": (_ANY, None, ("url",)),
    "chapters": (_ITEM, 1, ("url", "type")),
    "soundbite": (_ITEM, None, ("startTime", "duration")),
    "person": (_ANY, None, ()),
    "location": (_ANY, None, ()),
    "season": (_ITEM, 1, ()),
    "episode": (_ITEM, 1, ()),
    "trailer": (_CHANNEL, None, ("url", "pubdate")),
    "license": (_ANY, 1, ()),
    "alternateEnclosure": (_ITEM, None, ("type",)),
    "source": (frozenset({"alternateEnclosure"}), None, ("uri",)),
    "integrity": (frozenset({"alternateEnclosure"}), 1, ("type", "value")),
    "guid": (_CHANNEL, 1, ()),
    "medium": (_CHANNEL, 1, ()),
    "liveItem": (_CHANNEL, None, ("status", "start")),
    "liveValue": (frozenset({"liveItem"}), 1, ("uri", "protocol")),
    "contentLink": (_ITEM, None, ("href",)),
    "value": (_ANY, None, ("type", "method")),
    "valueRecipient": (frozenset({"value", "valueTimeSplit"}), None, ("type", "address", "split")),
    "valueTimeSplit": (frozenset({"value"}), None, ("startTime", "duration")),
    "socialInteract": (_ANY, None, ("protocol",)),
    "block": (_CHANNEL, None, ()),
    "txt": (_ANY, None, ()),
    "remoteItem": (_CHANNEL | {"podroll", "valueTimeSplit", "publisher"}, None, ("feedGuid",)),
    "podroll": (_CHANNEL, 1, ()),
    "updateFrequency": (_CHANNEL, 1, ()),
    "podping": (_CHANNEL, 1, ("usesPodping",)),
    "publisher": (_CHANNEL, 1, ()),
    "chat": (_ANY, 1, ("server", "protocol")),
    "image": (_ANY, None, ("href",)),
    "images": (_ANY, 1, ("srcset",)),
}
# Tags whose node value may not be empty.
_NEEDS_TEXT = frozenset(
    [
        "locked",
        "person",
        "location",
        "season",
        "episode",
        "license",
        "guid",
        "medium",
        "txt",
        "updateFrequency",
        "block",
        "contentLink",
        "trailer",
    ]
)
# Length limits (characters): (tag, attribute or None for the node value) → limit.
_LIMITS: dict[tuple[str, str | None], int] = {
    **{
        (tag, None): 128
        for tag in ["funding", "soundbite", "person", "location", "trailer", "license"]
    },
    ("updateFrequency", None): 128,
    ("txt", None): 4000,
    ("txt", "purpose"): 128,
    ("episode", "display"): 32,
    ("image", "purpose"): 128,
    ("alternateEnclosure", "title"): 32,
    ("alternateEnclosure", "rel"): 32,
}
# Links to web pages, which the namespace wants on https.
_HYPERTEXT = {
    "funding": "url",
    "person": "href",
    "license": "url",
    "contentLink": "href",
    "socialInteract": "accountUrl",
}
_MEDIUMS = frozenset(
    [
        base + suffix
        for base in [
            "podcast",
            "music",
            "video",
            "film",
            "audiobook",
            "newsletter",
            "blog",
            "publisher",
            "course",
        ]
        for suffix in ("", "L")
    ]
    + ["mixed"]
)
_TRANSCRIPT_TYPES = frozenset(
    ["text/plain", "text/html", "text/vtt", "application/json", "application/x-subrip"]
)
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-([0-9a-f])[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$")
_NON_NEGATIVE_INT = re.compile(r"^[0-9]+$")
_NON_NEGATIVE_DECIMAL = re.compile(r"^[0-9]+(\.[0-9]+)?$")
_GEO = re.compile(r"^geo:-?\d+(\.\d+)?,-?\d+(\.\d+)?(,-?\d+(\.\d+)?)?(;.*)?$")
_OSM = re.compile(r"^[NWR]\d+(#\d+)?$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_ASPECT = re.compile(r"^\d+/\d+$")
_SLUG = re.compile(r"^[a-z0-9][a-z0-9.+_-]*$")


# --- Podcasting 2.0 -----------------------------------------------------------------------------


def check_podcast_tags(
    ch: etree._Element, wheres: dict[etree._Element, str], report: _Report
) -> None:
    """Every podcast:* element under the channel, against the table and its value check."""
    counts: Counter[tuple[etree._Element, str]] = Counter()
    for el in ch.iter(_P + "*"):
        tag = etree.QName(el).localname
        parent = el.getparent()
        parent_name = "channel" if parent is ch else etree.QName(parent).localname
        where = _where_of(el, wheres)
        spec = _TAGS.get(tag)
        if spec is None:
            report.add(where, "podcast.unknown_tag", tag=tag)
            continue
        parents, max_count, required = spec
        if parent_name not in parents:
            allowed = " or ".join(sorted(parents))
            report.add(where, "podcast.misplaced", tag=tag, parent=parent_name, allowed=allowed)
        counts[(parent, tag)] += 1
        if max_count is not None and counts[(parent, tag)] == max_count + 1:
            report.add(where, "podcast.too_many", tag=tag, parent=parent_name)
        for name in required:
            if not (el.get(name) or "").strip():
                report.add(where, "podcast.missing_attribute", tag=tag, attr=name)
        if tag in _NEEDS_TEXT and not _text(el):
            report.add(where, "podcast.empty", tag=tag)
        for (limited, attr), limit in _LIMITS.items():
            value = _text(el) if attr is None else (el.get(attr) or "")
            if limited == tag and len(value) > limit:
                what = attr or "text"
                report.add(
                    where, "podcast.too_long", what=what, tag=tag, length=len(value), limit=limit
                )
        link_attr = _HYPERTEXT.get(tag)
        link = el.get(link_attr) if link_attr else None
        if link and not _is_url(link, https_only=True):
            report.add(where, "podcast.not_https", attr=link_attr, tag=tag, value=link)
        check = _VALUE_CHECKS.get(tag)
        if check is not None:
            check(el, where, report)


def _check_locked(el: etree._Element, where: str, report: _Report) -> None:
    if _text(el) and _text(el) not in ("yes", "no"):
        report.bad(
            where, "locked", f"is {_text(el)!r}, not yes or no", "Set the import lock again."
        )


def _check_guid(el: etree._Element, where: str, report: _Report) -> None:
    match = _UUID.match(_text(el).lower())
    if _text(el) and not match:
        report.bad(
            where, "guid", f"{_text(el)!r} is not a UUID", "Keep the guid the show was given."
        )
    elif match and match.group(1) != "5":
        report.add(where, "podcast.guid_version")


def _check_medium(el: etree._Element, where: str, report: _Report) -> None:
    if _text(el) and _text(el) not in _MEDIUMS:
        fix = f"Choose the medium (podcast, music, video, audiobook…) {_SETTINGS}."
        report.bad(where, "medium", f"{_text(el)!r} is not a medium of the namespace", fix)


def _check_transcript(el: etree._Element, where: str, report: _Report) -> None:
    if el.get("type") and el.get("type") not in _TRANSCRIPT_TYPES:
        report.add(where, "podcast.transcript_type", value=el.get("type"))
    if el.get("rel") not in (None, "captions"):
        report.bad(where, "transcript", "rel may only be captions", "Remove the rel value.")


def _check_chapters(el: etree._Element, where: str, report: _Report) -> None:
    if el.get("type") and el.get("type") != "application/json+chapters":
        report.add(where, "podcast.chapters_type", value=el.get("type"))


def _check_soundbite(el: etree._Element, where: str, report: _Report) -> None:
    start, duration = el.get("startTime"), el.get("duration")
    if start and not _NON_NEGATIVE_DECIMAL.match(start):
        report.bad(
            where, "soundbite", f"startTime {start!r} is not seconds", "Set the start again."
        )
    if duration and (not _NON_NEGATIVE_DECIMAL.match(duration) or float(duration) <= 0):
        what = f"duration {duration!r} is not a positive number of seconds"
        report.bad(where, "soundbite", what, "Set the soundbite's length again.")


def _check_location(el: etree._Element, where: str, report: _Report) -> None:
    for attr, pattern, example in (
        ("geo", _GEO, "geo:47.37,8.54"),
        ("osm", _OSM, "R1682248"),
        ("country", _COUNTRY, "CH"),
    ):
        value = el.get(attr)
        if value is not None and not pattern.match(value):
            what = f"{attr} {value!r} is not valid (like {example})"
            report.bad(where, "location", what, "Pick the location again in the settings.")
    if el.get("rel") not in (None, "subject", "creator"):
        report.bad(where, "location", "rel must be subject or creator", "Pick the location again.")


def _check_season(el: etree._Element, where: str, report: _Report) -> None:
    if _text(el) and not _NON_NEGATIVE_INT.match(_text(el)):
        report.bad(where, "season", f"{_text(el)!r} is not a whole number", "Fix the season.")


def _check_episode(el: etree._Element, where: str, report: _Report) -> None:
    if _text(el) and not _NON_NEGATIVE_DECIMAL.match(_text(el)):
        report.bad(where, "episode", f"{_text(el)!r} is not a number", "Fix the episode number.")


def _check_trailer(el: etree._Element, where: str, report: _Report) -> None:
    if el.get("pubdate"):
        _check_date(el.get("pubdate") or "", "trailer pubdate", where, report)
    for attr in ("length", "season"):
        value = el.get(attr)
        if value is not None and not _NON_NEGATIVE_INT.match(value):
            report.bad(where, "trailer", f"{attr} {value!r} is not a whole number", "Fix it.")


def _check_license(el: etree._Element, where: str, report: _Report) -> None:
    # SPDX identifiers are slugs (cc-by-4.0); anything else is a custom licence, which needs
    # the address of its text.
    if _text(el) and not _SLUG.match(_text(el).lower()) and not el.get("url"):
        fix = "Add the address of the licence text, or choose a standard licence."
        report.bad(where, "license", "names a custom licence without a url", fix)


def _check_alternate_enclosure(el: etree._Element, where: str, report: _Report) -> None:
    if el.find(_P + "source") is None:
        what = "has no podcast:source (at least one is required)"
        report.bad(where, "alternateEnclosure", what, "Give every alternate version a file URL.")
    for attr, pattern in (
        ("length", _NON_NEGATIVE_INT),
        ("height", _NON_NEGATIVE_INT),
        ("bitrate", _NON_NEGATIVE_DECIMAL),
    ):
        value = el.get(attr)
        if value is not None and not pattern.match(value):
            report.bad(where, "alternateEnclosure", f"{attr} {value!r} is not a number", "Fix it.")
    if el.get("default") not in (None, "true", "false"):
        report.bad(where, "alternateEnclosure", "default must be true or false", "Fix it.")


def _check_integrity(el: etree._Element, where: str, report: _Report) -> None:
    if el.get("type") and el.get("type") not in ("sri", "pgp-signature"):
        report.bad(where, "integrity", "type must be sri or pgp-signature", "Fix the type.")


def _check_live_item(el: etree._Element, where: str, report: _Report) -> None:
    status = el.get("status")
    if status and status not in ("pending", "live", "ended"):
        what = f"status {status!r} is not pending, live or ended"
        report.bad(where, "liveItem", what, "Set the live status again.")
    for attr in ("start", "end"):
        value = el.get(attr)
        if value and not _is_iso8601(value):
            what = f"{attr} {value!r} is not an ISO 8601 date"
            report.bad(where, "liveItem", what, "Set the stream's times again.")
    if el.find(_P + "contentLink") is None:
        report.add(where, "live.no_content_link")
    if not _text(el.find("title")) or not _text(el.find("guid")):
        report.add(where, "live.no_title_or_guid")
    if el.find("enclosure") is None:
        report.add(where, "live.no_enclosure")


def _check_value(el: etree._Element, where: str, report: _Report) -> None:
    recipients = el.findall(_P + "valueRecipient")
    if not recipients:
        report.bad(where, "value", "has no podcast:valueRecipient", "Add at least one recipient.")
        return
    if not all(_NON_NEGATIVE_INT.match(r.get("split") or "") for r in recipients):
        report.bad(where, "value", "has a split that is not a whole number", "Fix the splits.")
    elif sum(int(r.get("split") or 0) for r in recipients if r.get("fee") != "true") <= 0:
        what = "splits give nothing to the recipients who are not fees"
        report.bad(where, "value", what, "Give at least one recipient a share above zero.")
    if any(r.get("fee") not in (None, "true", "false") for r in recipients):
        report.bad(where, "value", "recipient fee must be true or false", "Fix the recipient.")


def _check_social_interact(el: etree._Element, where: str, report: _Report) -> None:
    if el.get("protocol") != "disabled" and not el.get("uri"):
        report.bad(where, "socialInteract", "needs a uri", "Add the address of the root post.")
    priority = el.get("priority")
    if priority is not None and not _NON_NEGATIVE_INT.match(priority):
        report.bad(where, "socialInteract", "priority must be a whole number", "Fix it.")


def _check_block(el: etree._Element, where: str, report: _Report) -> None:
    if _text(el) and _text(el) not in ("yes", "no"):
        report.bad(where, "block", f"is {_text(el)!r}, not yes or no", "Set the blocks again.")
    if el.get("id") is not None and not _SLUG.match(el.get("id") or ""):
        report.bad(where, "block", "id is not a service slug", "Choose the service again.")


def _check_podroll(el: etree._Element, where: str, report: _Report) -> None:
    if el.find(_P + "remoteItem") is None:
        fix = "Add at least one recommended show, or remove the podroll."
        report.bad(where, "podroll", "lists no podcast:remoteItem", fix)


def _check_update_frequency(el: etree._Element, where: str, report: _Report) -> None:
    if el.get("complete") not in (None, "true", "false"):
        report.bad(where, "updateFrequency", "complete must be true or false", "Fix it.")
    if el.get("dtstart") and not _is_iso8601(el.get("dtstart") or ""):
        report.bad(where, "updateFrequency", "dtstart is not an ISO 8601 date", "Fix it.")


def _check_podping(el: etree._Element, where: str, report: _Report) -> None:
    if el.get("usesPodping") not in (None, "", "true", "false"):
        report.bad(where, "podping", "usesPodping must be true or false", "Fix it.")


def _check_publisher(el: etree._Element, where: str, report: _Report) -> None:
    items = el.findall(_P + "remoteItem")
    if len(items) != 1 or items[0].get("medium") != "publisher":
        what = 'needs exactly one podcast:remoteItem with medium="publisher"'
        report.bad(where, "publisher", what, f"Choose the publisher feed again {_SETTINGS}.")


def _check_remote_item(el: etree._Element, where: str, report: _Report) -> None:
    medium = el.get("medium")
    if medium is not None and medium not in _MEDIUMS:
        report.bad(where, "remoteItem", f"medium {medium!r} is unknown", "Fix the medium.")


def _check_image(el: etree._Element, where: str, report: _Report) -> None:
    if el.get("aspect-ratio") is not None and not _ASPECT.match(el.get("aspect-ratio") or ""):
        report.bad(where, "image", "aspect-ratio is not like 16/9", "Fix the aspect ratio.")
    for attr in ("width", "height"):
        value = el.get(attr)
        if value is not None and not _POSITIVE_INT.match(value):
            report.bad(where, "image", f"{attr} is not a whole number of pixels", "Fix it.")


def _check_images(el: etree._Element, where: str, report: _Report) -> None:
    report.add(where, "podcast.deprecated_images")


def _check_value_time_split(el: etree._Element, where: str, report: _Report) -> None:
    for attr in ("startTime", "duration", "remoteStartTime", "remotePercentage"):
        value = el.get(attr)
        if value is not None and not _NON_NEGATIVE_DECIMAL.match(value):
            report.bad(where, "valueTimeSplit", f"{attr} is not a number", "Fix it.")


_VALUE_CHECKS: dict[str, Callable[[etree._Element, str, _Report], None]] = {
    "locked": _check_locked,
    "guid": _check_guid,
    "medium": _check_medium,
    "transcript": _check_transcript,
    "chapters": _check_chapters,
    "soundbite": _check_soundbite,
    "location": _check_location,
    "season": _check_season,
    "episode": _check_episode,
    "trailer": _check_trailer,
    "license": _check_license,
    "alternateEnclosure": _check_alternate_enclosure,
    "integrity": _check_integrity,
    "liveItem": _check_live_item,
    "value": _check_value,
    "socialInteract": _check_social_interact,
    "block": _check_block,
    "podroll": _check_podroll,
    "updateFrequency": _check_update_frequency,
    "podping": _check_podping,
    "publisher": _check_publisher,
    "remoteItem": _check_remote_item,
    "image": _check_image,
    "images": _check_images,
    "valueTimeSplit": _check_value_time_split,
}
