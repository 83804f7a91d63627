"""Companion files an episode carries: transcripts (VTT, SRT, JSON, HTML, text) and chapters.

Uploaded files are checked here before they are stored and advertised in the feed
(``<podcast:transcript>``, ``<podcast:chapters>``). Transcripts are recognised by their content
first — the declared content type and the file name only break ties — and come back as
normalised UTF-8 (no BOM, ``\\n`` line ends; HTML sanitised). Chapters follow the Podcasting 2.0
JSON chapters format and come back as a normalised document ready to serve as
``application/json+chapters``. Every refusal is a :class:`CompanionError` whose message names
the line, cue, segment or chapter at fault.
"""

from __future__ import annotations

import codecs
import copy
import itertools
import json
import math
import posixpath
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeGuard
from urllib.parse import urlsplit

from amphora.kit.errors import AmphoraError
from amphora.kit.html import html_to_text, sanitize_html

__all__ = [
    "CHAPTERS_CONTENT_TYPE",
    "CHAPTERS_VERSION",
    "TRANSCRIPT_TYPES",
    "Chapter",
    "CompanionError",
    "ValidTranscript",
    "chapters_from_id3",
    "detect_transcript_type",
    "validate_chapters",
    "validate_transcript",
]

TRANSCRIPT_TYPES: dict[str, str] = {
    "text/vtt": "vtt",
    "application/x-subrip": "srt",
    "application/json": "json",
    "text/html": "html",
    "text/plain": "txt",
}
CHAPTERS_VERSION = "1.2.0"
CHAPTERS_CONTENT_TYPE = "application/json+chapters"
MAX_CHAPTER_TITLE = 1000

VTT, SRT, JSON, HTML, TEXT = (
    "text/vtt",
    "application/x-subrip",
    "application/json",
    "text/html",
    "text/plain",
)

# Other names seen in the wild for the supported types.
_TYPE_ALIASES: dict[str, str] = {
    "application/srt": SRT,
    "application/x-srt": SRT,
    "text/srt": SRT,
    "text/x-srt": SRT,
    "text/x-subrip": SRT,
    "text/json": JSON,
    "application/transcript+json": JSON,
    "application/xhtml+xml": HTML,
}
# Declarations that say nothing about the content.
_GENERIC_TYPES = frozenset({"application/octet-stream", "binary/octet-stream"})
_EXTENSIONS: dict[str, str] = {
    ".vtt": VTT,
    ".webvtt": VTT,
    ".srt": SRT,
    ".json": JSON,
    ".html": HTML,
    ".htm": HTML,
    ".txt": TEXT,
}


class CompanionError(AmphoraError):
    """A transcript or chapters file was refused.

    ``code`` is one of ``invalid_transcript``, ``invalid_chapters`` or
    ``unsupported_transcript_type``; ``message`` says what is wrong and where.
    """

    status_code = 422
    code = "invalid_companion"
    message = "The file could not be used."

    def __init__(self, code: str, message: str) -> None:
        status = 415 if code == "unsupported_transcript_type" else 422
        super().__init__(message, code=code, status_code=status)


def _transcript_error(message: str) -> CompanionError:
    return CompanionError("invalid_transcript", message)


def _chapters_error(message: str) -> CompanionError:
    return CompanionError("invalid_chapters", message)


@dataclass(frozen=True)
class ValidTranscript:
    """A transcript that passed validation.

    ``data`` is the normalised UTF-8 form to store. ``cue_count`` is the number of cues (VTT,
    SRT) or segments (JSON); for HTML and plain text it is the number of non-empty text lines.
    """

    content_type: str
    extension: str
    data: bytes
    cue_count: int


# --- decoding -------------------------------------------------------------------------------


def _strip_bom_lenient(data: bytes) -> str:
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8) :].decode("utf-8", errors="replace")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16", errors="replace")
    return data.decode("utf-8", errors="replace")


def _decode(data: bytes, error: Callable[[str], CompanionError]) -> str:
    """Decode UTF-8 (or BOM-marked UTF-16), strip the BOM and normalise line ends to ``\\n``."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise error(f"not valid UTF-16 text (byte {exc.start})") from None
    else:
        if data.startswith(codecs.BOM_UTF8):
            data = data[len(codecs.BOM_UTF8) :]
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            raise error(f"line {line}: not valid UTF-8 (byte {exc.start})") from None
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    nul = text.find("\x00")
    if nul >= 0:
        raise error(f"line {text.count(chr(10), 0, nul) + 1}: contains a NUL character")
    return text


def _is_text(text: str) -> bool:
    """Whether leniently decoded content looks like text rather than binary data."""
    return "\ufffd" not in text and not any(
        ord(char) < 32 and char not in "\t\n\r\f" for char in text
    )


# --- detection ------------------------------------------------------------------------------

_VTT_HEADER = re.compile(r"WEBVTT(?:[ \t].*)?$")
_SRT_START = re.compile(r"\d+[ \t]*\r?\n[ \t]*\d+:\d{2}:\d{2},\d{1,3}[ \t]*-->")
_CUE_TIMING_LIKE = re.compile(r"^[ \t]*\d+:\d\d(?::\d\d)?([.,])\d+[ \t]*-+>", re.MULTILINE)
_HTML_TAG = re.compile(
    r"<(?:!doctype\s+html|html|head|body|p|div|span|cite|time|br|h[1-6]|ul|ol|li|b|i|strong|em"
    r"|a|table|section|article)\b",
    re.IGNORECASE,
)


def _normalise_declared(declared: str | None) -> str | None:
    if not declared:
        return None
    media_type = declared.split(";", 1)[0].strip().lower()
    return _TYPE_ALIASES.get(media_type, media_type) or None


def _sniff(text: str) -> str | None:
    head = text.lstrip()
    if head.startswith("WEBVTT") and _VTT_HEADER.match(head.split("\n", 1)[0].rstrip("\r")):
        return VTT
    if _SRT_START.match(head):
        return SRT
    if head.startswith("{"):
        try:
            parsed = json.loads(head)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict) and "segments" in parsed:
            return JSON
    if head.startswith("<") and _HTML_TAG.search(head):
        return HTML
    return None


def detect_transcript_type(data: bytes, declared: str | None, filename: str | None) -> str:
    """The transcript's content type, one of :data:`TRANSCRIPT_TYPES`.

    The content decides first (a ``WEBVTT`` header, an SRT cue, a JSON object with
    ``segments``, HTML markup); the declared type and then the file name's extension only
    decide when the content is not conclusive. Content that is JSON or carries cue timings
    keeps that format (so validation can say what is broken); other undeclared text is
    ``text/plain``. Raises ``unsupported_transcript_type`` when nothing fits.
    """
    text = _strip_bom_lenient(data)
    sniffed = _sniff(text)
    if sniffed is not None:
        return sniffed

    media_type = _normalise_declared(declared)
    if media_type in TRANSCRIPT_TYPES:
        return media_type
    if filename:
        by_name = _EXTENSIONS.get(posixpath.splitext(filename.lower())[1])
        if by_name is not None:
            return by_name

    head = text.lstrip()
    if head.startswith(("{", "[")):
        try:
            json.loads(head)
        except ValueError:
            pass
        else:
            return JSON  # JSON, but not a transcript: validation says what is missing
    # Cue timings without the rest of the format: a damaged VTT or SRT file, not plain text.
    timing = _CUE_TIMING_LIKE.search(head)
    if timing is not None:
        return SRT if timing.group(1) == "," else VTT
    undeclared = media_type is None or media_type in _GENERIC_TYPES
    if undeclared and head and _is_text(text):
        return TEXT
    what = declared or filename or "content"
    raise CompanionError(
        "unsupported_transcript_type",
        f"{what!s} is not a supported transcript format "
        "(WebVTT, SRT, Podcasting 2.0 JSON, HTML or plain text)",
    )


# --- transcript formats ---------------------------------------------------------------------

_VTT_TIME = r"(?:(\d{2,}):)?([0-5]\d):([0-5]\d)\.(\d{3})"
_VTT_TIMING = re.compile(rf"{_VTT_TIME}[ \t]+-->[ \t]+{_VTT_TIME}(?:[ \t]+.*)?$")
_SRT_TIME = r"(\d{1,}):([0-5]\d):([0-5]\d),(\d{3})"
_SRT_TIMING = re.compile(rf"{_SRT_TIME}[ \t]+-->[ \t]+{_SRT_TIME}(?:[ \t]+.*)?$")
_TIMING_EXAMPLE = {VTT: "00:00:01.000 --> 00:00:02.500", SRT: "00:00:01,000 --> 00:00:02,500"}


def _seconds(hours: str | None, minutes: str, seconds: str, millis: str) -> float:
    return int(hours or 0) * 3600 + int(minutes) * 60 + int(seconds) + int(millis) / 1000


def _blocks(lines: list[str], first: int = 0) -> list[list[tuple[int, str]]]:
    """Groups of consecutive non-blank lines, each line with its 1-based number."""
    blocks: list[list[tuple[int, str]]] = []
    current: list[tuple[int, str]] = []
    for index in range(first, len(lines)):
        line = lines[index]
        if line.strip():
            current.append((index + 1, line))
        elif current:
            blocks.append(current)
            current = []
    if current:
        blocks.append(current)
    return blocks


def _check_timing(number: int, line: str, pattern: re.Pattern[str], kind: str, where: str) -> None:
    match = pattern.match(line.strip())
    if match is None:
        raise _transcript_error(
            f"line {number}{where}: invalid cue timing {line.strip()!r}, "
            f"expected e.g. {_TIMING_EXAMPLE[kind]!r}"
        )
    groups = match.groups()
    start = _seconds(*groups[:4])
    end = _seconds(*groups[4:])
    if end < start:
        raise _transcript_error(f"line {number}{where}: cue ends before it starts")


def _validate_vtt(text: str) -> int:
    lines = text.split("\n")
    if not _VTT_HEADER.match(lines[0]):
        raise _transcript_error('line 1: a WebVTT file must start with a "WEBVTT" header')
    index = 1
    while index < len(lines) and lines[index].strip():
        if "-->" in lines[index]:
            raise _transcript_error(
                f"line {index + 1}: the header must be followed by a blank line before cues"
            )
        index += 1
    cues = 0
    for block in _blocks(lines, index):
        number, first = block[0]
        if "-->" not in first and re.match(r"(?:NOTE|STYLE|REGION)(?:[ \t]|$)", first):
            continue  # comment, style sheet or region definition
        if "-->" in first:
            timing_at = 0
        elif len(block) > 1 and "-->" in block[1][1]:
            timing_at = 1  # block[0] is the cue identifier
        else:
            raise _transcript_error(
                f"line {number}: expected a cue timing line "
                f"like {_TIMING_EXAMPLE[VTT]!r}, got {first.strip()!r}"
            )
        cues += 1
        timing_number, timing = block[timing_at]
        _check_timing(timing_number, timing, _VTT_TIMING, VTT, f" (cue {cues})")
        for text_number, line in block[timing_at + 1 :]:
            if "-->" in line:
                raise _transcript_error(
                    f"line {text_number} (cue {cues}): cue text must not contain '-->' "
                    "(is a blank line missing between cues?)"
                )
    return cues


def _validate_srt(text: str) -> int:
    cues = 0
    for block in _blocks(text.split("\n")):
        number, first = block[0]
        if not first.strip().isdigit():
            raise _transcript_error(f"line {number}: expected a cue number, got {first.strip()!r}")
        cues += 1
        where = f" (cue {first.strip()})"
        if len(block) < 2:
            raise _transcript_error(f"line {number}{where}: the cue has no timing line")
        timing_number, timing = block[1]
        _check_timing(timing_number, timing, _SRT_TIMING, SRT, where)
    return cues


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _validate_json_transcript(text: str) -> int:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _transcript_error(
            f"line {exc.lineno}, column {exc.colno}: not valid JSON ({exc.msg})"
        ) from None
    if not isinstance(document, dict):
        raise _transcript_error("a JSON transcript must be an object with a 'segments' array")
    if "version" in document and not isinstance(document["version"], str):
        raise _transcript_error("'version' must be a string such as \"1.0.0\"")
    segments = document.get("segments")
    if not isinstance(segments, list):
        raise _transcript_error("a JSON transcript needs a 'segments' array")
    for index, segment in enumerate(segments):
        where = f"segments[{index}]"
        if not isinstance(segment, dict):
            raise _transcript_error(f"{where}: each segment must be an object")
        for key in ("startTime", "endTime"):
            value = segment.get(key)
            if not _is_number(value) or value < 0:
                raise _transcript_error(f"{where}: '{key}' must be a non-negative number")
        if segment["endTime"] < segment["startTime"]:
            raise _transcript_error(f"{where}: 'endTime' is before 'startTime'")
        if not isinstance(segment.get("body"), str):
            raise _transcript_error(f"{where}: 'body' must be a string")
        if "speaker" in segment and not isinstance(segment["speaker"], str):
            raise _transcript_error(f"{where}: 'speaker' must be a string")
    return len(segments)


def _text_lines(text: str) -> int:
    return sum(1 for line in text.split("\n") if line.strip())


def validate_transcript(
    data: bytes,
    *,
    declared: str | None = None,
    filename: str | None = None,
    max_bytes: int = 10 * 1024 * 1024,
) -> ValidTranscript:
    """Check a transcript upload and return its normalised form.

    Raises :class:`CompanionError` with code ``invalid_transcript`` (empty, too large, not
    UTF-8, malformed cue or segment, no cues) or ``unsupported_transcript_type``.
    """
    if not data:
        raise _transcript_error("the transcript is empty")
    if len(data) > max_bytes:
        raise _transcript_error(
            f"the transcript is {len(data)} bytes, more than the {max_bytes} bytes allowed"
        )
    text = _decode(data, _transcript_error)
    if not text.strip():
        raise _transcript_error("the transcript is empty")
    content_type = detect_transcript_type(data, declared, filename)
    text = text.strip() + "\n"

    if content_type == VTT:
        count = _validate_vtt(text)
    elif content_type == SRT:
        count = _validate_srt(text)
    elif content_type == JSON:
        count = _validate_json_transcript(text)
    elif content_type == HTML:
        text = sanitize_html(text)
        count = _text_lines(html_to_text(text))
        if not count:
            raise _transcript_error("the HTML transcript has no text left after sanitising")
    else:
        count = _text_lines(text)
    if content_type in (VTT, SRT, JSON) and count == 0:
        noun = "segments" if content_type == JSON else "cues"
        raise _transcript_error(f"the transcript has no {noun}")
    return ValidTranscript(
        content_type=content_type,
        extension=TRANSCRIPT_TYPES[content_type],
        data=text.encode("utf-8"),
        cue_count=count,
    )


# --- chapters -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Chapter:
    """One chapter, in seconds from the start of the episode."""

    start_time: float
    title: str
    end_time: float | None = None
    img: str | None = None
    url: str | None = None
    toc: bool = True

    def to_json(self) -> dict[str, Any]:
        """The Podcasting 2.0 JSON form (optional fields only when set)."""
        item: dict[str, Any] = {"startTime": self.start_time, "title": self.title}
        if self.end_time is not None:
            item["endTime"] = self.end_time
        if self.img is not None:
            item["img"] = self.img
        if self.url is not None:
            item["url"] = self.url
        if not self.toc:
            item["toc"] = False
        return item

    @classmethod
    def from_json(cls, item: dict[str, Any]) -> Chapter:
        """Read one chapter of a document returned by :func:`validate_chapters`."""
        return cls(
            start_time=item["startTime"],
            title=item.get("title", ""),
            end_time=item.get("endTime"),
            img=item.get("img"),
            url=item.get("url"),
            toc=item.get("toc", True),
        )


def _is_http_url(value: Any) -> bool:
    if not isinstance(value, str) or not value or len(value) > 2048:
        return False
    if any(char.isspace() or ord(char) < 32 for char in value):
        return False
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)


_TOP_LEVEL_STRINGS = ("title", "author", "podcastName", "description", "fileName")


def _load_chapters(data: bytes | str | dict[str, Any]) -> Any:
    if isinstance(data, dict):
        return copy.deepcopy(data)
    if isinstance(data, bytes | bytearray):
        text = _decode(bytes(data), _chapters_error)
    elif isinstance(data, str):
        text = data.lstrip("\ufeff")
    else:
        raise _chapters_error("chapters must be a JSON document")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise _chapters_error(
            f"line {exc.lineno}, column {exc.colno}: not valid JSON ({exc.msg})"
        ) from None


def _check_chapter(index: int, item: Any, duration_s: float | None) -> None:
    where = f"chapters[{index}]"
    if not isinstance(item, dict):
        raise _chapters_error(f"{where}: each chapter must be an object")
    start = item.get("startTime")
    if not _is_number(start) or start < 0:
        raise _chapters_error(f"{where}: 'startTime' must be a non-negative number")
    if duration_s is not None and start >= duration_s:
        raise _chapters_error(
            f"{where}: starts at {start}s, not before the end of the episode ({duration_s}s)"
        )
    if "title" in item:
        title = item["title"]
        if not isinstance(title, str):
            raise _chapters_error(f"{where}: 'title' must be a string")
        if len(title) > MAX_CHAPTER_TITLE:
            raise _chapters_error(f"{where}: 'title' is longer than {MAX_CHAPTER_TITLE} characters")
    if "endTime" in item:
        end = item["endTime"]
        if not _is_number(end) or end < start:
            raise _chapters_error(f"{where}: 'endTime' must be a number not before 'startTime'")
    for key in ("img", "url"):
        if key in item and not _is_http_url(item[key]):
            raise _chapters_error(f"{where}: '{key}' must be an http(s) URL")
    if "toc" in item and not isinstance(item["toc"], bool):
        raise _chapters_error(f"{where}: 'toc' must be true or false")
    if "location" in item:
        location = item["location"]
        if not isinstance(location, dict) or not isinstance(location.get("name"), str):
            raise _chapters_error(f"{where}: 'location' must be an object with a 'name'")
        for key in ("geo", "osm"):
            if key in location and not isinstance(location[key], str):
                raise _chapters_error(f"{where}: 'location.{key}' must be a string")


def validate_chapters(
    data: bytes | str | dict[str, Any], *, duration_s: float | None = None
) -> dict[str, Any]:
    """Check a Podcasting 2.0 JSON chapters document and return it normalised.

    The result has ``version`` "1.2.0", chapters sorted by ``startTime`` and every other
    top-level or per-chapter key kept. Raises :class:`CompanionError` (``invalid_chapters``)
    naming the chapter at fault (by its index in the input).
    """
    document = _load_chapters(data)
    if not isinstance(document, dict):
        raise _chapters_error("a chapters document must be a JSON object")
    version = document.get("version")
    if not isinstance(version, str) or not version.strip():
        raise _chapters_error("a chapters document needs a 'version' string such as \"1.2.0\"")
    chapters = document.get("chapters")
    if not isinstance(chapters, list) or not chapters:
        raise _chapters_error("a chapters document needs a non-empty 'chapters' array")
    for key in _TOP_LEVEL_STRINGS:
        if key in document and not isinstance(document[key], str):
            raise _chapters_error(f"'{key}' must be a string")
    if "waypoints" in document and not isinstance(document["waypoints"], bool):
        raise _chapters_error("'waypoints' must be true or false")

    for index, item in enumerate(chapters):
        _check_chapter(index, item, duration_s)
    ordered = sorted(enumerate(chapters), key=lambda pair: pair[1]["startTime"])
    for (first, before), (second, after) in itertools.pairwise(ordered):
        if before["startTime"] == after["startTime"]:
            low, high = sorted((first, second))
            raise _chapters_error(
                f"chapters[{low}] and chapters[{high}] both start at {after['startTime']}s"
            )

    normalised: dict[str, Any] = {"version": CHAPTERS_VERSION}
    normalised.update(
        (key, value) for key, value in document.items() if key not in ("version", "chapters")
    )
    normalised["chapters"] = [item for _, item in ordered]
    return normalised


def _ms_to_seconds(value: int) -> float:
    return value // 1000 if value % 1000 == 0 else value / 1000


def chapters_from_id3(chapters: Sequence[tuple[int, int | None, str]]) -> dict[str, Any]:
    """Build a chapters document from ID3 ``CHAP`` frames: ``(start_ms, end_ms, title)``.

    End times that are missing or not after the start are left out; titles are trimmed to
    the allowed length. The result went through :func:`validate_chapters`.
    """
    items = [
        Chapter(
            start_time=_ms_to_seconds(start_ms),
            title=title.strip()[:MAX_CHAPTER_TITLE],
            end_time=(_ms_to_seconds(end_ms) if end_ms is not None and end_ms > start_ms else None),
        ).to_json()
        for start_ms, end_ms, title in chapters
    ]
    return validate_chapters({"version": CHAPTERS_VERSION, "chapters": items})
