"""Shows through the API: every field, roles, concurrency, trash, artwork, series."""

from __future__ import annotations

import io

import httpx
from PIL import Image

from amphora.runtime import Runtime
from tests.catalog import Team, image_bytes
from tests.fakes.smtp import Mailbox
from tests.helpers import API, login, register, unique_email, verified_account

FULL_SHOW = {
    "title": "Café Stories: Vol. 1",
    "subtitle": "Tales over coffee",
    "description": '<p>Hello <script>alert(1)</script><a href="javascript:x()">x</a> '
    '<a href="https://example.com">site</a></p>',
    "language": "fr-ca",
    "categories": [
        {"category": "Society & Culture", "subcategory": "Places & Travel"},
        {"category": "Technology"},
    ],
    "explicit": True,
    "show_type": "serial",
    "author": "Ada L.",
    "owner_name": "Ada Lovelace",
    "owner_email": "ada@example.com",
    "copyright": "© 2026 Ada",
    "link": "https://cafe.example.com/",
    "medium": "podcast",
    "locked": True,
    "complete": False,
    "block": {"all": False, "platforms": ["youtube", "spotify"]},
    "funding": [{"url": "https://example.com/support", "label": "Support us"}],
    "persons": [
        {
            "name": "Ada Lovelace",
            "role": "host",
            "group": "cast",
            "img": "https://example.com/a.jpg",
        }
    ],
    "locations": [
        {"name": "Montréal", "geo": "geo:45.5,-73.56", "osm": "R8508277", "country": "CA"}
    ],
    "license": {"identifier": "cc-by-4.0", "url": "https://creativecommons.org/licenses/by/4.0/"},
    "podroll": [{"feed_guid": "917393e3-1b1e-5cef-ace4-edaa54e1f810", "title": "Podcasting 2.0"}],
    "update_frequency": {"text": "Weekly", "rrule": "FREQ=WEEKLY"},
    "trailers": [
        {
            "title": "Coming soon",
            "url": "https://example.com/trailer.mp3",
            "pubdate": "2026-01-05T10:00:00Z",
            "length": 12345,
            "type": "audio/mpeg",
            "season": 1,
        }
    ],
    "value": {
        "type": "lightning",
        "method": "keysend",
        "suggested": "0.00000005000",
        "recipients": [{"name": "Ada", "type": "node", "address": "02abc", "split": 100}],
    },
    "txt": [{"value": "verify-123", "purpose": "applepodcastsverify"}],
    "social_interact": [{"protocol": "activitypub", "uri": "https://social.example/@cafe/1"}],
    "chat": {"server": "irc.example.net", "protocol": "irc", "space": "#cafe"},
}


async def test_a_verified_creator_builds_a_complete_show(
    client: httpx.AsyncClient, mailbox: Mailbox
) -> None:
    owner = await verified_account(client, mailbox)
    created = await client.post(f"{API}/shows", json=FULL_SHOW, headers=owner.headers)
    assert created.status_code == 201, created.text
    show = created.json()
    assert show["slug"] == "cafe-stories-vol-1"
    assert show["role"] == "admin" and show["owner_id"] == owner.id
    assert created.headers["ETag"] == '"1"'
    assert "<script>" not in show["description"] and "javascript:" not in show["description"]
    assert 'href="https://example.com"' in show["description"]
    fetched = (await client.get(f"{API}/shows/{show['id']}", headers=owner.headers)).json()
    for field in ("categories", "persons", "funding", "podroll", "txt", "chat", "block", "license"):
        assert fetched[field] == show[field]
    assert fetched["categories"][0] == {
        "category": "Society & Culture",
        "subcategory": "Places & Travel",
    }
    assert fetched["trailers"][0]["length"] == 12345
    assert fetched["value"]["recipients"][0]["split"] == 100
    assert fetched["locations"][0]["osm"] == "R8508277"

    again = await client.post(
        f"{API}/shows", json={"title": FULL_SHOW["title"]}, headers=owner.headers
    )
    assert again.json()["slug"] == "cafe-stories-vol-1-2"
    taken = await client.post(
        f"{API}/shows", json={"title": "X", "slug": "cafe-stories-vol-1"}, headers=owner.headers
    )
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "slug_taken"


async def test_only_verified_accounts_create_shows(client: httpx.AsyncClient) -> None:
    email = unique_email()
    await register(client, email)
    token = (await login(client, email)).json()["access_token"]
    refused = await client.post(
        f"{API}/shows", json={"title": "Nope"}, headers={"Authorization": f"Bearer {token}"}
    )
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "email_not_verified"


async def test_invalid_fields_are_refused(client: httpx.AsyncClient, mailbox: Mailbox) -> None:
    owner = await verified_account(client, mailbox)
    cases = [
        {"title": "x", "categories": [{"category": "Technology", "subcategory": "Gadgets"}]},
        {"title": "x", "categories": [{"category": "technology"}]},  # case-sensitive
        {"title": "x" * 256},
        {"title": ""},
        {"title": "x", "slug": "Not A Slug"},
        {"title": "x", "language": "english"},
        {"title": "x", "show_type": "weekly"},
        {"title": "x", "funding": [{"url": "ftp://example.com", "label": "x"}]},
        {"title": "x", "persons": [{"name": "n" * 129}]},
        {"title": "x", "unknown_field": 1},
    ]
    for body in cases:
        response = await client.post(f"{API}/shows", json=body, headers=owner.headers)
        assert response.status_code == 422, body
    listed = await client.get(f"{API}/shows", headers=owner.headers)
    assert listed.json()["items"] == []


async def test_roles(client: httpx.AsyncClient, team: Team) -> None:
    url = team.show_url
    for account in (team.owner, team.editor, team.viewer):
        got = await client.get(url, headers=account.headers)
        assert got.status_code == 200
    assert (await client.get(url, headers=team.viewer.headers)).json()["role"] == "viewer"

    for method, path, body in (
        ("GET", "", None),
        ("PATCH", "", {"title": "Mine now"}),
        ("DELETE", "", None),
        ("GET", "/members", None),
        ("POST", "/members", {"email": team.stranger.email, "role": "admin"}),
        ("POST", "/series", {"name": "S"}),
        ("POST", "/restore", None),
    ):
        response = await client.request(
            method, url + path, json=body, headers=team.stranger.headers
        )
        assert response.status_code == 404, (method, path)

    viewer_edit = await client.patch(url, json={"title": "Viewer"}, headers=team.viewer.headers)
    assert viewer_edit.status_code == 403
    assert viewer_edit.json()["error"]["code"] == "insufficient_role"
    editor_edit = await client.patch(url, json={"title": "Edited"}, headers=team.editor.headers)
    assert editor_edit.status_code == 200 and editor_edit.json()["title"] == "Edited"
    assert (await client.delete(url, headers=team.editor.headers)).status_code == 403
    add = await client.post(
        f"{url}/members",
        json={"email": team.stranger.email, "role": "viewer"},
        headers=team.editor.headers,
    )
    assert add.status_code == 403

    members = (await client.get(f"{url}/members", headers=team.viewer.headers)).json()
    assert {(m["email"], m["role"], m["is_owner"]) for m in members} == {
        (team.owner.email, "admin", True),
        (team.editor.email, "editor", False),
        (team.viewer.email, "viewer", False),
    }
    demote_owner = await client.patch(
        f"{url}/members/{team.owner.id}", json={"role": "viewer"}, headers=team.owner.headers
    )
    assert demote_owner.status_code == 409
    assert (
        await client.delete(f"{url}/members/{team.owner.id}", headers=team.owner.headers)
    ).status_code == 409
    promote = await client.patch(
        f"{url}/members/{team.viewer.id}", json={"role": "editor"}, headers=team.owner.headers
    )
    assert promote.status_code == 200 and promote.json()["role"] == "editor"
    removed = await client.delete(f"{url}/members/{team.editor.id}", headers=team.owner.headers)
    assert removed.status_code == 204
    assert (await client.get(url, headers=team.editor.headers)).status_code == 404
    duplicate = await client.post(
        f"{url}/members",
        json={"email": team.viewer.email, "role": "viewer"},
        headers=team.owner.headers,
    )
    assert duplicate.status_code == 409
    nobody = await client.post(
        f"{url}/members",
        json={"email": unique_email("ghost"), "role": "viewer"},
        headers=team.owner.headers,
    )
    assert nobody.status_code == 422


async def test_read_only_token_cannot_write(client: httpx.AsyncClient, team: Team) -> None:
    token = (
        await client.post(
            f"{API}/users/me/tokens",
            json={"name": "ro", "scopes": ["read"]},
            headers=team.owner.headers,
        )
    ).json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert (await client.get(team.show_url, headers=headers)).status_code == 200
    denied = await client.patch(team.show_url, json={"title": "x"}, headers=headers)
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "missing_scope"


async def test_if_match_guards_concurrent_edits(client: httpx.AsyncClient, team: Team) -> None:
    first = await client.get(team.show_url, headers=team.owner.headers)
    tag = first.headers["ETag"]
    ok = await client.patch(
        team.show_url, json={"title": "One"}, headers={**team.owner.headers, "If-Match": tag}
    )
    assert ok.status_code == 200 and ok.headers["ETag"] != tag
    stale = await client.patch(
        team.show_url, json={"title": "Two"}, headers={**team.editor.headers, "If-Match": tag}
    )
    assert stale.status_code == 412
    assert (await client.get(team.show_url, headers=team.owner.headers)).json()["title"] == "One"


async def test_list_search_and_pagination(client: httpx.AsyncClient, mailbox: Mailbox) -> None:
    owner = await verified_account(client, mailbox)
    other = await verified_account(client, mailbox)
    for i in range(5):
        await client.post(f"{API}/shows", json={"title": f"Garden Talk {i}"}, headers=owner.headers)
    await client.post(f"{API}/shows", json={"title": "Cooking 100%"}, headers=owner.headers)
    await client.post(f"{API}/shows", json={"title": "Garden of others"}, headers=other.headers)

    page = (await client.get(f"{API}/shows", params={"limit": 4}, headers=owner.headers)).json()
    assert len(page["items"]) == 4 and page["next_cursor"]
    rest = (
        await client.get(
            f"{API}/shows",
            params={"limit": 4, "cursor": page["next_cursor"]},
            headers=owner.headers,
        )
    ).json()
    assert len(rest["items"]) == 2 and rest["next_cursor"] is None
    titles = {s["title"] for s in page["items"] + rest["items"]}
    assert "Garden of others" not in titles and len(titles) == 6
    garden = (
        await client.get(f"{API}/shows", params={"q": "garden"}, headers=owner.headers)
    ).json()
    assert len(garden["items"]) == 5
    literal = (await client.get(f"{API}/shows", params={"q": "100%"}, headers=owner.headers)).json()
    assert [s["title"] for s in literal["items"]] == ["Cooking 100%"]
    bad = await client.get(f"{API}/shows", params={"cursor": "garbage"}, headers=owner.headers)
    assert bad.status_code == 400


async def test_delete_and_restore(client: httpx.AsyncClient, team: Team) -> None:
    deleted = await client.delete(team.show_url, headers=team.owner.headers)
    assert deleted.status_code == 200 and deleted.json()["purge_after"]
    assert (await client.get(team.show_url, headers=team.owner.headers)).status_code == 404
    assert (await client.get(f"{API}/shows", headers=team.owner.headers)).json()["items"] == []
    assert (
        await client.post(f"{team.show_url}/restore", headers=team.editor.headers)
    ).status_code == 403
    restored = await client.post(f"{team.show_url}/restore", headers=team.owner.headers)
    assert restored.status_code == 200 and restored.json()["deleted_at"] is None
    assert (await client.get(team.show_url, headers=team.viewer.headers)).status_code == 200


async def test_artwork(client: httpx.AsyncClient, team: Team, runtime: Runtime) -> None:
    url = f"{team.show_url}/artwork"
    bad_cases = [
        (image_bytes(1500, 1400), "image_not_square"),
        (image_bytes(1000, 1000), "image_too_small"),
        (b"GIF89a" + b"\0" * 100, "unsupported_image"),
        (b"not an image at all", "unsupported_image"),
    ]
    for data, code in bad_cases:
        refused = await client.put(
            url, files={"file": ("art.jpg", data, "image/jpeg")}, headers=team.editor.headers
        )
        assert refused.status_code == 422 and refused.json()["error"]["code"] == code
    assert await runtime.storage.list_keys("artwork") == []
    assert (
        await client.put(
            url, files={"file": ("a.jpg", image_bytes(1400, 1400))}, headers=team.viewer.headers
        )
    ).status_code == 403

    first = await client.put(
        url,
        files={"file": ("cover.png", image_bytes(1600, 1600, "PNG", "RGBA"), "image/png")},
        headers=team.editor.headers,
    )
    assert first.status_code == 200, first.text
    art = first.json()["artwork"]
    assert (
        art["content_type"] == "image/png" and art["width"] == 1600 and art["url"].endswith(".png")
    )
    assert set(art["variants"]) == {"master", "1400", "600", "300", "150"}
    served = await client.get(art["url"].removeprefix("http://testserver"), follow_redirects=False)
    if served.status_code == 302:  # S3: redirected to a presigned URL
        served = httpx.get(served.headers["location"])
    assert served.status_code == 200
    image = Image.open(io.BytesIO(served.content))
    assert image.format == "PNG" and image.mode == "RGB" and image.size == (1600, 1600)

    second = await client.put(
        url, files={"file": ("c.jpg", image_bytes(3500, 3500))}, headers=team.owner.headers
    )
    art2 = second.json()["artwork"]
    assert art2["url"] != art["url"] and art2["width"] == 3000 and art2["url"].endswith(".jpg")
    assert second.json()["version"] > first.json()["version"]


async def test_series(client: httpx.AsyncClient, team: Team) -> None:
    url = f"{team.show_url}/series"
    made = await client.post(url, json={"name": "Season of Storms"}, headers=team.editor.headers)
    assert made.status_code == 201
    series_id = made.json()["id"]
    assert (
        await client.post(url, json={"name": "Season of Storms"}, headers=team.editor.headers)
    ).status_code == 409
    assert (
        await client.post(url, json={"name": "x"}, headers=team.viewer.headers)
    ).status_code == 403
    renamed = await client.patch(
        f"{url}/{series_id}", json={"name": "Storms"}, headers=team.editor.headers
    )
    assert renamed.json()["name"] == "Storms"
    listed = await client.get(url, headers=team.viewer.headers)
    assert [s["name"] for s in listed.json()] == ["Storms"]
    assert (
        await client.delete(f"{url}/{series_id}", headers=team.editor.headers)
    ).status_code == 204
    assert (await client.get(url, headers=team.viewer.headers)).json() == []
