"""`amphora serve --demo` seeds a creator, a show with artwork and three episodes with audio."""

from __future__ import annotations

import httpx

from amphora.demo import DEMO_EMAIL, seed_demo
from amphora.runtime import Runtime
from tests.helpers import API, bearer, login


async def test_demo_seed_is_complete_and_idempotent(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    first = await seed_demo(runtime)
    again = await seed_demo(runtime)
    assert first == again and first.email == DEMO_EMAIL
    token = (await login(client, DEMO_EMAIL, first.password)).json()["access_token"]
    shows = (await client.get(f"{API}/shows", headers=bearer(token))).json()["items"]
    assert len(shows) == 1 and shows[0]["artwork"]["width"] == 1400
    episodes = (
        await client.get(f"{API}/shows/{shows[0]['id']}/episodes", headers=bearer(token))
    ).json()["items"]
    assert len(episodes) == 3
    assert all(e["status"] == "published" for e in episodes)
    assert all(e["media"]["content_type"] == "audio/mpeg" for e in episodes)
    assert all(abs(e["media"]["duration_s"] - 20) < 0.2 for e in episodes)
    assert len(await runtime.storage.list_keys("media")) == 3
