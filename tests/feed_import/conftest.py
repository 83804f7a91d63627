"""Fixtures of the import tests: the old host, settings that may reach it, an account."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from amphora.settings import Settings
from tests.fakes.oldhost import OldHost, old_host
from tests.fakes.smtp import Mailbox
from tests.helpers import Account, verified_account


@pytest.fixture
def host() -> Iterator[OldHost]:
    with old_host() as server:
        yield server


@pytest.fixture
def settings(settings_factory: Any) -> Settings:
    # The old host is on loopback: allowed here as an intranet would be.
    settings: Settings = settings_factory(
        fetch_allowed_networks=["127.0.0.0/8"], import_feed_deadline_seconds=5
    )
    return settings


@pytest.fixture
async def account(client: httpx.AsyncClient, mailbox: Mailbox) -> Account:
    return await verified_account(client, mailbox)
