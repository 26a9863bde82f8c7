"""``de-aa`` kind: the Auswärtiges Amt's open-data travel warnings, every country in one JSON.

The list endpoint ``/opendata/travelwarning`` answers ``{"response": {"<contentId>": {entry},
…, "contentList": [...], "lastModified": <ts>}}``; the per-country endpoint
``/opendata/travelwarning/{contentId}`` has the same shape with one entry that also carries
the page's HTML (``content``, ``lastChanges``). Both are parsed by the same code.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from importlib.resources import files
from typing import Any
from urllib.parse import quote

import pycountry
import yaml

from monitor.errors import ParseError
from monitor.flags import CallToLeave
from monitor.models import Record, Scope, Section, Zone
from monitor.normalise import clean_text, element_text, parse_html
from monitor.sources.base import NoOptions, Source, json_problem, load_json, register


@dataclass(frozen=True)
class Flag:
    """One boolean of an entry and what it means on the common scale."""

    field: str
    level: int
    label: str
    scope: Scope


# Most severe first: the first flag that is set names the record's level_label.
FLAGS = (
    Flag("warning", 4, "Reisewarnung", Scope.WHOLE_COUNTRY),
    Flag("partialWarning", 4, "Teilreisewarnung", Scope.PARTS),
    Flag("situationWarning", 3, "Reisewarnung (situationWarning)", Scope.WHOLE_COUNTRY),
    Flag("situationPartWarning", 3, "Teilreisewarnung (situationPartWarning)", Scope.PARTS),
)
# Documented since the first API version; the two situation flags came later and may be absent.
REQUIRED_FLAGS = ("warning", "partialWarning")
NO_WARNING = "Sicherheitshinweise"
STATUS_SECTION = "Warnungen"
CHANGES_SECTION = "Letzte Änderungen"
CONTENT_SECTION = "Reise- und Sicherheitshinweise"

# Above this a timestamp is in milliseconds: 10**11 seconds is the year 5138, 10**11 ms is 1973.
_MILLISECONDS = 10**11
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_HEADINGS = ("h1", "h2", "h3", "h4")
_MARK = "\ue000"  # private-use character: tags heading lines while splitting the text


@register
class DeAaSource(Source):
    """Auswärtiges Amt open data: one record per country, keyed by the ISO alpha-2 code
    derived from ``iso3CountryCode`` (falling back to ``countryCode``, so Kosovo is ``XK``).
    ``level`` is the national level: 4 for ``warning`` (Reisewarnung), 3 for
    ``situationWarning``, else 1 ("Sicherheitshinweise"). ``partialWarning``
    (Teilreisewarnung, 4) and ``situationPartWarning`` (3) above it are zones and make the
    scope ``parts``; ``level_label`` names the most severe warning in force. Softer advice
    ("von Reisen wird abgeraten") exists only in the page text, not in the flags.
    ``updated_at`` is ``lastModified``, ``published_at`` is ``effective`` (seconds or
    milliseconds). With the per-country endpoint the page text becomes sections and sets
    ``leave_now`` on a call to leave the country. ``{}`` (the API's answer when it fails or is
    switched off) is a parse failure, never "no warnings"."""

    kind = "de-aa"
    title = "Auswärtiges Amt open data (Reise- und Sicherheitshinweise)"
    publisher = "Auswärtiges Amt"
    Options = NoOptions

    def parse(self, body: bytes, *, content_type: str | None, url: str) -> list[Record]:
        try:
            return self._records(body, url)
        except ParseError as exc:
            raise ParseError(exc.message, source_id=self.id, url=url) from None

    def _records(self, body: bytes, url: str) -> list[Record]:
        entries = _entries(_load_response(body))
        wanted = set(self.config.countries)
        records: dict[str, Record] = {}
        for content_id, entry, country in entries:
            if wanted and country not in wanted:
                continue
            if country in records:
                first = records[country].extra["content_id"]
                raise ParseError(f"two entries for {country} (contentIds {first} and {content_id})")
            records[country] = _record(content_id, entry, country, _base_url(url))
        if not records:
            wanted_text = ", ".join(sorted(wanted))
            raise ParseError(f"the payload has no entry for {wanted_text}")
        return [records[key] for key in sorted(records)]


def _load_response(body: bytes) -> dict[str, Any]:
    """The ``response`` object of the payload. Raises ParseError."""
    try:
        payload = load_json(body)
    except (ValueError, RecursionError) as exc:
        raise ParseError(f"the payload is not JSON ({json_problem(exc)})") from None
    if payload == {}:
        raise ParseError("empty JSON object: the API answers {} when it fails or is switched off")
    response = payload.get("response") if isinstance(payload, dict) else None
    if not isinstance(response, dict):
        raise ParseError("no 'response' object in the payload")
    return response


def _entries(response: Mapping[str, Any]) -> list[tuple[str, dict[str, Any], str]]:
    """(contentId, entry, country) for every object-valued key that names a country.

    ``contentList`` and ``lastModified`` are siblings of the entries and are skipped; so is an
    entry without a usable country code, unless no entry has one."""
    objects = [(key, value) for key, value in response.items() if isinstance(value, dict)]
    if not objects:
        raise ParseError("the response has no country entries")
    entries = [(key, value, country) for key, value in objects if (country := _country(value))]
    if not entries:
        raise ParseError("no entry carries a country code (iso3CountryCode or countryCode)")
    return entries


def _country(entry: Mapping[str, Any]) -> str | None:
    iso3 = entry.get("iso3CountryCode")
    if isinstance(iso3, str) and re.fullmatch(r"[A-Za-z]{3}", iso3.strip()):
        found = pycountry.countries.get(alpha_3=iso3.strip().upper())
        if found is not None:
            return str(found.alpha_2)
    # Kosovo is XKX / XK: user-assigned codes that pycountry does not list.
    code = entry.get("countryCode", entry.get("CountryCode"))
    if isinstance(code, str) and re.fullmatch(r"[A-Za-z]{2}", code.strip()):
        return code.strip().upper()
    return None


def _base_url(url: str) -> str:
    """The list endpoint, whether ``url`` is the list or a per-country URL."""
    return re.sub(r"/\d+/?$", "", url.split("?", 1)[0]).rstrip("/")


def _record(content_id: str, entry: Mapping[str, Any], country: str, base_url: str) -> Record:
    active = _active_flags(entry, country)
    level, zones = _level_and_zones(active)
    sections = [Section(STATUS_SECTION, "\n".join(f.label for f in active) or NO_WARNING)]
    sections += _text_sections(entry, country)
    text = "\n".join(section.text for section in sections[1:])
    return Record(
        key=country,
        title=_string(entry.get("title")) or country,
        url=f"{base_url}/{quote(content_id, safe='')}",
        country=country,
        level=level,
        level_label=active[0].label if active else NO_WARNING,
        scope=Scope.PARTS if zones else Scope.WHOLE_COUNTRY,
        zones=zones,
        leave_now=bool(text) and calls_to_leave(text, _names(entry)),
        published_at=_timestamp(entry.get("effective"), "effective", country),
        updated_at=_timestamp(entry.get("lastModified"), "lastModified", country),
        sections=tuple(sections),
        extra={"content_id": content_id},
    )


def _level_and_zones(active: Sequence[Flag]) -> tuple[int, tuple[Zone, ...]]:
    """The national level (the whole-country warnings, else 1) and the partial warnings above it.

    The payload does not name the regions, so a zone is named after its warning."""
    level = max((flag.level for flag in active if flag.scope is Scope.WHOLE_COUNTRY), default=1)
    parts = [flag for flag in active if flag.scope is Scope.PARTS and flag.level > level]
    return level, tuple(Zone(flag.label, flag.level, flag.label) for flag in parts)


def _active_flags(entry: Mapping[str, Any], country: str) -> list[Flag]:
    for flag in FLAGS:
        value = entry.get(flag.field)
        if value is None and flag.field not in REQUIRED_FLAGS:
            continue
        if not isinstance(value, bool):
            raise ParseError(f"{country}: {flag.field} is {value!r}, not true or false: no level")
    return [flag for flag in FLAGS if entry.get(flag.field) is True]


def _timestamp(value: object, field: str, country: str) -> datetime | None:
    """Unix seconds or milliseconds (told apart by magnitude) as aware UTC; None when absent."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ParseError(f"{country}: {field} is {value!r}, not a timestamp")
    seconds = value / 1000 if abs(value) >= _MILLISECONDS else value
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        raise ParseError(f"{country}: {field} {value!r} is not a valid timestamp") from None


def _string(value: object) -> str:
    return clean_text(value) if isinstance(value, str) else ""


def _names(entry: Mapping[str, Any]) -> tuple[str, ...]:
    """The country's German names: ``countryName`` (without the footnote star) and the title's
    part before the colon."""
    names = [_string(entry.get("countryName", entry.get("CountryName"))).rstrip("*").strip()]
    names.append(_string(entry.get("title")).split(":", 1)[0].strip())
    return tuple(name for name in dict.fromkeys(names) if name)


def _text_sections(entry: Mapping[str, Any], country: str) -> list[Section]:
    """``lastChanges`` and ``content`` (per-country endpoint only) as sections. The
    ``disclaimer`` is boilerplate and left out."""
    sections = []
    changes = _fragment_text(entry.get("lastChanges"), "lastChanges", country)
    if changes:
        sections.append(Section(CHANGES_SECTION, changes))
    content = entry.get("content")
    if content is not None:
        if not isinstance(content, str):
            raise ParseError(f"{country}: content is {type(content).__name__}, not HTML text")
        sections += _content_sections(content)
    return sections


def _fragment_text(value: object, field: str, country: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ParseError(f"{country}: {field} is {type(value).__name__}, not text")
    if "<" not in value:
        return clean_text(html.unescape(value))
    return element_text(parse_html(value))


def _content_sections(fragment: str) -> list[Section]:
    """The page text, one section per heading of the highest heading level used."""
    soup = parse_html(fragment.replace(_MARK, ""))
    level = next((name for name in _HEADINGS if soup.find(name)), None)
    if level:
        for heading in soup.find_all(level):
            heading.string = _MARK + element_text(heading).replace("\n", " ")
    sections: list[Section] = []
    name, lines = CONTENT_SECTION, list[str]()
    for line in element_text(soup).splitlines():
        if line.startswith(_MARK):
            _append(sections, name, lines)
            name, lines = line[1:].strip() or CONTENT_SECTION, list[str]()
        else:
            lines.append(line)
    _append(sections, name, lines)
    return sections


def _append(sections: list[Section], name: str, lines: Sequence[str]) -> None:
    if not lines:
        return
    taken = {section.name for section in sections}
    unique = next(n for n in _candidates(name) if n not in taken)
    sections.append(Section(unique, "\n".join(lines)))


def _candidates(name: str) -> Iterator[str]:
    yield name
    number = 2
    while True:
        yield f"{name} ({number})"
        number += 1


@cache
def phrase_rule() -> CallToLeave:
    """The phrase table from ``monitor/data/de_aa.yaml``."""
    raw = yaml.safe_load(files("monitor").joinpath("data/de_aa.yaml").read_text(encoding="utf-8"))
    return CallToLeave.from_table(raw["leave_now"])


def calls_to_leave(text: str, names: tuple[str, ...] = ()) -> bool:
    """True when one sentence of ``text`` calls on Germans to leave the country named ``names``."""
    rule = phrase_rule()
    return any(rule.matches(sentence, names) for sentence in _SENTENCE_END.split(text))
