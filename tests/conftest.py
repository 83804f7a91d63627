"""Test harness: the app on two backends, real SMTP, real S3, real PostgreSQL and Redis.

Every test that takes ``client`` (or ``runtime``) runs twice:

- ``sqlite``: the embedded defaults — SQLite, jobs in a SQLite file, local files, in-process
  rate limits;
- ``postgres``: the scaled-out shape — PostgreSQL, Redis (jobs, rate limits), S3 (moto).

The schema always comes from the Alembic migrations. Outside CI the ``postgres`` variant skips
when PostgreSQL or Redis is not reachable; with ``CI=true`` it fails instead.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from asgi_lifespan import LifespanManager

from amphora.app import create_app
from amphora.kit import migrate
from amphora.runtime import Runtime
from amphora.settings import Settings
from tests.catalog import Team, make_team
from tests.fakes.s3 import MotoS3, moto_s3_server
from tests.fakes.smtp import Mailbox, smtp_server

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
PG_ADMIN_URL = os.environ.get(
    "AMPHORA_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("AMPHORA_TEST_REDIS", "redis://127.0.0.1:6379/13")
BACKENDS = ["sqlite", "postgres"]


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    if _reachable(host, port):
        return
    message = f"{name} is not reachable at {host}:{port}"
    if IN_CI:
        pytest.fail(f"{message}, and CI=true requires it", pytrace=False)
    pytest.skip(f"{message} (start it to run the scaled-out variant)")


# --- external services --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[MotoS3]:
    with moto_s3_server() as server:
        yield server


@pytest.fixture(scope="session")
def smtp() -> Iterator[Mailbox]:
    with smtp_server() as mailbox:
        yield mailbox


@pytest.fixture
def mailbox(smtp: Mailbox) -> Mailbox:
    smtp.clear()
    return smtp


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (migrating once keeps the suite fast)."""
    path = tmp_path_factory.mktemp("template") / "amphora.db"
    migrate.upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    """A migrated PostgreSQL database used as the template of each test's database."""
    require_service("PostgreSQL", "127.0.0.1", 5432)
    name = f"amphora_tpl_{uuid.uuid4().hex[:8]}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    try:
        migrate.upgrade(_pg_url(name))
        yield name
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _pg_url(database: str) -> str:
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    return f"{base}/{database}"


async def _pg_admin(statement: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


# --- settings per backend -----------------------------------------------------------------------


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def settings_factory(
    backend: str,
    tmp_path: Path,
    smtp: Mailbox,
    request: pytest.FixtureRequest,
) -> Iterator[Any]:
    """Builds the Settings for this test's backend; extra keyword arguments override."""
    cleanups: list[Any] = []
    base: dict[str, Any] = {
        "env": "test",
        "data_dir": tmp_path / "data",
        "base_url": "http://testserver",
        "smtp_url": smtp.url,
        "mail_from": "Amphora <no-reply@amphora.test>",
        "log_level": "WARNING",
        "secret_key": "test-secret-" + "x" * 40,
        "job_workers": 2,
    }
    if backend == "sqlite":
        data = tmp_path / "data"
        data.mkdir(parents=True, exist_ok=True)
        shutil.copy(request.getfixturevalue("sqlite_template"), data / "amphora.db")
    else:
        require_service("Redis", "127.0.0.1", 6379)
        template = request.getfixturevalue("postgres_template")
        moto: MotoS3 = request.getfixturevalue("moto_s3")
        name = f"amphora_t_{uuid.uuid4().hex[:10]}"
        asyncio.run(_pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
        cleanups.append(
            lambda: asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        )
        bucket = moto.create_bucket()
        base.update(
            database_url=_pg_url(name),
            redis_url=REDIS_URL,
            storage_url=f"s3://{bucket}/media",
            s3_endpoint_url=moto.endpoint_url,
            s3_access_key_id=moto.access_key_id,
            s3_secret_access_key=moto.secret_access_key,
            s3_allow_http=True,
        )
        _flush_redis()

    def make(**overrides: Any) -> Settings:
        return Settings(**{**base, **overrides})

    yield make
    for cleanup in cleanups:
        cleanup()


def _flush_redis() -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.flushdb()
    finally:
        client.close()


@pytest.fixture
def settings(settings_factory: Any) -> Settings:
    settings: Settings = settings_factory()
    return settings


@pytest_asyncio.fixture
async def app_client(settings: Settings) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    # Both variants run the job consumer in-process, as `amphora serve` does when embedded
    # (at scale the same consumer runs in `amphora worker`).
    app = create_app(settings, run_jobs=True)
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30):
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield app, client


@pytest.fixture
def client(app_client: tuple[Any, httpx.AsyncClient]) -> httpx.AsyncClient:
    return app_client[1]


@pytest.fixture
def runtime(app_client: tuple[Any, httpx.AsyncClient]) -> Runtime:
    runtime: Runtime = app_client[0].state.runtime
    return runtime


@pytest_asyncio.fixture
async def team(client: httpx.AsyncClient, mailbox: Mailbox) -> Team:
    return await make_team(client, mailbox)
