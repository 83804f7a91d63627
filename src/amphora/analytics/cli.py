"""`amphora analytics …`: the user-agent data set, access-log import, processing."""

from __future__ import annotations

from typing import Annotated, Any

import typer

analytics_app = typer.Typer(help="Audience analytics.", no_args_is_help=True)


@analytics_app.command("update-user-agents")
def update_user_agents(
    source: str | None = typer.Option(
        None,
        "--from",
        metavar="PATH_OR_URL",
        help="A directory holding the data set's JSON files, or the URL of one "
        "(default: AMPHORA_USER_AGENTS_URL).",
    ),
) -> None:
    """Install or refresh the OPAWG user-agent data set used to tell apps from bots."""
    import asyncio

    from rich.markup import escape

    from amphora.analytics.useragents import UserAgents, install_user_agents
    from amphora.cli import _settings, console
    from amphora.kit.errors import AmphoraError

    settings = _settings()
    try:
        directory = asyncio.run(install_user_agents(settings, source))
        agents = UserAgents.load(directory)
    except AmphoraError as exc:
        console.print(f"[red]The user-agent data was not updated:[/red] {escape(exc.message)}")
        raise typer.Exit(1) from exc
    console.print(f"user-agent data {agents.version} installed in {directory}", markup=False)
    for name, count in agents.counts.items():
        console.print(f"  {name}.json: {count} entries", markup=False)


@analytics_app.command("process")
def process_command() -> None:
    """Count every hit recorded or imported since the last run, now (the periodic job does
    this every few minutes)."""
    from amphora.analytics import service
    from amphora.analytics.errors import UserAgentsMissing
    from amphora.cli import _run, _settings, console

    settings = _settings()
    try:
        report = _run(settings, lambda rt: service.process(rt.db, rt.cache, settings))
    except UserAgentsMissing as exc:
        console.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(1) from exc
    assert report is not None
    console.print(
        f"{report.hits} hits read, {report.pairs} listener-episode pairs, "
        f"{report.downloads_added} downloads written ({report.downloads_removed} replaced), "
        f"{len(report.shows)} shows updated"
    )


@analytics_app.command("reprocess")
def reprocess_command(
    first: Annotated[str, typer.Option("--from", help="First day, YYYY-MM-DD (UTC).")],
    last: Annotated[str, typer.Option("--to", help="Last day, YYYY-MM-DD (UTC).")],
    show: Annotated[str | None, typer.Option(help="Only this show (its slug).")] = None,
) -> None:
    """Count the hits of these days again (after a data-set update, say): the figures of
    unchanged data stay the same."""
    from datetime import date

    from sqlalchemy import select

    from amphora.analytics import service
    from amphora.analytics.errors import UserAgentsMissing
    from amphora.cli import _run, _settings, console
    from amphora.models import Show

    settings = _settings()
    try:
        first_day, last_day = date.fromisoformat(first), date.fromisoformat(last)
    except ValueError as exc:
        console.print(f"[red]Not a date:[/red] {exc}")
        raise typer.Exit(2) from exc

    async def work(runtime: Any) -> Any:
        show_id = None
        if show is not None:
            async with runtime.db.session(write=False) as session:
                show_id = await session.scalar(select(Show.id).where(Show.slug == show))
            if show_id is None:
                console.print(f"[red]No show with the slug {show!r}.[/red]")
                raise typer.Exit(2)
        return await service.process_again(
            runtime.db, runtime.cache, settings, first=first_day, last=last_day, show_id=show_id
        )

    try:
        report = _run(settings, work)
    except UserAgentsMissing as exc:
        console.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(1) from exc
    console.print(
        f"{report.hits} hits read, {report.downloads_added} downloads written "
        f"({report.downloads_removed} replaced), {len(report.shows)} shows updated"
    )


@analytics_app.command("import-logs")
def import_logs_command(
    files: Annotated[
        list[str], typer.Argument(metavar="FILE...", help="Log files, plain or gzipped.")
    ],
    show: Annotated[str, typer.Option(help="The show's slug.")],
    fmt: Annotated[
        str, typer.Option("--format", help="combined (Apache/nginx) or cloudfront.")
    ] = "combined",
) -> None:
    """Import access logs of a CDN or web server that served the show's episode files: each
    request for one of them becomes a hit, counted like ours. Lines imported before are
    skipped, so importing a file again (or overlapping files) counts nothing twice."""
    import gc
    from pathlib import Path

    from rich.markup import escape
    from sqlalchemy import select

    from amphora.analytics.geo import geoip_for
    from amphora.analytics.logformats import FORMATS
    from amphora.analytics.logimport import file_lines, import_log
    from amphora.cli import _run, _settings, console
    from amphora.delivery.hits import client_hash_key
    from amphora.kit.errors import AmphoraError
    from amphora.models import Show

    if fmt not in FORMATS:
        console.print(
            f"[red]Unknown format {escape(fmt)!r}:[/red] use one of {', '.join(FORMATS)}."
        )
        raise typer.Exit(2)
    paths = [Path(name) for name in files]
    missing = [str(path) for path in paths if not path.is_file()]
    if missing:
        console.print(f"[red]No such file:[/red] {escape(', '.join(missing))}")
        raise typer.Exit(2)
    settings = _settings()
    # As `amphora serve` does: millions of short-lived rows would otherwise run the collector
    # every few hundred allocations (a tenth of the import's time, measured).
    gc.set_threshold(20_000, 20, 20)
    try:
        geo = geoip_for(settings)
    except AmphoraError as exc:
        console.print(f"[red]{escape(exc.message)}[/red]")
        raise typer.Exit(1) from exc
    key = client_hash_key(settings.resolved_secret_key)

    async def work(runtime: Any) -> int:
        async with runtime.db.session(write=False) as session:
            show_id = await session.scalar(
                select(Show.id).where(Show.slug == show, Show.deleted_at.is_(None))
            )
        if show_id is None:
            console.print(f"[red]No show with the slug {escape(repr(show))}.[/red]")
            raise typer.Exit(2)
        failed = 0
        for path in paths:
            # No spinner: its redraws cost a fifth of the import's speed (measured).
            console.print(f"importing {path} …", markup=False, highlight=False, style="dim")
            try:
                record = await import_log(
                    runtime.db,
                    show_id=show_id,
                    user_id=None,
                    fmt=fmt,
                    lines=file_lines(path),
                    file_name=path.name,
                    key=key,
                    geo=geo,
                )
            except AmphoraError as exc:
                failed += 1
                console.print(f"[red]{escape(str(path))}: {escape(exc.message)}[/red]")
                continue
            console.print(
                f"{path}: {record.lines} lines, {record.imported} imported, "
                f"{record.duplicates} duplicates, {record.unmatched} unmatched, "
                f"{record.malformed} malformed",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
        return failed

    if _run(settings, work):
        raise typer.Exit(1)
