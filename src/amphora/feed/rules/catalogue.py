"""The catalogue of every problem code the feed checker can report, and the report it fills.

``RULES`` maps each code to its severity, message and hint (``str.format`` templates filled
from the finding); ``_Report`` turns a code and its values into a :class:`Problem`. The checks
live in :mod:`.apple` and :mod:`.namespace`; :func:`amphora.feed.rules.check_feed` runs them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["RULES", "Problem", "Rule", "Severity"]

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Problem:
    code: str
    severity: Severity
    message: str
    hint: str
    where: str  # "channel" or "item <guid>"


@dataclass(frozen=True, slots=True)
class Rule:
    severity: Severity
    message: str  # str.format templates, filled from the finding
    hint: str


def _e(message: str, hint: str) -> Rule:
    return Rule("error", message, hint)


def _w(message: str, hint: str) -> Rule:
    return Rule("warning", message, hint)


_SETTINGS = "in the show settings"
RULES: dict[str, Rule] = {
    # the document
    "feed.not_xml": _e(
        "The feed is not valid XML: {detail}.", "Rebuild the feed; fix imports at their source."
    ),
    "feed.not_rss": _e(
        "The document is not an RSS 2.0 feed with a <channel>.",
        'Podcast apps need <rss version="2.0"><channel>…</channel></rss>.',
    ),
    "feed.namespace_uri": _e(
        "The {prefix} namespace is declared as {found!r}; apps only know {uri!r} (case matters).",
        'Declare xmlns:{prefix}="{uri}" exactly.',
    ),
    "date.bad": _e(
        "The {label} {value!r} {problem}.",
        "Set the date again; feeds write dates as Sat, 15 Jun 2019 10:00:00 +0000.",
    ),
    "apple.too_long": _w(
        "{name} is {length} characters; Apple cuts values after 255.",
        "Shorten the {name} to 255 characters.",
    ),
    "apple.surrounding_spaces": _w(
        "The value of {name} starts or ends with spaces.", "Remove the spaces around the text."
    ),
    # channel (Apple)
    "channel.no_title": _e("The show has no title.", f"Give the show a title {_SETTINGS}."),
    "channel.no_description": _e(
        "The show has no description.", f"Write a show description {_SETTINGS}."
    ),
    "channel.description_too_long": _e(
        "The show description is {size} bytes; Apple allows 4000.",
        "Shorten the show description (accented letters and emoji count as several bytes).",
    ),
    "channel.no_language": _e("The show has no language.", f"Choose its language {_SETTINGS}."),
    "channel.bad_language": _e(
        "The language {value!r} is not an ISO 639 code (like en or en-us).",
        f"Choose the show's language from the list {_SETTINGS}.",
    ),
    "channel.no_link": _w("The show has no website link.", f"Add the show's website {_SETTINGS}."),
    "channel.no_image": _e(
        "The show has no cover art.",
        f"Upload square cover art (1400 to 3000 px, JPEG or PNG) {_SETTINGS}.",
    ),
    "channel.no_category": _e(
        "The show has no category.",
        f"Choose a category {_SETTINGS} (Apple lists only the first one).",
    ),
    "channel.unknown_category": _e(
        "{value!r} is not one of Apple's categories (spelling and capitals must match).",
        f"Choose the category again from the list {_SETTINGS}.",
    ),
    "channel.unknown_subcategory": _e(
        "{value!r} is not a subcategory of {parent!r} at Apple.",
        f"Choose the subcategory again from the list {_SETTINGS}.",
    ),
    "channel.no_explicit": _e(
        "The feed does not say whether the show is explicit.",
        f"Set the explicit-content switch {_SETTINGS}.",
    ),
    "channel.bad_explicit": _e(
        "itunes:explicit is {value!r}; Apple accepts only true or false.",
        f"Set the explicit-content switch {_SETTINGS} again.",
    ),
    "channel.bad_type": _e(
        "The show type {value!r} is neither episodic nor serial.",
        f"Choose episodic (newest first) or serial (oldest first) {_SETTINGS}.",
    ),
    "channel.no_author": _w("The show has no author.", f"Fill in the author {_SETTINGS}."),
    "channel.no_owner_email": _w(
        "The feed has no owner email; directories use it to confirm you own the show.",
        f"Add an owner name and email {_SETTINGS}.",
    ),
    "channel.yes_only": _w(
        "{name} is {value!r}; only the value Yes has an effect.",
        "Leave {name} out unless it should say Yes.",
    ),
    "channel.bad_new_feed_url": _e(
        "The new feed address {value!r} is not a web address.",
        "Enter the full new feed URL, starting with https://.",
    ),
    # channel (PSP-1)
    "channel.self_link": _e(
        'The feed has {count} atom:link rel="self" with a web address; it needs exactly one.',
        "The feed must name its own address once; check the server's base URL setting.",
    ),
    "channel.no_locked": _w(
        "The feed does not say whether other hosts may import it (podcast:locked).",
        f"Choose whether to lock the show against imports {_SETTINGS}.",
    ),
    "channel.no_podcast_guid": _w(
        "The show has no podcast:guid, the identifier that follows it between hosts.",
        "Amphora assigns one when a show is created; re-save the show settings.",
    ),
    # artwork (channel and item)
    "image.bad_url": _e(
        "The {subject} artwork address {value!r} is not a web address.", "Upload the artwork again."
    ),
    "image.url_not_ascii": _e(
        "The {subject} artwork address contains non-ASCII characters, which Apple refuses.",
        "Rename the image file using only plain letters, digits, - and _.",
    ),
    "image.extension": _e(
        "The {subject} artwork must be a .jpg, .jpeg or .png file: {value!r}.",
        "Upload the artwork as JPEG or PNG.",
    ),
    "image.not_https": _w(
        "The {subject} artwork is served over plain http.",
        "Serve artwork over https (Amphora does when its base URL is https).",
    ),
    # items (Apple)
    "item.no_title": _e("The episode has no title.", "Give the episode a title."),
    "item.no_guid": _e(
        "The episode has no guid, so apps cannot recognise it after an edit.",
        "Re-save the episode; Amphora assigns a permanent guid.",
    ),
    "item.duplicate_guid": _e(
        "{count} episodes share the guid {value!r}; apps then show only one of them.",
        "Each episode needs its own guid; re-import the show or ask the admin to repair it.",
    ),
    "item.no_enclosure": _e(
        "The episode has no media file.", "Upload the episode's audio or video."
    ),
    "item.bad_enclosure_url": _e(
        "The media address {value!r} is not a web address.", "Upload the media again."
    ),
    "item.enclosure_url_not_ascii": _e(
        "The media address contains non-ASCII characters, which Apple refuses.",
        "Rename the file using only plain letters, digits, - and _.",
    ),
    "item.bad_enclosure_length": _e(
        "The media length {value!r} is not a file size in bytes above zero.",
        "Upload the media again so its size is recorded.",
    ),
    "item.bad_enclosure_type": _e(
        "The media type {value!r} is not one Apple accepts (MP3, M4A, MP4, MOV, M4V, PDF).",
        "Convert the episode to MP3 or M4A (audio) or MP4 (video) and upload it again.",
    ),
    "item.enclosure_extension": _e(
        "The media file name does not end in {extensions} as its type {value} requires.",
        "Keep the real file extension in the media URL (also behind tracking prefixes).",
    ),
    "item.duplicate_enclosure": _e(
        "{count} episodes use the same media file {value!r}.",
        "Upload a separate media file for each episode.",
    ),
    "item.no_pub_date": _w(
        "The episode has no publication date.", "Publish the episode so apps can sort it."
    ),
    "item.description_too_long": _e(
        "The episode description is {size} bytes; Apple allows 4000.",
        "Shorten the show notes, or rebuild the feed so Amphora trims the summary.",
    ),
    "item.bad_duration": _w(
        "The duration {value!r} is not a number of seconds.",
        "Re-upload the media so its duration is measured.",
    ),
    "item.bad_explicit": _e(
        "itunes:explicit is {value!r}; Apple accepts only true or false.",
        "Set the episode's explicit-content switch again.",
    ),
    "item.bad_episode_type": _e(
        "The episode type {value!r} is not full, trailer or bonus.",
        "Choose the episode type again in the episode settings.",
    ),
    "item.bad_number": _e(
        "The {label} {value!r} is not a whole number above zero.",
        "Apple needs whole numbers from 1 up; change the {label}.",
    ),
    "item.serial_no_episode": _e(
        "The show is serial, so every episode needs a whole episode number.",
        "Give the episode a whole episode number, or make the show episodic.",
    ),
    "item.yes_only": _w(
        "itunes:block is {value!r}; only the value Yes has an effect.",
        "Leave itunes:block out unless it should say Yes.",
    ),
    "item.no_transcript": _w(
        "The episode has no transcript (recommended by PSP-1, and for accessibility).",
        "Upload or generate a transcript for the episode.",
    ),
    # Podcasting 2.0, every tag
    "podcast.unknown_tag": _w(
        "podcast:{tag} is not a tag Amphora knows from the namespace.",
        "Check the spelling (tags are case-sensitive) or remove it.",
    ),
    "podcast.misplaced": _e(
        "podcast:{tag} is not allowed inside {parent}.", "Move podcast:{tag} into {allowed}."
    ),
    "podcast.too_many": _e(
        "podcast:{tag} may appear only once in {parent}.", "Keep a single podcast:{tag}."
    ),
    "podcast.missing_attribute": _e(
        "podcast:{tag} lacks its required {attr!r} attribute.",
        "Fill in the {attr} of every {tag} entry in the settings.",
    ),
    "podcast.empty": _e("podcast:{tag} has no value.", "Fill in the {tag} or remove the entry."),
    "podcast.too_long": _w(
        "The {what} of podcast:{tag} is {length} characters; apps may cut it after {limit}.",
        "Shorten the {what} to {limit} characters.",
    ),
    "podcast.not_https": _w(
        "The {attr} of podcast:{tag} ({value!r}) is not an https:// address.",
        "Use the https:// address of the page.",
    ),
    "podcast.guid_version": _w(
        "podcast:guid is a UUID, but not the version 5 UUID the namespace specifies.",
        "Keep it if the show already uses it elsewhere; new shows get a UUIDv5.",
    ),
    "podcast.transcript_type": _w(
        "The transcript type {value!r} is not one apps know "
        "(text/vtt, application/x-subrip, application/json, text/html, text/plain).",
        "Upload the transcript as WebVTT, SRT, JSON or HTML.",
    ),
    "podcast.chapters_type": _w(
        "The chapters type is {value!r}, not application/json+chapters.",
        "Let Amphora serve the chapters file (JSON chapters).",
    ),
    "podcast.deprecated_images": _w(
        "podcast:images is deprecated.", "Use one podcast:image per image instead."
    ),
    "live.no_content_link": _e(
        "The live item has no podcast:contentLink: apps that cannot play the stream have "
        "nowhere to send listeners.",
        "Add a link to where the stream can be watched or heard (YouTube, your site…).",
    ),
    "live.no_title_or_guid": _e(
        "The live item needs a title and a guid.", "Give the live episode a title."
    ),
    "live.no_enclosure": _w(
        "The live item has no stream enclosure; most apps skip it.",
        "Add the stream address to the live episode.",
    ),
}


class _Report:
    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, where: str, code: str, **values: Any) -> None:
        rule = RULES[code]
        self.problems.append(
            Problem(
                code,
                rule.severity,
                rule.message.format(**values),
                rule.hint.format(**values),
                where,
            )
        )

    def bad(self, where: str, tag: str, what: str, fix: str) -> None:
        """An invalid value of podcast:<tag> (code ``podcast.bad_<tag>``, always an error)."""
        self.problems.append(
            Problem(f"podcast.bad_{tag}", "error", f"podcast:{tag} {what}.", fix, where)
        )
