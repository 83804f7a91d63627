"""Fixtures of the feed tests: the fake aggregators (WebSub hub, Podcast Index, podping)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.hubs import FakeHubs, hubs_server


@pytest.fixture(scope="session")
def hubs_session() -> Iterator[FakeHubs]:
    with hubs_server() as server:
        yield server


@pytest.fixture
def hubs(hubs_session: FakeHubs) -> FakeHubs:
    hubs_session.clear()
    return hubs_session
