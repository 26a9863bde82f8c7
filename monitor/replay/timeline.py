"""A seed's timeline: which file each source serves from which moment (pure, plus reading it).

A seed is a folder with ``timeline.yaml`` and one folder per source holding the files the
publisher served, in its own format::

    title: Mali, autumn 2025
    start: "2025-10-20T00:00:00Z"
    end: "2025-11-12T00:00:00Z"
    sources:
      - id: us-state
        kind: us-state
        publisher: US State Department
        url: https://travel.state.gov/_res/rss/TAsTWs.xml
        content_type: application/rss+xml; charset=utf-8
        countries: [ML]
        options: {}
        snapshots:
          - {from: "2025-10-20T00:00:00Z", file: 2025-10-20.xml}
          - {from: "2025-10-24T16:30:00Z", file: 2025-10-24.xml, expect: severe, note: ...}

``from`` is when the publisher starts serving a file; ``expect`` is the class of the change
the monitor must record when it first sees it (``unchanged``: none), for the tests and the
replay's summary. Errors name the file and the entry.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from monitor.errors import ConfigError
from monitor.models import ChangeClass

TIMELINE = "timeline.yaml"

Expect = ChangeClass | Literal["unchanged"]


def _in_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00 is before the first moment a datetime holds
        raise ValueError("out of the range of dates (years 1 to 9999 in UTC)") from None


# Any UTC offset may be written; times are kept in UTC (HTTP dates, the store, the report).
UtcDatetime = Annotated[AwareDatetime, AfterValidator(_in_utc)]


def _relative_file(value: str) -> str:
    path = Path(value)
    if path.is_absolute() or ".." in path.parts or not value.strip():
        raise ValueError(f"{value!r} must be a file name inside the source's folder")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Served(_Strict):
    """One file and the moment the publisher started serving it."""

    from_: UtcDatetime = Field(alias="from")
    file: Annotated[str, AfterValidator(_relative_file)]
    expect: Expect | None = None
    note: str | None = None


class SeedSource(_Strict):
    """A source of the seed: what the configuration needs, and what it served when."""

    # The id names the source's folder: a plain name (a configuration's source id), so that
    # no id ("../../etc") makes the replay read or serve a file outside the seed.
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")
    kind: str
    publisher: str | None = None
    url: str
    content_type: str
    countries: tuple[str, ...] = ()
    options: dict[str, Any] = Field(default_factory=dict)
    snapshots: tuple[Served, ...] = Field(min_length=1)

    @property
    def path(self) -> str:
        """The URL's path and query: where the replay server serves this source."""
        parts = urlsplit(self.url)
        return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")

    @model_validator(mode="after")
    def _in_order(self) -> SeedSource:
        moments = [s.from_ for s in self.snapshots]
        if moments != sorted(moments) or len(set(moments)) != len(moments):
            raise ValueError("snapshots must be in strictly increasing order of `from`")
        if self.snapshots[0].expect is not None:
            raise ValueError("the first snapshot is the baseline: it has no `expect`")
        return self

    def serving(self, moment: datetime) -> Served | None:
        """The file served at ``moment`` (None before the first one)."""
        current = None
        for served in self.snapshots:
            if served.from_ > moment:
                break
            current = served
        return current


class Timeline(_Strict):
    """A whole seed: its span and its sources."""

    title: str
    start: UtcDatetime
    end: UtcDatetime
    sources: tuple[SeedSource, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> Timeline:
        if self.end <= self.start:
            raise ValueError("`end` must come after `start`")
        ids = [s.id for s in self.sources]
        if len(set(ids)) != len(ids):
            raise ValueError(f"duplicate source ids: {sorted({i for i in ids if ids.count(i) > 1})}")
        paths = [s.path for s in self.sources]
        if len(set(paths)) != len(paths):
            raise ValueError("two sources are served at the same URL path")
        for source in self.sources:
            if source.snapshots[0].from_ > self.start:
                raise ValueError(f"source {source.id}: its first snapshot starts after the seed's start")
        return self

    def changes_expected(self) -> list[tuple[datetime, str, ChangeClass]]:
        """Every expected change, in the order the publishers made them: (moment, source, class)."""
        found = [
            (served.from_, source.id, served.expect)
            for source in self.sources
            for served in source.snapshots
            if isinstance(served.expect, ChangeClass)
        ]
        return sorted(found, key=lambda item: (item[0], item[1]))


def load_timeline(folder: Path) -> Timeline:
    """Read ``folder/timeline.yaml`` and check that every file it names exists.

    Raises :class:`ConfigError` with the file, the entry and the reason."""
    path = folder / TIMELINE
    raw = read_yaml(path, missing=f"{folder}: not a seed ({TIMELINE} not found)", what="the timeline")
    try:
        timeline = Timeline.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'top level'}: {error['msg']}"
            for error in exc.errors()
        )
        raise ConfigError(f"{path}: {problems}") from None
    missing = [
        f"{source.id}/{served.file}"
        for source in timeline.sources
        for served in source.snapshots
        if not _is_file(folder / source.id / served.file)
    ]
    if missing:
        raise ConfigError(f"{path}: files not found in the seed: {', '.join(missing)}")
    return timeline


def _is_file(path: Path) -> bool:
    """Whether ``path`` is a readable file's name; False also when the system refuses the name
    itself (too long, a NUL), which ``Path.is_file`` raises for."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def read_yaml(path: Path, *, missing: str, what: str) -> Any:
    """The YAML document in ``path``. Raises :class:`ConfigError`: ``missing`` when there is no
    such file, else one line naming the file and why ``what`` cannot be read."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(missing) from None
    # ValueError and RecursionError: PyYAML lets them through for a date it cannot build
    # (2025-13-45) and for collections nested too deep.
    except (OSError, UnicodeDecodeError, yaml.YAMLError, ValueError, RecursionError) as exc:
        raise ConfigError(f"{path}: cannot read {what}: {exc}".replace("\n", " ")) from None
