"""The `amphora` command on the embedded defaults: db, user, jobs, mail."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from amphora.kit import migrate


def amphora(
    data_dir: Path, *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AMPHORA_")},
        "AMPHORA_DATA_DIR": str(data_dir),
        "AMPHORA_LOG_LEVEL": "WARNING",
        "COLUMNS": "200",
        **(env or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "amphora", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_db_upgrade_current_downgrade(tmp_path: Path) -> None:
    assert "empty" in amphora(tmp_path, "db", "current").stdout
    upgraded = amphora(tmp_path, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    head = migrate.current(f"sqlite+aiosqlite:///{tmp_path / 'amphora.db'}")
    assert head and head in amphora(tmp_path, "db", "current").stdout
    assert amphora(tmp_path, "db", "downgrade", "base").returncode == 0
    assert "empty" in amphora(tmp_path, "db", "current").stdout


def test_user_create_and_mail_outbox(tmp_path: Path) -> None:
    assert amphora(tmp_path, "db", "upgrade").returncode == 0
    created = amphora(
        tmp_path,
        "user",
        "create",
        "op@example.com",
        "--superuser",
        "--password-stdin",
        stdin="a long admin password\n",
    )
    assert created.returncode == 0, created.stderr
    assert "created superuser op@example.com" in created.stdout
    again = amphora(
        tmp_path, "user", "create", "OP@example.com", "--password-stdin", stdin="another long one\n"
    )
    assert again.returncode == 1 and "already exists" in again.stdout
    bad = amphora(
        tmp_path, "user", "create", "not-an-email", "--password-stdin", stdin="long enough pw\n"
    )
    assert bad.returncode == 2
    assert "The outbox is empty." in amphora(tmp_path, "mail", "outbox").stdout


@pytest.mark.asyncio
async def test_outbox_and_failed_job_retry(tmp_path: Path) -> None:
    from sqlalchemy import select

    from amphora.kit.mail import queue_mail
    from amphora.models import FailedJob
    from amphora.runtime import make_jobs, open_runtime
    from amphora.settings import Settings

    assert amphora(tmp_path, "db", "upgrade").returncode == 0
    settings = Settings(data_dir=tmp_path, env="test")
    runtime = open_runtime(settings, make_jobs(settings))
    async with runtime.db.session() as session:
        await queue_mail(
            session,
            to="someone@example.com",
            template="find_account",
            context={
                "display_name": "S",
                "primary_email": "main@example.com",
                "login_link": "http://x",
            },
        )
        session.add(
            FailedJob(
                task_name="amphora.kit.mail.deliver_mail", task_id="t1", args=["x"], error="boom"
            )
        )
    await runtime.aclose()

    outbox = amphora(tmp_path, "mail", "outbox")
    assert "To: someone@example.com" in outbox.stdout and "main@example.com" in outbox.stdout

    pending = amphora(tmp_path, "jobs", "list")
    assert "deliver_mail" in pending.stdout
    failed = amphora(tmp_path, "jobs", "list", "--failed")
    assert "deliver_mail" in failed.stdout and "boom" in failed.stdout

    runtime = open_runtime(settings, make_jobs(settings))
    async with runtime.db.session(write=False) as session:
        failed_id = str(await session.scalar(select(FailedJob.id)))
    await runtime.aclose()
    retried = amphora(tmp_path, "jobs", "retry", failed_id)
    assert retried.returncode == 0 and "sent again" in retried.stdout
    assert amphora(tmp_path, "jobs", "retry", failed_id).returncode == 1  # only once
    assert "boom" not in amphora(tmp_path, "jobs", "list", "--failed").stdout
