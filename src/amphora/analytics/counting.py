"""The IAB download rules (STANDARDS.md §5) as pure functions over one listener's requests for
one episode. No database, no HTTP: ``processing`` feeds these and stores what they return.

The rules, as applied here:

* Only ``GET`` requests that delivered bytes take part (``HEAD``, errors and ``304`` never do).
  A request redirected to object storage (``302``) delivered what it asked for: its range, or
  the whole file without one (``requested_bytes``, recorded with the hit).
* The bytes delivered to one listener key (client address, IPv6 as its /64, plus the exact
  User-Agent) for one episode are summed over the requests of the last 24 hours; a download
  counts at the request that brings the sum to one minute of audio
  (``id3_size + ceil(bitrate / 8 * 60)``), or to the whole file when it is shorter than that.
* A request of at most 2 bytes (Apple's ``bytes=0-1`` probe) adds its bytes but never makes a
  download on its own: at least one larger request must be part of the sum.
* One download per key and episode per rolling 24 hours: requests in the 24 hours after a
  counted download belong to it, and the next sum starts after that window.
* The download is dated on the UTC day (and hour) the threshold was reached.

Every decision depends only on the last counted download and the requests of the 24 hours
before, so a replay that starts anywhere with that state gives the same downloads: this is
what makes processing incremental, correct for late hits, and idempotent.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Sequence

from amphora.delivery.ranges import Full, Partial, parse_range

__all__ = [
    "DAY",
    "DEFAULT_BITRATE",
    "PROBE_BYTES",
    "count_downloads",
    "requested_bytes",
    "threshold_bytes",
]

DAY = 86400.0
PROBE_BYTES = 2
# When a file's bitrate is unknown (media left on another host): 128 kbit/s, the commonest.
DEFAULT_BITRATE = 128_000
REDIRECTS = frozenset({301, 302, 303, 307, 308})


def threshold_bytes(*, size: int | None, bitrate: int | None, id3_size: int | None) -> int:
    """Bytes that make a download: one minute of audio after the ID3 tag, or the whole file
    when it is shorter than that."""
    minute = (id3_size or 0) + math.ceil((bitrate or DEFAULT_BITRATE) / 8 * 60)
    return min(size, minute) if size else minute


def requested_bytes(range_header: str | None, size: int) -> int:
    """What a request redirected to object storage asks for: its range, or the whole file
    (recorded as the bytes the redirect delivered: they travel from the store, where we
    cannot see them)."""
    wanted = parse_range(range_header, size)
    if isinstance(wanted, Full):
        return size
    if isinstance(wanted, Partial):
        return wanted.length
    return 0


def count_downloads(
    requests: Sequence[tuple[float, int, int]],
    *,
    window_until: float = -math.inf,
    earlier: Iterable[tuple[float, int]] = (),
) -> list[int]:
    """The positions in ``requests`` at which a download counts.

    ``requests``: ``(unix time, bytes delivered, threshold)`` for one key and one episode, in
    time order, each with more than 0 bytes. ``window_until``: the end of the 24-hour window
    of the last download counted before the first of them; ``earlier``: ``(time, bytes)`` of
    the key's requests in the 24 hours before the first one (their sum did not reach the
    threshold, or a download would have been counted).
    """
    pending: deque[tuple[float, int]] = deque()
    total = 0
    real = 0  # requests in the sum larger than a probe
    for at, size in earlier:
        if at >= window_until:
            pending.append((at, size))
            total += size
            real += size > PROBE_BYTES
    counted: list[int] = []
    for position, (at, size, threshold) in enumerate(requests):
        if at < window_until:
            continue  # part of the download already counted
        horizon = at - DAY
        while pending and pending[0][0] <= horizon:
            _, old = pending.popleft()
            total -= old
            real -= old > PROBE_BYTES
        pending.append((at, size))
        total += size
        real += size > PROBE_BYTES
        if total >= threshold and real:
            counted.append(position)
            window_until = at + DAY
            pending.clear()
            total = real = 0
    return counted
