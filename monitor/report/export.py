"""The changes of a history as data for scripts: filters, JSON objects and CSV rows (pure).

The JSON fields are a contract: ``detected_at``, ``published_at``, ``source_id``, ``kind``,
``country``, ``class``, ``level_before``, ``level_after``, ``reasons`` and ``url`` keep their
names and meaning; fields may be added, never renamed or removed.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Collection, Iterable, Sequence
from datetime import datetime
from typing import Any

from monitor.alerts.routing import RANK
from monitor.models import ChangeClass
from monitor.report.history import ChangeEntry

CSV_COLUMNS = (
    "detected_at",
    "published_at",
    "source_id",
    "publisher",
    "kind",
    "country",
    "class",
    "level_before",
    "level_after",
    "label_before",
    "label_after",
    "title",
    "reasons",
    "url",
)
# Spreadsheets run a cell that starts with one of these as a formula; page text must not.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def select(
    changes: Iterable[ChangeEntry],
    *,
    sources: Collection[str] = (),
    min_class: ChangeClass | None = None,
) -> list[ChangeEntry]:
    """The changes of ``sources`` (all when empty) whose class reaches ``min_class``.

    ``relaxed`` (risk went down) has no rank on the escalation scale and is always kept:
    a lowered level matters to whoever follows the raises."""
    return [
        change
        for change in changes
        if (not sources or change.source_id in sources) and _reaches(change.change_class, min_class)
    ]


def _reaches(change_class: ChangeClass, minimum: ChangeClass | None) -> bool:
    if minimum is None or change_class is ChangeClass.RELAXED:
        return True
    return RANK[change_class] >= RANK.get(minimum, 0)


def as_json(change: ChangeEntry) -> dict[str, Any]:
    """One change as a JSON object (times in ISO 8601 UTC)."""
    return {
        "id": change.id,
        "detected_at": _iso(change.detected_at),
        "published_at": _iso(change.published_at),
        "source_id": change.source_id,
        "publisher": change.publisher,
        "kind": change.kind,
        "country": change.country,
        "countries": list(change.countries),
        "class": change.change_class.value,
        "level_before": change.level_before,
        "level_after": change.level_after,
        "label_before": change.label_before,
        "label_after": change.label_after,
        "title": change.title,
        "reasons": list(change.reasons),
        "url": change.url,
        "notice": _notice(change),
        "diff": change.diff,
        "alerts": {
            "sent": change.alerts_sent,
            "failed": change.alerts_failed,
            "pending": change.alerts_pending,
            "first_sent_at": _iso(change.first_sent_at),
        },
    }


def as_csv(changes: Sequence[ChangeEntry]) -> str:
    """The changes as CSV with a header row; reasons joined by `` | ``, countries by spaces.

    A cell that a spreadsheet would run as a formula is prefixed with an apostrophe."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for change in changes:
        data = as_json(change)
        data["country"] = " ".join(change.countries)
        data["reasons"] = " | ".join(change.reasons)
        writer.writerow([_cell(data[column]) for column in CSV_COLUMNS])
    return out.getvalue()


def _cell(value: object) -> str:
    if value is None:
        return ""
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _notice(change: ChangeEntry) -> dict[str, Any] | None:
    if change.notice is None:
        return None
    return {
        "id": change.notice.id,
        "title": change.notice.title,
        "url": change.notice.url,
        "status": change.notice.status.value,
        "published_at": _iso(change.notice.published_at),
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
