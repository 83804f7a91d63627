"""Tiny MaxMind-format databases for tests, written with mmdb-writer (City or Country shape)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmdb_writer import MMDBWriter
from netaddr import IPSet

# network -> (country, subdivision or None)
CITY_NETWORKS: dict[str, tuple[str, str | None]] = {
    "203.0.113.0/24": ("US", "CA"),
    "198.51.100.0/24": ("DE", "BE"),
    "2001:db8::/32": ("FR", "IDF"),
    "192.0.2.0/24": ("JP", None),  # a country without a subdivision
}


def _record(country: str, subdivision: str | None, *, city: bool) -> dict[str, Any]:
    record: dict[str, Any] = {
        "continent": {"code": "XX"},
        "country": {"iso_code": country, "names": {"en": f"Country {country}"}},
        "registered_country": {"iso_code": country},
    }
    if city and subdivision is not None:
        record["subdivisions"] = [
            {"iso_code": subdivision, "names": {"en": f"Region {subdivision}"}},
            {"iso_code": "ZZZ"},  # a smaller subdivision: never the one reported
        ]
        record["city"] = {"names": {"en": "Somewhere"}}
    return record


def build_geodb(
    path: Path,
    networks: dict[str, tuple[str, str | None]] | None = None,
    *,
    city: bool = True,
) -> Path:
    """Write a GeoLite2-City (or -Country) shaped database to ``path``; returns it."""
    writer = MMDBWriter(
        ip_version=6,
        ipv4_compatible=True,
        database_type="GeoLite2-City" if city else "GeoLite2-Country",
        languages=["en"],
        description="Amphora test database",
    )
    for network, (country, subdivision) in (networks or CITY_NETWORKS).items():
        writer.insert_network(IPSet([network]), _record(country, subdivision, city=city))
    path.parent.mkdir(parents=True, exist_ok=True)
    writer.to_db_file(str(path))
    return path
