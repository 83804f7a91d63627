"""Audience tests: the OPAWG data set from the shared test data, and the app with it. Tests
run processing themselves when they need figures (the periodic job may run too: processing
is idempotent, so the figures are the same)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from asgi_lifespan import LifespanManager

from amphora.app import create_app
from amphora.runtime import Runtime
from amphora.settings import Settings
from tests.conftest import IN_CI

USER_AGENTS = Path(__file__).resolve().parents[3] / "shared" / "data" / "user-agents-v2"


def user_agents_dir() -> Path:
    if not (USER_AGENTS / "bots.json").exists():
        message = f"the OPAWG data set is not there ({USER_AGENTS})"
        if IN_CI:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return USER_AGENTS


@pytest.fixture
def analytics_settings(settings_factory: Any) -> Settings:
    settings: Settings = settings_factory(user_agents_dir=user_agents_dir())
    return settings


@pytest_asyncio.fixture
async def analytics_app(
    analytics_settings: Settings,
) -> AsyncIterator[tuple[Runtime, httpx.AsyncClient]]:
    app = create_app(analytics_settings, run_jobs=True)
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30):
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield app.state.runtime, client
