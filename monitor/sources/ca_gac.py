"""``ca-gac`` kind: Global Affairs Canada's travel advice and advisories (open-data JSON).

The per-country file ``cta-cap-{iso2}.json`` is ``{"metadata": {"generated": …}, "data":
{"country-iso": "HT", "advisory-state": 3, …, "eng": {…}, "fra": {…}}}``; the index
``index-alpha-eng.json`` has the same entries keyed by code under ``data``. Both are parsed.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from functools import cache
from importlib.resources import files
from typing import Any

import yaml
from bs4 import Tag

from monitor.errors import ParseError
from monitor.flags import CallToLeave
from monitor.models import Record, Scope, Section, Zone
from monitor.normalise import clean_text, element_text, parse_html
from monitor.sources.base import NoOptions, Source, json_problem, load_json, register

PAGE_URL = "https://travel.gc.ca/destinations/{slug}"
# The sections whose wording can call on Canadians to leave; entry and exit rules cannot.
LEAVE_FIELDS = ("recent-updates", "advisories", "security")
_MONTHS = {
    name: number
    for number, name in enumerate(
        "january february march april may june july august september october november december".split(), 1
    )
}
_FRIENDLY_DATE = re.compile(
    r"^(?P<month>[A-Za-z]+)\s+(?P<day>\d{1,2}),\s*(?P<year>\d{4})\s+"
    r"(?P<hour>\d{1,2}):(?P<minute>\d{2})\s*(?P<zone>[A-Z]{3,4})$"
)
_ZONE_OFFSETS = {"EDT": -4, "EST": -5, "UTC": 0, "GMT": 0}
_HEADING = re.compile(r"^(?P<region>.*\S)\s+[-–—]\s+(?P<advice>\S.*)$")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")


@dataclass(frozen=True)
class Vocabulary:
    """The publisher's vocabulary from ``monitor/data/ca_gac.yaml``."""

    levels: Mapping[int, tuple[int, str]]  # advisory-state -> (level, English wording)
    by_wording: Mapping[str, tuple[int, str]]  # lower-case wording (en, fr) -> (level, English)
    sections: Mapping[str, str]  # eng field -> section name
    phrases: Mapping[str, CallToLeave]  # "eng" / "fra"


@cache
def vocabulary() -> Vocabulary:
    raw = yaml.safe_load(files("monitor").joinpath("data/ca_gac.yaml").read_text(encoding="utf-8"))
    levels = {int(state): (int(v["level"]), str(v["eng"])) for state, v in raw["levels"].items()}
    by_wording = {
        str(v[lang]).casefold(): (int(v["level"]), str(v["eng"]))
        for v in raw["levels"].values()
        for lang in ("eng", "fra")
    }
    phrases = {lang: CallToLeave.from_table(table) for lang, table in raw["leave_now"].items()}
    return Vocabulary(levels, by_wording, dict(raw["sections"]), phrases)


@register
class CaGacSource(Source):
    """Global Affairs Canada: one record per country, keyed by ``country-iso``. The 0-based
    ``advisory-state`` gives the national level (0 "Take normal security precautions" → 1,
    1 "Exercise a high degree of caution" → 2, 2 "Avoid non-essential travel" → 3, 3 "Avoid
    all travel" → 4); ``level_label`` is the English ``advisory-text``. Regional advisories
    (the second and later ``AdvisoryContainer`` blocks of ``advisories``) become zones; one
    above the national level makes the scope ``parts``. ``updated_at`` comes from
    ``date-published`` or ``friendly-date``. Sections are the English tabs (latest updates,
    risk levels, security, entry and exit, health, laws, disasters, help abroad);
    ``metadata.generated`` changes on every build and is ignored.
    ``leave_now`` is set by a call to leave in the English or French advice."""

    kind = "ca-gac"
    title = "Global Affairs Canada travel advice (open-data JSON)"
    publisher = "Global Affairs Canada"
    Options = NoOptions

    def parse(self, body: bytes, *, content_type: str | None, url: str) -> list[Record]:
        try:
            return self._records(body, url)
        except ParseError as exc:
            raise ParseError(exc.message, source_id=self.id, url=url) from None

    def _records(self, body: bytes, url: str) -> list[Record]:
        wanted = set(self.config.countries)
        records: dict[str, Record] = {}
        for country, entry in _entries(_load_data(body)):
            if wanted and country not in wanted:
                continue
            if country in records:
                raise ParseError(f"two entries for {country}")
            records[country] = _record(country, entry, url)
        if not records:
            raise ParseError(f"the payload has no entry for {', '.join(sorted(wanted))}")
        return [records[key] for key in sorted(records)]


def _load_data(body: bytes) -> dict[str, Any]:
    """The ``data`` object of the payload. Raises ParseError."""
    try:
        payload = load_json(body)
    except (ValueError, RecursionError) as exc:
        raise ParseError(f"the payload is not JSON ({json_problem(exc)})") from None
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, dict) or not data:
        raise ParseError("no 'data' object in the payload")
    return data


def _entries(data: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """(country, entry): the one entry of a per-country file, or every entry of the index."""
    candidates = [data] if "country-iso" in data else [v for v in data.values() if isinstance(v, dict)]
    entries = [(country, entry) for entry in candidates if (country := _country(entry))]
    if not entries:
        raise ParseError("no entry with a two-letter 'country-iso'")
    return entries


def _country(entry: Mapping[str, Any]) -> str | None:
    code = entry.get("country-iso")
    if isinstance(code, str) and re.fullmatch(r"[A-Za-z]{2}", code.strip()):
        return code.strip().upper()
    return None


def _record(country: str, entry: Mapping[str, Any], url: str) -> Record:
    level, wording = _level(country, entry.get("advisory-state"))
    eng, fra = _language(entry, "eng"), _language(entry, "fra")
    name = _text(eng.get("name")) or _text(entry.get("country-eng")) or country
    slug = eng.get("url-slug")
    sections = tuple(_sections(eng))
    zones = _zones(eng.get("advisories"))
    return Record(
        key=country,
        title=f"Travel advice and advisories for {name}",
        url=PAGE_URL.format(slug=slug)
        if isinstance(slug, str) and re.fullmatch(r"[a-z0-9-]+", slug)
        else url,
        country=country,
        level=level,
        level_label=_text(eng.get("advisory-text")) or wording,
        scope=Scope.PARTS if any(zone.level > level for zone in zones) else Scope.WHOLE_COUNTRY,
        zones=zones,
        leave_now=_calls_to_leave(eng, "eng", name) or _calls_to_leave(fra, "fra", _text(fra.get("name"))),
        updated_at=_updated_at(entry, eng),
        sections=sections,
        extra=_extra(entry),
    )


def _level(country: str, state: object) -> tuple[int, str]:
    levels = vocabulary().levels
    if isinstance(state, bool) or not isinstance(state, int) or state not in levels:
        raise ParseError(f"{country}: advisory-state is {state!r}, not 0 to 3: no level")
    return levels[state]


def _language(entry: Mapping[str, Any], lang: str) -> Mapping[str, Any]:
    value = entry.get(lang)
    return value if isinstance(value, dict) else {}


def _text(value: object) -> str:
    """Visible text of a string that may hold HTML or entities; "" for anything else."""
    if not isinstance(value, str):
        return ""
    if "<" not in value:
        return clean_text(html.unescape(value))
    return element_text(parse_html(value))


def _sections(eng: Mapping[str, Any]) -> Iterator[Section]:
    for field, name in vocabulary().sections.items():
        text = _text(eng.get(field))
        if text:
            yield Section(name, text)


def _zones(advisories: object) -> tuple[Zone, ...]:
    """One zone per regional advisory block; the first block is the national advisory."""
    if not isinstance(advisories, str) or "<" not in advisories:
        return ()
    blocks = parse_html(advisories).select("div.AdvisoryContainer")
    zones: list[Zone] = []
    for block in blocks[1:]:
        zone = _zone(block)
        if zone is not None:
            names = {z.name for z in zones}
            name = next(n for n in _numbered(zone.name) if n not in names)
            zones.append(Zone(name, zone.level, zone.label))
    return tuple(zones)


def _zone(block: Tag) -> Zone | None:
    heading = block.find(["h2", "h3", "h4"])
    if not isinstance(heading, Tag):
        return None
    match = _HEADING.match(element_text(heading).replace("\n", " "))
    if not match:
        return None
    known = vocabulary().by_wording.get(" ".join(match["advice"].split()).casefold())
    if known is None:
        return None
    region = match["region"]
    if region.casefold().startswith("regional advis"):
        # "Regional advisory - Avoid all travel" names its areas in the block's list.
        items = [element_text(li).replace("\n", " ") for li in block.find_all("li")]
        region = "; ".join(item for item in items if item) or region
    return Zone(region, known[0], known[1])


def _numbered(name: str) -> Iterator[str]:
    yield name
    number = 2
    while True:
        yield f"{name} ({number})"
        number += 1


def _updated_at(entry: Mapping[str, Any], eng: Mapping[str, Any]) -> datetime | None:
    """``date-published`` (index) or ``friendly-date`` (per-country file) as aware UTC."""
    published = entry.get("date-published")
    if isinstance(published, dict):
        stamp = published.get("timestamp")
        if isinstance(stamp, int) and not isinstance(stamp, bool):
            try:
                return datetime.fromtimestamp(stamp, UTC)
            except (OverflowError, OSError, ValueError):
                pass
        when = _iso_datetime(published.get("asp"))
        if when is not None:
            return when
    return _friendly_date(eng.get("friendly-date"))


def _iso_datetime(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return when.astimezone(UTC) if when.tzinfo else None


def _friendly_date(value: object) -> datetime | None:
    """ "September 24, 2026 08:53 EDT" as aware UTC; None when the form or zone is unknown."""
    match = _FRIENDLY_DATE.match(value.strip()) if isinstance(value, str) else None
    if not match or match["zone"] not in _ZONE_OFFSETS or match["month"].lower() not in _MONTHS:
        return None
    zone = timezone(timedelta(hours=_ZONE_OFFSETS[match["zone"]]))
    try:
        local = datetime(
            int(match["year"]),
            _MONTHS[match["month"].lower()],
            int(match["day"]),
            int(match["hour"]),
            int(match["minute"]),
            tzinfo=zone,
        )
    except ValueError:
        return None
    return local.astimezone(UTC)


def _extra(entry: Mapping[str, Any]) -> dict[str, Any]:
    extra: dict[str, Any] = {"advisory_state": entry["advisory-state"]}
    update_type = _text(entry.get("update-metadata") or entry.get("recent-updates-type"))
    if update_type:
        extra["update_type"] = update_type
    return extra


def _calls_to_leave(texts: Mapping[str, Any], lang: str, name: str) -> bool:
    """True when a sentence of the ``LEAVE_FIELDS`` of one language calls on Canadians to leave."""
    rule = vocabulary().phrases[lang]
    return any(
        rule.matches(sentence, (name,))
        for field in LEAVE_FIELDS
        for sentence in _SENTENCE_END.split(_text(texts.get(field)))
    )
