"""A show's team (owner, editor, viewer, and a stranger with no access), and test images."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import httpx
from PIL import Image

from tests.fakes.smtp import Mailbox
from tests.helpers import API, Account, verified_account


@dataclass
class Team:
    owner: Account
    editor: Account
    viewer: Account
    stranger: Account
    show: dict[str, Any]

    @property
    def show_url(self) -> str:
        return f"{API}/shows/{self.show['id']}"


async def make_team(client: httpx.AsyncClient, mailbox: Mailbox) -> Team:
    owner, editor, viewer, stranger = [await verified_account(client, mailbox) for _ in range(4)]
    created = await client.post(
        f"{API}/shows", json={"title": "The Lighthouse Hour"}, headers=owner.headers
    )
    assert created.status_code == 201, created.text
    show = created.json()
    for account, role in ((editor, "editor"), (viewer, "viewer")):
        added = await client.post(
            f"{API}/shows/{show['id']}/members",
            json={"email": account.email, "role": role},
            headers=owner.headers,
        )
        assert added.status_code == 201, added.text
    return Team(owner, editor, viewer, stranger, show)


def image_bytes(width: int, height: int, fmt: str = "JPEG", mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (width, height), (200, 30, 60) if mode == "RGB" else None).save(buffer, fmt)
    return buffer.getvalue()
