"""Applying the Alembic migrations programmatically (CLI, server start-up, tests).

Alembic is imported only inside the functions: the server process starts the upgrade in a
child process and so never loads it.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alembic.config import Config


def migrations_dir() -> Path:
    """The revisions: packaged inside the wheel, or at the top of a source checkout."""
    packaged = Path(__file__).resolve().parent.parent / "_migrations"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[3] / "migrations"


def alembic_config(database_url: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Blocking: call from a thread when an event loop is running (env.py runs its own)."""
    from alembic import command

    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    from alembic import command

    command.downgrade(alembic_config(database_url), revision)


def current(database_url: str) -> str | None:
    """The revision the database is at (blocking, like the other commands here)."""
    return asyncio.run(_current_async(database_url))


async def _current_async(database_url: str) -> str | None:
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool

    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(
                lambda sync_conn: MigrationContext.configure(sync_conn).get_current_revision()
            )
    finally:
        await engine.dispose()


MIGRATE_URL_ENV = "AMPHORA_MIGRATE_URL"


def start_upgrade_process(database_url: str) -> subprocess.Popen[bytes]:
    """Apply the migrations in a child process (the URL travels in its environment, never on
    a command line others can read). The server imports its own code meanwhile, and never
    loads Alembic itself."""
    env = {**os.environ, MIGRATE_URL_ENV: database_url}
    return subprocess.Popen([sys.executable, "-m", "amphora.kit.migrate"], env=env)


if __name__ == "__main__":
    upgrade(os.environ[MIGRATE_URL_ENV])
