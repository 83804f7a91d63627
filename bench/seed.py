"""Bulk seeding for the catalog benchmarks (not a benchmark itself).

Tens of thousands of episodes through the API would take far too long, so the benchmarks write
them straight into the database the server uses, through the project's own models: the show
(and its admin membership and search document) via ``amphora.show.service.create_show``, then
``Episode`` rows, their ``search_documents`` rows and, on SQLite, the ``search_fts`` rows,
exactly as ``amphora.show.search._write`` would (on PostgreSQL the ``tsv`` column is
generated). Run it after ``amphora db upgrade`` and before the server starts.

The text is random but shaped like show notes: sentences over a vocabulary of a few hundred
words drawn with a Zipf distribution (so a handful of words are in nearly every episode and
most are selective), plus guest names from a pool of made-up surnames (each in a few dozen
episodes out of 200,000: the rare terms).
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import accumulate, islice
from typing import TYPE_CHECKING, Any

from common import settings_for
from sqlalchemy import insert, text, update

from amphora.account.repository import user_by_email
from amphora.kit.db import Database, new_id
from amphora.kit.html import html_to_text
from amphora.models import Episode, MediaFile, SearchDocument
from amphora.show.schemas import ShowCreate
from amphora.show.service import create_show

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from amphora.models import Show, User


def _split(words: str) -> tuple[str, ...]:
    return tuple(words.split())


# Roughly by frequency: the first words are the commonest (Zipf ranks, see TextGen).
WORDS = _split("""
the and of to in a that is for on with as this we it about from how what you our
story show episode guest talk interview music history science world people city time
life work family money market water food climate energy health sleep brain memory body
design code software data network cloud security privacy machine learning model robot
space planet moon star galaxy ocean river forest mountain desert island weather storm
rain winter summer spring autumn garden farm harvest kitchen recipe bread coffee tea wine
beer cheese chocolate travel journey road train flight hotel map border language word
book novel poem author writer reader library archive museum painting film camera photo
theatre stage song album band guitar piano drum singer concert festival radio podcast
news politics election law court police crime justice prison war peace army
empire king queen castle church temple village school teacher student lesson exam
university research experiment theory evidence question answer problem solution idea
future past present change growth decline crisis recovery startup company founder
investor product customer price tax bank loan debt trade factory worker union strike
doctor nurse hospital medicine vaccine virus disease therapy mind emotion fear joy grief
love friendship marriage child parent mother father brother sister neighbour community
identity culture religion faith ritual myth legend ghost mystery secret truth lie
game sport football tennis running cycling swimming climbing team coach match season
record victory defeat champion stadium fan car bike bus street bridge tower building
house home room door window light shadow colour sound silence voice noise signal
satellite rocket engine battery solar wind nuclear oil gas coal carbon plastic waste
recycling pollution species animal bird insect whale wolf bee tree flower seed soil
chemistry physics biology mathematics statistics algorithm computer internet phone
screen social media platform creator audience listener producer editor microphone studio
habit routine morning evening night weekend holiday birthday anniversary wedding
protest movement revolution reform policy budget deficit inflation wage rent housing
migration refugee citizen nation state province region capital harbour coast valley
storyteller storytelling stormy storage stormwater strategy strategic stranger
production productive professor program programming project projection protocol
transport transition translation transmission transparency travelling traveller
""")
FUNCTION_WORDS = 21  # the first WORDS: in nearly every episode, never worth searching alone

FIRST_NAMES = _split("""
Ada Alan Amara Ana Anton Aria Ben Bo Carla Chen Dara Dev Elena Emil Eva Farah Femi Gia
Hana Hugo Ines Ivan Jade Jonas Kai Kira Lars Lea Leo Lina Luca Maya Mila Nadia Nils Noor
Omar Oona Pablo Pia Quinn Rafa Rosa Sami Sara Sven Tara Theo Uma Vera Wen Yara Yusuf Zoe
""")

_SYLLABLES = _split("""
ba be bo da de do fa fe ka ke ko la le lo ma me mo na ne no pa pe ra re ro sa se so ta te
to va ve vo za ze zo bri dra gro kla pli stru tve vly
""")


def _pseudo_surnames(rng: random.Random, count: int) -> list[str]:
    """Made-up surnames of 3-4 syllables (unlike any dictionary word): the rare terms."""
    vocabulary = set(WORDS)
    names: set[str] = set()
    while len(names) < count:
        word = "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(3, 4)))
        if word not in vocabulary and not any(w.startswith(word[:4]) for w in vocabulary):
            names.add(word.capitalize())
    return sorted(names)


class TextGen:
    """Deterministic generator of episode titles, notes and guests."""

    def __init__(self, seed: int = 1, surnames: int = 4000) -> None:
        self.rng = random.Random(seed)
        self.words = list(dict.fromkeys(WORDS))  # rank order: earlier is more frequent
        weights = [1 / (rank + 1) for rank in range(len(self.words))]
        self._cum = list(accumulate(weights))
        self.surnames = _pseudo_surnames(self.rng, surnames)

    def _words(self, count: int) -> list[str]:
        return self.rng.choices(self.words, cum_weights=self._cum, k=count)

    def sentence(self, low: int = 6, high: int = 16) -> str:
        words = self._words(self.rng.randint(low, high))
        return " ".join(words).capitalize() + "."

    def title(self) -> str:
        return " ".join(w.capitalize() for w in self._words(self.rng.randint(3, 7)))

    def description(self) -> str:
        return " ".join(self.sentence() for _ in range(self.rng.randint(3, 7)))

    def persons(self) -> list[dict[str, str]]:
        return [
            {"name": f"{self.rng.choice(FIRST_NAMES)} {self.rng.choice(self.surnames)}"}
            for _ in range(self.rng.randint(1, 2))
        ]

    # Query terms of each kind, for the search benchmark.

    def common_terms(self, count: int) -> list[str]:
        """The most frequent content words (each in roughly a third of the episodes)."""
        return self.words[FUNCTION_WORDS : FUNCTION_WORDS + count]

    def mid_terms(self, count: int, start: int = 80) -> list[str]:
        """Words of middling frequency (each in roughly a tenth of the episodes)."""
        return self.words[start : start + count]

    def prefixes(self, count: int) -> list[str]:
        """4-letter prefixes shared by at least three words (``stor`` → story, storm, …)."""
        found: dict[str, int] = {}
        for word in self.words:
            if len(word) > 4:
                found[word[:4]] = found.get(word[:4], 0) + 1
        return [p for p, n in found.items() if n >= 3][:count]


@dataclass
class Seeded:
    show_ids: list[uuid.UUID]
    episodes: int
    seconds: float
    per_show: dict[str, int] = field(default_factory=dict)


async def create_shows(
    session: AsyncSession, gen: TextGen, email: str, titles: list[str], base_url: str
) -> tuple[User, list[Show]]:
    """The existing user ``email`` and a new show of theirs per title (a description from
    ``gen``), as the API creates them."""
    user = await user_by_email(session, email)
    if user is None:
        raise RuntimeError(f"no user {email}")
    shows = []
    for title in titles:
        access = await create_show(
            session,
            user=user,
            data=ShowCreate(title=title, description=f"<p>{gen.description()}</p>"),
            base_url=base_url,
        )
        shows.append(access.show)
    return user, shows


def episode_row(
    show_id: uuid.UUID,
    i: int,
    count: int,
    now: datetime,
    *,
    title: str,
    description: str,
    publish_at: datetime | None,
    persons: list[dict[str, str]],
    **extra: Any,
) -> dict[str, Any]:
    """The ``episodes`` row of the ``i``-th of ``count`` episodes of a show: 10 seasons."""
    per_season = max(1, count // 10)
    return {
        "id": new_id(),
        "show_id": show_id,
        "guid": str(uuid.uuid4()),
        "title": title,
        "description": description,
        "season": i // per_season + 1,
        "number": Decimal(i % per_season + 1),
        "publish_at": publish_at,
        "persons": persons,
        "created_at": now,
        "updated_at": now,
        **extra,
    }


def media_row(
    owner_id: uuid.UUID,
    episode: Mapping[str, Any],
    now: datetime,
    *,
    size: int,
    duration_s: float,
) -> dict[str, Any]:
    """A ``media_files`` row (an MP3, no bytes on disk) for an episode row."""
    show_id = episode["show_id"]
    return {
        "id": new_id(),
        "owner_id": owner_id,
        "show_id": show_id,
        "episode_id": episode["id"],
        "storage_key": f"media/{show_id}/{uuid.uuid4()}.mp3",
        "kind": "audio",
        "container": "mp3",
        "content_type": "audio/mpeg",
        "extension": "mp3",
        "size": size,
        "sha256": "0" * 64,
        "duration_s": duration_s,
        "bitrate": 128_000,
        "id3_size": 0,
        "channels": 2,
        "sample_rate": 44100,
        "original_filename": "episode.mp3",
        "created_at": now,
    }


async def insert_media(session: AsyncSession, files: list[dict[str, Any]]) -> None:
    """Insert ``media_row`` rows and make each one its episode's media."""
    await session.execute(insert(MediaFile), files)
    await session.execute(
        update(Episode), [{"id": f["episode_id"], "media_id": f["id"]} for f in files]
    )


async def analyze(db: Database, tables: tuple[str, ...]) -> None:
    """On PostgreSQL, ``ANALYZE`` the tables (autovacuum would do it soon after a real bulk
    import); nothing on SQLite."""
    if db.is_sqlite:
        return
    async with db.session() as session:
        for table in tables:
            await session.execute(text(f"ANALYZE {table}"))


def _episode_rows(
    gen: TextGen, show_id: uuid.UUID, count: int, now: datetime
) -> Iterator[tuple[dict[str, Any], str]]:
    """``(episode row, search body)``: about 2 % drafts, 1 % scheduled, the rest published
    (one a day going back), 10 seasons."""
    for i in range(count):
        roll = gen.rng.random()
        if roll < 0.02:
            publish_at = None
        elif roll < 0.03:
            publish_at = now + timedelta(days=gen.rng.randint(1, 60))
        else:
            publish_at = now - timedelta(days=count - i, minutes=gen.rng.randint(0, 600))
        description = gen.description()
        persons = gen.persons()
        row = episode_row(
            show_id,
            i,
            count,
            now,
            title=gen.title(),
            description=description,
            publish_at=publish_at,
            persons=persons,
        )
        # As amphora.show.search.index_episode builds it: notes as text, then the people.
        body = " ".join([description, " ".join(p["name"] for p in persons)])
        yield row, body


async def seed_catalog(
    env: Mapping[str, str],
    email: str,
    shows: list[tuple[str, int]],
    *,
    media: bool = False,
    batch: int = 5000,
    seed: int = 1,
) -> Seeded:
    """Create ``shows`` (``(title, episode count)``) owned by the existing user ``email``.

    With ``media``, every episode gets a stored-file row (``media_files``, no bytes on disk)
    so that listing pages load media like a real catalogue. On PostgreSQL the tables are
    ``ANALYZE``d afterwards (autovacuum would do it soon after a real bulk import).
    """
    started = time.perf_counter()
    gen = TextGen(seed)
    settings = settings_for(env)
    db = Database(settings.resolved_database_url)
    total = 0
    try:
        async with db.session() as session:
            user, created = await create_shows(
                session, gen, email, [title for title, _ in shows], settings.base_url
            )
            owner_id = user.id
            show_ids = [show.id for show in created]
        # The seeded notes are plain sentences: html_to_text keeps them as they are.
        probe = gen.description()
        assert html_to_text(probe) == probe
        now = datetime.now(UTC)
        for show_id, (_title, count) in zip(show_ids, shows, strict=True):
            rows = _episode_rows(gen, show_id, count, now)
            while pairs := list(islice(rows, batch)):
                async with db.session() as session:
                    await session.execute(insert(Episode), [row for row, _ in pairs])
                    await session.execute(
                        insert(SearchDocument),
                        [
                            {
                                "id": row["id"],
                                "kind": "episode",
                                "show_id": show_id,
                                "title": row["title"],
                                "body": body,
                                "updated_at": now,
                            }
                            for row, body in pairs
                        ],
                    )
                    if db.is_sqlite:
                        await session.execute(
                            text(
                                "INSERT INTO search_fts (doc_id, show_id, title, body) "
                                "VALUES (:id, :show, :title, :body)"
                            ),
                            [
                                {
                                    "id": row["id"].hex,
                                    "show": row["show_id"].hex,
                                    "title": row["title"],
                                    "body": body,
                                }
                                for row, body in pairs
                            ],
                        )
                    if media:
                        files = [
                            media_row(owner_id, row, now, size=48_000_000, duration_s=3000.0)
                            for row, _ in pairs
                        ]
                        await insert_media(session, files)
                total += len(pairs)
        await analyze(db, ("episodes", "search_documents", "media_files", "shows"))
    finally:
        await db.dispose()
    return Seeded(
        show_ids=show_ids,
        episodes=total,
        seconds=round(time.perf_counter() - started, 1),
        per_show={str(s): c for s, (_t, c) in zip(show_ids, shows, strict=True)},
    )
