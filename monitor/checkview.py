"""How check results are shown: the table and JSON of ``monitor check``, the log line per check."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

import click
from rich.table import Table

from monitor.cliutil import table_console
from monitor.display import printable
from monitor.pipeline import CheckReport

log = logging.getLogger("monitor.check")


def log_report(report: CheckReport) -> None:
    """One log line per check; with ``--log-format json`` its facts are fields of their own."""
    fields = {
        "source": report.source_id,
        "outcome": str(report.outcome),
        "duration_ms": report.duration_ms,
        "http_status": report.http_status,
        "bytes": report.bytes,
        "failures": report.consecutive_failures,
        "changes": [{"key": c.key, "class": str(c.change_class)} for c in report.changes],
        "next_check_at": report.next_check_at.isoformat() if report.next_check_at else None,
    }
    level = logging.INFO if report.outcome.ok else logging.WARNING
    log.log(level, "%s", report_line(report), extra=fields)


def report_line(report: CheckReport) -> str:
    detail = report.error or changes_text(report)
    status = f" HTTP {report.http_status}" if report.http_status else ""
    line = f"{report.source_id}: {report.outcome}{status} in {report.duration_ms} ms"
    if report.consecutive_failures > 1:
        line += f" ({report.consecutive_failures} failures in a row)"
    if report.next_check_at is not None and not report.outcome.ok:
        line += f", next try {report.next_check_at:%H:%M:%S} UTC"
    return f"{line}: {detail}" if detail else line


def changes_text(report: CheckReport) -> str:
    parts = [f"{c.key} {c.change_class}: {'; '.join(c.reasons)}" for c in report.changes]
    parts += [f"{key} first snapshot" for key in report.new_keys]
    return " | ".join(parts)


def print_reports(reports: Sequence[CheckReport], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps([report_json(r) for r in reports], indent=2, ensure_ascii=False))
        return
    table = Table("source", "outcome", "HTTP", "ms", "what changed / why it failed")
    for r in reports:
        table.add_row(
            r.source_id,
            str(r.outcome),
            str(r.http_status or "-"),
            str(r.duration_ms),
            printable(r.error or changes_text(r) or "-"),
        )
    table_console(120).print(table)
    failed = sum(not r.outcome.ok for r in reports)
    changed = sum(len(r.changes) for r in reports)
    click.echo(f"{len(reports)} sources checked, {changed} changes, {failed} failed")


def report_json(report: CheckReport) -> dict[str, Any]:
    return {
        "source_id": report.source_id,
        "outcome": str(report.outcome),
        "started_at": report.started_at.isoformat(),
        "duration_ms": report.duration_ms,
        "http_status": report.http_status,
        "error": report.error,
        "new": list(report.new_keys),
        "changes": [
            {
                "key": c.key,
                "class": str(c.change_class),
                "reasons": list(c.reasons),
                "level_before": c.level_before,
                "level_after": c.level_after,
            }
            for c in report.changes
        ],
    }
