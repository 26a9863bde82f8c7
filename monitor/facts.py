"""A record's facts: the few small fields a history shows, kept beside each snapshot.

A snapshot's full content (every section of a long advisory) is stored once in ``contents``;
the history report, ``monitor history`` and the feeds only need the title, the URL, the
publisher's level label, its dates and the carrier notices (without their text). Reading those
from a small JSON column keeps a history of thousands of changes fast to read. Pure functions
over the canonical JSON of a record (:meth:`monitor.models.Record.to_json`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_NOTICE_FIELDS = ("id", "title", "url", "status", "published_at")


def facts_of(record: Mapping[str, Any]) -> dict[str, Any]:
    """The facts of a record given as its canonical JSON (a notice's text is left out)."""
    return {
        "title": record.get("title", ""),
        "url": record.get("url", ""),
        "level_label": record.get("level_label"),
        "updated_at": record.get("updated_at"),
        "published_at": record.get("published_at"),
        "notices": [
            {name: notice.get(name) for name in _NOTICE_FIELDS} for notice in record.get("notices", ())
        ],
    }
