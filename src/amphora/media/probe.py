"""What a media file really is: MP3, M4A (AAC in MP4) or MP4 video, judged by content only.

Synchronous and blocking (it reads the file); callers run it in a worker thread. The file name
and any declared content type are never consulted.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import mutagen.mp3
import mutagen.mp4
from mutagen import MutagenError

__all__ = ["Chapter", "MediaInfo", "ProbeError", "probe_file", "sniff"]

SNIFF_BYTES = 64 * 1024
_MAX_MOOV_BYTES = 128 * 1024 * 1024
# Share of the audio bytes a Xing/Info/VBRI header declares that may be missing before the file
# counts as truncated.
_TRUNCATION_TOLERANCE = 0.01

# ISO-BMFF major brands of still images (HEIF, AVIF, ...): an ``ftyp`` box, but not media.
_IMAGE_BRANDS = frozenset(
    {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"avif", b"avis"}
)
# Video sample entries that make an MP4 a video. Other "vide" tracks (e.g. the JPEG chapter
# images of enhanced AAC podcasts) do not.
_VIDEO_CODECS = frozenset({b"avc1", b"avc3", b"hvc1", b"hev1", b"mp4v", b"av01"})

# mutagen is only partially typed: its constructors are untyped.
_MP3: Any = mutagen.mp3.MP3
_MP4: Any = mutagen.mp4.MP4

_PARSE_ERRORS = (
    MutagenError,
    struct.error,
    ValueError,
    IndexError,
    KeyError,
    EOFError,
    OverflowError,
)


class ProbeError(Exception):
    """The file is not usable media.

    ``code`` is one of ``empty_file``, ``unsupported_media`` (not MP3/M4A/MP4 by content),
    ``corrupt_media`` (truncated, undecodable or zero duration) and ``too_large`` (over
    ``max_bytes``).
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Chapter:
    start_ms: int
    end_ms: int | None
    title: str


@dataclass(frozen=True)
class MediaInfo:
    kind: str  # "audio" | "video"
    container: str  # "mp3" | "m4a" | "mp4"
    content_type: str  # "audio/mpeg" | "audio/x-m4a" | "video/mp4"
    extension: str  # "mp3" | "m4a" | "mp4"
    duration_s: float
    bitrate: int  # bits per second
    id3_size: int  # bytes of the leading ID3v2 tag(s), header and footer included; 0 if none
    channels: int | None
    sample_rate: int | None
    size: int  # file size in bytes
    chapters: tuple[Chapter, ...]  # from ID3 CHAP frames, sorted by start
    title: str | None  # ID3 TIT2 / MP4 ©nam


# --------------------------------------------------------------------------------------------
# Sniffing


def _id3_tag_size(data: bytes, offset: int = 0) -> int:
    """Size of the ID3v2 tag starting at ``offset`` (header + body + footer), or 0 if none."""
    header = data[offset : offset + 10]
    if len(header) < 10 or header[:3] != b"ID3":
        return 0
    major, revision, flags = header[3], header[4], header[5]
    if major not in (2, 3, 4) or revision == 0xFF or any(b & 0x80 for b in header[6:10]):
        return 0
    body = (header[6] << 21) | (header[7] << 14) | (header[8] << 7) | header[9]
    footer = 10 if major == 4 and flags & 0x10 else 0
    return 10 + body + footer


_MPEG_BITRATES_KBPS = {
    # Layer III only: MPEG-1, then MPEG-2 and 2.5.
    1: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    2: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_MPEG_SAMPLE_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


@dataclass(frozen=True)
class _MpegHeader:
    version_bits: int  # 3: MPEG-1, 2: MPEG-2, 0: MPEG-2.5
    sample_rate: int
    mono: bool
    protected: bool
    frame_length: int


def _mpeg_header(data: bytes, offset: int = 0) -> _MpegHeader | None:
    """A valid MPEG audio Layer III frame header at ``offset``, or None."""
    raw = data[offset : offset + 4]
    if len(raw) < 4:
        return None
    b1, b2, b3 = raw[1], raw[2], raw[3]
    if raw[0] != 0xFF or b1 & 0xE0 != 0xE0:
        return None
    version_bits = (b1 >> 3) & 0x3
    layer_bits = (b1 >> 1) & 0x3
    bitrate_index = b2 >> 4
    rate_index = (b2 >> 2) & 0x3
    if version_bits == 1 or layer_bits != 1:  # reserved version; Layer III only
        return None
    if bitrate_index in (0, 15) or rate_index == 3 or b3 & 0x3 == 2:  # free/bad, reserved emph.
        return None
    bitrate = _MPEG_BITRATES_KBPS[1 if version_bits == 3 else 2][bitrate_index] * 1000
    sample_rate = _MPEG_SAMPLE_RATES[version_bits][rate_index]
    padding = (b2 >> 1) & 0x1
    coefficient = 144 if version_bits == 3 else 72
    return _MpegHeader(
        version_bits=version_bits,
        sample_rate=sample_rate,
        mono=(b3 >> 6) == 3,
        protected=not b1 & 0x1,
        frame_length=coefficient * bitrate // sample_rate + padding,
    )


def _mpeg_starts_at(data: bytes, offset: int) -> bool:
    """A valid Layer III frame at ``offset`` and, when visible, a matching one right after it."""
    first = _mpeg_header(data, offset)
    if first is None:
        return False
    following = offset + first.frame_length
    if following + 4 > len(data):
        return True
    second = _mpeg_header(data, following)
    return (
        second is not None
        and second.version_bits == first.version_bits
        and second.sample_rate == first.sample_rate
    )


def _is_ftyp(head: bytes) -> bool:
    if len(head) < 12 or head[4:8] != b"ftyp":
        return False
    (size,) = struct.unpack(">I", head[:4])
    brand = head[8:12]
    if size != 1 and size < 16:
        return False
    return brand not in _IMAGE_BRANDS and all(32 <= c < 127 for c in brand)


def _skip_zeros(data: bytes, offset: int) -> int:
    while offset < len(data) and data[offset] == 0:
        offset += 1
    return offset


def sniff(head: bytes) -> str | None:
    """``"mp3"``, ``"mp4family"`` or None, from the first bytes of a file (64 KiB are plenty).

    MP3: an MPEG Layer III frame header (checked against the next frame when that is visible),
    possibly after ID3v2 tags; an ID3 tag followed by something else is not audio. When the tag
    runs past ``head``, the answer is a provisional ``"mp3"`` (:func:`probe_file` reads on).
    MP4 family: an ISO-BMFF ``ftyp`` box at the start that is not a still-image brand.
    """
    if _is_ftyp(head):
        return "mp4family"
    offset = 0
    while (size := _id3_tag_size(head, offset)) > 0:
        offset += size
    if offset == 0:
        return "mp3" if _mpeg_starts_at(head, 0) else None
    offset = _skip_zeros(head, offset)
    if offset + 4 > len(head):
        return "mp3"
    return "mp3" if _mpeg_starts_at(head, offset) else None


# --------------------------------------------------------------------------------------------
# Probing


def _unsupported(message: str = "not an MP3, M4A or MP4 file") -> ProbeError:
    return ProbeError("unsupported_media", message)


def _corrupt(message: str) -> ProbeError:
    return ProbeError("corrupt_media", message)


def probe_file(path: Path, *, max_bytes: int | None = None) -> MediaInfo:
    """Identify and measure the media file at ``path``; raise :class:`ProbeError` if unusable.

    ``max_bytes``, when given, is a ceiling on the file size (``too_large`` above it).
    """
    size = path.stat().st_size
    if size == 0:
        raise ProbeError("empty_file", "the file is empty")
    if max_bytes is not None and size > max_bytes:
        raise ProbeError("too_large", f"the file is larger than {max_bytes} bytes")
    with path.open("rb") as f:
        id3_size = 0
        while (tag := _id3_tag_size(f.read(10))) > 0:
            id3_size += tag
            f.seek(id3_size)
        if id3_size > size:
            raise _corrupt("the ID3 tag runs past the end of the file")
        f.seek(id3_size)
        head = f.read(SNIFF_BYTES)
        if id3_size == 0 and _is_ftyp(head):
            return _probe_mp4(path, f, size)
        audio_start = _skip_zeros(head, 0)
        if id3_size > 0 and audio_start + 4 > len(head):
            raise _corrupt("no audio frames after the ID3 tag")
        if not _mpeg_starts_at(head, audio_start if id3_size else 0):
            raise _unsupported()
        return _probe_mp3(path, f, size, id3_size)


def _probe_mp3(path: Path, f: BinaryIO, size: int, id3_size: int) -> MediaInfo:
    try:
        audio = _MP3(path)
        info = audio.info
        duration = float(info.length)
        bitrate = int(info.bitrate)
        channels = int(info.channels)
        sample_rate = int(info.sample_rate)
        layer = int(info.layer)
        sketchy = bool(info.sketchy)
        frame_offset = int(getattr(info, "frame_offset", id3_size))
        tags = audio.tags
        title = _id3_text(tags, "TIT2")
        chapters = _id3_chapters(tags)
    except _PARSE_ERRORS as exc:
        raise _corrupt(f"unreadable MP3: {exc}") from exc
    if layer != 3:
        raise _unsupported("MPEG audio, but not Layer III")
    if sketchy:
        raise _corrupt("no run of valid MP3 frames (truncated?)")
    if not math.isfinite(duration) or duration <= 0:
        raise _corrupt("the MP3 has no duration")
    declared = _declared_mpeg_bytes(f, frame_offset)
    if declared is not None and size - frame_offset < declared * (1 - _TRUNCATION_TOLERANCE):
        raise _corrupt("the MP3 is shorter than its header declares (truncated)")
    if bitrate <= 0:
        bitrate = round((size - id3_size) * 8 / duration)
    return MediaInfo(
        kind="audio",
        container="mp3",
        content_type="audio/mpeg",
        extension="mp3",
        duration_s=duration,
        bitrate=bitrate,
        id3_size=id3_size,
        channels=channels or None,
        sample_rate=sample_rate or None,
        size=size,
        chapters=chapters,
        title=title,
    )


def _declared_mpeg_bytes(f: BinaryIO, frame_offset: int) -> int | None:
    """The stream size a Xing/Info or VBRI header in the first frame declares, if any."""
    f.seek(frame_offset)
    frame = f.read(64)
    header = _mpeg_header(frame)
    if header is None:
        return None
    if header.version_bits == 3:
        side_info = 17 if header.mono else 32
    else:
        side_info = 9 if header.mono else 17
    for start in (4 + side_info, 6 + side_info):
        if frame[start : start + 4] in (b"Xing", b"Info"):
            (flags,) = struct.unpack(">I", frame[start + 4 : start + 8])
            field = start + 8 + (4 if flags & 0x1 else 0)
            if not flags & 0x2 or len(frame) < field + 4:
                return None
            (declared,) = struct.unpack(">I", frame[field : field + 4])
            return int(declared) or None
    if frame[36:40] == b"VBRI" and len(frame) >= 50:
        (declared,) = struct.unpack(">I", frame[46:50])
        return int(declared) or None
    return None


def _id3_text(tags: Any, frame_id: str) -> str | None:
    if tags is None:
        return None
    frame = tags.get(frame_id)
    if frame is None or not frame.text:
        return None
    text = str(frame.text[0]).strip()
    return text or None


def _id3_chapters(tags: Any) -> tuple[Chapter, ...]:
    if tags is None:
        return ()
    chapters = []
    for frame in tags.getall("CHAP"):
        start = int(frame.start_time)
        end = int(frame.end_time)
        titles = frame.sub_frames.getall("TIT2")
        title = str(titles[0].text[0]).strip() if titles and titles[0].text else ""
        end_ms = end if end != 0xFFFFFFFF and end > start else None
        chapters.append(Chapter(start_ms=start, end_ms=end_ms, title=title))
    chapters.sort(key=lambda c: (c.start_ms, c.end_ms if c.end_ms is not None else math.inf))
    return tuple(chapters)


# --------------------------------------------------------------------------------------------
# ISO-BMFF


@dataclass
class _Trak:
    handler: bytes = b""
    timescale: int = 0
    duration: int = 0
    codec: bytes = b""
    max_chunk_offset: int = 0


def _boxes(data: bytes, start: int = 0, end: int | None = None) -> Iterator[tuple[bytes, bytes]]:
    """(type, payload) of the boxes in ``data[start:end]``; ValueError if they do not fit."""
    end = len(data) if end is None else end
    position = start
    while position < end:
        if position + 8 > end:
            raise ValueError("truncated box header")
        size, kind = struct.unpack(">I4s", data[position : position + 8])
        header = 8
        if size == 1:
            if position + 16 > end:
                raise ValueError("truncated box header")
            (size,) = struct.unpack(">Q", data[position + 8 : position + 16])
            header = 16
        elif size == 0:
            size = end - position
        if size < header or position + size > end:
            raise ValueError(f"box {kind!r} does not fit in its parent")
        yield kind, data[position + header : position + size]
        position += size


def _child(data: bytes, kind: bytes) -> bytes | None:
    return next((payload for k, payload in _boxes(data) if k == kind), None)


def _parse_trak(trak: bytes) -> _Trak:
    result = _Trak()
    mdia = _child(trak, b"mdia")
    if mdia is None:
        return result
    hdlr = _child(mdia, b"hdlr")
    if hdlr is not None:
        result.handler = hdlr[8:12]
    mdhd = _child(mdia, b"mdhd")
    if mdhd is not None:
        if mdhd[0] == 1:
            result.timescale, result.duration = struct.unpack(">IQ", mdhd[20:32])
        else:
            result.timescale, result.duration = struct.unpack(">2I", mdhd[12:20])
    minf = _child(mdia, b"minf")
    stbl = _child(minf, b"stbl") if minf is not None else None
    if stbl is None:
        return result
    stsd = _child(stbl, b"stsd")
    if stsd is not None and len(stsd) >= 16:
        result.codec = stsd[12:16]
    for kind, payload in _boxes(stbl):
        if kind in (b"stco", b"co64"):
            (count,) = struct.unpack(">I", payload[4:8])
            fmt = "I" if kind == b"stco" else "Q"
            offsets = struct.unpack(f">{count}{fmt}", payload[8 : 8 + count * struct.calcsize(fmt)])
            result.max_chunk_offset = max(offsets, default=0)
    return result


def _movie_duration(moov: bytes) -> float:
    mvhd = _child(moov, b"mvhd")
    if mvhd is None:
        return 0.0
    if mvhd[0] == 1:
        timescale, duration = struct.unpack(">IQ", mvhd[20:32])
    else:
        timescale, duration = struct.unpack(">2I", mvhd[12:20])
    return float(duration) / timescale if timescale else 0.0


def _read_moov(f: BinaryIO, size: int) -> bytes:
    """The ``moov`` payload, after checking that every top-level box fits in the file."""
    position = 0
    moov: bytes | None = None
    while position < size:
        f.seek(position)
        header = f.read(16)
        if len(header) < 8:
            raise _corrupt("truncated MP4 box header")
        box_size, kind = struct.unpack(">I4s", header[:8])
        header_size = 8
        if box_size == 1:
            if len(header) < 16:
                raise _corrupt("truncated MP4 box header")
            (box_size,) = struct.unpack(">Q", header[8:16])
            header_size = 16
        elif box_size == 0:
            box_size = size - position
        if box_size < header_size:
            raise _corrupt(f"invalid MP4 box size for {kind!r}")
        if position + box_size > size:
            raise _corrupt(f"the MP4 is truncated (box {kind.decode('latin-1')!r} is cut)")
        if kind == b"moov" and moov is None:
            if box_size > _MAX_MOOV_BYTES:
                raise _corrupt("the MP4 movie box is implausibly large")
            f.seek(position + header_size)
            moov = f.read(box_size - header_size)
        position += box_size
    if moov is None:
        raise _corrupt("the MP4 has no movie box (incomplete file?)")
    return moov


def _probe_mp4(path: Path, f: BinaryIO, size: int) -> MediaInfo:
    moov = _read_moov(f, size)
    try:
        traks = [_parse_trak(payload) for kind, payload in _boxes(moov) if kind == b"trak"]
        movie_duration = _movie_duration(moov)
    except (ValueError, struct.error, IndexError) as exc:
        raise _corrupt(f"unreadable MP4 movie box: {exc}") from exc
    if any(t.max_chunk_offset >= size for t in traks):
        raise _corrupt("the MP4 is truncated (media data missing)")
    video = [t for t in traks if t.handler == b"vide" and t.codec in _VIDEO_CODECS]
    audio = [t for t in traks if t.handler == b"soun"]
    if not video and not audio:
        raise _unsupported("an MP4 without an audio or video track")
    try:
        mp4 = _MP4(path)
        info = mp4.info
        audio_length = float(info.length)
        bitrate = int(info.bitrate)
        channels = int(info.channels)
        sample_rate = int(info.sample_rate)
        codec = str(info.codec)
        names = mp4.tags.get("\xa9nam") if mp4.tags is not None else None
        title = (str(names[0]).strip() or None) if names else None
    except _PARSE_ERRORS as exc:
        raise _corrupt(f"unreadable MP4: {exc}") from exc

    if video:
        track_durations = [t.duration / t.timescale for t in traks if t.timescale]
        duration = movie_duration or max(track_durations, default=0.0)
        kind, container, content_type = "video", "mp4", "video/mp4"
        bitrate = round(size * 8 / duration) if duration > 0 else 0
        if not audio:
            channels = sample_rate = 0
    else:
        if not codec.startswith("mp4a"):
            raise _unsupported(f"an MP4 audio track in {codec or 'an unknown codec'}, not AAC")
        duration = audio_length
        kind, container, content_type = "audio", "m4a", "audio/x-m4a"
        if bitrate <= 0 and duration > 0:
            bitrate = round(size * 8 / duration)
    if not math.isfinite(duration) or duration <= 0:
        raise _corrupt("the MP4 has no duration")
    return MediaInfo(
        kind=kind,
        container=container,
        content_type=content_type,
        extension=container,
        duration_s=duration,
        bitrate=bitrate,
        id3_size=0,
        channels=channels or None,
        sample_rate=sample_rate or None,
        size=size,
        chapters=(),
        title=title,
    )
