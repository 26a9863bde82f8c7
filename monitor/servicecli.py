"""``monitor run`` and ``monitor status``: the service and what it is doing."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from datetime import datetime
from typing import Any

import click
from pydantic import ValidationError
from rich.table import Table

from monitor import config as config_module
from monitor.alertcli import deliver_now
from monitor.checkview import log_report, print_reports
from monitor.cliutil import Context, iso, json_option, table_console, when
from monitor.display import printable
from monitor.pipeline import utcnow
from monitor.service.claims import SourceTiming, Worker
from monitor.service.endpoint import Endpoint
from monitor.service.lock import single_process
from monitor.service.metrics import Metrics
from monitor.service.runner import Service, freeze_startup, run_once
from monitor.store import SourceStatus, Store


@click.command()
@click.option("--once", is_flag=True, help="Check the sources that are due once, print the table and exit.")
@click.option(
    "--http",
    "http_address",
    metavar="HOST:PORT",
    help="Serve /healthz and /metrics (Prometheus) there; overrides service.http.",
)
@click.pass_obj
def run(obj: Context, once: bool, http_address: str | None) -> None:
    """Run the monitor: check every source when due, deliver alerts, until Ctrl-C / SIGTERM.

    SIGHUP reloads the configuration. With --once: one cycle (the sources due now, or never
    checked), then exit code 1 when any of them failed."""
    config = obj.config()
    address = _bind_address(http_address) if http_address else config.service.http
    store = obj.open_store(config)
    freeze_startup()
    try:
        if once:
            _run_once(config, store)
            return
        with single_process(store.engine.url.render_as_string(hide_password=False)):
            click.echo(
                f"monitor: watching {len(config.sources)} sources; database {store.url_for_display}; "
                "Ctrl-C to stop",
                err=True,
            )
            asyncio.run(_serve(obj, config, store, address))
        click.echo("monitor: stopped", err=True)
    finally:
        store.close()


def _bind_address(value: str) -> str:
    try:
        return config_module.Service.model_validate({"http": value}).http or value
    except ValidationError as exc:
        message = str(exc.errors()[0]["msg"]).removeprefix("Value error, ")
        raise click.BadParameter(message, param_hint="--http") from None


def _run_once(config: config_module.Config, store: Store) -> None:
    reports, skipped = asyncio.run(run_once(config, store))
    print_reports(reports, as_json=False)
    if skipped:
        click.echo(f"{len(skipped)} sources not due yet or being checked by a running worker")
    deliveries = deliver_now(config, store)
    if any(not report.outcome.ok for report in reports) or not all(d.sent for d in deliveries):
        sys.exit(1)


async def _serve(obj: Context, config: config_module.Config, store: Store, address: str | None) -> None:
    metrics = Metrics()
    service = Service(config, store, on_report=log_report, metrics=metrics)
    metrics.watch(store, service.intervals, utcnow, lambda: service.running)
    endpoint = Endpoint(address, metrics.registry, service.problem) if address else None
    if endpoint is not None:
        endpoint.start()
        click.echo(f"monitor: serving /healthz and /metrics on {endpoint.url}", err=True)
    stop, reload = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_stop(signum: int) -> None:
        if stop.is_set():
            click.echo("monitor: second signal, exiting now", err=True)
            os._exit(128 + signum)
        click.echo("monitor: stopping (signal again to exit at once)", err=True)
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_stop, signum)
    loop.add_signal_handler(signal.SIGHUP, reload.set)
    try:
        await service.run(stop, reload, lambda: config_module.load(obj.config_path))
    finally:
        if endpoint is not None:
            endpoint.stop()


@click.command()
@json_option
@click.pass_obj
def status(obj: Context, as_json: bool) -> None:
    """Show the service: workers, each source's health, last outcome and next check, the outbox."""
    config = obj.config()
    store = obj.open_store(config)
    try:
        workers = store.claims.workers()
        timings = store.claims.timings()
        statuses = store.statuses()
        outbox = store.outbox.counts()
    finally:
        store.close()
    now, beat = utcnow(), config.service.heartbeat
    alive = [w for w in workers if w.alive(now, beat)]
    if as_json:
        document = {
            "scheduler": "running" if alive else "stopped",
            "workers": [_worker_json(w, now, beat) for w in workers],
            "sources": [_source_json(s, timings.get(s.id)) for s in statuses],
            "outbox": outbox,
        }
        click.echo(json.dumps(document, indent=2, ensure_ascii=False))
        return
    console = table_console(120)
    state = f"running: {len(alive)} worker(s)" if alive else "not running"
    console.print(f"scheduler: {state}")
    if workers:
        table = Table("worker", "state", "started", "heartbeat", "checks in flight")
        for w in workers:
            shown = w.state if w.alive(now, beat) or w.state == "stopped" else "gone (no heartbeat)"
            table.add_row(w.id, shown, when(w.started_at), _ago(w.heartbeat_at, now), str(w.sources))
        console.print(table)
    table = Table("source", "health", "last check", "outcome", "fails", "next check", "held by")
    for s in statuses:
        timing = timings.get(s.id)
        health = timing.health if timing else "ok"
        reason = (
            f": {printable(timing.health_reason)}"
            if timing and timing.health_reason and health != "ok"
            else ""
        )
        held = timing.lease_owner if timing and timing.lease_until and timing.lease_until > now else "-"
        table.add_row(
            s.id,
            f"{health}{reason}",
            when(s.last_check_at),
            s.last_outcome or "never checked",
            str(s.consecutive_failures),
            when(timing.next_check_at) if timing and timing.next_check_at else "now",
            held or "-",
        )
    console.print(table)
    console.print("outbox: " + ", ".join(f"{count} {name}" for name, count in outbox.items()))


def _ago(moment: datetime, now: datetime) -> str:
    seconds = max(0, int((now - moment).total_seconds()))
    return f"{seconds} s ago" if seconds < 120 else f"{seconds // 60} min ago"


def _worker_json(worker: Worker, now: datetime, heartbeat: Any) -> dict[str, Any]:
    return {
        "id": worker.id,
        "host": worker.host,
        "pid": worker.pid,
        "state": worker.state,
        "alive": worker.alive(now, heartbeat),
        "started_at": iso(worker.started_at),
        "heartbeat_at": iso(worker.heartbeat_at),
        "checks_in_flight": worker.sources,
    }


def _source_json(status: SourceStatus, timing: SourceTiming | None) -> dict[str, Any]:
    return {
        "id": status.id,
        "kind": status.kind,
        "health": timing.health if timing else "ok",
        "health_reason": timing.health_reason if timing else None,
        "health_since": iso(timing.health_since) if timing else None,
        "last_check_at": iso(status.last_check_at),
        "last_outcome": status.last_outcome,
        "last_error": status.last_error,
        "consecutive_failures": status.consecutive_failures,
        "last_success_at": iso(status.last_success_at),
        "next_check_at": iso(timing.next_check_at) if timing else None,
        "lease_owner": timing.lease_owner if timing else None,
        "lease_until": iso(timing.lease_until) if timing else None,
    }
