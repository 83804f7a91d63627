"""The IAB rules as pure functions, on hand-computed cases, and the replay property that makes
processing incremental and idempotent."""

from __future__ import annotations

import math
import random

import pytest

from amphora.analytics.counting import (
    DAY,
    count_downloads,
    requested_bytes,
    threshold_bytes,
)

MINUTE_128K = 960_000  # 128 kbit/s * 60 s / 8


def test_threshold_is_one_minute_after_the_id3_tag() -> None:
    assert threshold_bytes(size=50_000_000, bitrate=128_000, id3_size=4_096) == 4_096 + 960_000
    # ceil(127_999 / 8 * 60) = ceil(959_992.5)
    assert threshold_bytes(size=50_000_000, bitrate=127_999, id3_size=0) == 959_993


def test_threshold_of_a_file_shorter_than_a_minute_is_every_byte() -> None:
    assert threshold_bytes(size=5_000, bitrate=128_000, id3_size=100) == 5_000


def test_threshold_without_a_known_bitrate_assumes_128k() -> None:
    assert threshold_bytes(size=None, bitrate=None, id3_size=None) == MINUTE_128K


@pytest.mark.parametrize(
    ("range_header", "expected"),
    [
        (None, 10_000),
        ("bytes=0-1", 2),
        ("bytes=9000-", 1_000),
        ("bytes=-500", 500),
        ("bytes=0-99999", 10_000),
        ("bytes=20000-", 0),
        ("items=1-2", 10_000),
    ],
)
def test_a_redirect_delivers_what_it_asked_for(range_header: str | None, expected: int) -> None:
    assert requested_bytes(range_header, 10_000) == expected


def test_a_probe_never_counts_alone() -> None:
    assert count_downloads([(0.0, 2, 2)]) == []
    assert count_downloads([(0.0, 2, 1), (1.0, 2, 1), (2.0, 1, 1)]) == []


def test_summed_partial_ranges_count_at_the_request_crossing_the_threshold() -> None:
    # bytes=0-1, bytes=2-499, bytes=500-999 of a file whose minute is 1,000 bytes.
    requests = [(0.0, 2, 1_000), (1.0, 498, 1_000), (2.0, 500, 1_000), (3.0, 5_000, 1_000)]
    assert count_downloads(requests) == [2]


def test_one_byte_short_is_no_download() -> None:
    assert count_downloads([(0.0, 2, 1_000), (1.0, 997, 1_000)]) == []


def test_short_episode_needs_every_byte() -> None:
    threshold = threshold_bytes(size=5_000, bitrate=128_000, id3_size=100)
    assert count_downloads([(0.0, 4_999, threshold)]) == []
    assert count_downloads([(0.0, 4_999, threshold), (5.0, 1, threshold)]) == [1]


def test_one_download_per_rolling_24_hours() -> None:
    full = 2_000
    assert count_downloads([(0.0, full, 1_000), (3_600.0, full, 1_000)]) == [0]
    assert count_downloads([(0.0, full, 1_000), (DAY - 1, full, 1_000)]) == [0]
    assert count_downloads([(0.0, full, 1_000), (DAY, full, 1_000)]) == [0, 1]
    # The window runs from the counted download, not from the first request.
    requests = [(0.0, 600, 1_000), (7_200.0, 600, 1_000), (DAY + 3_600, 1_000, 1_000)]
    assert count_downloads(requests) == [1]
    assert count_downloads([*requests, (DAY + 7_200, 1_000, 1_000)]) == [1, 3]


def test_bytes_older_than_24_hours_drop_out_of_the_sum() -> None:
    assert count_downloads([(0.0, 600, 1_000), (DAY + 1, 600, 1_000)]) == []
    assert count_downloads([(0.0, 600, 1_000), (DAY - 1, 600, 1_000)]) == [1]


def test_bytes_inside_a_counted_window_start_no_new_sum() -> None:
    # After the download at t=10, 900 bytes at t=20 belong to it; 200 more the next day do
    # not make a second download with them.
    requests = [(10.0, 1_000, 1_000), (20.0, 900, 1_000), (DAY + 30, 200, 1_000)]
    assert count_downloads(requests) == [0]


def test_state_before_the_first_request_is_honoured() -> None:
    assert count_downloads([(100.0, 5_000, 1_000)], window_until=200.0) == []
    assert count_downloads([(100.0, 500, 1_000)], earlier=[(50.0, 500)]) == [0]
    # Earlier bytes inside the previous window are not part of the sum.
    assert count_downloads([(100.0, 500, 1_000)], window_until=60.0, earlier=[(50.0, 500)]) == []


def _replayed_from(requests: list[tuple[float, int, int]], split: int) -> list[int]:
    """What processing does when hits from ``split`` on are new: the state at the split comes
    from the downloads counted before it and the requests of the 24 hours before it."""
    before = count_downloads(requests[:split])
    start = requests[split][0]
    window_until = -math.inf
    for position in before:
        window_until = max(window_until, requests[position][0] + DAY)
    earlier = [(at, size) for at, size, _ in requests[:split] if at > start - DAY]
    after = count_downloads(requests[split:], window_until=window_until, earlier=earlier)
    return before + [split + position for position in after]


@pytest.mark.parametrize("seed", range(40))
def test_replaying_from_any_request_gives_the_same_downloads(seed: int) -> None:
    rng = random.Random(seed)
    at = 0.0
    requests = []
    for _ in range(rng.randint(2, 40)):
        at += rng.choice([1.0, 60.0, 3_600.0, 20_000.0, DAY, 2 * DAY])
        requests.append((at, rng.choice([2, 200, 500, 999, 1_000, 3_000]), 1_000))
    whole = count_downloads(requests)
    for split in range(1, len(requests)):
        assert _replayed_from(requests, split) == whole, split
