"""`amphora analytics …`: the user-agent data set, access-log import, processing."""

from __future__ import annotations

import typer

analytics_app = typer.Typer(help="Audience analytics.", no_args_is_help=True)
