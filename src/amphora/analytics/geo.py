"""Where a client address is: country and region from a MaxMind-format database (optional).

``AMPHORA_GEOIP_DATABASE`` names a GeoLite2/GeoIP2 City or Country file (or any database of
that shape). Hits are located when they are recorded or imported, so the address itself never
has to be kept (STANDARDS.md §5); without a database every hit is simply "nowhere known".

A database that is configured but cannot be opened stops the app at start-up
(:class:`GeoDatabaseError`), never a request later. A lookup costs a few microseconds in the C
reader; a small memo per address makes the repeats (a podcast app asks for one file in many
ranges, a log holds many lines per listener) cheaper still.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import maxminddb

from amphora.kit.errors import AmphoraError
from amphora.settings import Settings

__all__ = ["NOWHERE", "GeoDatabaseError", "GeoIP", "geoip_for"]

Location = tuple[str | None, str | None]
NOWHERE: Location = (None, None)
MEMO_MAX = 50_000  # addresses remembered per database (cleared, not evicted, when full)
REGION_MAX = 8  # the column's width: "US-CA", "GB-ENG", "FR-IDF"


class GeoDatabaseError(AmphoraError):
    status_code = 503
    code = "geoip_unavailable"
    message = "The GeoIP database could not be opened."


def _country(record: dict[str, Any]) -> str | None:
    country = record.get("country")
    code = country.get("iso_code") if isinstance(country, dict) else None
    if isinstance(code, str) and len(code) == 2 and code.isascii() and code.isalpha():
        return code.upper()
    return None


def _region(record: dict[str, Any], country: str) -> str | None:
    # City databases list subdivisions from the largest to the smallest: the first is the
    # state, province or (GB) nation that ISO 3166-2 names.
    subdivisions = record.get("subdivisions")
    if not isinstance(subdivisions, list) or not subdivisions:
        return None
    first = subdivisions[0]
    code = first.get("iso_code") if isinstance(first, dict) else None
    if not isinstance(code, str) or not code.isascii() or not code.isalnum():
        return None
    region = f"{country}-{code.upper()}"
    return region if len(region) <= REGION_MAX else None


def location_of(record: Any) -> Location:
    """(ISO country code, ``"<country>-<subdivision>"``) of a City or Country record."""
    if not isinstance(record, dict):
        return NOWHERE
    country = _country(record)
    if country is None:
        return NOWHERE
    return country, _region(record, country)


class GeoIP:
    """An open MaxMind-format database. ``locate`` never raises."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._reader = maxminddb.open_database(str(path), maxminddb.MODE_AUTO)
        except (OSError, ValueError, maxminddb.InvalidDatabaseError) as exc:
            raise GeoDatabaseError(
                f"AMPHORA_GEOIP_DATABASE={path} could not be opened as a MaxMind database "
                f"(a GeoLite2/GeoIP2 City or Country .mmdb file): {exc}"
            ) from exc
        self.database_type = str(self._reader.metadata().database_type)
        self._memo: dict[str, Location] = {}

    def locate(self, address: str) -> Location:
        """Country code and region of ``address`` (IPv4 or IPv6); ``(None, None)`` when the
        database does not know it or it is no address at all."""
        memo = self._memo
        found = memo.get(address)
        if found is not None:
            return found
        # An IPv4 client seen through a dual-stack socket; not every database aliases these.
        lookup = address[7:] if address[:7].lower() == "::ffff:" and "." in address else address
        try:
            found = location_of(self._reader.get(lookup))
        except Exception:  # garbage in, "nowhere" out: a hit is never refused over it
            found = NOWHERE
        if len(memo) >= MEMO_MAX:
            memo.clear()
        memo[address] = found
        return found

    def close(self) -> None:
        self._reader.close()


_OPEN: dict[tuple[Path, int], GeoIP] = {}
_OPEN_LOCK = threading.Lock()


def geoip_for(settings: Settings) -> GeoIP | None:
    """The configured database, opened once per file (a new file at the same path, as the
    monthly GeoLite2 updates bring, is opened anew by the next caller; the app's recorder keeps
    the one it started with until it restarts). None when no database is configured; raises
    :class:`GeoDatabaseError` when one is configured but does not open."""
    path = settings.geoip_database
    if path is None:
        return None
    path = path.expanduser()
    try:
        version = path.stat().st_mtime_ns
    except OSError as exc:
        raise GeoDatabaseError(
            f"AMPHORA_GEOIP_DATABASE={path} could not be opened: {exc.strerror or exc}"
        ) from exc
    with _OPEN_LOCK:
        geo = _OPEN.get((path, version))
        if geo is None:
            geo = GeoIP(path)
            for stale in [k for k in _OPEN if k[0] == path]:
                del _OPEN[stale]  # whoever still holds it keeps using it
            _OPEN[(path, version)] = geo
        return geo
