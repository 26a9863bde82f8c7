"""``monitor replay``: replay a seed through the whole monitor, offline, and print what it alerts."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import click

from monitor import config as config_module
from monitor.cliutil import Context
from monitor.config import Config
from monitor.display import MONTHS, one_line, shorten
from monitor.models import ChangeClass
from monitor.replay.run import DEFAULT_EVERY, DEFAULT_SPEED, Fired, ReplayOptions, ReplayResult, replay
from monitor.replay.timeline import Timeline

_STYLE: dict[ChangeClass, dict[str, Any]] = {
    ChangeClass.CRITICAL: {"fg": "red", "bold": True},
    ChangeClass.SEVERE: {"fg": "red"},
    ChangeClass.HEIGHTENED: {"fg": "yellow"},
    ChangeClass.RELAXED: {"fg": "green"},
}
_REASON_WIDTH = 96


class _Speed(click.ParamType[float | None]):
    name = "speed"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float | None:
        if value is None or (isinstance(value, str) and value.strip().lower() == "max"):
            return None
        try:
            speed = float(value)
        except (TypeError, ValueError):
            self.fail(f"expected a number of simulated seconds per second, or max; got {value!r}", param, ctx)
        if not speed > 0 or speed == float("inf"):
            self.fail(f"must be a positive number, or max; got {value!r}", param, ctx)
        return speed


class _Duration(click.ParamType[timedelta]):
    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> timedelta:
        try:
            return config_module.parse_duration(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


@click.command(name="replay")
@click.argument("seed", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--speed",
    type=_Speed(),
    default=str(int(DEFAULT_SPEED)),
    show_default=True,
    help="Simulated seconds per real second, or max (as fast as the checks go).",
)
@click.option(
    "--every",
    type=_Duration(),
    default=f"{int(DEFAULT_EVERY.total_seconds() // 60)}m",
    show_default=True,
    help="How often each source is checked, in simulated time.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the database, the configuration and the report (default: data/replay/SEED-NAME).",
)
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path), help="The report's path.")
@click.option(
    "--alert", "alerts", multiple=True, metavar="APPRISE_URL", help="Send alerts there (repeatable)."
)
@click.option(
    "--alerts-from",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Send alerts to the channels of this configuration's `alerts`, with their routing.",
)
@click.pass_obj
def replay_command(  # noqa: PLR0917 (click passes every option)
    obj: Context,
    seed: Path,
    speed: float | None,
    every: timedelta,
    out: Path | None,
    report: Path | None,
    alerts: tuple[str, ...],
    alerts_from: Path | None,
) -> None:
    """Replay a seed (e.g. seeds/mali-2025-11) offline: its publishers' files are served on
    127.0.0.1 as they were day by day, and the monitor (scheduler, fetches, storage,
    classification, alert delivery) runs on them in simulated time. Prints each alert as it
    fires and writes the history report. Each replay starts with a fresh database (or an
    empty one given with --database)."""
    options = ReplayOptions(
        out=out or Path("data") / "replay" / seed.resolve().name,
        report=report,
        database=obj.database,
        speed=speed,
        every=every,
        alerts=alerts,
        alerts_from=alerts_from,
    )
    result = replay(seed, options, on_fired=_print_fired, on_start=_print_start(options))
    _print_summary(result)


def _print_start(options: ReplayOptions) -> Callable[[Timeline, Config, str], None]:
    def show(timeline: Timeline, config: Config, url: str) -> None:
        pace = "as fast as it goes" if options.speed is None else f"{options.speed:,.0f}x"
        click.echo(
            f"Replaying {timeline.title}: {len(timeline.sources)} sources, "
            f"{_day(timeline.start)} to {_day(timeline.end)}, each checked every "
            f"{_span(options.every)} (simulated, {pace})."
        )
        click.echo(f"Publishers served on {url}/ ; database {config.database}")
        if config.alerts:
            click.echo("Alert channels: " + ", ".join(channel.name for channel in config.alerts))
        click.echo("")

    return show


def _print_fired(fired: Fired) -> None:
    """One line: the publisher's date, the class, the publisher, the first reason, when the
    monitor saw it (simulated time) and the channels it was sent to."""
    label = click.style(f"{fired.change_class:<10}", **_STYLE.get(fired.change_class, {}))
    reason = shorten(one_line(fired.reasons[0]), _REASON_WIDTH) if fired.reasons else ""
    seen = fired.detected_at
    line = f"{_day(fired.when):>11}  {label}  {fired.publisher:<19}  {reason}"
    line += f"  (seen {seen.day} {MONTHS[seen.month - 1]} {seen:%H:%M})"
    if fired.channels:
        line += f" -> {', '.join(fired.channels)}"
    click.echo(line)


def _print_summary(result: ReplayResult) -> None:
    quiet = sum(result.quiet.values())
    kinds = ", ".join(f"{n} {cls}" for cls, n in sorted(result.quiet.items()))
    not_modified = result.requests.get(304, 0)
    click.echo("")
    click.echo(
        f"{len(result.fired)} alerts; {quiet} other changes recorded without an alert"
        + (f" ({kinds})" if kinds else "")
        + f"; {result.checks:,} checks ({result.failed_checks} failed, {not_modified:,} answered "
        f"304 Not Modified) in {result.seconds:.1f} s."
    )
    for channel, statuses in result.deliveries.items():
        click.echo(
            f"Channel {channel}: " + ", ".join(f"{n} {status}" for status, n in sorted(statuses.items()))
        )
    click.echo(f"Report: {result.report.resolve()}")


def _day(at: datetime) -> str:
    return f"{at.day} {MONTHS[at.month - 1]} {at.year}"


def _span(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
