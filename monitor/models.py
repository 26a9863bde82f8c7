"""The vocabulary shared by every stage: what is fetched, what is normalised, what is stored.

All types here are plain, frozen data; no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class Outcome(StrEnum):
    """How one check of one source ended."""

    NEW = "new"  # first snapshot of a record: a baseline, not a change
    CHANGED = "changed"
    UNCHANGED = "unchanged"  # fetched and parsed, same normalised content
    NOT_MODIFIED = "not_modified"  # the server answered 304
    FAILED = "failed"  # network error, HTTP error, size cap, truncated body...
    BLOCKED = "blocked"  # 403 / bot challenge
    PARSE_FAILED = "parse_failed"  # fetched, but the payload had no usable structure

    @property
    def ok(self) -> bool:
        return self not in (Outcome.FAILED, Outcome.BLOCKED, Outcome.PARSE_FAILED)


class ChangeClass(StrEnum):
    """The one scale shared by every source, lowest to highest, plus ``relaxed``."""

    NOISE = "noise"
    UPDATE = "update"
    HEIGHTENED = "heightened"
    SEVERE = "severe"
    CRITICAL = "critical"
    RELAXED = "relaxed"


@dataclass(frozen=True)
class Validators:
    """HTTP cache validators remembered from the last successful fetch."""

    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True)
class Fetched:
    """One HTTP exchange that produced a usable answer (2xx or 304)."""

    url: str
    final_url: str
    status: int
    body: bytes
    content_type: str | None
    validators: Validators
    elapsed: float  # seconds

    @property
    def not_modified(self) -> bool:
        return self.status == 304


@dataclass(frozen=True)
class Section:
    """A named part of a record's text, kept separately so diffs can say where a change is."""

    name: str
    text: str


@dataclass(frozen=True)
class Record:
    """One normalised record: what a source says about one country (or, without country, one page).

    ``key`` identifies the record inside its source (the country code, or ``page``). Only the
    fields that describe the advice go into the content hash; ``fetched``-time data does not.
    """

    key: str
    title: str
    url: str
    country: str | None = None
    level: int | None = None
    level_label: str | None = None
    published_at: datetime | None = None
    updated_at: datetime | None = None
    sections: tuple[Section, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for name in ("published_at", "updated_at"):
            value = getattr(self, name)
            data[name] = value.isoformat() if value else None
        data["sections"] = [{"name": s.name, "text": s.text} for s in self.sections]
        data["extra"] = dict(self.extra)
        return data

    def canonical(self) -> str:
        """Stable JSON text of the record: the content that is hashed and stored."""
        return json.dumps(self.to_json(), ensure_ascii=False, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Record:
        def when(value: str | None) -> datetime | None:
            return datetime.fromisoformat(value) if value else None

        return cls(
            key=data["key"],
            title=data["title"],
            url=data["url"],
            country=data.get("country"),
            level=data.get("level"),
            level_label=data.get("level_label"),
            published_at=when(data.get("published_at")),
            updated_at=when(data.get("updated_at")),
            sections=tuple(Section(s["name"], s["text"]) for s in data.get("sections", ())),
            extra=dict(data.get("extra", {})),
        )

    @property
    def text(self) -> str:
        return "\n".join(s.text for s in self.sections)


@dataclass(frozen=True)
class Change:
    """The difference between two snapshots of one record, with its class and reasons."""

    key: str
    change_class: ChangeClass
    reasons: tuple[str, ...]
    diff: str
    level_before: int | None
    level_after: int | None
