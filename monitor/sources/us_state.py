"""``us-state`` kind: the US State Department's travel advisories, one RSS feed for every destination.

Each feed item is one destination: "Mali - Level 4: Do Not Travel", a date-only ``pubDate``, the
advisory as HTML, a ``Threat-Level`` category and a ``Country-Tag`` category whose codes are the
department's own (mostly FIPS 10-4; the table is ``monitor/data/us_state_country_tags.yaml``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import cache
from importlib import resources
from typing import Any

import pycountry
import yaml

from monitor.errors import ParseError
from monitor.flags import Flags, read_flags
from monitor.models import Record, Scope, Section, Zone
from monitor.normalise import element_text, parse_html
from monitor.sources.base import Source, register
from monitor.sources.rss import html_text, load_feed

FEED_URL = "https://travel.state.gov/_res/rss/TAsTWs.xml"
NEW_URL_SCHEME = "/content/tsg_aem/"  # .../travel-advisories/destination.mli.html

_LEVEL_SEPARATOR = re.compile(r"\s+-\s+Level\s+", re.IGNORECASE)
_NUMBERED_LEVEL = re.compile(r"^(?:Level\s+)?([1-4])\s*:\s*(.*)$", re.IGNORECASE)
_REPEATED_LEVEL = re.compile(r"\s+-\s+Level\s+[1-4]\s*:.*$", re.IGNORECASE)
_TITLE_SUFFIX = re.compile(r"\s+Travel\s+Advisory$", re.IGNORECASE)
# "Reconsider travel<p>to <b>Mali</b> ...": the advice phrase glued to the first paragraph.
_GLUED_LEAD = re.compile(r"^\s*([^<>]+?)\s*<p>(?=(?:\s|&nbsp;|<[^>]+>)*[a-z])")
_DATE_ONLY = re.compile(r"^\s*(?:[A-Za-z]+,?\s+)?(\d{1,2})\s+([A-Za-z]{3})[A-Za-z]*\.?\s+(\d{4})(?:\s|$)")
_MONTHS = {m: i for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split(), start=1)}
_OLDEST = datetime.min.replace(tzinfo=UTC)


def name_key(name: str) -> str:
    """A destination name for matching: no accents, case or punctuation, no leading "the"."""
    decomposed = unicodedata.normalize("NFKD", name)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    key = re.sub(r"[^0-9a-z]+", " ", plain.casefold()).strip()
    return key.removeprefix("the ")


@dataclass(frozen=True)
class Tables:
    """The data files of this kind, loaded and checked."""

    tags: Mapping[str, str | None]
    ambiguous: frozenset[str]
    parts: Mapping[str, str]  # name_key -> ISO code
    names: Mapping[str, str | None]  # name_key -> ISO code, our overrides then pycountry's names
    levels: Mapping[str, int]  # lower-case label -> level
    labels: Mapping[int, str]
    change_note: tuple[re.Pattern[str], ...]


def _data(name: str) -> dict[str, Any]:
    text = resources.files("monitor").joinpath(f"data/{name}").read_text(encoding="utf-8")
    data: dict[str, Any] = yaml.safe_load(text)
    return data


def _code(value: object, where: str, pattern: str = "[A-Z]{2}") -> str | None:
    if value is None:
        return None
    if not (isinstance(value, str) and re.fullmatch(pattern, value)):
        raise ValueError(f"{where}: {value!r} is not a two-character code")
    return value


@cache
def tables() -> Tables:
    """Load ``us_state_country_tags.yaml`` and ``us_state_levels.yaml`` (once)."""
    tags_data, vocabulary = _data("us_state_country_tags.yaml"), _data("us_state_levels.yaml")
    names: dict[str, str | None] = {}
    for country in pycountry.countries:
        for attr in ("name", "common_name", "official_name"):
            if value := getattr(country, attr, None):
                names.setdefault(name_key(value), country.alpha_2)
    names.update({name_key(n): _code(c, f"names.{n}") for n, c in tags_data["names"].items()})
    parts = {name_key(n): _code(c, f"parts.{n}") or "" for n, c in tags_data["parts"].items()}
    levels = {str(label).casefold(): int(level) for label, level in vocabulary["levels"].items()}
    return Tables(
        tags={
            _code(t, "tags", "[A-Z0-9]{2}") or "": _code(c, f"tags.{t}") for t, c in tags_data["tags"].items()
        },
        ambiguous=frozenset(str(t) for t in tags_data["ambiguous"]),
        parts=parts,
        names=names,
        levels=levels,
        labels={level: str(label) for label, level in vocabulary["levels"].items()},
        change_note=tuple(re.compile(p, re.IGNORECASE) for p in vocabulary["change_note"]),
    )


def parse_level(text: str) -> tuple[int | None, str | None]:
    """Read a level: "Level 4: Do Not Travel" or "4: Do Not Travel" -> (4, "Do Not Travel"); a
    bare label of the vocabulary ("Do Not Travel") also gives its level; else (None, None)."""
    text = " ".join(text.split())
    if match := _NUMBERED_LEVEL.match(text):
        number = int(match.group(1))
        return number, match.group(2).strip() or tables().labels.get(number)
    label = re.sub(r"^Level\s*:?\s*", "", text, flags=re.IGNORECASE)
    level = tables().levels.get(label.casefold())
    return (level, label) if level else (None, None)


def split_title(title: str) -> tuple[str, int | None, str | None]:
    """Split an item title on its LAST " - Level " (names contain hyphens: Guinea-Bissau):
    "Mali - Level 4: Do Not Travel" -> ("Mali", 4, "Do Not Travel"). The destination loses a
    repeated level ("Israel - Level 3: Reconsider Travel - Level 3: ...") and a "Travel
    Advisory" suffix ("Mexico Travel Advisory - Level 2: ..."). No level: (title, None, None)."""
    title = " ".join(title.split())
    separators = list(_LEVEL_SEPARATOR.finditer(title))
    if separators:
        last = separators[-1]
        destination, (level, label) = title[: last.start()], parse_level(title[last.end() :])
    elif " - " in title and parse_level(title.rsplit(" - ", 1)[1])[0]:
        destination, tail = title.rsplit(" - ", 1)
        level, label = parse_level(tail)
    else:
        return title, None, None
    destination = _TITLE_SUFFIX.sub("", _REPEATED_LEVEL.sub("", destination)).strip()
    return destination, level, label


def parse_pub_date(raw: str | None) -> datetime | None:
    """An item's ``pubDate`` as aware UTC: "Tue, 15 Sep 2026" -> 2026-09-15 00:00 UTC. A full
    RFC 822 date-time keeps its time. Malformed values ("Wed, 15 Dec 20202") give None."""
    if not raw or not raw.strip():
        return None
    try:
        parsed = parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError, OverflowError):
        parsed = None
    if parsed is not None:
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    match = _DATE_ONLY.match(raw)
    month = _MONTHS.get(match.group(2).casefold()) if match else None
    if match is None or month is None:
        return None
    try:
        return datetime(int(match.group(3)), month, int(match.group(1)), tzinfo=UTC)
    except ValueError:
        return None


def country_by_name(destination: str) -> str | None:
    """The ISO code of a destination name, from our overrides, then pycountry's names."""
    return tables().names.get(name_key(destination))


def resolve_country(tag: str | None, destination: str) -> tuple[str | None, bool]:
    """(ISO code, is a part) of an item. Parts (West Bank, Gaza, Bonaire...) go by name; then the
    Country-Tag through the table, except ambiguous tags, where the name comes first; an unknown
    or missing tag falls back to the name. (None, False): no single country."""
    t = tables()
    if part := t.parts.get(name_key(destination)):
        return part, True
    tag = (tag or "").strip().upper()
    if tag in t.ambiguous and (by_name := country_by_name(destination)):
        return by_name, False
    if tag in t.tags:
        return t.tags[tag], False
    return country_by_name(destination), False


def describe(html: str) -> tuple[str, str]:
    """(change note, advisory text) of an item description. The note is the leading lines that
    talk about the reissue ("Reissued after periodic review without changes.")."""
    html = _GLUED_LEAD.sub(r"<p>\1 ", html, count=1)
    lines = element_text(parse_html(html)).splitlines()
    notes = []
    while lines and any(p.search(lines[0]) for p in tables().change_note):
        notes.append(lines.pop(0))
    return "\n".join(notes), "\n".join(lines)


@dataclass(frozen=True)
class Advisory:
    """What one feed item says about one destination."""

    destination: str
    country: str
    is_part: bool
    title: str
    link: str
    level: int | None
    label: str | None
    disagreement: Mapping[str, int | None]
    updated_at: datetime | None
    change_note: str
    text: str
    flags: Flags

    def rank(self) -> tuple[datetime, bool, int, str]:
        """Among duplicates the highest wins: newest pubDate, then the new URL scheme."""
        return (self.updated_at or _OLDEST, NEW_URL_SCHEME in self.link, self.level or 0, self.link)

    def sections(self, suffix: str = "") -> list[Section]:
        named = (("change_note", self.change_note), ("advisory", self.text))
        return [Section(name + suffix, text) for name, text in named if text]


def decide_level(
    in_title: tuple[int | None, str | None], in_category: tuple[int | None, str | None]
) -> tuple[int | None, str | None, dict[str, int | None]]:
    """The item's level and label: the higher of title and Threat-Level category, so a glitch
    in one field never lowers the level (the category's label on a tie). When the two disagree,
    both are returned for the record's ``extra``."""
    found = [c for c in (in_category, in_title) if c[0] is not None]
    if not found:
        return None, None, {}
    level, label = max(found, key=lambda c: c[0] or 0)
    if in_title[0] is not None and in_category[0] is not None and in_title[0] != in_category[0]:
        return level, label, {"title_level": in_title[0], "category_level": in_category[0]}
    return level, label, {}


def _category(entry: Any, domain: str) -> str | None:
    for tag in entry.get("tags") or ():
        if str(tag.get("scheme") or "").strip().casefold() == domain.casefold():
            return str(tag.get("term") or "").strip() or None
    return None


def read_item(entry: Any, *, url: str) -> Advisory | None:
    """One feed entry as an Advisory; None when it names no single country."""
    title = html_text(str(entry.get("title") or ""))
    destination, title_level, title_label = split_title(title)
    threat = _category(entry, "Threat-Level")
    in_category = parse_level(threat) if threat else (None, None)
    level, label, disagreement = decide_level((title_level, title_label), in_category)
    country, is_part = resolve_country(_category(entry, "Country-Tag"), destination)
    if country is None:
        return None
    change_note, text = describe(str(entry.get("summary") or ""))
    return Advisory(
        destination=destination,
        country=country,
        is_part=is_part,
        title=title,
        link=str(entry.get("link") or entry.get("id") or url),
        level=level,
        label=label,
        disagreement=disagreement,
        updated_at=parse_pub_date(entry.get("published")),
        change_note=change_note,
        text=text,
        flags=read_flags(f"{change_note}\n{text}"),
    )


def destinations(advisories: list[Advisory]) -> list[Advisory]:
    """One advisory per destination of a country: the country's own items are duplicates of
    each other (old and new URL scheme) and the best by ``rank`` stays; each part (West Bank,
    Gaza) is a destination of its own. The country's own item comes first, then parts by name."""
    best: dict[str, Advisory] = {}
    for advisory in advisories:
        key = name_key(advisory.destination) if advisory.is_part else ""
        if key not in best or advisory.rank() > best[key].rank():
            best[key] = advisory
    return sorted(best.values(), key=lambda a: (a.is_part, name_key(a.destination)))


def country_record(advisories: list[Advisory]) -> Record:
    """The record of one country from its destinations (each with a level). Several
    destinations (West Bank and Gaza) give one zone each, the highest level, and scope
    ``parts`` when their levels differ."""
    flags = Flags()
    for advisory in advisories:
        flags |= advisory.flags
    top = max(advisories, key=lambda a: a.level or 0)  # the first on a tie
    zones: tuple[Zone, ...] = ()
    if len(advisories) == 1:
        title, scope = top.title, Scope.WHOLE_COUNTRY
        sections = top.sections()
        extra: dict[str, Any] = {"destination": top.destination, **top.disagreement}
    else:
        title = " / ".join(a.title for a in advisories)
        scope = Scope.WHOLE_COUNTRY if len({a.level for a in advisories}) == 1 else Scope.PARTS
        zones = tuple(Zone(a.destination, a.level or 0, a.label or "") for a in advisories)
        sections = [s for a in advisories for s in a.sections(f": {a.destination}")]
        extra = {"destinations": [a.destination for a in advisories]}
    return Record(
        key=top.country,
        title=title,
        url=top.link,
        country=top.country,
        level=top.level,
        level_label=top.label,
        scope=scope,
        zones=zones,
        leave_now=flags.leave_now,
        staff_departure=flags.staff_departure,
        embassy_closed=flags.embassy_closed,
        updated_at=max((a.updated_at for a in advisories if a.updated_at), default=None),
        sections=tuple(sections),
        extra=extra,
    )


@register
class UsStateSource(Source):
    """The US State Department's travel-advisory RSS feed, one item per destination. The level
    is read from the item title ("Mali - Level 4: Do Not Travel", split on the last " - Level ")
    and the Threat-Level category; the country from the Country-Tag category (the department's
    FIPS-like codes, mapped to ISO), else from the destination name. Duplicate items of one
    destination (old and new URL scheme) are reduced to the one with the newest pubDate, then
    the new URL scheme. The record's sections are the reissue note, when the item has one, and
    the advisory text; the flags come from that text. A watched country without an item that
    has a level is a parse failure, never a record without a level."""

    kind = "us-state"
    title = "US State Department travel advisories (RSS, all destinations)"
    publisher = "US State Department"

    def parse(self, body: bytes, *, content_type: str | None, url: str) -> list[Record]:
        feed = load_feed(body, content_type, source_id=self.id, url=url)
        entries = feed.get("entries") or []
        if not entries:
            raise ParseError("the feed has no items", source_id=self.id, url=url)
        watched = set(self.config.countries)
        by_country: dict[str, list[Advisory]] = {}
        for entry in entries:
            advisory = read_item(entry, url=url)
            if advisory and advisory.level is not None and (not watched or advisory.country in watched):
                by_country.setdefault(advisory.country, []).append(advisory)
        if missing := sorted(watched - by_country.keys()):
            raise ParseError(
                f"no item with a level for {', '.join(missing)} in the feed", source_id=self.id, url=url
            )
        if not by_country:
            raise ParseError("no item of the feed has a country and a level", source_id=self.id, url=url)
        return [country_record(destinations(by_country[c])) for c in sorted(by_country)]
