"""The insights API: a show's audience figures for dashboards (JSON, or CSV with
``Accept: text/csv``), and the superusers' views across shows and of the cache.

Answers are cached per show and query until processing changes the show's figures.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy import select

from amphora.account.deps import Superuser
from amphora.analytics import insights
from amphora.analytics.deps import AnalyticsViewer
from amphora.analytics.insights import Interval, Period
from amphora.analytics.processing import DIMENSIONS
from amphora.analytics.schemas import (
    AdminSummary,
    Breakdown,
    CacheStats,
    Performance,
    Series,
    Summary,
    TopEpisodes,
    UnknownAgent,
)
from amphora.analytics.service import Answer, cached
from amphora.analytics.tables import CSV_RESPONSE, CSV_TYPE, JSON, csv_bytes, wants_csv
from amphora.deps import RuntimeDep, SessionDep
from amphora.kit.clock import utcnow
from amphora.kit.openapi import errors
from amphora.models import UnknownUserAgent

router = APIRouter(prefix="/shows/{show_id}/analytics", tags=["analytics"])
admin_router = APIRouter(prefix="/admin", tags=["admin"])

BREAKDOWNS = tuple(DIMENSIONS)

From = Annotated[
    date | None, Query(alias="from", description="First day (UTC); default: 29 days before `to`.")
]
To = Annotated[date | None, Query(description="Last day (UTC); default: today.")]
EpisodeFilter = Annotated[uuid.UUID | None, Query(description="Only this episode.")]
Limit = Annotated[int, Query(ge=1, le=100, description="1 to 100.")]


def _responses(model: type[BaseModel], *statuses: int) -> dict[int | str, dict[str, Any]]:
    return {
        200: {"model": model, "content": CSV_RESPONSE},
        **errors(401, 403, 404, *statuses),
    }


async def _answer(
    request: Request,
    runtime: Any,
    show_id: uuid.UUID | None,
    model: type[BaseModel],
    compute: Callable[[], Awaitable[dict[str, Any]]],
    table: Callable[[dict[str, Any]], tuple[Sequence[str], Iterable[Sequence[Any]]]] | None,
) -> Response:
    as_csv = table is not None and wants_csv(request)

    async def build() -> Answer:
        found = model.model_validate(await compute())
        if as_csv:
            assert table is not None
            return Answer(csv_bytes(*table(found.model_dump(mode="json", by_alias=True))), CSV_TYPE)
        return Answer(found.model_dump_json(by_alias=True).encode(), JSON)

    key = f"{request.url.path}?{sorted(request.query_params.multi_items())}|{as_csv}"
    answer = await cached(runtime.cache, show_id, key, build)
    return Response(answer.body, media_type=answer.media_type)


def _today() -> date:
    return utcnow().date()


@router.get("/summary", response_model=Summary, responses=_responses(Summary))
async def summary(
    access: AnalyticsViewer, session: SessionDep, runtime: RuntimeDep, request: Request
) -> Response:
    """All-time and recent downloads, unique listeners of the last 30 days, and the average
    downloads of an episode 1, 7 and 30 days after its release."""
    show_id = access.show.id
    return await _answer(
        request,
        runtime,
        show_id,
        Summary,
        lambda: insights.summary(session, show_id=show_id, today=_today()),
        None,
    )


def _series_table(data: dict[str, Any]) -> tuple[Sequence[str], Iterable[Sequence[Any]]]:
    return ("start", data["metric"]), ((p["start"], p["value"]) for p in data["points"])


@router.get("/downloads", response_model=Series, responses=_responses(Series, 422))
async def downloads(
    access: AnalyticsViewer,
    session: SessionDep,
    runtime: RuntimeDep,
    request: Request,
    from_: From = None,
    to: To = None,
    interval: Interval = Interval.day,
    episode_id: EpisodeFilter = None,
) -> Response:
    """Downloads per day, ISO week or month, for the show or one episode."""
    return await _series_answer(
        access,
        session,
        runtime,
        request,
        insights.downloads_series,
        "downloads",
        from_,
        to,
        interval,
        episode_id,
    )


@router.get("/listeners", response_model=Series, responses=_responses(Series, 422))
async def listeners(
    access: AnalyticsViewer,
    session: SessionDep,
    runtime: RuntimeDep,
    request: Request,
    from_: From = None,
    to: To = None,
    interval: Interval = Interval.day,
    episode_id: EpisodeFilter = None,
) -> Response:
    """Unique listeners per calendar day, ISO week or month (each counted from the listener
    keys of the whole period, never by adding days up)."""
    return await _series_answer(
        access,
        session,
        runtime,
        request,
        insights.listeners_series,
        "listeners",
        from_,
        to,
        interval,
        episode_id,
    )


async def _series_answer(
    access: Any,
    session: Any,
    runtime: Any,
    request: Request,
    series: Callable[..., Awaitable[list[tuple[date, int]]]],
    metric: str,
    from_: date | None,
    to: date | None,
    interval: Interval,
    episode_id: uuid.UUID | None,
) -> Response:
    """A downloads or listeners series; only downloads are summed (listeners never are)."""
    show_id = access.show.id
    period = Period.of(from_, to, today=_today())

    async def compute() -> dict[str, Any]:
        points = await series(
            session, show_id=show_id, period=period, interval=interval, episode_id=episode_id
        )
        return {
            "show_id": show_id,
            "metric": metric,
            "from": period.first,
            "to": period.last,
            "interval": interval.value,
            "episode_id": episode_id,
            "total": sum(value for _, value in points) if metric == "downloads" else None,
            "points": [{"start": start, "value": value} for start, value in points],
        }

    return await _answer(request, runtime, show_id, Series, compute, _series_table)


@router.get("/episodes/top", response_model=TopEpisodes, responses=_responses(TopEpisodes, 422))
async def top_episodes(
    access: AnalyticsViewer,
    session: SessionDep,
    runtime: RuntimeDep,
    request: Request,
    limit: Limit = 10,
    from_: Annotated[date | None, Query(alias="from", description="Default: all time.")] = None,
    to: Annotated[date | None, Query(description="Default: all time.")] = None,
) -> Response:
    """The most downloaded episodes, all time or in a period."""
    show_id = access.show.id
    period = Period.of(from_, to, today=_today()) if from_ or to else None

    async def compute() -> dict[str, Any]:
        rows = await insights.top_episodes(session, show_id=show_id, period=period, limit=limit)
        return {
            "show_id": show_id,
            "from": period.first if period else None,
            "to": period.last if period else None,
            "episodes": rows,
        }

    def table(data: dict[str, Any]) -> tuple[Sequence[str], Iterable[Sequence[Any]]]:
        columns = ("episode_id", "title", "published_at", "downloads")
        return columns, ([e[c] for c in columns] for e in data["episodes"])

    return await _answer(request, runtime, show_id, TopEpisodes, compute, table)


async def _breakdown(
    access: Any, session: Any, runtime: Any, request: Request, *, dimension: str, **query: Any
) -> Response:
    show_id = access.show.id
    period = Period.of(query["from_"], query["to"], today=_today())

    async def compute() -> dict[str, Any]:
        found = await insights.breakdown(
            session, show_id=show_id, dimension=dimension, period=period, limit=query["limit"]
        )
        return {"show_id": show_id, "from": period.first, "to": period.last, **found}

    def table(data: dict[str, Any]) -> tuple[Sequence[str], Iterable[Sequence[Any]]]:
        rows = ((i["value"], i["downloads"], i["share"]) for i in data["items"])
        return ("value", "downloads", "share"), rows

    return await _answer(request, runtime, show_id, Breakdown, compute, table)


BREAKDOWN: dict[str, Any] = {"response_model": Breakdown, "responses": _responses(Breakdown, 422)}


def _fixed_breakdown(dimension: str, doc: str) -> Callable[..., Awaitable[Response]]:
    async def endpoint(
        access: AnalyticsViewer,
        session: SessionDep,
        runtime: RuntimeDep,
        request: Request,
        from_: From = None,
        to: To = None,
        limit: Limit = 100,
    ) -> Response:
        return await _breakdown(
            access, session, runtime, request, dimension=dimension, from_=from_, to=to, limit=limit
        )

    endpoint.__doc__ = doc
    return endpoint


for _path, _dimension, _doc in (
    ("/apps", "app", "Downloads by podcast app (OPAWG names; null: not known)."),
    ("/devices", "device", "Downloads by device (OPAWG device names; null: not known)."),
    ("/countries", "country", "Downloads by country (ISO 3166 codes; null without GeoIP)."),
):
    router.get(_path, name=f"analytics_{_dimension}_breakdown", **BREAKDOWN)(
        _fixed_breakdown(_dimension, _doc)
    )


@router.get("/breakdown", **BREAKDOWN)
async def breakdown(
    access: AnalyticsViewer,
    session: SessionDep,
    runtime: RuntimeDep,
    request: Request,
    dimension: Annotated[str, Query(pattern="^(" + "|".join(BREAKDOWNS) + ")$")],
    from_: From = None,
    to: To = None,
    limit: Limit = 100,
) -> Response:
    """Downloads by `dimension`: app, device, os, referrer, country, region (`US-CA`), hour
    (of day, UTC) or subscriber (premium feeds)."""
    return await _breakdown(
        access, session, runtime, request, dimension=dimension, from_=from_, to=to, limit=limit
    )


@router.get(
    "/episodes/{episode_id}/performance",
    response_model=Performance,
    responses=_responses(Performance, 422),
)
async def performance(
    episode_id: uuid.UUID,
    access: AnalyticsViewer,
    session: SessionDep,
    runtime: RuntimeDep,
    request: Request,
    days: Annotated[int, Query(ge=1, le=366, description="Days after release to show.")] = 30,
) -> Response:
    """An episode day by day since its release, beside the median of the show's other
    episodes on the same day after theirs."""
    show_id = access.show.id

    async def compute() -> dict[str, Any]:
        found = await insights.episode_performance(
            session, show_id=show_id, episode_id=episode_id, days=days, today=_today()
        )
        return {"show_id": show_id, **found}

    def table(data: dict[str, Any]) -> tuple[Sequence[str], Iterable[Sequence[Any]]]:
        columns = ("day", "date", "downloads", "cumulative", "median_cumulative")
        return columns, ([d[c] for c in columns] for d in data["days"])

    return await _answer(request, runtime, show_id, Performance, compute, table)


# --- superusers ----------------------------------------------------------------------------------


@admin_router.get(
    "/analytics/summary", response_model=AdminSummary, responses=_responses(AdminSummary, 422)
)
async def admin_summary(
    auth: Superuser,
    session: SessionDep,
    runtime: RuntimeDep,
    request: Request,
    from_: From = None,
    to: To = None,
    limit: Limit = 10,
) -> Response:
    """Downloads across every show in a period: totals, shows and episodes with downloads,
    the top shows and the top apps."""
    period = Period.of(from_, to, today=_today())
    return await _answer(
        request,
        runtime,
        None,
        AdminSummary,
        lambda: insights.admin_summary(session, period=period, limit=limit),
        None,
    )


@admin_router.get(
    "/analytics/unknown-user-agents",
    response_model=list[UnknownAgent],
    responses=errors(401, 403),
)
async def unknown_user_agents(
    auth: Superuser,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[UnknownUserAgent]:
    """User-Agents that no OPAWG entry matched, most requests first: report them to the
    data set so they get a name."""
    rows = await session.scalars(
        select(UnknownUserAgent)
        .order_by(UnknownUserAgent.hits.desc(), UnknownUserAgent.user_agent)
        .limit(limit)
    )
    return list(rows)


@admin_router.get("/cache", response_model=CacheStats, responses=errors(401, 403))
async def cache_stats(auth: Superuser, runtime: RuntimeDep) -> dict[str, Any]:
    """Entries and bytes in the cache of rendered answers (feeds and insights): in this
    process, and in Redis when configured."""
    return await runtime.cache.stats()


@admin_router.delete("/cache", status_code=status.HTTP_204_NO_CONTENT, responses=errors(401, 403))
async def cache_clear(auth: Superuser, runtime: RuntimeDep) -> Response:
    """Drop every cached answer in every process; they are computed again when asked for."""
    await runtime.cache.clear()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
