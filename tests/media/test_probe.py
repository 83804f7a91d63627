"""Media probing on generated files: MP3 (LAME), M4A and MP4 (hand-built ISO-BMFF)."""

from __future__ import annotations

import random
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import mutagen.id3
import pytest

from amphora.media.probe import Chapter, ProbeError, probe_file, sniff
from amphora.media.testaudio import tone_m4a, tone_mp3, tone_mp4_video


def _write(tmp_path: Path, data: bytes, name: str = "upload.bin") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _probe_error(tmp_path: Path, data: bytes, name: str = "upload.bin") -> ProbeError:
    with pytest.raises(ProbeError) as caught:
        probe_file(_write(tmp_path, data, name))
    return caught.value


def _id3_header_size(data: bytes) -> int:
    """Independent parse of an ID3v2 header: 10 + syncsafe size (+10 with a footer)."""
    assert data[:3] == b"ID3"
    size = 0
    for byte in data[6:10]:
        size = (size << 7) | byte
    return 10 + size + (10 if data[5] & 0x10 else 0)


def _syncsafe(value: int) -> bytes:
    return bytes((value >> shift) & 0x7F for shift in (21, 14, 7, 0))


def _top_level_boxes(data: bytes) -> dict[bytes, tuple[int, int]]:
    boxes, position = {}, 0
    while position < len(data):
        size, kind = struct.unpack(">I4s", data[position : position + 8])
        boxes[kind] = (position, size)
        position += size
    return boxes


def _info_frame(audio: bytes, frames: int, declared_bytes: int) -> bytes:
    """A LAME-style "Info" (CBR Xing) frame for MPEG-1 Layer III mono, built from ``audio``."""
    header = bytearray(audio[:4])
    header[2] &= ~0x02  # no padding: 144 * 64000 // 44100 = 208 bytes
    frame = bytearray(208)
    frame[:4] = header
    frame[21:37] = b"Info" + struct.pack(">III", 0x3, frames, declared_bytes)
    return bytes(frame)


# --------------------------------------------------------------------------------------------
# MP3


def test_mp3_with_id3_title_and_chapters(tmp_path: Path) -> None:
    data = tone_mp3(
        60,
        title="Episode 1: Hello",
        chapters=[(30_000, 60_000, "Second half"), (0, 30_000, "First half")],
    )
    path = _write(tmp_path, data, "episode.bin")

    info = probe_file(path)

    assert (info.kind, info.container, info.content_type, info.extension) == (
        "audio",
        "mp3",
        "audio/mpeg",
        "mp3",
    )
    assert info.duration_s == pytest.approx(60, abs=0.1)
    assert info.bitrate == 64_000
    assert info.channels == 1
    assert info.sample_rate == 44_100
    assert info.size == len(data)
    assert info.id3_size == _id3_header_size(data)
    assert info.id3_size == mutagen.id3.ID3(path).size
    assert data[info.id3_size : info.id3_size + 2] == b"\xff\xfb"  # first frame right after
    assert info.title == "Episode 1: Hello"
    assert info.chapters == (
        Chapter(start_ms=0, end_ms=30_000, title="First half"),
        Chapter(start_ms=30_000, end_ms=60_000, title="Second half"),
    )


def test_mp3_without_id3(tmp_path: Path) -> None:
    data = tone_mp3(5, id3=False)
    assert data[:3] != b"ID3"

    info = probe_file(_write(tmp_path, data))

    assert info.id3_size == 0
    assert info.title is None
    assert info.chapters == ()
    assert info.duration_s == pytest.approx(5, abs=0.1)
    assert info.bitrate == 64_000


def test_mp3_tag_without_title_or_chapters(tmp_path: Path) -> None:
    data = tone_mp3(3)
    info = probe_file(_write(tmp_path, data))
    assert info.id3_size == _id3_header_size(data) > 0
    assert info.title is None
    assert info.chapters == ()


@pytest.mark.parametrize(
    ("sample_rate", "channels", "kbps"),
    [(48_000, 2, 128), (22_050, 1, 32), (44_100, 2, 96)],
)
def test_mp3_formats(tmp_path: Path, sample_rate: int, channels: int, kbps: int) -> None:
    data = tone_mp3(10, sample_rate=sample_rate, channels=channels, bitrate_kbps=kbps)
    info = probe_file(_write(tmp_path, data))
    assert info.duration_s == pytest.approx(10, abs=0.1)
    assert info.bitrate == kbps * 1000
    assert info.channels == channels
    assert info.sample_rate == sample_rate


def test_mp3_id3v24_footer_counts_in_id3_size(tmp_path: Path) -> None:
    body = bytes(100)  # all padding
    tag = b"ID3\x04\x00\x10" + _syncsafe(len(body)) + body + b"3DI\x04\x00\x10" + _syncsafe(100)
    data = tag + tone_mp3(3, id3=False)

    info = probe_file(_write(tmp_path, data))

    assert info.id3_size == len(tag) == 120
    assert info.duration_s == pytest.approx(3, abs=0.1)


def test_mp3_with_info_header(tmp_path: Path) -> None:
    audio = tone_mp3(10, id3=False)
    frames = 10 * 44_100 // 1152
    data = _info_frame(audio, frames, 208 + len(audio)) + audio

    info = probe_file(_write(tmp_path, data))

    assert info.duration_s == pytest.approx(frames * 1152 / 44_100)
    assert info.bitrate == pytest.approx(64_000, rel=0.02)


def test_mp3_shorter_than_its_info_header_is_corrupt(tmp_path: Path) -> None:
    audio = tone_mp3(10, id3=False)
    data = _info_frame(audio, 10 * 44_100 // 1152, 208 + len(audio)) + audio
    error = _probe_error(tmp_path, data[: len(data) // 2])
    assert error.code == "corrupt_media"


def test_mp3_with_zero_stated_duration_is_corrupt(tmp_path: Path) -> None:
    audio = tone_mp3(2, id3=False)
    data = _info_frame(audio, 0, 208 + len(audio)) + audio
    assert _probe_error(tmp_path, data).code == "corrupt_media"


@pytest.mark.parametrize("id3", [True, False])
def test_mp3_cut_inside_first_frames_is_corrupt(tmp_path: Path, id3: bool) -> None:
    data = tone_mp3(5, id3=id3, title="Cut")
    start = _id3_header_size(data) if id3 else 0
    first_frames = 4 * 208
    cut = data[: start + first_frames // 10]  # 10% of the first frames: inside frame one

    assert _probe_error(tmp_path, cut).code == "corrupt_media"


def test_mp3_with_only_a_couple_of_frames_is_corrupt(tmp_path: Path) -> None:
    data = tone_mp3(5, id3=False)
    assert _probe_error(tmp_path, data[: 208 * 2 + 100]).code == "corrupt_media"


def test_id3_tag_without_audio_is_corrupt(tmp_path: Path) -> None:
    data = tone_mp3(2, title="Only a tag")
    tag = data[: _id3_header_size(data)]
    assert _probe_error(tmp_path, tag).code == "corrupt_media"
    assert _probe_error(tmp_path, tag + bytes(500)).code == "corrupt_media"


def test_id3_tag_running_past_the_end_is_corrupt(tmp_path: Path) -> None:
    data = tone_mp3(2, title="x" * 500)
    assert _probe_error(tmp_path, data[:200]).code == "corrupt_media"


# --------------------------------------------------------------------------------------------
# M4A and MP4


def test_m4a(tmp_path: Path) -> None:
    data = tone_m4a(30, title="An AAC episode")
    info = probe_file(_write(tmp_path, data, "episode.mp3"))  # the name is irrelevant

    assert (info.kind, info.container, info.content_type, info.extension) == (
        "audio",
        "m4a",
        "audio/x-m4a",
        "m4a",
    )
    assert info.duration_s == pytest.approx(30, abs=0.05)
    assert info.bitrate == pytest.approx(64_000, abs=100)
    assert info.channels == 1
    assert info.sample_rate == 44_100
    assert info.size == len(data)
    assert info.id3_size == 0
    assert info.chapters == ()
    assert info.title == "An AAC episode"
    # The frames carry the declared bitrate: the media data agrees with it.
    _, mdat_size = _top_level_boxes(data)[b"mdat"]
    assert (mdat_size - 8) * 8 / info.duration_s == pytest.approx(64_000, rel=0.002)


def test_m4a_stereo_48k(tmp_path: Path) -> None:
    info = probe_file(
        _write(tmp_path, tone_m4a(12, channels=2, sample_rate=48_000, bitrate_kbps=128))
    )
    assert info.duration_s == pytest.approx(12, abs=0.05)
    assert info.channels == 2
    assert info.sample_rate == 48_000
    assert info.bitrate == pytest.approx(128_000, abs=200)
    assert info.title is None


def test_mp4_video_with_audio(tmp_path: Path) -> None:
    data = tone_mp4_video(8, title="A video episode")
    info = probe_file(_write(tmp_path, data, "episode.m4a"))

    assert (info.kind, info.container, info.content_type, info.extension) == (
        "video",
        "mp4",
        "video/mp4",
        "mp4",
    )
    assert info.duration_s == pytest.approx(8, abs=0.05)
    assert info.channels == 2
    assert info.sample_rate == 44_100
    assert info.bitrate == round(len(data) * 8 / info.duration_s)
    assert info.title == "A video episode"


def test_mp4_video_without_audio(tmp_path: Path) -> None:
    info = probe_file(_write(tmp_path, tone_mp4_video(4, audio=False, width=640, height=368)))
    assert info.kind == "video"
    assert info.content_type == "video/mp4"
    assert info.duration_s == pytest.approx(4, abs=0.05)
    assert info.channels is None
    assert info.sample_rate is None


def test_m4a_with_moov_cut_is_corrupt(tmp_path: Path) -> None:
    data = tone_m4a(10)
    start, size = _top_level_boxes(data)[b"moov"]
    assert _probe_error(tmp_path, data[: start + size // 2]).code == "corrupt_media"


def test_m4a_with_mdat_cut_or_missing_is_corrupt(tmp_path: Path) -> None:
    data = tone_m4a(10)
    start, _ = _top_level_boxes(data)[b"mdat"]
    assert _probe_error(tmp_path, data[: start + 1000]).code == "corrupt_media"
    assert _probe_error(tmp_path, data[:start]).code == "corrupt_media"


def test_mp4_without_moov_is_corrupt(tmp_path: Path) -> None:
    data = tone_m4a(2)
    boxes = _top_level_boxes(data)
    _, ftyp_size = boxes[b"ftyp"]
    mdat_start, _ = boxes[b"mdat"]
    assert _probe_error(tmp_path, data[:ftyp_size] + data[mdat_start:]).code == "corrupt_media"


def test_m4a_in_another_codec_is_unsupported(tmp_path: Path) -> None:
    data = tone_m4a(2).replace(b"mp4a", b"alac", 1)
    assert _probe_error(tmp_path, data).code == "unsupported_media"


# --------------------------------------------------------------------------------------------
# Not media


def _png() -> bytes:
    def chunk(kind: bytes, payload: bytes) -> bytes:
        crc = zlib.crc32(kind + payload)
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00\x00"))
        + chunk(b"IEND", b"")
    )


def _wav() -> bytes:
    pcm = bytes(44_100 * 2)
    fmt = struct.pack("<HHIIHH", 1, 1, 44_100, 88_200, 2, 16)
    return (
        b"RIFF"
        + struct.pack("<I", 36 + len(pcm))
        + b"WAVEfmt "
        + struct.pack("<I", 16)
        + fmt
        + b"data"
        + struct.pack("<I", len(pcm))
        + pcm
    )


def _ogg() -> bytes:
    page = b"OggS\x00\x02" + bytes(8) + struct.pack("<I", 1234) + bytes(8) + b"\x01\x1e"
    return page + b"\x01vorbis" + bytes(23) + bytes(4000)


def _random() -> bytes:
    return random.Random(1234).randbytes(50_000)


def _random_after_a_frame_header() -> bytes:
    return b"\xff\xfb\x50\xc4" + random.Random(99).randbytes(50_000)


def _heic() -> bytes:
    return struct.pack(">I", 24) + b"ftypheic" + bytes(4) + b"mif1heic" + bytes(1000)


NOT_MEDIA: dict[str, tuple[Callable[[], bytes], str]] = {
    "html": (
        lambda: b"<!DOCTYPE html><html><head><title>x</title></head><body>hi</body></html>",
        "page.mp3",
    ),
    "pdf": (lambda: b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n%%EOF\n", "doc.mp3"),
    "png": (_png, "cover.m4a"),
    "wav": (_wav, "audio.mp3"),
    "ogg": (_ogg, "audio.mp3"),
    "random": (_random, "noise.mp3"),
    "random-after-frame-header": (_random_after_a_frame_header, "noise.mp3"),
    "text": (lambda: b"This is not an MP3, whatever its name says.\n" * 20, "notes.mp3"),
    "id3-then-png": (lambda: tone_mp3(1)[: _id3_header_size(tone_mp3(1))] + _png(), "x.mp3"),
    "heic": (_heic, "photo.mp4"),
}


@pytest.mark.parametrize("case", list(NOT_MEDIA))
def test_not_media_is_unsupported(tmp_path: Path, case: str) -> None:
    make, name = NOT_MEDIA[case]
    data = make()
    assert sniff(data[:65_536]) is None
    assert _probe_error(tmp_path, data, name).code == "unsupported_media"


def test_empty_file(tmp_path: Path) -> None:
    error = _probe_error(tmp_path, b"", "empty.mp3")
    assert error.code == "empty_file"
    assert error.message


def test_max_bytes(tmp_path: Path) -> None:
    path = _write(tmp_path, tone_mp3(2))
    assert probe_file(path, max_bytes=path.stat().st_size).size == path.stat().st_size
    with pytest.raises(ProbeError) as caught:
        probe_file(path, max_bytes=path.stat().st_size - 1)
    assert caught.value.code == "too_large"


# --------------------------------------------------------------------------------------------
# sniff


def test_sniff() -> None:
    assert sniff(tone_mp3(1)[:65_536]) == "mp3"
    assert sniff(tone_mp3(1, id3=False)[:65_536]) == "mp3"
    assert sniff(tone_m4a(1)[:65_536]) == "mp4family"
    assert sniff(tone_mp4_video(1)[:65_536]) == "mp4family"
    assert sniff(b"") is None
    assert sniff(b"ID3") is None
    # A tag larger than the sample: provisionally MP3 (probe_file reads past it).
    assert sniff(b"ID3\x03\x00\x00" + _syncsafe(200_000) + bytes(1000)) == "mp3"
