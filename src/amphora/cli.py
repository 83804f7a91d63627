"""The `amphora` command: serve, worker, db, user, jobs, mail."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from amphora.kit import migrate
from amphora.kit.logs import configure_logging
from amphora.settings import Settings

app = typer.Typer(help="Amphora: self-hostable podcast hosting.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema migrations.", no_args_is_help=True)
user_app = typer.Typer(help="Manage accounts.", no_args_is_help=True)
jobs_app = typer.Typer(help="Inspect and retry background jobs.", no_args_is_help=True)
mail_app = typer.Typer(help="Outgoing mail.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(user_app, name="user")
app.add_typer(jobs_app, name="jobs")
app.add_typer(mail_app, name="mail")

console = Console()
T = TypeVar("T")


def _settings() -> Settings:
    try:
        settings = Settings()
    except ValueError as exc:
        console.print(f"[red]Configuration error:[/red] {exc}")
        raise typer.Exit(2) from exc
    configure_logging(level=settings.log_level, fmt=settings.log_format)
    return settings


def _run(settings: Settings, work: Callable[[Any], Awaitable[T]]) -> T:
    """Run ``work(runtime)`` with a fresh runtime, for one-off commands."""
    from amphora.runtime import make_jobs, open_runtime

    async def main() -> T:
        runtime = open_runtime(settings, make_jobs(settings))
        try:
            return await work(runtime)
        finally:
            await runtime.aclose()

    return asyncio.run(main())


# --- serve / worker -----------------------------------------------------------------------------


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option(help="Interface to bind (default from settings).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default from settings).")] = None,
    demo: Annotated[
        bool, typer.Option(help="Seed a verified demo creator and print the login.")
    ] = False,
) -> None:
    """Apply migrations and run the API (and, in embedded mode, the job consumer)."""
    import uvicorn

    settings = _settings()
    host, port = host or settings.host, port or settings.port
    migration = migrate.start_upgrade_process(settings.resolved_database_url)
    from amphora.app import create_app

    if migration.wait() != 0:
        console.print("[red]Applying the database migrations failed (see above).[/red]")
        raise typer.Exit(1)
    if demo:
        from amphora.demo import seed_demo

        login = _run(settings, lambda runtime: seed_demo(runtime))
        here = f"http://{host}:{port}"
        console.print(
            f"[bold green]Demo ready.[/bold green] Sign in as [bold]{login.email}[/bold] "
            f"with password [bold]{login.password}[/bold]\n"
            f"API docs: {here}/docs  ·  back office: {here}/admin",
            soft_wrap=True,
        )
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        proxy_headers=False,  # X-Forwarded-For is read by our own code, from trusted proxies only
        access_log=False,
        log_config=None,
        server_header=False,
    )


@app.command()
def worker(
    workers: Annotated[
        int | None, typer.Option(help="Worker threads (default from settings).")
    ] = None,
) -> None:
    """Consume background jobs (use with AMPHORA_REDIS_URL; several workers may run at once)."""
    from amphora.runtime import Runtime, make_jobs, open_runtime

    settings = _settings()
    jobs = make_jobs(settings)

    async def context() -> Runtime:
        return open_runtime(settings, jobs)

    jobs.run_worker(context, workers=workers or settings.job_workers)


# --- db -----------------------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    settings = _settings()
    migrate.upgrade(settings.resolved_database_url, revision)
    console.print(f"database at {migrate.current(settings.resolved_database_url)}")


@db_app.command("downgrade")
def db_downgrade(revision: str) -> None:
    """Revert migrations down to REVISION (`base` removes every table)."""
    settings = _settings()
    migrate.downgrade(settings.resolved_database_url, revision)
    console.print(f"database at {migrate.current(settings.resolved_database_url)}")


@db_app.command("current")
def db_current() -> None:
    """Print the revision the database is at."""
    settings = _settings()
    console.print(
        migrate.current(settings.resolved_database_url) or "empty (no migrations applied)"
    )


# --- user ---------------------------------------------------------------------------------------


@user_app.command("create")
def user_create(
    email: str,
    display_name: Annotated[
        str | None, typer.Option(help="Defaults to the email's name part.")
    ] = None,
    superuser: Annotated[
        bool, typer.Option(help="Grant back-office and admin API access.")
    ] = False,
    password_stdin: Annotated[
        bool, typer.Option(help="Read the password from standard input.")
    ] = False,
) -> None:
    """Create a verified account (prompts for the password)."""
    from amphora.account import service
    from amphora.account.schemas import EmailIn
    from amphora.kit.errors import AmphoraError

    settings = _settings()
    try:
        address = EmailIn(email=email).email
    except ValueError as exc:
        console.print(f"[red]Not a valid email address:[/red] {email}")
        raise typer.Exit(2) from exc
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < 10:
        console.print("[red]The password needs at least 10 characters.[/red]")
        raise typer.Exit(2)

    async def work(runtime: Any) -> Any:
        async with runtime.db.session() as session:
            return await service.create_user(
                session,
                email=address,
                password=password,
                display_name=display_name or address.split("@")[0],
                is_verified=True,
                is_superuser=superuser,
            )

    try:
        user = _run(settings, work)
    except AmphoraError as exc:
        console.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(1) from exc
    kind = "superuser" if superuser else "user"
    console.print(f"created {kind} {user.email} ({user.id})")


# --- jobs ---------------------------------------------------------------------------------------


@jobs_app.command("list")
def jobs_list(
    failed: Annotated[
        bool, typer.Option("--failed", help="Show jobs that used up their retries.")
    ] = False,
) -> None:
    """Pending and scheduled jobs, or (--failed) the ones that failed for good."""
    from amphora.models import FailedJob
    from amphora.runtime import make_jobs

    settings = _settings()
    if not failed:
        table = Table("id", "job", "args", "eta")
        for row in make_jobs(settings).pending():
            table.add_row(row["id"], row["name"], json.dumps(row["args"]), str(row["eta"] or "now"))
        console.print(table)
        return

    async def work(runtime: Any) -> list[FailedJob]:
        async with runtime.db.session(write=False) as session:
            query = (
                select(FailedJob)
                .where(FailedJob.retried_at.is_(None))
                .order_by(FailedJob.failed_at)
            )
            return list((await session.scalars(query)).all())

    table = Table("id", "job", "args", "failed at", "error")
    for job in _run(settings, work):
        last_line = job.error.strip().splitlines()[-1] if job.error.strip() else ""
        table.add_row(
            str(job.id), job.task_name, json.dumps(job.args), job.failed_at.isoformat(), last_line
        )
    console.print(table)


@jobs_app.command("retry")
def jobs_retry(failed_job_id: str) -> None:
    """Send a failed job (id from `amphora jobs list --failed`) again."""
    from amphora.kit.clock import utcnow
    from amphora.kit.jobs import JOBS
    from amphora.models import FailedJob

    settings = _settings()
    try:
        job_id = uuid.UUID(failed_job_id)
    except ValueError as exc:
        console.print("[red]Not a job id.[/red]")
        raise typer.Exit(2) from exc

    async def work(runtime: Any) -> str | None:
        async with runtime.db.session() as session:
            job = await session.get(FailedJob, job_id)
            if job is None or job.retried_at is not None or job.task_name not in JOBS:
                return None
            job.retried_at = utcnow()
            name, args = job.task_name, tuple(job.args)
        return await asyncio.to_thread(runtime.jobs.enqueue, name, args)

    task_id = _run(settings, work)
    if task_id is None:
        console.print("[red]No such failed job (or it was retried already).[/red]")
        raise typer.Exit(1)
    console.print(f"sent again as {task_id}")


# --- mail ---------------------------------------------------------------------------------------


@mail_app.command("outbox")
def mail_outbox(
    limit: Annotated[int, typer.Option(help="How many of the newest mails.")] = 20,
) -> None:
    """Print the mails kept in the outbox (used when no SMTP server is configured)."""
    from amphora.models import MailStatus, OutboxMail

    settings = _settings()

    async def work(runtime: Any) -> list[OutboxMail]:
        async with runtime.db.session(write=False) as session:
            query = (
                select(OutboxMail)
                .where(OutboxMail.status.in_([MailStatus.outbox, MailStatus.queued]))
                .order_by(OutboxMail.created_at.desc())
                .limit(limit)
            )
            return list((await session.scalars(query)).all())

    mails = _run(settings, work)
    if not mails:
        console.print("The outbox is empty.")
    for mail in reversed(mails):
        console.rule(f"{mail.created_at:%Y-%m-%d %H:%M:%S} UTC  ·  {mail.status}")
        console.print(f"To: {mail.to_address}\nSubject: {mail.subject}\n", markup=False)
        console.print(mail.text_body, markup=False, highlight=False)


# --- import -------------------------------------------------------------------------------------


@app.command("import")
def import_show(
    source: Annotated[str, typer.Argument(help="A feed URL, or the path of an export zip.")],
    owner: Annotated[str, typer.Option(help="Email of the account the show goes to.")],
    mirror_media: Annotated[
        bool, typer.Option(help="Copy the enclosures here (else keep the old host's URLs).")
    ] = True,
    keep_in_sync: Annotated[
        bool, typer.Option(help="Re-read the old feed periodically for new episodes.")
    ] = False,
) -> None:
    """Import a show from another host (or an Amphora export) right here, with a progress bar."""
    import shutil
    from pathlib import Path

    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

    from amphora.account.repository import user_by_email
    from amphora.feed_import import service
    from amphora.feed_import.archive import archives_dir, read_archive
    from amphora.feed_import.tasks import run_import
    from amphora.kit.errors import AmphoraError
    from amphora.models import ImportStatus, ShowImport

    settings = _settings()
    archive: Path | None = None
    if not source.startswith(("http://", "https://")):
        given = Path(source)
        if not given.is_file():
            console.print(f"[red]{source} is neither a feed URL nor a file.[/red]")
            raise typer.Exit(2)
        folder = archives_dir(settings)
        folder.mkdir(parents=True, exist_ok=True)
        archive = folder / f"{uuid.uuid4()}.zip"
        shutil.copyfile(given, archive)

    async def read(runtime: Any, import_id: uuid.UUID) -> ShowImport:
        async with runtime.db.session(write=False) as session:
            imp: ShowImport | None = await session.get(ShowImport, import_id)
            assert imp is not None
            session.expunge(imp)
            return imp

    async def create(runtime: Any) -> uuid.UUID:
        async with runtime.db.session() as session:
            user = await user_by_email(session, owner)
            if user is None:
                raise AmphoraError(f"No account with the address {owner}.")
            if archive is not None:  # refused now, as the API does, not later in the job
                read_archive(archive)
            imp = await service.create_import(
                session,
                user=user,
                feed_url=None if archive else source,
                archive_path=str(archive) if archive else None,
                mirror_media=mirror_media,
                keep_in_sync=keep_in_sync,
            )
            return imp.id

    async def work(runtime: Any) -> ShowImport:
        try:
            import_id = await create(runtime)
        except BaseException:
            if archive is not None:  # no import to remove the copy once it ends
                archive.unlink(missing_ok=True)
            raise
        with Progress(
            TextColumn("{task.description}"), BarColumn(), DownloadColumn(), console=console
        ) as bar:
            task = bar.add_task("queued", total=None)
            while True:
                job = asyncio.ensure_future(run_import.body(runtime, str(import_id)))
                while not job.done():
                    await asyncio.sleep(0.3)
                    imp = await read(runtime, import_id)
                    total = imp.bytes_total or None
                    label = f"{imp.status}: {imp.items_done}/{imp.items_total} episodes"
                    bar.update(task, description=label, total=total, completed=imp.bytes_done)
                await job
                imp = await read(runtime, import_id)
                if imp.status != ImportStatus.verifying:
                    return imp
                bar.stop()
                code = typer.prompt(
                    f"The feed is locked; enter the code mailed to {imp.verify_email}"
                )
                async with runtime.db.session() as session:
                    row = await session.get(ShowImport, import_id)
                    assert row is not None
                    wrong = await service.verify_ownership(session, settings, imp=row, code=code)
                if wrong is not None:
                    raise wrong
                bar.start()

    try:
        imp = _run(settings, work)
    except AmphoraError as exc:
        console.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(1) from exc
    for problem in imp.problems:
        console.print(
            f"[yellow]{problem['where']}[/yellow] {problem['field']}: {problem['message']}"
        )
    if imp.status != ImportStatus.done:
        console.print(f"[red]Import {imp.status}: {imp.error_message or ''}[/red]")
        raise typer.Exit(1)
    console.print(f"imported show {imp.show_id}: {imp.items_done} episodes, {imp.files_done} files")


# Registered last: its commands reuse this module's helpers (_settings, _run, console).
from amphora.analytics.cli import analytics_app  # noqa: E402

app.add_typer(analytics_app, name="analytics")
