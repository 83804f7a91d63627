"""Database plumbing: the declarative base, id/time column types, engines and units of work.

SQLite (the embedded default) and PostgreSQL run the same code. On SQLite we take the write
lock up front (``BEGIN IMMEDIATE``) for units of work that will write, so concurrent writers
wait on the busy timeout instead of failing with "database is locked" half-way through.
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import anyio
import uuid6
from sqlalchemy import JSON, DateTime, MetaData, event
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from sqlalchemy.types import TypeDecorator

from amphora.kit.clock import ensure_utc, utcnow

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

AFTER_COMMIT_KEY = "amphora_after_commit"
AfterCommit = Callable[[], None] | Callable[[], Awaitable[None]]


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend (SQLite drops the offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use amphora.kit.clock.utcnow()")
        return ensure_utc(value)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return ensure_utc(value) if value is not None else None


# For nullable JSON columns: Python None stored as SQL NULL, not as the JSON text 'null' (which
# `IS NULL` does not match, so a cleared value would still look set to every query).
OptionalJSON = JSON(none_as_null=True)


def new_id() -> uuid.UUID:
    """Time-ordered UUIDv7: index-friendly and sortable by creation time."""
    return uuid.UUID(bytes=uuid6.uuid7().bytes)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}


class IdMixin:
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


def after_commit(session: AsyncSession | Session, callback: AfterCommit) -> None:
    """Run ``callback`` once this unit of work has committed: a plain function in a worker
    thread, a coroutine function on the event loop.

    Used to enqueue jobs: a job sent before the commit could run against rows that do not
    exist yet, or that a rollback removes.
    """
    session.info.setdefault(AFTER_COMMIT_KEY, []).append(callback)


class Database:
    """An engine plus two session factories (read-mostly and write) sharing one pool."""

    def __init__(
        self,
        url: str,
        *,
        session_info: dict[str, Any] | None = None,
        echo: bool = False,
        pool_size: int = 10,
    ) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {"echo": echo, "pool_pre_ping": not self.is_sqlite}
        if self.is_sqlite:
            kwargs["connect_args"] = {"timeout": 30}
        else:
            kwargs.update(pool_size=pool_size, max_overflow=pool_size * 2)
            # asyncpg prepares every statement; after a few runs PostgreSQL may switch to a
            # generic plan that cannot see the values (a rare search word looks like a
            # common one). Planning each time costs well under a millisecond here.
            kwargs["connect_args"] = {"server_settings": {"plan_cache_mode": "force_custom_plan"}}
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            _configure_sqlite(self.engine)
        write_engine = self.engine.execution_options(amphora_write=True)
        info = session_info or {}
        self.read_sessions = async_sessionmaker(self.engine, expire_on_commit=False, info=info)
        self.write_sessions = async_sessionmaker(write_engine, expire_on_commit=False, info=info)

    @asynccontextmanager
    async def session(self, *, write: bool = True) -> AsyncIterator[AsyncSession]:
        """One unit of work: commit on success, roll back on error, then run after-commit hooks."""
        factory = self.write_sessions if write else self.read_sessions
        async with factory() as session:
            try:
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                session.info.pop(AFTER_COMMIT_KEY, None)
                raise
        await run_after_commit(session)

    async def ping(self) -> None:
        from sqlalchemy import text

        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()


async def run_after_commit(session: AsyncSession) -> None:
    callbacks: list[AfterCommit] = session.info.pop(AFTER_COMMIT_KEY, [])
    for callback in callbacks:
        if inspect.iscoroutinefunction(callback):
            await callback()
        else:
            await anyio.to_thread.run_sync(callback)


def _configure_sqlite(engine: AsyncEngine) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy (not the driver) emit BEGIN, so we can choose IMMEDIATE for writers.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in (
            "PRAGMA busy_timeout=30000",
            "PRAGMA foreign_keys=ON",
            "PRAGMA synchronous=NORMAL",
        ):
            cursor.execute(pragma)
        # WAL is a property of the file, set once (migrations do it first). Switching needs
        # an exclusive lock that SQLite does not wait for, so several connections opening a
        # new file at once must not all try: only switch when the file is not in WAL yet.
        cursor.execute("PRAGMA journal_mode")
        if str(cursor.fetchone()[0]).lower() != "wal":
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        write = conn.get_execution_options().get("amphora_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
