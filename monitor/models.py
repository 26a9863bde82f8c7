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
    HELD = "held"  # a level change the text does not support, waiting for the next check
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


class Scope(StrEnum):
    """Where a level applies."""

    WHOLE_COUNTRY = "whole_country"
    PARTS = "parts"


class StaffDeparture(StrEnum):
    """The publisher's own staff: none, authorized (voluntary) or ordered departure."""

    NONE = "none"
    AUTHORIZED = "authorized"
    ORDERED = "ordered"


class NoticeStatus(StrEnum):
    """What a carrier notice announces."""

    INFO = "info"
    DISRUPTION = "disruption"
    SURCHARGE = "surcharge"
    SUSPENSION = "suspension"
    RESUMPTION = "resumption"


@dataclass(frozen=True)
class Zone:
    """A part of a country with its own level (France's coloured zones, UK "parts")."""

    name: str
    level: int
    label: str


@dataclass(frozen=True)
class Notice:
    """One carrier notice. ``id`` is the publisher's stable key (slug or numeric id), not the URL."""

    id: str
    title: str
    url: str
    status: NoticeStatus
    published_at: datetime | None = None
    countries: tuple[str, ...] = ()
    text: str = ""


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


@dataclass(frozen=True)
class Record:
    """One normalised record: what a source says about one country (or, without country, one page).

    ``key`` identifies the record inside its source (the country code, or ``page``).
    ``level`` is the common scale: 1 normal precautions, 2 increased caution, 3 avoid
    non-essential travel / reconsider, 4 do not travel; ``level_label`` is the publisher's own
    wording, verbatim. ``scope`` says whether the level covers the whole country or parts;
    ``zones`` lists per-zone levels where the publisher gives zones. ``leave_now``: nationals are
    urged to leave. ``notices``: for carriers, the notices relevant to this country. Times are
    aware UTC. Everything here is content: it is hashed, stored and diffed.
    """

    key: str
    title: str
    url: str
    country: str | None = None
    level: int | None = None
    level_label: str | None = None
    scope: Scope | None = None
    zones: tuple[Zone, ...] = ()
    leave_now: bool = False
    staff_departure: StaffDeparture = StaffDeparture.NONE
    embassy_closed: bool = False
    published_at: datetime | None = None
    updated_at: datetime | None = None
    sections: tuple[Section, ...] = ()
    notices: tuple[Notice, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.level is not None and not 1 <= self.level <= 4:
            raise ValueError(f"level must be 1 to 4 or None, not {self.level!r}")

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["published_at"] = _iso(self.published_at)
        data["updated_at"] = _iso(self.updated_at)
        data["scope"] = str(self.scope) if self.scope else None
        data["staff_departure"] = str(self.staff_departure)
        data["zones"] = [{"name": z.name, "level": z.level, "label": z.label} for z in self.zones]
        data["sections"] = [{"name": s.name, "text": s.text} for s in self.sections]
        data["notices"] = [_notice_json(n) for n in self.notices]
        data["extra"] = dict(self.extra)
        return data

    def canonical(self) -> str:
        """Stable JSON text of the record: the content that is hashed and stored."""
        return json.dumps(self.to_json(), ensure_ascii=False, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Record:
        return cls(
            key=data["key"],
            title=data["title"],
            url=data["url"],
            country=data.get("country"),
            level=data.get("level"),
            level_label=data.get("level_label"),
            scope=Scope(data["scope"]) if data.get("scope") else None,
            zones=tuple(Zone(z["name"], z["level"], z["label"]) for z in data.get("zones", ())),
            leave_now=bool(data.get("leave_now", False)),
            staff_departure=StaffDeparture(data.get("staff_departure") or "none"),
            embassy_closed=bool(data.get("embassy_closed", False)),
            published_at=_when(data.get("published_at")),
            updated_at=_when(data.get("updated_at")),
            sections=tuple(Section(s["name"], s["text"]) for s in data.get("sections", ())),
            notices=tuple(_notice_from_json(n) for n in data.get("notices", ())),
            extra=dict(data.get("extra", {})),
        )

    @property
    def text(self) -> str:
        return "\n".join(s.text for s in self.sections)


def _notice_json(notice: Notice) -> dict[str, Any]:
    return {
        "id": notice.id,
        "title": notice.title,
        "url": notice.url,
        "status": str(notice.status),
        "published_at": _iso(notice.published_at),
        "countries": list(notice.countries),
        "text": notice.text,
    }


def _notice_from_json(data: Mapping[str, Any]) -> Notice:
    return Notice(
        id=data["id"],
        title=data["title"],
        url=data["url"],
        status=NoticeStatus(data["status"]),
        published_at=_when(data.get("published_at")),
        countries=tuple(data.get("countries", ())),
        text=data.get("text", ""),
    )


@dataclass(frozen=True)
class Change:
    """The difference between two snapshots of one record, with its class and reasons."""

    key: str
    change_class: ChangeClass
    reasons: tuple[str, ...]
    diff: str
    level_before: int | None
    level_after: int | None
    published_at: datetime | None = None  # the publisher's own time for this change, when it gives one


@dataclass(frozen=True)
class StoredChange:
    """A change as stored: its id, source, detection time and the snapshots it links."""

    id: int
    source_id: str
    key: str
    detected_at: datetime
    change_class: str
    reasons: tuple[str, ...]
    diff: str
    level_before: int | None
    level_after: int | None
    previous_snapshot_id: int | None
    snapshot_id: int
    published_at: datetime | None = None
