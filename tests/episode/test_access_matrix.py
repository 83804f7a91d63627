"""Every catalog route, for the owner, each role and a stranger: who may, who gets 403, who 404."""

from __future__ import annotations

from typing import Any

import httpx

from amphora.media.testaudio import tone_mp3
from tests.catalog import Team, image_bytes
from tests.helpers import API

OWNER, EDITOR, VIEWER, STRANGER = "owner", "editor", "viewer", "stranger"


async def test_route_role_matrix(client: httpx.AsyncClient, team: Team) -> None:
    show = team.show_url
    accounts = {
        OWNER: team.owner,
        EDITOR: team.editor,
        VIEWER: team.viewer,
        STRANGER: team.stranger,
    }

    async def fresh_episode() -> str:
        made = await client.post(
            f"{show}/episodes", json={"title": "E"}, headers=team.owner.headers
        )
        return str(made.json()["id"])

    async def deleted_episode() -> str:
        episode_id = await fresh_episode()
        await client.delete(f"{API}/episodes/{episode_id}", headers=team.owner.headers)
        return episode_id

    mp3 = tone_mp3(1)
    art = image_bytes(1400, 1400)
    # (method, url maker, request kwargs, roles allowed); others: 403 for members, 404 strangers
    routes: list[tuple[str, Any, dict[str, Any], set[str]]] = [
        ("GET", lambda: show, {}, {OWNER, EDITOR, VIEWER}),
        ("GET", lambda: f"{show}/episodes", {}, {OWNER, EDITOR, VIEWER}),
        ("GET", lambda: f"{show}/episodes/next-number", {}, {OWNER, EDITOR, VIEWER}),
        ("GET", lambda: f"{show}/series", {}, {OWNER, EDITOR, VIEWER}),
        ("GET", lambda: f"{show}/members", {}, {OWNER, EDITOR, VIEWER}),
        ("PATCH", lambda: show, {"json": {"subtitle": "s"}}, {OWNER, EDITOR}),
        ("POST", lambda: f"{show}/episodes", {"json": {"title": "t"}}, {OWNER, EDITOR}),
        ("POST", lambda: f"{show}/series", {"json": {"name": None}}, {OWNER, EDITOR}),
        ("PUT", lambda: f"{show}/artwork", {"files": {"file": ("a.jpg", art)}}, {OWNER, EDITOR}),
        (
            "POST",
            lambda: f"{show}/members",
            {"json": {"email": "x@example.com", "role": "viewer"}},
            {OWNER},
        ),
    ]
    episode_routes: list[tuple[str, str, dict[str, Any], set[str]]] = [
        ("GET", "", {}, {OWNER, EDITOR, VIEWER}),
        ("PATCH", "", {"json": {"subtitle": "s"}}, {OWNER, EDITOR}),
        ("DELETE", "", {}, {OWNER, EDITOR}),
        (
            "PUT",
            "/audio",
            {"content": mp3, "headers": {"content-type": "audio/mpeg"}},
            {OWNER, EDITOR},
        ),
        ("PUT", "/artwork", {"files": {"file": ("a.jpg", art)}}, {OWNER, EDITOR}),
        (
            "POST",
            "/transcripts",
            {"files": {"file": ("t.srt", b"1\n00:00:00,000 --> 00:00:01,000\nx\n")}},
            {OWNER, EDITOR},
        ),
        (
            "PUT",
            "/chapters",
            {"json": {"version": "1.2.0", "chapters": [{"startTime": 0, "title": "A"}]}},
            {OWNER, EDITOR},
        ),
        ("DELETE", "/chapters", {}, {OWNER, EDITOR}),
    ]

    async def check(
        role: str, method: str, url: str, kwargs: dict[str, Any], allowed: set[str]
    ) -> None:
        headers = {**accounts[role].headers, **kwargs.get("headers", {})}
        rest = {k: v for k, v in kwargs.items() if k != "headers"}
        response = await client.request(method, url, headers=headers, **rest)
        if role in allowed:
            assert response.status_code < 400 or response.status_code == 422, (
                role,
                method,
                url,
                response.text,
            )
        elif role == STRANGER:
            assert response.status_code == 404, (role, method, url, response.status_code)
        else:
            assert response.status_code == 403, (role, method, url, response.status_code)

    for role in (STRANGER, VIEWER, EDITOR, OWNER):
        for method, make_url, kwargs, allowed in routes:
            await check(role, method, make_url(), kwargs, allowed)
        for method, suffix, kwargs, allowed in episode_routes:
            await check(
                role, method, f"{API}/episodes/{await fresh_episode()}{suffix}", kwargs, allowed
            )
        await check(
            role, "POST", f"{API}/episodes/{await deleted_episode()}/restore", {}, {OWNER, EDITOR}
        )
        upload = {
            "filename": "a.mp3",
            "size": 10,
            "content_type": "audio/mpeg",
            "episode_id": await fresh_episode(),
        }
        await check(role, "POST", f"{API}/uploads", {"json": upload}, {OWNER, EDITOR})

    # Show-level deletion and restore: admins only (the owner runs last, so the show survives
    # every other role's attempt).
    for role in (STRANGER, VIEWER, EDITOR):
        await check(role, "DELETE", show, {}, {OWNER})
    await check(OWNER, "DELETE", show, {}, {OWNER})
    for role in (STRANGER, VIEWER, EDITOR):
        await check(role, "POST", f"{show}/restore", {}, {OWNER})
    await check(OWNER, "POST", f"{show}/restore", {}, {OWNER})
