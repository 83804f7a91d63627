"""Listening sessions over HTTP: the web player's beacons (public) and an episode's listening
figures for the show's team (JSON, or the drop-off curve as CSV with ``Accept: text/csv``).

The rules live in :mod:`amphora.analytics.listening`. The request and response shapes are
here, beside the only routes that use them.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query, Request, status
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

from amphora.analytics.deps import AnalyticsViewer
from amphora.analytics.listening import (
    MAX_BATCH,
    SESSION_ID_PATTERN,
    EpisodeListening,
    IncomingBeacon,
    episode_listening,
    record_beacons,
)
from amphora.analytics.tables import CSV_RESPONSE, CSV_TYPE, JSON, csv_bytes, wants_csv
from amphora.deps import ClientAddress, RuntimeDep, SessionDep
from amphora.kit.clock import utcnow
from amphora.kit.openapi import errors

public_router = APIRouter(tags=["analytics"])
router = APIRouter(prefix="/shows/{show_id}/analytics", tags=["analytics"])

SESSION = "k3J9x_Qe2LmP-7vWz0aB"
EPISODE = "0192f7a2-6c2f-7d4e-8f90-2b3c4d5e6f70"


# --- schemas -------------------------------------------------------------------------------------


class ListenEventIn(BaseModel):
    """One beacon of the web player."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"session_id": SESSION, "episode_id": EPISODE, "event": "play", "position": 0},
                {
                    "session_id": SESSION,
                    "episode_id": EPISODE,
                    "event": "seek",
                    "position": 600.0,
                    "from": 312.5,
                },
            ]
        }
    )

    session_id: str = Field(
        pattern=SESSION_ID_PATTERN,
        description="The player's random id of this listening session: 16 to 64 of "
        "`A-Z a-z 0-9 _ -`.",
    )
    episode_id: uuid.UUID
    event: Literal["play", "pause", "seek", "progress", "ended"] = Field(
        description="`progress` is sent every ~15 s while playing."
    )
    position: float = Field(
        ge=0,
        allow_inf_nan=False,
        description="Seconds into the episode (for a seek: where to). At most the duration "
        "plus a small tolerance.",
    )
    from_: float | None = Field(
        None,
        alias="from",
        ge=0,
        allow_inf_nan=False,
        description="Seeks only (and required there): the position the seek left.",
    )
    t: float | None = Field(
        None,
        allow_inf_nan=False,
        description="The player's clock: accepted and ignored. The server's clock and the "
        "order of a batch are what count.",
    )

    @model_validator(mode="after")
    def _from_only_for_seeks(self) -> ListenEventIn:
        if self.event == "seek" and self.from_ is None:
            raise ValueError("A seek needs 'from'.")
        if self.event != "seek" and self.from_ is not None:
            raise ValueError("'from' is only for seeks.")
        return self

    def incoming(self) -> IncomingBeacon:
        return IncomingBeacon(
            self.session_id, self.episode_id, self.event, self.position, self.from_
        )


class ListenBatch(BaseModel):
    """Beacons in the order they happened (a player that queued them while offline)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "events": [
                        {
                            "session_id": SESSION,
                            "episode_id": EPISODE,
                            "event": "play",
                            "position": 0,
                        },
                        {
                            "session_id": SESSION,
                            "episode_id": EPISODE,
                            "event": "progress",
                            "position": 15.0,
                        },
                        {
                            "session_id": SESSION,
                            "episode_id": EPISODE,
                            "event": "pause",
                            "position": 21.4,
                        },
                    ]
                }
            ]
        }
    )

    events: list[ListenEventIn] = Field(min_length=1, max_length=MAX_BATCH)


def _shape(value: Any) -> str | None:
    if isinstance(value, dict):
        return "batch" if "events" in value else "event"
    return None


ListenEventsIn = Annotated[
    Annotated[ListenEventIn, Tag("event")] | Annotated[ListenBatch, Tag("batch")],
    Discriminator(_shape),
    Body(description=f'One beacon, or `{{"events": [...]}}` with 1 to {MAX_BATCH}.'),
]


class ListenAccepted(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"accepted": 3}]})

    accepted: int = Field(description="Events stored.")


class DropoffPointRead(BaseModel):
    percent: int = Field(description="0, 5, …, 100: a point of the episode.")
    share: float | None = Field(
        description="Share of sessions that played that point (null: no sessions)."
    )


class ListeningRead(BaseModel):
    """CSV (``Accept: text/csv``): the drop-off curve, ``percent,share``."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "episode_id": EPISODE,
                    "duration_seconds": 1800.0,
                    "from": None,
                    "to": None,
                    "sessions": 4,
                    "median_listen_seconds": 912.5,
                    "completion_rate": 0.25,
                    "pauses_per_session": 1.5,
                    "dropoff": [
                        {"percent": 0, "share": 1.0},
                        {"percent": 5, "share": 1.0},
                        {"percent": 10, "share": 0.75},
                        {"percent": 100, "share": 0.25},
                    ],
                }
            ]
        }
    )

    episode_id: uuid.UUID
    duration_seconds: float | None = Field(description="Null: the episode has no audio now.")
    from_: date | None = Field(alias="from", description="First day (UTC) sessions started.")
    to: date | None = Field(description="Last day (UTC) sessions started.")
    sessions: int = Field(description="Listening sessions (single-event ones included).")
    median_listen_seconds: float | None = Field(
        description="Median time played per session (re-listened parts count again)."
    )
    completion_rate: float | None = Field(
        description="Share of sessions that played to 95 % of the episode or to its end."
    )
    pauses_per_session: float | None
    dropoff: list[DropoffPointRead] = Field(
        description="21 points (0 %, 5 %, …, 100 %); empty without a duration."
    )


# --- routes --------------------------------------------------------------------------------------


@public_router.post(
    "/listen-events",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ListenAccepted,
    responses=errors(404, 422, 429),
)
async def listen_events(
    body: ListenEventsIn, session: SessionDep, runtime: RuntimeDep, address: ClientAddress
) -> ListenAccepted:
    """Beacons of the web player (no sign-in). Accepted only for published episodes, premium
    ones included; a batch is stored whole or refused whole (404: an episode that is not
    there to listen to; 422: a position past its end). Rate-limited per client address, one
    per event."""
    events = body.events if isinstance(body, ListenBatch) else [body]
    accepted = await record_beacons(
        session,
        runtime.limiter,
        beacons=[event.incoming() for event in events],
        client_address=address,
        per_minute=runtime.settings.listen_events_per_minute,
        now=utcnow(),
    )
    return ListenAccepted(accepted=accepted)


def _read(found: EpisodeListening) -> ListeningRead:
    figures = found.figures
    return ListeningRead.model_validate(
        {
            "episode_id": found.episode_id,
            "duration_seconds": found.duration,
            "from": found.first,
            "to": found.last,
            "sessions": figures.sessions,
            "median_listen_seconds": figures.median_listen_seconds,
            "completion_rate": figures.completion_rate,
            "pauses_per_session": figures.pauses_per_session,
            "dropoff": [{"percent": p.percent, "share": p.share} for p in figures.dropoff],
        }
    )


@router.get(
    "/episodes/{episode_id}/listening",
    response_model=ListeningRead,
    responses={
        200: {"model": ListeningRead, "content": CSV_RESPONSE},
        **errors(401, 403, 404, 422),
    },
)
async def listening(
    episode_id: uuid.UUID,
    access: AnalyticsViewer,
    session: SessionDep,
    request: Request,
    from_: Annotated[
        date | None, Query(alias="from", description="First day (UTC); default: open.")
    ] = None,
    to: Annotated[date | None, Query(description="Last day (UTC); default: open.")] = None,
) -> Response:
    """How people listen to an episode in the web player: sessions, median time played,
    completion, pauses and the drop-off curve, of sessions started in the period."""
    found = await episode_listening(
        session, show_id=access.show.id, episode_id=episode_id, first=from_, last=to
    )
    read = _read(found)
    if wants_csv(request):
        rows = ((point.percent, point.share) for point in read.dropoff)
        return Response(csv_bytes(("percent", "share"), rows), media_type=CSV_TYPE)
    return Response(read.model_dump_json(by_alias=True), media_type=JSON)
