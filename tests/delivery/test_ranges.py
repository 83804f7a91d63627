"""Range header parsing (RFC 9110 §14): every form, every edge, no database, no HTTP."""

from __future__ import annotations

import pytest

from amphora.delivery.ranges import (
    FULL,
    MAX_RANGE_HEADER,
    Full,
    Partial,
    RangeResult,
    Unsatisfiable,
    parse_range,
)

N = 1000


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        # No header, or one that is ignored: the whole file with 200.
        (None, FULL),
        ("", FULL),
        ("bytes", FULL),
        ("bytes=", FULL),
        ("bytes=-", FULL),
        ("bytes=abc", FULL),
        ("bytes=1-2-3", FULL),
        ("bytes=a-5", FULL),
        ("bytes=5-a", FULL),
        ("bytes=+5-9", FULL),
        ("bytes=-+5", FULL),
        ("bytes=0x10-20", FULL),
        ("bytes=1 - 2", FULL),  # no whitespace inside a range-spec
        ("bytes=\u0661-\u0662", FULL),  # non-ASCII digits are not digits here
        ("items=0-1", FULL),  # another unit
        ("0-1", FULL),  # no unit
        ("bytes=9-5", FULL),  # last < first: invalid, so the header is ignored
        # Multiple ranges are ignored on purpose (no multipart/byteranges): 200.
        ("bytes=0-1,5-6", FULL),
        ("bytes=0-1, 5-6", FULL),
        ("bytes=-5,0-1", FULL),
        ("bytes=2000-3000,5000-6000", FULL),
        # Single ranges.
        ("bytes=0-1", Partial(0, 1, N)),  # Apple's probe
        ("bytes=0-0", Partial(0, 0, N)),
        ("bytes=0-999", Partial(0, 999, N)),
        ("bytes=0-", Partial(0, 999, N)),
        ("bytes=100-", Partial(100, 999, N)),
        ("bytes=999-", Partial(999, 999, N)),
        ("bytes=999-999", Partial(999, 999, N)),
        ("bytes=10-20", Partial(10, 20, N)),
        ("bytes=500-5000", Partial(500, 999, N)),  # last past the end is clamped
        ("bytes=0-99999999999999999999999", Partial(0, 999, N)),
        ("bytes=-1", Partial(999, 999, N)),
        ("bytes=-500", Partial(500, 999, N)),
        ("bytes=-1000", Partial(0, 999, N)),
        ("bytes=-5000", Partial(0, 999, N)),  # suffix longer than the file: all of it
        ("bytes=007-010", Partial(7, 10, N)),  # leading zeros are digits
        # Tolerated syntax: unit case, spaces around "=", and empty list elements.
        ("Bytes=0-1", Partial(0, 1, N)),
        ("BYTES=0-1", Partial(0, 1, N)),
        (" bytes =0-1", Partial(0, 1, N)),
        ("bytes= 0-1 ", Partial(0, 1, N)),
        ("bytes=0-1,", Partial(0, 1, N)),
        ("bytes=,0-1", Partial(0, 1, N)),
        ("bytes=, ,0-1, ", Partial(0, 1, N)),
        # Unsatisfiable: 416.
        ("bytes=1000-", Unsatisfiable(N)),
        ("bytes=1000-1000", Unsatisfiable(N)),
        ("bytes=5000-6000", Unsatisfiable(N)),
        ("bytes=-0", Unsatisfiable(N)),
        ("bytes=-000", Unsatisfiable(N)),
    ],
)
def test_parse_range(header: str | None, expected: RangeResult) -> None:
    assert parse_range(header, N) == expected


@pytest.mark.parametrize("header", ["bytes=0-1", "bytes=0-", "bytes=-5", "bytes=-0", "bytes=5-9"])
def test_empty_file_is_unsatisfiable_for_any_range(header: str) -> None:
    assert parse_range(header, 0) == Unsatisfiable(0)


def test_empty_file_without_a_usable_range_is_full() -> None:
    assert parse_range(None, 0) == FULL
    assert parse_range("bytes=0-1,3-4", 0) == FULL
    assert parse_range("bytes=9-5", 0) == FULL


def test_one_byte_file() -> None:
    assert parse_range("bytes=0-1", 1) == Partial(0, 0, 1)
    assert parse_range("bytes=-1", 1) == Partial(0, 0, 1)
    assert parse_range("bytes=-2", 1) == Partial(0, 0, 1)
    assert parse_range("bytes=1-", 1) == Unsatisfiable(1)


def test_apple_probe_then_reads() -> None:
    """Apple's player asks for two bytes, then reads the file in ranges."""
    size = 50 * 1024 * 1024
    probe = parse_range("bytes=0-1", size)
    assert isinstance(probe, Partial) and probe.length == 2
    assert probe.content_range == f"bytes 0-1/{size}"
    read = parse_range("bytes=2-1048575", size)
    assert isinstance(read, Partial) and read.length == 1048574
    tail = parse_range(f"bytes={size - 10}-{size + 100}", size)
    assert isinstance(tail, Partial) and tail.end == size - 1 and tail.length == 10


def test_content_range_values() -> None:
    assert Partial(0, 1, N).content_range == "bytes 0-1/1000"
    assert Unsatisfiable(N).content_range == "bytes */1000"
    assert Partial(10, 20, N).length == 11


def test_overlong_header_is_ignored() -> None:
    header = "bytes=0-1" + "," * MAX_RANGE_HEADER
    assert parse_range(header, N) == FULL
    assert isinstance(parse_range("bytes=0-" + "9" * 200, N), Partial)


def test_negative_size_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        parse_range("bytes=0-1", -1)


def test_full_is_a_singleton_value() -> None:
    assert Full() == FULL
