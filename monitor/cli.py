"""The ``monitor`` command: a thin layer over the Python API.

Every :class:`~monitor.errors.MonitorError` becomes one line on stderr and its exit code
(2 for configuration errors); ``--verbose`` adds the traceback.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any, cast

import click
from rich.table import Table

from monitor import logs
from monitor import store as store_module
from monitor.alertcli import alerts_group, deliver_now
from monitor.checkview import print_reports
from monitor.classify import classify_texts, read_batch, read_input
from monitor.cliutil import Context, MonitorGroup, iso, json_option, table_console, when
from monitor.pipeline import check_sources, parse_file
from monitor.replaycli import replay_command
from monitor.reportcli import history, report, serve
from monitor.rules import KINDS, Kind
from monitor.servicecli import run, status
from monitor.sources import REGISTRY
from monitor.store import SourceStatus


@click.group(cls=MonitorGroup)
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Configuration file (default: $MONITOR_CONFIG, else config/monitor.yaml).",
)
@click.option("--database", metavar="URL", help="Database URL; overrides the configuration's `database`.")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging and tracebacks on errors.")
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Log lines on stderr as text, or one JSON object per line for log shippers.",
)
@click.version_option(package_name="advisory-monitor")
@click.pass_context
def cli(
    ctx: click.Context, config_path: Path | None, database: str | None, verbose: bool, log_format: str
) -> None:
    """Watch travel advisories and carrier notices; record and classify every change."""
    ctx.obj = Context(config_path, database, verbose)
    logs.configure(verbose, "json" if log_format == "json" else "text")


@cli.command()
@click.argument("source_ids", nargs=-1, metavar="[SOURCE_ID]...")
@json_option
@click.pass_obj
def check(obj: Context, source_ids: tuple[str, ...], as_json: bool) -> None:
    """Poll the sources now, once (all, or the ones named), and show what changed.

    Exit code 1 when any of them failed."""
    config = obj.config()
    for source_id in source_ids:
        config.source(source_id)
    store = obj.open_store(config)
    try:
        reports = asyncio.run(check_sources(config, store, source_ids))
        print_reports(reports, as_json)
        deliveries = deliver_now(config, store, quiet=as_json)
    finally:
        store.close()
    if any(not report.outcome.ok for report in reports) or not all(d.sent for d in deliveries):
        sys.exit(1)


@cli.command()
@json_option
@click.pass_obj
def sources(obj: Context, as_json: bool) -> None:
    """List the sources: kind, last check, outcome, last change, current level."""
    config = obj.config()
    store = obj.open_store(config)
    try:
        statuses = store.statuses()
    finally:
        store.close()
    if as_json:
        rows = [_status_json(s, config.defaults.failures_before_broken) for s in statuses]
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    broken_after = config.defaults.failures_before_broken
    table = Table("source", "kind", "last check", "outcome", "fails", "last change", "level")
    for s in statuses:
        broken = s.consecutive_failures >= broken_after
        table.add_row(
            s.id,
            s.kind,
            when(s.last_check_at),
            s.last_outcome or "never checked",
            f"{s.consecutive_failures} BROKEN" if broken else str(s.consecutive_failures),
            f"{when(s.last_change_at)} {s.last_change_class or ''}".strip(),
            ", ".join(f"{k}: {v if v is not None else '-'}" for k, v in sorted(s.levels.items())) or "-",
        )
    table_console().print(table)


@cli.group(name="config", cls=MonitorGroup)
def config_group() -> None:
    """Inspect the configuration."""


@config_group.command(name="check")
@click.pass_obj
def config_check(obj: Context) -> None:
    """Validate the configuration file; exit code 2 and one line per problem when it is invalid."""
    config = obj.config()
    kinds = sorted({s.kind for s in config.sources})
    click.echo(
        f"{config.path}: OK — {len(config.sources)} sources ({', '.join(kinds) or 'none'}), "
        f"{len(config.countries)} watched countries, {len(config.alerts)} alert channels"
    )


@cli.group(name="db", cls=MonitorGroup)
def db_group() -> None:
    """Manage the database."""


@db_group.command(name="upgrade")
@click.pass_obj
def db_upgrade(obj: Context) -> None:
    """Apply the database migrations (also done automatically at start)."""
    url = obj.database or obj.config().database
    store_module.upgrade(url)
    click.echo("database is up to date")


@cli.command()
@click.option(
    "--kind", required=True, type=click.Choice(sorted(REGISTRY)), help="The source kind to parse with."
)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--country", "countries", multiple=True, metavar="CC", help="Keep this country (repeatable).")
@click.option("--url", help="The official URL the payload came from.")
@click.option("--content-type", help="The payload's Content-Type (default: guessed from the file name).")
def parse(
    kind: str, file: Path, countries: tuple[str, ...], url: str | None, content_type: str | None
) -> None:
    """Parse a saved payload offline (no network, no database) and print the records as JSON.

    Exit code 1 when the payload cannot be parsed."""
    records = parse_file(kind, file, countries=countries, url=url, content_type=content_type)
    click.echo(json.dumps([record.to_json() for record in records], indent=2, ensure_ascii=False))


_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@cli.command(name="classify")
@click.option("--kind", type=click.Choice(KINDS), help="What published the texts.")
@click.option("--country", metavar="CC", help="The country watched (ISO code); for carriers, what counts.")
@click.option("--before", "before_file", type=_FILE, metavar="FILE", help="The earlier text (plain or HTML).")
@click.option("--after", "after_file", type=_FILE, metavar="FILE", help="The later text (plain or HTML).")
@click.option(
    "--batch", "batch_file", type=_FILE, metavar="FILE.jsonl", help="Many changes, one JSON per line."
)
def classify_command(
    kind: str | None,
    country: str | None,
    before_file: Path | None,
    after_file: Path | None,
    batch_file: Path | None,
) -> None:
    """Classify a change between two texts offline (no network, no database) and print JSON.

    One change: --kind, --before, --after (and --country) print {"class", "reasons",
    "level_before", "level_after"}. With --batch, each line of FILE.jsonl is
    {"id", "kind", "country", "before", "after"} (texts inline) and one line
    {"id", "class", "reasons"} is printed per input line; every line is checked first, and a
    bad one stops everything with its line number before anything is printed (exit code 2)."""
    if batch_file is not None:
        if kind or country or before_file or after_file:
            raise click.UsageError("--batch cannot be combined with --kind, --country, --before or --after")
        for item in read_batch(batch_file):
            result = classify_texts(item.kind, item.country, item.before, item.after)
            line = {"id": item.id, "class": str(result.change_class), "reasons": list(result.reasons)}
            click.echo(json.dumps(line, ensure_ascii=False))
        return
    if kind is None or before_file is None or after_file is None:
        raise click.UsageError("give --kind, --before and --after (or --batch FILE.jsonl)")
    texts = read_input(before_file), read_input(after_file)
    result = classify_texts(cast("Kind", kind), country, *texts)
    output = {
        "class": str(result.change_class),
        "reasons": list(result.reasons),
        "level_before": result.level_before,
        "level_after": result.level_after,
    }
    click.echo(json.dumps(output, indent=2, ensure_ascii=False))


@cli.command()
@json_option
def kinds(as_json: bool) -> None:
    """List the source kinds and their options."""
    rows = [
        {"kind": kind, "title": cls.title, "options": sorted(cls.Options.model_fields)}
        for kind, cls in sorted(REGISTRY.items())
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table("kind", "what", "options")
    for row in rows:
        table.add_row(str(row["kind"]), str(row["title"]), ", ".join(row["options"]) or "-")
    table_console().print(table)


cli.add_command(alerts_group)
cli.add_command(run)
cli.add_command(status)
cli.add_command(report)
cli.add_command(history)
cli.add_command(serve)
cli.add_command(replay_command)


def _status_json(status: SourceStatus, broken_after: int) -> dict[str, Any]:
    return {
        "id": status.id,
        "kind": status.kind,
        "url": status.url,
        "last_check_at": iso(status.last_check_at),
        "last_outcome": status.last_outcome,
        "last_error": status.last_error,
        "consecutive_failures": status.consecutive_failures,
        "broken": status.consecutive_failures >= broken_after,
        "last_success_at": iso(status.last_success_at),
        "last_change_at": iso(status.last_change_at),
        "last_change_class": status.last_change_class,
        "levels": status.levels,
    }


def main() -> None:
    cli(prog_name="monitor")
