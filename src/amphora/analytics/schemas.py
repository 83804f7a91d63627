"""Response shapes of the insights API (each also documents its CSV columns)."""

from __future__ import annotations

import datetime as dt
import uuid
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

SHOW = "0192f7a2-5b1e-7c3d-9e8f-1a2b3c4d5e6f"
EPISODE = "0192f7a2-6c2f-7d4e-8f90-2b3c4d5e6f70"


def _example(example: dict[str, Any]) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": [example]})


class DownloadTotals(BaseModel):
    all_time: int
    last_7_days: int
    last_30_days: int


class AfterRelease(BaseModel):
    day_1: float | None = Field(description="Mean downloads of an episode on its release day.")
    day_7: float | None = Field(description="… in its first 7 days (episodes out that long).")
    day_30: float | None = Field(description="… in its first 30 days (episodes out that long).")


class Summary(BaseModel):
    model_config = _example(
        {
            "show_id": SHOW,
            "as_of": "2026-12-06",
            "episodes": 42,
            "downloads": {"all_time": 128_500, "last_7_days": 2_310, "last_30_days": 9_804},
            "unique_listeners_30_days": 3_120,
            "average_downloads_per_episode": {"day_1": 410.5, "day_7": 1_180.2, "day_30": 2_005.0},
        }
    )

    show_id: uuid.UUID
    as_of: date = Field(description="Today (UTC): the last day counted.")
    episodes: int = Field(description="Released episodes.")
    downloads: DownloadTotals
    unique_listeners_30_days: int
    average_downloads_per_episode: AfterRelease


class Point(BaseModel):
    start: date = Field(description="First day of the day, ISO week (Monday) or month.")
    value: int


class Series(BaseModel):
    """CSV: ``start,<metric>``."""

    model_config = _example(
        {
            "show_id": SHOW,
            "metric": "downloads",
            "from": "2026-11-30",
            "to": "2026-12-06",
            "interval": "day",
            "episode_id": None,
            "total": 25,
            "points": [{"start": "2026-11-30", "value": 12}, {"start": "2026-12-01", "value": 13}],
        }
    )

    show_id: uuid.UUID
    metric: str = Field(description="`downloads` or `listeners`.")
    from_: date = Field(alias="from")
    to: date
    interval: str
    episode_id: uuid.UUID | None
    total: int | None = Field(
        description="Sum of the points for downloads; null for listeners (never summed)."
    )
    points: list[Point]


class TopEpisode(BaseModel):
    episode_id: uuid.UUID
    title: str
    published_at: datetime | None
    downloads: int


class TopEpisodes(BaseModel):
    """CSV: ``episode_id,title,published_at,downloads``."""

    model_config = _example(
        {
            "show_id": SHOW,
            "from": None,
            "to": None,
            "episodes": [
                {
                    "episode_id": EPISODE,
                    "title": "Keepers of the light",
                    "published_at": "2026-11-02T06:00:00Z",
                    "downloads": 5_210,
                }
            ],
        }
    )

    show_id: uuid.UUID
    from_: date | None = Field(alias="from", description="Null: all time.")
    to: date | None
    episodes: list[TopEpisode]


class BreakdownItem(BaseModel):
    value: str | None = Field(description="Null: not known (e.g. no GeoIP database).")
    downloads: int
    share: float = Field(description="Of all downloads of the period, from 0 to 1.")


class Breakdown(BaseModel):
    """CSV: ``value,downloads,share``."""

    model_config = _example(
        {
            "show_id": SHOW,
            "dimension": "app",
            "from": "2026-11-07",
            "to": "2026-12-06",
            "total": 9_804,
            "items": [
                {"value": "Apple Podcasts", "downloads": 5_120, "share": 0.5222},
                {"value": "Spotify", "downloads": 2_300, "share": 0.2346},
            ],
        }
    )

    show_id: uuid.UUID
    dimension: str
    from_: date = Field(alias="from")
    to: date
    total: int
    items: list[BreakdownItem]


class PerformanceDay(BaseModel):
    day: int = Field(description="1 = the release day.")
    date: dt.date
    downloads: int
    cumulative: int
    median_cumulative: float | None = Field(
        description="Median cumulative downloads of the show's other episodes on the same day "
        "after their release (those out that long)."
    )


class Performance(BaseModel):
    """CSV: ``day,date,downloads,cumulative,median_cumulative``."""

    model_config = _example(
        {
            "show_id": SHOW,
            "episode_id": EPISODE,
            "title": "Keepers of the light",
            "published_at": "2026-12-04T06:00:00Z",
            "episodes_compared": 41,
            "days": [
                {
                    "day": 1,
                    "date": "2026-12-04",
                    "downloads": 380,
                    "cumulative": 380,
                    "median_cumulative": 402.0,
                }
            ],
        }
    )

    show_id: uuid.UUID
    episode_id: uuid.UUID
    title: str
    published_at: datetime | None
    episodes_compared: int
    days: list[PerformanceDay]


class TopShow(BaseModel):
    show_id: uuid.UUID
    title: str
    downloads: int


class TopApp(BaseModel):
    value: str | None
    downloads: int


class AdminSummary(BaseModel):
    model_config = _example(
        {
            "from": "2026-11-07",
            "to": "2026-12-06",
            "downloads": 1_204_511,
            "shows": 310,
            "episodes": 9_842,
            "top_shows": [{"show_id": SHOW, "title": "The Lighthouse Hour", "downloads": 98_000}],
            "top_apps": [{"value": "Apple Podcasts", "downloads": 610_000}],
        }
    )

    from_: date = Field(alias="from")
    to: date
    downloads: int
    shows: int = Field(description="Shows with downloads in the period.")
    episodes: int = Field(description="Episodes with downloads in the period.")
    top_shows: list[TopShow]
    top_apps: list[TopApp]


class UnknownAgent(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    user_agent: str
    hits: int
    first_seen: datetime
    last_seen: datetime


class CacheUsage(BaseModel):
    entries: int
    bytes: int


class CacheStats(BaseModel):
    model_config = _example(
        {"local": {"entries": 120, "bytes": 5_242_880}, "shared": {"entries": 480, "bytes": 9e6}}
    )

    local: CacheUsage = Field(description="In this process.")
    shared: CacheUsage | None = Field(description="In Redis (null without Redis).")
