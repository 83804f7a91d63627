"""Behaviour of amphora.episode.companions: transcript and chapters validation."""

from __future__ import annotations

import json
from typing import Any

import pytest

from amphora.episode.companions import (
    TRANSCRIPT_TYPES,
    Chapter,
    CompanionError,
    ValidTranscript,
    chapters_from_id3,
    detect_transcript_type,
    validate_chapters,
    validate_transcript,
)
from amphora.kit.errors import AmphoraError

VTT = b"""WEBVTT - Episode 12

NOTE written by hand

intro
00:00.000 --> 00:02.500
<v Ana>Welcome to the show.

00:00:02.500 --> 00:00:05.000 align:start position:10%
Today we talk about bees.

01:00:00.000 --> 01:00:01.000
Goodbye!
"""

SRT = b"""1
00:00:00,000 --> 00:00:02,000
Welcome to the show.

2
00:00:02,000 --> 00:00:04,500
Today we talk
about bees.
"""

JSON_TRANSCRIPT = json.dumps(
    {
        "version": "1.0.0",
        "segments": [
            {"speaker": "Ana", "startTime": 0, "endTime": 1.5, "body": "Welcome"},
            {"speaker": "Ben", "startTime": 1.5, "endTime": 3.25, "body": "Thanks"},
            {"startTime": 3.25, "endTime": 3.25, "body": ""},
        ],
    }
).encode()

HTML_TRANSCRIPT = b"""<html><body>
<cite>Ana:</cite>
<time>0:00</time>
<p>Welcome to the show.</p>
<script>alert('x')</script>
<cite>Ben:</cite>
<time>0:02</time>
<p onclick="x()">Thanks for having me.</p>
</body></html>"""


def _error(call: Any, *args: Any, **kwargs: Any) -> CompanionError:
    with pytest.raises(CompanionError) as info:
        call(*args, **kwargs)
    return info.value


# --- transcripts: valid ---------------------------------------------------------------------


def test_valid_vtt() -> None:
    result = validate_transcript(VTT, declared="text/vtt", filename="ep12.vtt")
    assert result == ValidTranscript("text/vtt", "vtt", VTT, 3)


def test_valid_srt() -> None:
    result = validate_transcript(SRT, declared="application/x-subrip")
    assert result.content_type == "application/x-subrip"
    assert result.extension == "srt"
    assert result.cue_count == 2
    assert result.data == SRT


def test_valid_json() -> None:
    result = validate_transcript(JSON_TRANSCRIPT)
    assert (result.content_type, result.extension, result.cue_count) == (
        "application/json",
        "json",
        3,
    )
    assert json.loads(result.data) == json.loads(JSON_TRANSCRIPT)


def test_valid_html_is_stored_sanitised() -> None:
    result = validate_transcript(HTML_TRANSCRIPT, declared="text/html")
    assert (result.content_type, result.extension) == ("text/html", "html")
    text = result.data.decode()
    assert "<script" not in text and "alert" not in text and "onclick" not in text
    assert "<p>Welcome to the show.</p>" in text
    assert "<p>Thanks for having me.</p>" in text
    assert result.cue_count == 4  # non-empty text lines: "Ana: 0:00", "Welcome…", …


def test_valid_plain_text() -> None:
    result = validate_transcript(b"Ana: hello\n\nBen: hi\n", declared="text/plain")
    assert result == ValidTranscript("text/plain", "txt", b"Ana: hello\n\nBen: hi\n", 2)


def test_bom_stripped_and_line_ends_normalised() -> None:
    data = b"\xef\xbb\xbf" + VTT.replace(b"\n", b"\r\n")
    result = validate_transcript(data)
    assert result.content_type == "text/vtt"
    assert result.data == VTT
    assert not result.data.startswith(b"\xef\xbb\xbf")
    assert result.cue_count == 3


def test_utf16_with_bom_becomes_utf8() -> None:
    data = "\ufeff1\n00:00:00,000 --> 00:00:01,000\nÇa va ?\n".encode("utf-16-le")
    result = validate_transcript(data)
    assert result.content_type == "application/x-subrip"
    assert result.data == "1\n00:00:00,000 --> 00:00:01,000\nÇa va ?\n".encode()


def test_vtt_accepts_non_ascii_text() -> None:
    data = "WEBVTT\n\n00:01.000 --> 00:02.000\nCafé 😀 日本語\n".encode()
    assert validate_transcript(data).cue_count == 1


# --- transcripts: detection -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "declared", "filename", "expected"),
    [
        (VTT, "application/x-subrip", "ep.srt", "text/vtt"),
        (SRT, "text/vtt", "ep.vtt", "application/x-subrip"),
        (JSON_TRANSCRIPT, "text/plain", "ep.txt", "application/json"),
        (HTML_TRANSCRIPT, "text/plain", None, "text/html"),
        (VTT, None, None, "text/vtt"),
        (SRT, "application/octet-stream", None, "application/x-subrip"),
        (b"Just words.", None, None, "text/plain"),
        (b"Just words.", "text/plain; charset=utf-8", None, "text/plain"),
        (b"Just words.", None, "EP.TXT", "text/plain"),
        (b"Just words.", "text/vtt", None, "text/vtt"),  # tie-breaker; validation will refuse
        (b"Just words.", None, "ep.srt", "application/x-subrip"),
        (b"Just words.", "application/srt", None, "application/x-subrip"),
        (b'{"version": "1.0.0"}', None, None, "application/json"),
    ],
)
def test_detection(data: bytes, declared: str | None, filename: str | None, expected: str) -> None:
    assert detect_transcript_type(data, declared, filename) == expected
    assert expected in TRANSCRIPT_TYPES


def test_content_wins_over_wrong_declaration_in_validation() -> None:
    result = validate_transcript(SRT, declared="text/vtt", filename="episode.vtt")
    assert result.content_type == "application/x-subrip"
    assert result.extension == "srt"


@pytest.mark.parametrize(
    ("data", "declared", "filename"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00", None, None),
        (b"ID3\x04\x00\x00\x00\x00\x00\x00\xff\xfb", "audio/mpeg", "ep.mp3"),
        (b"Just words.", "application/pdf", "transcript.pdf"),
    ],
)
def test_unsupported_type(data: bytes, declared: str | None, filename: str | None) -> None:
    error = _error(detect_transcript_type, data, declared, filename)
    assert error.code == "unsupported_transcript_type"
    assert error.status_code == 415


def test_unsupported_type_from_validate() -> None:
    error = _error(validate_transcript, b"Just words.", declared="application/pdf")
    assert error.code == "unsupported_transcript_type"


# --- transcripts: refused -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"WEBVTT\n\n00:00.000 --> 00:61.000\nbad seconds\n", "line 3"),
        (b"WEBVTT\n\n00:00:01,000 --> 00:00:02,000\ncomma in vtt\n", "line 3"),
        (b"WEBVTT\n\n0:00:01.000 --> 0:00:02.000\none-digit hours\n", "invalid cue timing"),
        (b"WEBVTT\n\n00:01.00 --> 00:02.000\nshort millis\n", "invalid cue timing"),
        (b"WEBVTT\n\n00:01.000 -> 00:02.000\nbad arrow\n", "line 3"),
        (b"WEBVTT\n\n00:01.000 --> 00:02.000\nok\n\n00:03.000 --> 00:0x.000\nbad\n", "line 6"),
        (b"WEBVTT\n\n00:05.000 --> 00:04.000\nbackwards\n", "ends before it starts"),
        (b"WEBVTT\n\nid only\njust text\n", "line 3"),
        (b"WEBVTT\n00:01.000 --> 00:02.000\nno blank line\n", "line 2"),
        (b"WEBVTT\n\n00:01.000 --> 00:02.000\na\n00:02.000 --> 00:03.000\nb\n", "line 5"),
        (b"WEBVTT\n", "no cues"),
        (b"WEBVTT\n\nNOTE only a comment\n", "no cues"),
        (b"00:01.000 --> 00:02.000\nheaderless\n", "WEBVTT"),
    ],
)
def test_bad_vtt(data: bytes, fragment: str) -> None:
    error = _error(validate_transcript, data, declared="text/vtt")
    assert error.code == "invalid_transcript"
    assert error.status_code == 422
    assert fragment in error.message


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (
            b"1\n00:00:00,000 --> 00:00:02,000\nok\n\n2\n00:00:03.000 --> 00:00:04,000\nx\n",
            "line 6",
        ),
        (b"1\n00:00:05,000 --> 00:00:02,000\nbackwards\n", "ends before it starts"),
        (b"1\n00:00:00,000 -> 00:00:02,000\nbad arrow\n", "line 2"),
        (b"1\n00:00:00,000 --> 00:00:02,000\nok\n\nnot a number\n00:00:02,000 -->", "line 5"),
        (b"1\n00:00:00,000 --> 00:00:02,000\nok\n\n2\n", "no timing line"),
        (b"1\n00:00:00,000 --> 00:00:61,000\nbad seconds\n", "(cue 1)"),
    ],
)
def test_bad_srt(data: bytes, fragment: str) -> None:
    error = _error(validate_transcript, data, filename="ep.srt")
    assert error.code == "invalid_transcript"
    assert fragment in error.message


def _json(document: Any) -> bytes:
    return json.dumps(document).encode()


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (_json({"version": "1.0.0"}), "'segments'"),
        (_json({"version": "1.0.0", "segments": {}}), "'segments'"),
        (_json({"version": "1.0.0", "segments": []}), "no segments"),
        (_json([1, 2]), "object"),
        (_json({"version": 1, "segments": []}), "'version'"),
        (_json({"segments": ["x"]}), "segments[0]"),
        (_json({"segments": [{"startTime": -1, "endTime": 2, "body": "x"}]}), "segments[0]"),
        (_json({"segments": [{"startTime": "0", "endTime": 2, "body": "x"}]}), "'startTime'"),
        (_json({"segments": [{"startTime": True, "endTime": 2, "body": "x"}]}), "'startTime'"),
        (_json({"segments": [{"startTime": 0, "body": "x"}]}), "'endTime'"),
        (
            _json(
                {
                    "segments": [
                        {"startTime": 0, "endTime": 1, "body": "ok"},
                        {"startTime": 5, "endTime": 4, "body": "backwards"},
                    ]
                }
            ),
            "segments[1]: 'endTime' is before 'startTime'",
        ),
        (_json({"segments": [{"startTime": 0, "endTime": 1}]}), "'body'"),
        (
            _json({"segments": [{"startTime": 0, "endTime": 1, "body": "x", "speaker": 3}]}),
            "speaker",
        ),
        (b'{"segments": [{"startTime": NaN, "endTime": 1, "body": "x"}]}', "'startTime'"),
        (b'{"segments": [\n{"startTime": 0,}]}', "line 2"),
    ],
)
def test_bad_json_transcript(data: bytes, fragment: str) -> None:
    error = _error(validate_transcript, data, declared="application/json")
    assert error.code == "invalid_transcript"
    assert fragment in error.message


def test_json_missing_segments_refused_without_declaration() -> None:
    error = _error(validate_transcript, b'{"version": "1.0.0", "cues": []}')
    assert error.code == "invalid_transcript"
    assert "segments" in error.message


def test_html_with_nothing_left_is_refused() -> None:
    error = _error(validate_transcript, b"<html><script>alert(1)</script></html>")
    assert error.code == "invalid_transcript"


@pytest.mark.parametrize("data", [b"", b"\xef\xbb\xbf", b"  \n\n  "])
def test_empty_refused(data: bytes) -> None:
    error = _error(validate_transcript, data, declared="text/vtt")
    assert error.code == "invalid_transcript"
    assert "empty" in error.message


def test_not_utf8_refused_with_line() -> None:
    data = b"WEBVTT\n\n00:01.000 --> 00:02.000\ncaf\xe9\n"
    error = _error(validate_transcript, data, declared="text/vtt")
    assert error.code == "invalid_transcript"
    assert "line 4" in error.message and "UTF-8" in error.message


def test_binary_refused() -> None:
    error = _error(validate_transcript, b"\x89PNG\r\n\x1a\n\x00\x00\xff")
    assert error.code == "invalid_transcript"


def test_nul_refused() -> None:
    error = _error(validate_transcript, b"hello\x00world", declared="text/plain")
    assert error.code == "invalid_transcript"
    assert "NUL" in error.message


def test_over_max_bytes_refused() -> None:
    assert validate_transcript(VTT, max_bytes=len(VTT)).cue_count == 3
    error = _error(validate_transcript, VTT, max_bytes=len(VTT) - 1)
    assert error.code == "invalid_transcript"
    assert str(len(VTT)) in error.message


def test_default_max_bytes_is_ten_mebibytes() -> None:
    cue = b"00:00:01.000 --> 00:00:02.000\nword\n\n"
    data = b"WEBVTT\n\n" + cue * (10 * 1024 * 1024 // len(cue) + 1)
    assert _error(validate_transcript, data).code == "invalid_transcript"


def test_error_is_an_amphora_error() -> None:
    error = _error(validate_transcript, b"")
    assert isinstance(error, AmphoraError)
    assert error.message == str(error)


# --- chapters -------------------------------------------------------------------------------

CHAPTERS: dict[str, Any] = {
    "version": "1.2.0",
    "author": "Ana",
    "title": "Episode 12",
    "podcastName": "Bees",
    "x-custom": {"kept": True},
    "chapters": [
        {"startTime": 120.5, "title": "Hives", "img": "https://example.com/hive.jpg"},
        {"startTime": 0, "title": "Intro", "url": "http://example.com/", "toc": False},
        {
            "startTime": 60,
            "endTime": 120.5,
            "title": "Queens",
            "location": {"name": "Garden", "geo": "geo:30.2,-97.7"},
        },
        {"startTime": 300},
    ],
}


def test_valid_chapters_normalised_and_sorted() -> None:
    document = dict(CHAPTERS, version="1.1.0")
    result = validate_chapters(json.dumps(document).encode(), duration_s=600)
    assert result["version"] == "1.2.0"
    assert [c["startTime"] for c in result["chapters"]] == [0, 60, 120.5, 300]
    assert [c.get("title") for c in result["chapters"]] == ["Intro", "Queens", "Hives", None]
    assert result["chapters"][1]["location"] == {"name": "Garden", "geo": "geo:30.2,-97.7"}
    assert result["x-custom"] == {"kept": True}
    assert result["author"] == "Ana"
    assert next(iter(result)) == "version"
    json.dumps(result)  # serialisable as is


def test_chapters_accept_str_dict_and_bom_bytes() -> None:
    from_dict = validate_chapters(CHAPTERS)
    assert validate_chapters(json.dumps(CHAPTERS)) == from_dict
    assert validate_chapters(b"\xef\xbb\xbf" + json.dumps(CHAPTERS).encode()) == from_dict
    # The input dict is not modified.
    assert CHAPTERS["chapters"][0]["title"] == "Hives"


def test_chapter_dataclass_round_trip() -> None:
    result = validate_chapters(CHAPTERS)
    chapters = [Chapter.from_json(item) for item in result["chapters"]]
    assert chapters[0] == Chapter(0, "Intro", url="http://example.com/", toc=False)
    assert chapters[2].img == "https://example.com/hive.jpg"
    assert Chapter(5, "Five", end_time=9).to_json() == {
        "startTime": 5,
        "title": "Five",
        "endTime": 9,
    }


def _chapters(*items: Any, **top: Any) -> dict[str, Any]:
    return {"version": "1.2.0", "chapters": list(items), **top}


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"chapters": [{"startTime": 0}]}, "'version'"),
        ({"version": 1.2, "chapters": [{"startTime": 0}]}, "'version'"),
        (_chapters(), "non-empty"),
        ({"version": "1.2.0"}, "non-empty"),
        ({"version": "1.2.0", "chapters": {"startTime": 0}}, "'chapters'"),
        (_chapters({"startTime": -1, "title": "x"}), "chapters[0]"),
        (_chapters({"startTime": 0}, {"title": "no start"}), "chapters[1]: 'startTime'"),
        (_chapters({"startTime": "10"}), "'startTime'"),
        (_chapters({"startTime": False}), "'startTime'"),
        (_chapters({"startTime": 0, "title": 5}), "'title'"),
        (_chapters({"startTime": 0, "title": "x" * 1001}), "1000"),
        (_chapters({"startTime": 0, "img": "ftp://example.com/a.jpg"}), "'img'"),
        (_chapters({"startTime": 0, "img": "javascript:alert(1)"}), "'img'"),
        (_chapters({"startTime": 0, "img": "/relative.jpg"}), "'img'"),
        (_chapters({"startTime": 0, "url": "data:text/html,x"}), "'url'"),
        (_chapters({"startTime": 0, "url": "https://exa mple.com/"}), "'url'"),
        (_chapters({"startTime": 0, "toc": "yes"}), "'toc'"),
        (_chapters({"startTime": 10, "endTime": 5}), "'endTime'"),
        (_chapters({"startTime": 0, "location": "Garden"}), "'location'"),
        (
            _chapters({"startTime": 0}, {"startTime": 10}, {"startTime": 0.0}),
            "chapters[0] and chapters[2]",
        ),
        (_chapters("not an object"), "chapters[0]"),
        (_chapters({"startTime": 0}, title=7), "'title'"),
        (["not", "an", "object"], "object"),
    ],
)
def test_bad_chapters(data: Any, fragment: str) -> None:
    error = _error(validate_chapters, json.dumps(data).encode())
    assert error.code == "invalid_chapters"
    assert fragment in error.message


def test_chapter_start_must_be_before_duration() -> None:
    document = _chapters({"startTime": 0}, {"startTime": 3600})
    assert len(validate_chapters(document, duration_s=3600.5)["chapters"]) == 2
    error = _error(validate_chapters, document, duration_s=3600)
    assert error.code == "invalid_chapters"
    assert "chapters[1]" in error.message


@pytest.mark.parametrize(
    "data", [b"not json", b"{", b"\xff\xfe\xfa", "", b'{"version": "1.2.0", "chapters": [}']
)
def test_non_json_chapters(data: bytes | str) -> None:
    error = _error(validate_chapters, data)
    assert error.code == "invalid_chapters"


def test_chapters_from_id3_round_trip() -> None:
    frames = [(90_000, None, "Part two"), (0, 90_000, " Intro "), (150_250, 200_000, "Outro")]
    document = chapters_from_id3(frames)
    assert document == {
        "version": "1.2.0",
        "chapters": [
            {"startTime": 0, "title": "Intro", "endTime": 90},
            {"startTime": 90, "title": "Part two"},
            {"startTime": 150.25, "title": "Outro", "endTime": 200},
        ],
    }
    # Serves as-is and validates again unchanged.
    assert validate_chapters(json.dumps(document)) == document
    back = [
        (
            round(item["startTime"] * 1000),
            round(item["endTime"] * 1000) if "endTime" in item else None,
            item["title"],
        )
        for item in document["chapters"]
    ]
    assert back == sorted((start, end, title.strip()) for start, end, title in frames)


def test_chapters_from_id3_tolerates_bad_end_and_long_title() -> None:
    document = chapters_from_id3([(5000, 1000, "t" * 2000)])
    assert document["chapters"] == [{"startTime": 5, "title": "t" * 1000}]


def test_chapters_from_id3_refuses_duplicates_and_empty() -> None:
    assert _error(chapters_from_id3, [(0, None, "a"), (0, None, "b")]).code == "invalid_chapters"
    assert _error(chapters_from_id3, []).code == "invalid_chapters"
