"""The ``Range`` request header (RFC 9110 §14), as a pure function of the header and a size.

Only the ``bytes`` unit and a single range are honoured:

* no header, another unit, or a header that does not parse: the header is ignored, and the
  whole representation is sent with ``200`` (RFC 9110 §14.2: a server MAY ignore Range, and
  MUST ignore one it cannot parse);
* ``bytes=a-b``, ``bytes=a-``, ``bytes=-n``: one range, answered with ``206``; a last position
  past the end is clamped, a suffix longer than the file selects the whole file;
* a range that starts at or after the end, ``bytes=-0``, or any range of an empty file:
  ``416`` with ``Content-Range: bytes */N``.

**Several ranges** (``bytes=0-1,5-6``) are ignored and the whole file is sent with ``200``.
The RFC does not let a server answer a multi-range request with a single ``206`` part (that
would be a ``multipart/byteranges`` body, §14.6), and ignoring the header is always allowed.
Podcast players ask for one range at a time (Apple's player probes ``bytes=0-1`` and then
reads single ranges; it never sends a range set), so a multipart encoder would serve nobody.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

__all__ = [
    "FULL",
    "MAX_RANGE_HEADER",
    "Full",
    "Partial",
    "RangeResult",
    "Unsatisfiable",
    "parse_range",
]

# Far longer than any real single range ("bytes=" + two 20-digit numbers); a longer header is
# ignored rather than parsed.
MAX_RANGE_HEADER: Final = 256

# RFC 9110: int-range = first-pos "-" [ last-pos ]; suffix-range = "-" suffix-length;
# positions are 1*DIGIT (ASCII digits only, no signs, no inner whitespace).
_SPEC = re.compile(r"([0-9]*)-([0-9]*)")


@dataclass(frozen=True, slots=True)
class Full:
    """Send everything with ``200`` (no usable Range header)."""


@dataclass(frozen=True, slots=True)
class Partial:
    """Send bytes ``start`` to ``end`` (both inclusive) with ``206``."""

    start: int
    end: int
    size: int  # of the whole representation

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    @property
    def content_range(self) -> str:
        return f"bytes {self.start}-{self.end}/{self.size}"


@dataclass(frozen=True, slots=True)
class Unsatisfiable:
    """Answer ``416`` with ``Content-Range: bytes */size``."""

    size: int

    @property
    def content_range(self) -> str:
        return f"bytes */{self.size}"


RangeResult = Full | Partial | Unsatisfiable
FULL: Final = Full()


def parse_range(header: str | None, size: int) -> RangeResult:
    """What to send for ``header`` (the raw ``Range`` value) on a resource of ``size`` bytes."""
    if size < 0:
        raise ValueError(f"size must be >= 0, got {size}")
    if header is None or len(header) > MAX_RANGE_HEADER:
        return FULL
    unit, sep, range_set = header.partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return FULL  # no unit, or one we do not serve (RFC 9110 §14.1: ignore it)
    # A list may carry empty elements and whitespace around its commas (RFC 9110 §5.6.1).
    specs = [part.strip(" \t") for part in range_set.split(",")]
    specs = [spec for spec in specs if spec]
    if len(specs) != 1:
        return FULL  # nothing, or a range set: see the module docstring
    match = _SPEC.fullmatch(specs[0])
    if match is None:
        return FULL
    first, last = match.groups()
    if not first:
        if not last:
            return FULL  # "bytes=-"
        suffix = int(last)
        if suffix == 0 or size == 0:
            return Unsatisfiable(size)
        return Partial(max(0, size - suffix), size - 1, size)
    start = int(first)
    if last and int(last) < start:
        return FULL  # an invalid range-spec makes the whole header invalid
    if start >= size:
        return Unsatisfiable(size)
    end = min(int(last), size - 1) if last else size - 1
    return Partial(start, end, size)
