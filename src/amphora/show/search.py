"""Full-text search over shows and episodes: one interface, SQLite FTS5 or PostgreSQL tsvector.

Documents are written by the services whenever a show or an episode changes (same transaction),
so the index is never stale. Highlights and snippets are made in Python for the page's rows
only: the text is escaped before ``<mark>`` is added, so show notes can never inject HTML.
"""

from __future__ import annotations

import html
import re
import unicodedata
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Float,
    String,
    and_,
    bindparam,
    delete,
    func,
    literal_column,
    or_,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncSession

from amphora.kit.html import html_to_text
from amphora.models import Episode, SearchDocument, Series, Show

_TOKEN = re.compile(r"\w+", re.UNICODE)
MAX_TERMS = 12
SNIPPET_WORDS = 24


@dataclass(frozen=True)
class Hit:
    kind: str
    id: uuid.UUID
    show_id: uuid.UUID
    title: str
    snippet: str
    score: float


def _is_sqlite(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "sqlite"


def _people(persons: Sequence[dict[str, Any]]) -> str:
    return " ".join(str(p.get("name", "")) for p in persons)


_FTS_INSERT = text(
    "INSERT INTO search_fts (doc_id, show_id, title, body) VALUES (:id, :show, :title, :body)"
)


def _fts_row(doc: SearchDocument) -> dict[str, str]:
    return {"id": doc.id.hex, "show": doc.show_id.hex, "title": doc.title, "body": doc.body}


async def _write(
    session: AsyncSession,
    *,
    doc_id: uuid.UUID,
    kind: str,
    show_id: uuid.UUID,
    title: str,
    body: str,
) -> None:
    existing = await session.get(SearchDocument, doc_id)
    if existing is None:
        existing = SearchDocument(id=doc_id, kind=kind, show_id=show_id, title=title, body=body)
        session.add(existing)
    else:
        existing.title, existing.body = title, body
    await session.flush()
    if _is_sqlite(session):
        await session.execute(text("DELETE FROM search_fts WHERE doc_id = :id"), {"id": doc_id.hex})
        await session.execute(_FTS_INSERT, _fts_row(existing))


async def index_show(session: AsyncSession, show: Show) -> None:
    body = " ".join(
        part
        for part in (
            show.subtitle or "",
            html_to_text(show.description),
            show.author or "",
            _people(show.persons),
        )
        if part
    )
    await _write(session, doc_id=show.id, kind="show", show_id=show.id, title=show.title, body=body)


def _episode_body(episode: Episode, series: Series | None) -> str:
    return " ".join(
        part
        for part in (
            episode.subtitle or "",
            html_to_text(episode.description),
            series.name if series else "",
            _people(episode.persons),
        )
        if part
    )


async def index_episode(session: AsyncSession, episode: Episode) -> None:
    series = await session.get(Series, episode.series_id) if episode.series_id else None
    await _write(
        session,
        doc_id=episode.id,
        kind="episode",
        show_id=episode.show_id,
        title=episode.title,
        body=_episode_body(episode, series),
    )


async def index_new_episodes(session: AsyncSession, episodes: Sequence[Episode]) -> None:
    """Documents for episodes that have none yet, in one batch (imports bring many)."""
    series_ids = {e.series_id for e in episodes if e.series_id}
    series: dict[uuid.UUID, Series] = {}
    if series_ids:
        found = await session.scalars(select(Series).where(Series.id.in_(series_ids)))
        series = {s.id: s for s in found}
    docs = [
        SearchDocument(
            id=e.id,
            kind="episode",
            show_id=e.show_id,
            title=e.title,
            body=_episode_body(e, series.get(e.series_id) if e.series_id else None),
        )
        for e in episodes
    ]
    session.add_all(docs)
    await session.flush()
    if docs and _is_sqlite(session):
        await session.execute(_FTS_INSERT, [_fts_row(doc) for doc in docs])


async def remove_documents(session: AsyncSession, ids: Sequence[uuid.UUID]) -> None:
    if not ids:
        return
    await session.execute(delete(SearchDocument).where(SearchDocument.id.in_(ids)))
    if _is_sqlite(session):
        for doc_id in ids:
            await session.execute(
                text("DELETE FROM search_fts WHERE doc_id = :id"), {"id": doc_id.hex}
            )


def terms(q: str) -> list[str]:
    return _TOKEN.findall(q.lower())[:MAX_TERMS]


def _is_prefix(words: list[str], index: int) -> bool:
    """Search as you type: the last word also matches longer words (from 3 letters on); the
    others match whole words, which keeps multi-word queries cheap."""
    return index == len(words) - 1 and len(words[index]) >= 3


def _fold(word: str) -> str:
    """Lower case without diacritics, as the full-text indexes compare words."""
    decomposed = unicodedata.normalize("NFKD", word.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _marker(words: list[str]) -> Callable[[str], bool]:
    exact = {_fold(w) for i, w in enumerate(words) if not _is_prefix(words, i)}
    prefixes = [_fold(w) for i, w in enumerate(words) if _is_prefix(words, i)]

    def matches(token: str) -> bool:
        folded = _fold(token)
        return folded in exact or any(folded.startswith(p) for p in prefixes)

    return matches


def highlight(value: str, words: list[str], *, window: int | None = None) -> str:
    """HTML-escaped ``value`` with the matched words in ``<mark>``; with ``window``, only that
    many words around the first match (``…`` where text was left out)."""
    matches = _marker(words)
    tokens = list(_TOKEN.finditer(value))
    start, end = 0, len(tokens)
    if window is not None and len(tokens) > window:
        first = next((i for i, t in enumerate(tokens) if matches(t.group())), 0)
        start = max(0, min(first - window // 3, len(tokens) - window))
        end = start + window
    if not tokens:
        return html.escape(value[:200])
    text_from = tokens[start].start() if start else 0
    text_to = tokens[end - 1].end() if end < len(tokens) else len(value)
    out, cursor = [], text_from
    for token in tokens[start:end]:
        out.append(html.escape(value[cursor : token.start()]))
        word = html.escape(token.group())
        out.append(f"<mark>{word}</mark>" if matches(token.group()) else word)
        cursor = token.end()
    out.append(html.escape(value[cursor:text_to]))
    return ("…" if start else "") + "".join(out).strip() + ("…" if end < len(tokens) else "")


async def search(
    session: AsyncSession,
    *,
    q: str,
    show_ids: Sequence[uuid.UUID],
    episode_where: Sequence[Any] | None,
    include_shows: bool,
    offset: int,
    limit: int,
) -> list[Hit]:
    """Ranked hits in the (live) shows ``show_ids``: episodes meeting ``episode_where``
    (conditions on ``Episode``; none searched when None) and, when ``include_shows``, the shows.

    When a query matches more than ``CANDIDATES`` documents, only the most recently written
    ``CANDIDATES`` of them are ranked, so a word found in tens of thousands of episodes still
    answers fast; snippets are made for the page only.
    """
    words = terms(q)
    if not words or not show_ids or (episode_where is None and not include_shows):
        return []
    parts = []
    if episode_where is not None:
        parts.append(
            and_(SearchDocument.kind == "episode", Episode.deleted_at.is_(None), *episode_where)
        )
    if include_shows:
        parts.append(SearchDocument.kind == "show")
    scope = and_(SearchDocument.show_id.in_(show_ids), or_(*parts))
    if _is_sqlite(session):
        return await _search_sqlite(session, words, show_ids, scope, offset, limit)
    return await _search_postgres(session, words, scope, offset, limit)


CANDIDATES = 1000


async def _search_sqlite(
    session: AsyncSession,
    words: list[str],
    show_ids: Sequence[uuid.UUID],
    scope: Any,
    offset: int,
    limit: int,
) -> list[Hit]:
    match = " ".join(f'"{w}"' + ("*" if _is_prefix(words, i) else "") for i, w in enumerate(words))
    shows = ", ".join(f"'{show_id.hex}'" for show_id in show_ids)  # hex digits only
    # Inside FTS5: matches in the caller's shows, newest first, bounded, with their bm25 score.
    fts = text(
        "SELECT doc_id, bm25(search_fts, 8.0, 1.0) AS score "  # noqa: S608
        f"FROM search_fts WHERE search_fts MATCH :match AND show_id IN ({shows}) "
        "ORDER BY rowid DESC LIMIT :candidates"
    ).columns(doc_id=String, score=Float)
    hits = fts.subquery("hits")
    page = (
        select(
            SearchDocument.kind,
            SearchDocument.id,
            SearchDocument.show_id,
            SearchDocument.title,
            SearchDocument.body,
            hits.c.score,
        )
        # Uuid columns are stored as 32 hex digits on SQLite: the FTS doc_id is the same text.
        .join(hits, hits.c.doc_id == SearchDocument.id)
        .outerjoin(Episode, Episode.id == SearchDocument.id)
        .where(scope)
        .order_by(hits.c.score, SearchDocument.id)
        .offset(offset)
        .limit(limit)
    )
    rows = await session.execute(page, {"match": match, "candidates": CANDIDATES})
    return [
        _hit(words, kind, doc_id, show_id, title, body, -float(score))
        for kind, doc_id, show_id, title, body, score in rows.all()
    ]


def _hit(
    words: list[str],
    kind: str,
    doc_id: uuid.UUID,
    show_id: uuid.UUID,
    title: str,
    body: str,
    score: float,
) -> Hit:
    return Hit(
        kind,
        doc_id,
        show_id,
        highlight(title, words),
        highlight(body, words, window=SNIPPET_WORDS),
        score,
    )


async def _search_postgres(
    session: AsyncSession, words: list[str], scope: Any, offset: int, limit: int
) -> list[Hit]:
    tsq = func.to_tsquery("simple", bindparam("tsq"))
    tsv: Any = literal_column("search_documents.tsv")
    tsquery = " & ".join(w + (":*" if _is_prefix(words, i) else "") for i, w in enumerate(words))
    # Two plans for the bounded candidate set, picked by how common the words are (a count
    # that stops at the bound, so it is cheap either way):
    # - few matches: find them all through the GIN index, then keep the newest;
    # - many matches: walk the documents newest first and stop once enough match, rather than
    #   re-checking tens of thousands of rows.
    probe = select(func.count()).select_from(
        select(SearchDocument.id).where(tsv.op("@@")(tsq)).limit(CANDIDATES + 1).subquery()
    )
    frequent = (await session.scalar(probe, {"tsq": tsquery}) or 0) > CANDIDATES
    if not frequent:
        matches = (
            select(SearchDocument.id)
            .where(tsv.op("@@")(tsq))
            .cte("matches")
            .prefix_with("MATERIALIZED")
        )
    candidates_query = select(SearchDocument.id).outerjoin(Episode, Episode.id == SearchDocument.id)
    if frequent:
        candidates_query = candidates_query.where(tsv.op("@@")(tsq))
    else:
        candidates_query = candidates_query.join(matches, matches.c.id == SearchDocument.id)
    candidates = (
        candidates_query.where(scope)
        .order_by(SearchDocument.id.desc())
        .limit(CANDIDATES)
        .subquery("candidates")
    )
    score = func.ts_rank(tsv, tsq).label("score")
    ranked = (
        select(
            SearchDocument.kind,
            SearchDocument.id,
            SearchDocument.show_id,
            SearchDocument.title,
            SearchDocument.body,
            score,
        )
        .join(candidates, candidates.c.id == SearchDocument.id)
        .order_by(score.desc(), SearchDocument.id)
        .offset(offset)
        .limit(limit)
    )
    rows = await session.execute(ranked, {"tsq": tsquery})
    return [
        _hit(words, kind, doc_id, show_id, title, body, float(score))
        for kind, doc_id, show_id, title, body, score in rows.all()
    ]
