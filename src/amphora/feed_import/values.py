"""Lenient readers for the values found in podcast feeds, and the check that keeps what is valid.

Feeds in the wild write dates, durations and flags in every shape (STANDARDS.md §6: import any
RSS 2.0 feed). Each reader here takes the raw text and returns a clean value or raises
``ValueError`` with a message fit for a :class:`~amphora.feed_import.parsed.Problem`; the caller
decides what to leave out. Pure functions, no I/O.

:func:`checked` validates a whole show or episode dict against its pydantic model and, instead of
failing, removes exactly what did not pass (one attribute, one list entry or one field), so one bad
value never costs the rest of the show.
"""

from __future__ import annotations

import re
import types
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from email.utils import parsedate_to_datetime
from functools import cache
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from amphora.feed_import.parsed import Problem
from amphora.kit.html import sanitize_html, truncate_html
from amphora.show.categories import APPLE_CATEGORIES

__all__ = [
    "HTML_MAX",
    "LANGUAGE",
    "checked",
    "clean",
    "html_value",
    "map_category",
    "normalise_language",
    "parse_bool",
    "parse_date",
    "parse_decimal",
    "parse_duration",
    "parse_explicit",
    "parse_int",
    "parse_number",
    "parse_uuid",
    "shorten",
]

# --- dates -------------------------------------------------------------------------------------

# Zone names seen in feeds, in minutes east of UTC. email.utils knows only the US and UTC ones and
# silently returns a naive (wrong) time for the others, so every name is rewritten before parsing.
_ZONE_MINUTES = {
    "UT": 0, "UTC": 0, "GMT": 0, "Z": 0, "WET": 0,
    "EST": -300, "EDT": -240, "CST": -360, "CDT": -300, "MST": -420, "MDT": -360,
    "PST": -480, "PDT": -420, "AKST": -540, "AKDT": -480, "HST": -600, "AST": -240, "ADT": -180,
    "BST": 60, "CET": 60, "CEST": 120, "MET": 60, "MEST": 120, "WEST": 60, "EET": 120,
    "EEST": 180, "MSK": 180, "IST": 330, "SGT": 480, "HKT": 480, "JST": 540, "KST": 540,
    "AWST": 480, "ACST": 570, "ACDT": 630, "AEST": 600, "AEDT": 660, "NZST": 720, "NZDT": 780,
}  # fmt: skip
_ZONE_NAMES = "|".join(sorted(_ZONE_MINUTES, key=len, reverse=True))
# A trailing zone: a name, an offset ("+0200", "+02:00", "+2") or both ("GMT+2", "UTC-05:30").
_TRAILING_ZONE = re.compile(
    rf"(?:^|\s)(?:(?P<name>{_ZONE_NAMES})\s*)?(?P<offset>[+-]\d{{1,2}}(?::?\d{{2}})?)?"
    r"\s*(?:\([^)]*\))?$",
    re.IGNORECASE,
)
_GLUED_ZONE = re.compile(r"(?<=\d)(?=[+-]\d{4}$|Z$|GMT$|UTC?$)")  # "10:00:00+0000"
_LEADING_WEEKDAY = re.compile(r"^(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*\.?,?\s*", re.IGNORECASE)
_TRAILING_WORD = re.compile(r"[A-Za-z]+$")
_ISO_START = re.compile(r"^\d{4}-\d{1,2}-\d{1,2}(?:$|[Tt ])")
_ISO_HOUR_24 = re.compile(r"[Tt ]24:00(?::00(?:\.0+)?)?")
_ISO_LONG_FRACTION = re.compile(r"(\.\d{6})\d+")
_MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MONTHS = {name: number for number, name in enumerate(_MONTH_NAMES, 1)}
# The fallback for what email.utils refuses: "15 Jun 2019", "Jun 15, 2019 10:00 AM", "15-Jun-19".
_LOOSE_DATE = re.compile(
    r"^(?:(?P<d1>\d{1,2})[\s-]+(?P<m1>[A-Za-z]{3,9})\.?|(?P<m2>[A-Za-z]{3,9})\.?\s+(?P<d2>\d{1,2}),?)"
    r"[\s,-]+(?P<y>\d{2}|\d{4})"
    r"(?:[\sT,]+(?P<H>\d{1,2})[:.](?P<M>\d{2})(?:[:.](?P<S>\d{2})(?:\.\d+)?)?\s*(?P<ampm>[AaPp][Mm])?)?$"
)


def _offset_minutes(name: str | None, offset: str | None) -> int | None:
    if name is None and offset is None:
        return None
    minutes = _ZONE_MINUTES[name.upper()] if name else 0
    if offset:
        sign = -1 if offset[0] == "-" else 1
        digits = offset[1:].replace(":", "")
        hours, mins = (digits, "0") if len(digits) <= 2 else (digits[:-2], digits[-2:])
        minutes += sign * (int(hours) * 60 + int(mins))
    if abs(minutes) >= 24 * 60:
        raise ValueError("the time zone offset is out of range")
    return minutes


def _iso(value: str) -> datetime:
    text = value.replace("t", "T").replace("z", "Z")
    text = re.sub(r"\s+(?=[+-]\d{2}:?\d{2}$|Z$)", "", text)  # "…00.000 -0500"
    text = _ISO_LONG_FRACTION.sub(r"\1", text)
    next_day = bool(_ISO_HOUR_24.search(text))  # ISO 8601 allows 24:00 for the end of a day
    if next_day:
        text = _ISO_HOUR_24.sub("T00:00:00", text)
    parsed = datetime.fromisoformat(text)
    return parsed + timedelta(days=1) if next_day else parsed


def _loose(text: str) -> datetime:
    match = _LOOSE_DATE.match(text)
    if match is None:
        raise ValueError("not a date")
    month = _MONTHS.get((match["m1"] or match["m2"])[:3].lower())
    if month is None:
        raise ValueError("unknown month")
    year = int(match["y"])
    if year < 100:  # the RFC 2822 rule for two-digit years
        year += 1900 if year > 68 else 2000
    hour = int(match["H"] or 0)
    if match["ampm"]:
        hour = hour % 12 + (12 if match["ampm"].lower() == "pm" else 0)
    day = int(match["d1"] or match["d2"])
    return datetime(year, month, day, hour, int(match["M"] or 0), int(match["S"] or 0))


def parse_date(raw: str) -> datetime | None:
    """An RFC 822/2822 date in any of its sloppy variants, or ISO 8601, as an aware UTC time.

    Empty input gives ``None``; something that is not a date raises ``ValueError``. A date without
    a zone is taken as UTC. The weekday is ignored (feeds often get it wrong).
    """
    text = " ".join(raw.split())
    if not text:
        return None
    try:
        if _ISO_START.match(text):
            parsed = _iso(text)
        else:
            text = _GLUED_ZONE.sub(" ", _LEADING_WEEKDAY.sub("", text))
            zone = _TRAILING_ZONE.search(text)
            minutes = None
            if zone is not None:
                minutes = _offset_minutes(zone["name"], zone["offset"])
                text = text[: zone.start()]
            word = _TRAILING_WORD.search(text)
            if word is not None and word.group(0).lower() not in {"am", "pm"}:
                raise ValueError("unknown time zone")
            try:
                if word is not None:  # email.utils would ignore AM/PM
                    raise ValueError("12-hour clock")
                parsed = parsedate_to_datetime(text + " +0000").replace(tzinfo=None)
            except (TypeError, ValueError, IndexError):
                parsed = _loose(text)
            if minutes is not None:
                parsed = parsed.replace(tzinfo=timezone(timedelta(minutes=minutes)))
    except (ValueError, OverflowError, KeyError) as exc:
        raise ValueError(f"'{raw.strip()}' is not a date we can read") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


# --- numbers, durations, flags -----------------------------------------------------------------

_CLOCK = re.compile(r"^(?:(?:(\d+):)?(\d+):)?(\d+(?:[.,]\d+)?)$")
_UNITS = re.compile(
    r"^(?:(?P<h>\d+(?:\.\d+)?)\s*h(?:ours?|rs?)?\.?)?\s*"
    r"(?:(?P<m>\d+(?:\.\d+)?)\s*m(?:in(?:ute)?s?)?\.?)?\s*"
    r"(?:(?P<s>\d+(?:\.\d+)?)\s*s(?:ec(?:ond)?s?)?\.?)?$",
    re.IGNORECASE,
)


def parse_duration(raw: str) -> float | None:
    """``itunes:duration`` in seconds: ``3600``, ``59:30``, ``1:02:03.5``, ``45 min``, ``1h 5m``."""
    text = raw.strip()
    if not text:
        return None
    clock = _CLOCK.match(text)
    if clock is not None:
        hours, minutes, seconds = clock.groups()
        secs = float(seconds.replace(",", "."))
        # Minutes may run past 59 only when they lead ("75:30"); after hours they may not.
        if (minutes is not None and secs >= 60) or (hours is not None and int(minutes) >= 60):
            raise ValueError(f"'{text}' is not a duration we can read")
        return int(hours or 0) * 3600 + int(minutes or 0) * 60 + secs
    units = _UNITS.match(text)
    if units is not None and any(units.groupdict().values()):
        h, m, s = (float(units[name] or 0) for name in "hms")
        return h * 3600 + m * 60 + s
    raise ValueError(f"'{text}' is not a duration we can read")


def parse_explicit(raw: str) -> bool:
    """``itunes:explicit``: Apple's ``true``/``false`` and the legacy ``yes``/``clean``/``no``."""
    value = raw.strip().lower()
    if value in {"yes", "true", "explicit"}:
        return True
    if value in {"no", "false", "clean"}:
        return False
    raise ValueError(f"'{raw.strip()}' is neither true nor false")


def parse_bool(raw: str) -> bool:
    """A ``yes``/``no`` (or ``true``/``false``) flag; empty means no."""
    value = raw.strip().lower()
    if value in {"yes", "true"}:
        return True
    if value in {"no", "false", ""}:
        return False
    raise ValueError(f"'{raw.strip()}' is neither yes nor no")


def parse_decimal(raw: str) -> Decimal:
    """A plain decimal number, normalised (``"3.50"`` → ``3.5``, ``"10"`` stays ``10``)."""
    try:
        value = Decimal(raw.strip())
    except InvalidOperation as exc:
        raise ValueError(f"'{raw.strip()}' is not a number") from exc
    if not value.is_finite():
        raise ValueError(f"'{raw.strip()}' is not a number")
    if value == value.to_integral_value():
        return value.quantize(Decimal(1))
    return value.normalize()


def parse_number(raw: str) -> Any:
    """An int or float when the text reads as one; else the text, for validation to report."""
    try:
        value = parse_decimal(raw)
    except ValueError:
        return raw
    return int(value) if value == value.to_integral_value() else float(value)


def parse_uuid(raw: str) -> str:
    """A UUID, checked but kept as written (``podcast:guid``)."""
    try:
        uuid.UUID(raw.strip())
    except ValueError:
        raise ValueError(f"'{raw.strip()}' is not a UUID") from None
    return raw.strip()


def parse_int(raw: str) -> int:
    """A whole number; ``"01"`` and ``"2.0"`` are accepted, ``"2.5"`` and ``"two"`` are not."""
    value = parse_decimal(raw)
    if value != value.to_integral_value():
        raise ValueError(f"'{raw.strip()}' is not a whole number")
    return int(value)


LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")  # schemas.Language
HTML_MAX = 50_000  # schemas.Html


def normalise_language(raw: str) -> str:
    """``en-US``/``en_US`` → ``en-us`` (the form Apple lists); validity is checked later."""
    return raw.strip().lower().replace("_", "-")


def html_value(raw: str) -> tuple[str | None, bool]:
    """Show notes sanitised and cut to what ``schemas.Html`` stores; True when it was cut."""
    clean = sanitize_html(raw) if raw else ""
    if len(clean) <= HTML_MAX:
        return clean or None, False
    return truncate_html(clean, HTML_MAX), True


def clean(value: Any) -> Any:
    """Leave out what a feed did not say: None, empty strings and empty lists, at any depth."""
    if isinstance(value, dict):
        pairs = ((key, clean(item)) for key, item in value.items())
        return {key: item for key, item in pairs if item is not None and item != "" and item != []}
    if isinstance(value, list):
        return [clean(item) for item in value]
    return value


def shorten(value: str, limit: int) -> str:
    """Cut plain text to ``limit`` characters, ending with an ellipsis."""
    if len(value) <= limit:
        return value
    return value[: max(limit - 1, 0)].rstrip() + "…"


# --- categories --------------------------------------------------------------------------------

# Apple's 2019 renames: the old (lower-cased) name → the current one. A parent mapped on its own
# also serves subcategories that exist under the new parent (Games & Hobbies > Video Games).
_LEGACY: dict[tuple[str, str | None], tuple[str, str | None]] = {
    ("arts", "literature"): ("Arts", "Books"),
    ("arts", "graphic arts"): ("Arts", "Visual Arts"),
    ("business", "business news"): ("News", "Business News"),
    ("business", "shopping"): ("Business", None),
    ("business", "management & marketing"): ("Business", "Management"),
    ("education", "educational technology"): ("Education", None),
    ("education", "higher education"): ("Education", None),
    ("education", "k-12"): ("Education", None),
    ("education", "language courses"): ("Education", "Language Learning"),
    ("education", "training"): ("Education", "Courses"),
    ("games & hobbies", None): ("Leisure", None),
    ("games & hobbies", "other games"): ("Leisure", "Games"),
    ("government & organizations", None): ("Government", None),
    ("government & organizations", "non-profit"): ("Business", "Non-Profit"),
    ("health", None): ("Health & Fitness", None),
    ("health", "fitness & nutrition"): ("Health & Fitness", "Fitness"),
    ("health", "self-help"): ("Education", "Self-Improvement"),
    ("news & politics", None): ("News", None),
    ("religion & spirituality", "other"): ("Religion & Spirituality", None),
    ("science & medicine", None): ("Science", None),
    ("science & medicine", "medicine"): ("Health & Fitness", "Medicine"),
    ("society & culture", "history"): ("History", None),
    ("sports & recreation", None): ("Sports", None),
    ("sports & recreation", "outdoor"): ("Sports", "Wilderness"),
    ("technology", "gadgets"): ("Technology", None),
    ("technology", "podcasting"): ("Technology", None),
    ("technology", "software how-to"): ("Education", "How To"),
    ("technology", "tech news"): ("News", "Tech News"),
}
_PARENTS = {name.lower(): name for name in APPLE_CATEGORIES}
_CHILDREN = {
    parent: {child.lower(): child for child in children}
    for parent, children in APPLE_CATEGORIES.items()
}


def _label(category: str, subcategory: str | None) -> str:
    return f"{category} > {subcategory}" if subcategory else category


def map_category(
    category: str, subcategory: str | None
) -> tuple[tuple[str, str | None] | None, str | None]:
    """Match an ``itunes:category`` to Apple's current list.

    Returns the ``(category, subcategory)`` to keep (``None``: nothing usable) and a note when
    the value had to change (an old name, other capitals, an unknown subcategory dropped).
    """
    parent, sub = category.strip(), (subcategory or "").strip() or None
    source = _label(parent, sub)
    key = (parent.lower(), sub.lower() if sub else None)
    if key in _LEGACY:
        found: tuple[str, str | None] = _LEGACY[key]
    else:
        renamed = _LEGACY.get((key[0], None))
        new_parent = _PARENTS.get(key[0]) or (renamed[0] if renamed else None)
        if new_parent is None:
            return None, f"'{source}' is not an Apple Podcasts category"
        new_sub = _CHILDREN[new_parent].get(key[1]) if key[1] else None
        if sub and new_sub is None:
            return (new_parent, None), (
                f"'{source}' is not an Apple Podcasts category; kept '{new_parent}'"
            )
        found = (new_parent, new_sub)
    if found == (parent, sub):
        return found, None
    return (
        found,
        f"'{source}' is not a current Apple Podcasts category; imported as '{_label(*found)}'",
    )


# --- keeping what validates --------------------------------------------------------------------

_DROPPED = object()  # marks list entries to remove once all errors of a round are handled
_MAX_ROUNDS = 100


def _unwrap(annotation: Any) -> Any:
    """The model (or other type) behind Optional / Annotated / list wrappers."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated or origin is list:
            annotation = get_args(annotation)[0]
        elif origin is Union or origin is types.UnionType:
            annotation = next(a for a in get_args(annotation) if a is not type(None))
        else:
            return annotation


@cache
def _required(model: type[BaseModel], loc: tuple[str, ...]) -> bool:
    """Whether the field at ``loc`` (list indexes left out) is required in its own model."""
    current: Any = model
    try:
        for name in loc[:-1]:
            current = _unwrap(current.model_fields[name].annotation)
        return bool(current.model_fields[loc[-1]].is_required())
    except (AttributeError, KeyError):
        return False


def _path(loc: tuple[int | str, ...]) -> str:
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc)[1:]


def _resolve(data: Any, loc: tuple[int | str, ...]) -> Any:
    for part in loc:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return _DROPPED
    return data


def _remove(data: dict[str, Any], loc: tuple[int | str, ...]) -> bool:
    parent = _resolve(data, loc[:-1])
    key = loc[-1]
    if isinstance(parent, list) and isinstance(key, int) and key < len(parent):
        changed = parent[key] is not _DROPPED
        parent[key] = _DROPPED
        return changed
    if isinstance(parent, dict) and key in parent:
        del parent[key]
        return True
    return False


def _sweep(value: Any) -> Any:
    if isinstance(value, dict):
        for key, item in value.items():
            value[key] = _sweep(item)
    elif isinstance(value, list):
        value[:] = [_sweep(item) for item in value if item is not _DROPPED]
    return value


def _fix(
    model: type[BaseModel], data: dict[str, Any], error: Any, note: Callable[[str, str], None]
) -> bool:
    """Remove (or shorten) what one validation error is about; False when nothing changed."""
    loc: tuple[int | str, ...] = tuple(error["loc"])
    if not loc:
        return False
    kind, limit = error["type"], (error.get("ctx") or {}).get("max_length")
    field = str(loc[0])
    current = _resolve(data, loc)
    if kind == "string_too_long" and isinstance(current, str) and limit:
        parent = _resolve(data, loc[:-1])
        parent[loc[-1]] = shorten(current, limit)
        note(field, f"{_path(loc)}: longer than {limit} characters; shortened")
        return True
    if kind == "too_long" and isinstance(current, list) and limit:
        del current[limit:]
        note(field, f"{_path(loc)}: more than {limit} entries; only the first {limit} kept")
        return True
    target = loc
    if kind == "missing":
        target = loc[:-1]
    # A required value that is wrong takes the object holding it along (a funding without a
    # usable URL is no funding); climb while the holder is itself required in its parent.
    names = tuple(p for p in target if isinstance(p, str))
    while len(target) > 1 and isinstance(target[-1], str) and _required(model, names):
        target, names = target[:-1], names[:-1]
    if not target:
        return False
    if kind == "missing":
        reason = f"{_path(loc)} is missing"
    else:
        reason = error["msg"] if target == loc else f"{_path(loc)}: {error['msg']}"
    if _remove(data, target):
        note(field, f"{_path(target)} left out: {reason}")
        return True
    return False


def checked(
    model: type[BaseModel],
    data: dict[str, Any],
    *,
    where: str,
    tags: Mapping[str, str],
    problems: list[Problem],
) -> dict[str, Any]:
    """``data`` validated by ``model``, minus what failed, as JSON-ready values.

    Every removal becomes a Problem whose ``field`` is the feed tag the value came from
    (``tags`` maps field names to tag names). ``data`` is modified in place.
    """

    def note(field: str, message: str) -> None:
        problems.append(Problem(where, tags.get(field, field), message))

    for _ in range(_MAX_ROUNDS):
        try:
            valid = model.model_validate(data)
        except ValidationError as exc:
            errors = exc.errors(include_url=False)
            changed = [_fix(model, data, error, note) for error in errors]
            if not any(changed):  # cannot pin it down: give up on the fields concerned
                for error in errors:
                    if error["loc"]:
                        data.pop(str(error["loc"][0]), None)
            _sweep(data)
            for key in [k for k, v in data.items() if v == [] or v is None]:
                del data[key]
            continue
        return valid.model_dump(mode="json", exclude_none=True)
    raise RuntimeError(f"could not make {model.__name__} valid for {where}")  # pragma: no cover
