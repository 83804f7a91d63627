"""Demo data for `amphora serve --demo`: a verified creator, a show with artwork, and three
published episodes with real generated audio. The login is printed at start."""

from __future__ import annotations

import functools
import io
import secrets
import tempfile
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import anyio
from PIL import Image, ImageDraw
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from amphora.account import repository, service
from amphora.episode import service as episodes
from amphora.episode.schemas import EpisodeCreate
from amphora.kit.clock import utcnow
from amphora.media import service as media
from amphora.media.artwork_service import store_artwork
from amphora.media.testaudio import tone_mp3
from amphora.models import Show, User
from amphora.runtime import Runtime
from amphora.show import service as shows
from amphora.show.schemas import ShowCreate

DEMO_EMAIL = "demo@example.com"
CREDENTIALS_FILE = "demo-login.txt"
EPISODES = (
    ("Welcome to the Lighthouse Hour", 440.0, "<p>Why we keep the lights on.</p>"),
    ("The Keeper's Log", 523.25, "<p>We open the logbook of 1891.</p>"),
    ("Storm Season", 392.0, "<p>Three nights, one lamp, no sleep.</p>"),
)


@dataclass(frozen=True)
class DemoLogin:
    email: str
    password: str


async def seed_demo(runtime: Runtime) -> DemoLogin:
    """Idempotent: the first run creates everything, later runs reprint the same login."""
    path = runtime.settings.resolved_data_dir / CREDENTIALS_FILE
    async with runtime.db.session() as session:
        user = await repository.user_by_email(session, DEMO_EMAIL)
        if user is not None and path.exists():
            return DemoLogin(DEMO_EMAIL, path.read_text().strip())
        password = secrets.token_urlsafe(12)
        if user is None:
            user = await service.create_user(
                session,
                email=DEMO_EMAIL,
                password=password,
                display_name="Demo Creator",
                is_verified=True,
            )
        else:  # the credentials file was removed: issue a fresh password
            user.password_hash = await service.hash_password(password)
        if await session.scalar(select(Show.id).where(Show.owner_id == user.id)) is None:
            await _seed_show(session, runtime, user)
    path.touch(mode=0o600)
    path.write_text(password)
    return DemoLogin(DEMO_EMAIL, password)


async def _seed_show(session: AsyncSession, runtime: Runtime, user: User) -> None:
    access = await shows.create_show(
        session,
        user=user,
        data=ShowCreate.model_validate(
            {
                "title": "The Lighthouse Hour",
                "description": "<p>Stories from the coast, one lamp at a time.</p>",
                "language": "en",
                "categories": [
                    {"category": "History"},
                    {"category": "Arts", "subcategory": "Books"},
                ],
                "persons": [{"name": "Demo Creator", "role": "host"}],
            }
        ),
        base_url=runtime.settings.base_url,
    )
    artwork = await store_artwork(
        session, runtime.storage, show_id=access.show.id, user=user, data=_cover()
    )
    access.show.artwork_id = artwork.id
    start = utcnow() - timedelta(days=21)
    for number, (title, frequency, notes) in enumerate(EPISODES, start=1):
        episode = await episodes.create_episode(
            session,
            access=access,
            data=EpisodeCreate.model_validate(
                {
                    "title": title,
                    "description": notes,
                    "season": 1,
                    "number": number,
                    "publish_at": start + timedelta(days=7 * (number - 1)),
                }
            ),
        )
        audio = await anyio.to_thread.run_sync(
            functools.partial(tone_mp3, 20, frequency=frequency, title=title)
        )
        with tempfile.TemporaryDirectory() as tmp:
            staged = Path(tmp) / "demo.mp3"
            staged.write_bytes(audio)
            info = await media.probe(staged)
            async with media.stored_media(
                runtime.storage, show_id=access.show.id, staged=staged, info=info, move=True
            ) as stored:
                await media.record_media(
                    session,
                    runtime.settings,
                    episode=episode,
                    stored=stored,
                    filename=f"episode-{number}.mp3",
                )


def _cover() -> bytes:
    """A 1400 px square cover: a night sky, a sea and a lighthouse."""
    image = Image.new("RGB", (1400, 1400), (18, 28, 66))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 1000, 1400, 1400), fill=(20, 70, 110))
    draw.polygon([(640, 1000), (760, 1000), (730, 520), (670, 520)], fill=(235, 235, 235))
    draw.rectangle((655, 460, 745, 520), fill=(250, 210, 90))
    draw.polygon([(745, 490), (1400, 300), (1400, 680)], fill=(250, 230, 150))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()
