"""``monitor report``, ``monitor history`` and ``monitor serve``: the advisory history for people
(an HTML file, a terminal table, a live page with Atom feeds) and for scripts (JSON, CSV)."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

import click
from rich.table import Table
from rich.text import Text

from monitor import config as config_module
from monitor.alerts.render import badge_colours, country_name
from monitor.atomicfile import write_atomically
from monitor.cliutil import Context, table_console, when
from monitor.display import one_line, shorten
from monitor.models import ChangeClass
from monitor.pipeline import utcnow
from monitor.report.export import as_csv, as_json, select
from monitor.report.history import ChangeEntry, History, Window, window_of
from monitor.report.html import render_report
from monitor.report.load import data_version, load_history
from monitor.report.web import make_app, needs_token
from monitor.report.web import serve as serve_app
from monitor.store import Store

TOKEN_ENV = "MONITOR_SERVE_TOKEN"
_REASON_CHARS = 90

_country_option = click.option(
    "--country",
    "countries",
    multiple=True,
    metavar="CC",
    help="Only this country (ISO 3166-1 alpha-2); repeat for several.",
)
_since_option = click.option(
    "--since", metavar="DATE", help="Changes detected on or after (YYYY-MM-DD or ISO)."
)
_until_option = click.option(
    "--until", metavar="DATE", help="Changes detected up to (a date includes the day)."
)


def _window(since: str | None, until: str | None, countries: Sequence[str]) -> Window:
    try:
        return window_of(since, until, countries)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _open(obj: Context, config: config_module.Config) -> Store:
    """The store, without touching its sources: these commands only read."""
    return Store.open(obj.database or config.database)


def _history(obj: Context, window: Window) -> History:
    """The history in ``window``, read now."""
    config = obj.config()
    store = _open(obj, config)
    try:
        return load_history(store, config, window, utcnow())
    finally:
        store.close()


@click.command()
@click.option(
    "--out",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    default=Path("report.html"),
    show_default=True,
    help="Where to write the HTML file; - for standard output.",
)
@_country_option
@_since_option
@_until_option
@click.pass_obj
def report(obj: Context, out: Path, countries: tuple[str, ...], since: str | None, until: str | None) -> None:
    """Write the advisory history report: one self-contained HTML file (no network needed to
    view it) with the current state, a timeline and the changes of every country, and the
    health of every source."""
    history = _history(obj, _window(since, until, countries))
    page = render_report(history)
    if str(out) == "-":
        sys.stdout.write(page)
        return
    write_atomically(out, page, what="the report")
    click.echo(
        f"monitor: report written to {out.resolve()} ({len(history.changes)} changes, "
        f"{len(history.countries)} countries, {len(history.sources)} sources)",
        err=True,
    )


@click.command()
@_country_option
@click.option(
    "--source", "sources", multiple=True, metavar="ID", help="Only this source; repeat for several."
)
@click.option(
    "--min-class",
    type=click.Choice([c.value for c in ChangeClass if c is not ChangeClass.RELAXED]),
    help="Only changes of this class or higher (relaxed changes are always shown).",
)
@_since_option
@_until_option
@click.option("--json", "as_json_flag", is_flag=True, help="A JSON list of changes, oldest first.")
@click.option("--csv", "as_csv_flag", is_flag=True, help="CSV with a header row, oldest first.")
@click.pass_obj
def history(  # noqa: PLR0917 (click passes every option)
    obj: Context,
    countries: tuple[str, ...],
    sources: tuple[str, ...],
    min_class: str | None,
    since: str | None,
    until: str | None,
    as_json_flag: bool,
    as_csv_flag: bool,
) -> None:
    """List the changes recorded: a table, or JSON / CSV for scripts (oldest first)."""
    if as_json_flag and as_csv_flag:
        raise click.UsageError("--json and --csv exclude each other")
    loaded = _history(obj, _window(since, until, countries))
    _check_sources(sources, loaded)
    changes = select(loaded.changes, sources=sources, min_class=ChangeClass(min_class) if min_class else None)
    if as_json_flag:
        click.echo(json.dumps([as_json(c) for c in changes], ensure_ascii=False, indent=2))
    elif as_csv_flag:
        click.echo(as_csv(changes), nl=False)
    else:
        _print_table(changes)


def _check_sources(sources: Sequence[str], loaded: History) -> None:
    known = {s.id for s in loaded.sources}
    unknown = [s for s in sources if s not in known]
    if unknown:
        listed = ", ".join(sorted(known)) or "none"
        raise click.BadParameter(
            f"no source {', '.join(map(repr, unknown))}; known: {listed}", param_hint="--source"
        )


def _print_table(changes: Sequence[ChangeEntry]) -> None:
    console = table_console()
    if not changes:
        console.print("No changes recorded for this selection.")
        return
    table = Table(show_lines=False, header_style="bold")
    for column in ("detected (UTC)", "published", "country", "publisher", "class", "level", "why"):
        table.add_column(column, overflow="fold")
    for change in changes:
        background, foreground = badge_colours(change.change_class)
        table.add_row(
            when(change.detected_at),
            when(change.published_at),
            Text(", ".join(country_name(c) for c in change.countries) or "-"),
            Text(change.publisher),
            Text(f" {change.change_class.value} ", style=f"{foreground} on {background}"),
            _levels(change),
            Text(shorten(one_line(change.reasons[0]), _REASON_CHARS) if change.reasons else "-"),
        )
    console.print(table)
    console.print(f"{len(changes)} changes")


def _levels(change: ChangeEntry) -> str:
    if change.level_before is None and change.level_after is None:
        return "-"
    before = "-" if change.level_before is None else str(change.level_before)
    after = "-" if change.level_after is None else str(change.level_after)
    return after if before == after else f"{before} → {after}"


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535), help="Port.")
@click.option(
    "--token",
    envvar=TOKEN_ENV,
    help=f"Required from readers (Authorization: Bearer, or ?token=); needed off loopback. Env: {TOKEN_ENV}.",
)
@click.pass_obj
def serve(obj: Context, host: str, port: int, token: str | None) -> None:
    """Serve the report live (read-only) with Atom feeds: /feeds/all.atom, /feeds/CC.atom."""
    token = token.strip() if token else None  # a blank token would be no protection
    if needs_token(host) and not token:
        raise click.UsageError(
            f"--host {host} is reachable from other machines: set a token (--token or ${TOKEN_ENV}) "
            "that readers must present, or bind to 127.0.0.1"
        )
    config = obj.config()
    store = _open(obj, config)
    try:
        app = make_app(
            load=lambda window: load_history(store, config, window, utcnow()),
            version=lambda: data_version(store),
            render_html=render_report,
            token=token,
        )
        stop = threading.Event()
        try:
            serve_app(
                app,
                host,
                port,
                ready=lambda url: click.echo(
                    f"monitor: serving {url} (feeds: {url}feeds/all.atom); Ctrl-C to stop", err=True
                ),
                stop=stop,
            )
        except KeyboardInterrupt:
            stop.set()
    finally:
        store.close()
