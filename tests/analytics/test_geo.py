"""GeoIP: lookups in a MaxMind-format database, and hits located when they are recorded."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from amphora.analytics.geo import GeoDatabaseError, GeoIP, geoip_for
from amphora.app import create_app
from amphora.models import Hit
from amphora.settings import Settings
from tests.analytics.geodb import build_geodb
from tests.delivery.seed import hits_of, seed_episode, seed_show

# --- lookups -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def city_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_geodb(tmp_path_factory.mktemp("geo") / "city.mmdb")


def test_ipv4_and_ipv6_lookups(city_db: Path) -> None:
    geo = GeoIP(city_db)
    assert geo.locate("203.0.113.7") == ("US", "US-CA")
    assert geo.locate("198.51.100.250") == ("DE", "DE-BE")
    assert geo.locate("2001:db8:7:1::10") == ("FR", "FR-IDF")
    assert geo.locate("2001:DB8::1") == ("FR", "FR-IDF")
    assert geo.locate("::ffff:203.0.113.7") == ("US", "US-CA")  # IPv4 through a v6 socket
    assert geo.locate("192.0.2.1") == ("JP", None)  # no subdivision known
    assert geo.locate("203.0.113.7") == ("US", "US-CA")  # again (remembered)


@pytest.mark.parametrize(
    "address",
    ["8.8.8.8", "2001:db9::1", "10.0.0.1", "", "unknown", "203.0.113", "999.1.1.1", "fe80::1%eth0"],
)
def test_unknown_and_garbage_addresses_are_nowhere(city_db: Path, address: str) -> None:
    assert GeoIP(city_db).locate(address) == (None, None)


def test_country_database_and_odd_records(tmp_path: Path) -> None:
    country = build_geodb(tmp_path / "country.mmdb", city=False)
    assert GeoIP(country).locate("203.0.113.7") == ("US", None)
    odd = build_geodb(
        tmp_path / "odd.mmdb",
        {"203.0.113.0/24": ("usa", "CA"), "198.51.100.0/24": ("GB", "TOOLONG")},
    )
    geo = GeoIP(odd)
    assert geo.locate("203.0.113.7") == (None, None)  # not an ISO code
    assert geo.locate("198.51.100.7") == ("GB", None)  # a region that does not fit: dropped


def test_geoip_for_settings(tmp_path: Path, city_db: Path) -> None:
    assert geoip_for(Settings(data_dir=tmp_path, geoip_database=None)) is None
    first = geoip_for(Settings(data_dir=tmp_path, geoip_database=city_db))
    assert first is not None
    assert geoip_for(Settings(data_dir=tmp_path, geoip_database=city_db)) is first  # opened once
    with pytest.raises(GeoDatabaseError, match="could not be opened"):
        geoip_for(Settings(data_dir=tmp_path, geoip_database=tmp_path / "missing.mmdb"))
    junk = tmp_path / "junk.mmdb"
    junk.write_bytes(b"not a database" * 100)
    with pytest.raises(GeoDatabaseError, match="MaxMind"):
        geoip_for(Settings(data_dir=tmp_path, geoip_database=junk))


# --- through the app -----------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[Any]:
    app = create_app(settings, run_jobs=False)
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30):
        yield app


def client_from(app: Any, ip: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(ip, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def test_enclosure_hits_are_located(settings_factory: Any, tmp_path: Path) -> None:
    database = build_geodb(tmp_path / "geo" / "city.mmdb")
    async with serving(settings_factory(geoip_database=database)) as app:
        runtime = app.state.runtime
        episode = await seed_episode(runtime, await seed_show(runtime))
        for ip in ("203.0.113.7", "2001:db8:7:1::10", "192.0.2.9", "8.8.4.4"):
            async with client_from(app, ip) as client:
                response = await client.get(episode.url(), headers={"Range": "bytes=0-1"})
                assert response.status_code in (206, 302)
        await app.state.hits.flush()
        rows = await hits_of(runtime)
    assert [(h.country, h.region) for h in rows] == [
        ("US", "US-CA"),
        ("FR", "FR-IDF"),
        ("JP", None),
        (None, None),
    ]
    stored = " ".join(str(getattr(row, c.key)) for row in rows for c in Hit.__table__.columns)
    assert not any(ip in stored for ip in ("203.0.113", "2001:db8", "192.0.2", "8.8.4.4"))


async def test_without_a_database_hits_have_no_place(settings_factory: Any) -> None:
    async with serving(settings_factory()) as app:
        runtime = app.state.runtime
        episode = await seed_episode(runtime, await seed_show(runtime))
        async with client_from(app, "203.0.113.7") as client:
            await client.get(episode.url())
        await app.state.hits.flush()
        rows = await hits_of(runtime)
    assert [(h.country, h.region) for h in rows] == [(None, None)]


def test_a_database_that_does_not_open_stops_the_app_at_start(
    settings_factory: Any, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.mmdb"
    broken.write_text("not a database")
    with pytest.raises(GeoDatabaseError, match="AMPHORA_GEOIP_DATABASE"):
        create_app(settings_factory(geoip_database=broken), run_jobs=False)
