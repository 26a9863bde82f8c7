"""What every ``monitor`` command shares: the context object, error handling, common options."""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console

from monitor import config as config_module
from monitor.errors import MonitorError
from monitor.store import Store

F = TypeVar("F", bound=Callable[..., Any])


def table_console(min_width: int = 0) -> Console:
    """A console for tables, at least ``min_width`` wide. Markup is off: what publishers and
    servers wrote ("[/b]", "[link=...]") is printed as it is, never read as rich markup."""
    width = max(Console().width, min_width) if min_width else None
    return Console(markup=False, width=width)


@dataclass
class Context:
    config_path: Path | None
    database: str | None
    verbose: bool

    def config(self) -> config_module.Config:
        return config_module.load(self.config_path)

    def open_store(self, config: config_module.Config) -> Store:
        store = Store.open(self.database or config.database)
        store.sync_sources(((s.id, s.kind, s.url) for s in config.sources), datetime.now(UTC))
        return store


class MonitorGroup(click.Group):
    """Turns MonitorError into one line and an exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MonitorError as exc:
            context = ctx.find_object(Context)
            if context is not None and context.verbose:
                traceback.print_exc()
            click.echo(f"monitor: error: {exc}", err=True)
            ctx.exit(exc.exit_code)


def json_option(func: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")(func)


def when(value: datetime | None) -> str:
    """A UTC time for tables: ``2025-11-07 09:12``, or ``-``."""
    return value.strftime("%Y-%m-%d %H:%M") if value else "-"


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
