"""``fr-diplomatie`` kind: France Diplomatie "Conseils aux voyageurs", one country page per source.

Reads the 2026 Drupal + DSFR pages (``…/information-par-pays/{slug}/conseils-aux-voyageurs-securite``
and ``…/dernieres-minutes-et-alertes``) and the older SPIP one-page layout ("Dernière minute" then
"Sécurité"), as HTML or as the page's plain text. The page is read as a list of blocks (one per
heading, paragraph or plain-text line); the vocabulary is data, in ``monitor/data/fr_diplomatie.yaml``,
and the French text it reads is matched by ``monitor.frenchtext``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import PurePosixPath
from typing import Annotated, Any
from urllib.parse import urlsplit

from bs4 import BeautifulSoup
from bs4.element import NavigableString, Tag
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from monitor.decoding import decode_body
from monitor.errors import ParseError
from monitor.frenchtext import (
    Block,
    Vocabulary,
    ZoneHeading,
    band_of_heading,
    block,
    flag_raised,
    fold,
    french_date,
    metadata,
    national_level,
    vocabulary,
    without_metadata,
    zone_headings,
)
from monitor.models import Record, Section, Zone
from monitor.normalise import clean_text, element_text, parse_html
from monitor.sources.base import Source, register

# Marks the start of an HTML heading in extracted text, so that blocks remember their heading level.
_MARK = "\ue000"
_HEADING_LINE = re.compile(f"^{_MARK}([1-6]){_MARK}(.*)$")
_LOOKS_HTML = re.compile(r"<(?:!doctype|html|head|body|div|p|h[1-6]|article|main|section)\b", re.IGNORECASE)
# Site chrome that never carries advice: banner, menus, breadcrumb, buttons, share boxes, dialogs.
_CHROME = (
    "nav, button, form, dialog, .fr-header, .fr-footer, .fr-breadcrumb, .fr-skiplinks, .fr-modal, "
    ".fr-share, header[role=banner], footer[role=contentinfo]"
)
_SPIP_PARTS = (("alerts", "#derniere_nopush, #derniere"), ("security", "#securite"))
_PAGE_LABELS = {
    "fiche": "Conseils aux voyageurs",
    "securite": "Sécurité",
    "dernieres-minutes": "Dernières minutes",
}


def _as_list(value: object) -> object:
    return [value] if isinstance(value, str) else value


class FrDiplomatieOptions(BaseModel):
    """``ignore_titles``: regular expressions (case-insensitive, tried on the title as written and
    with accents removed); a "Dernière minute" item whose title matches is left out entirely, text
    and flags. The default drops the generic notices repeated on every country page ("Urgence
    Attentat – Vigilance renforcée pour les ressortissants français à l'étranger"); ``[]`` keeps
    every item."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ignore_titles: Annotated[tuple[str, ...], BeforeValidator(_as_list)] = Field(
        default_factory=lambda: vocabulary().ignore_titles
    )

    @field_validator("ignore_titles")
    @classmethod
    def _valid_regex(cls, patterns: tuple[str, ...]) -> tuple[str, ...]:
        for pattern in patterns:
            try:
                re.compile(pattern)
            # Not only re.error: a repeat count too large ("a{4294967296}") is an OverflowError
            # and groups nested too deep a RecursionError, which pydantic would let through.
            except (re.error, OverflowError, RecursionError) as exc:
                raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from None
        return patterns


@dataclass
class _Page:
    """A page reduced to blocks. ``chrome`` holds every block of the page (for the date lines),
    ``content`` the blocks of the part that carries the advice."""

    layout: str
    chrome: list[Block]
    content: list[Block]
    name: str | None = None
    flag: str | None = None
    map_file: str | None = None


@dataclass
class _Alert:
    title: str
    date_line: str | None = None
    date: datetime | None = None
    body: list[str] = field(default_factory=list)


@register
class FrDiplomatieSource(Source):
    """France Diplomatie "Conseils aux voyageurs" for one country (``countries: [XX]``, exactly
    one: it is the record key). Point the URL at the security page or at the "Dernières minutes"
    page of the 2026 site, or at an old one-page fiche; HTML or its plain text. ``level`` is the
    whole-country level when the page says the whole territory is in one band, else the level of
    the rest of the country (or of the least severe zone); ``zones`` has one entry per zone
    heading. Each kept "Dernière minute" item is a section; the "Information toujours valable"
    line is dropped and "Dernière mise à jour" becomes ``updated_at``. A security page without a
    level, or a page with neither part, is a ParseError."""

    kind = "fr-diplomatie"
    title = "France Diplomatie – Conseils aux voyageurs (one country)"
    publisher = "France Diplomatie"
    Options = FrDiplomatieOptions
    options: FrDiplomatieOptions

    def parse(self, body: bytes, *, content_type: str | None, url: str) -> list[Record]:
        country = self._country(url)
        page = _read_page(decode_body(body, content_type), content_type, self.id, url)
        if page.flag and page.flag != country:
            raise ParseError(
                f"the page is about {page.flag}, the source is for {country}", source_id=self.id, url=url
            )
        try:
            return [self._record(page, country, url)]
        except _NoStructure as exc:
            raise ParseError(str(exc), source_id=self.id, url=url) from None

    def _country(self, url: str) -> str:
        countries = self.config.countries
        if len(countries) != 1:
            raise ParseError(
                f"an fr-diplomatie source needs exactly one country in `countries`, not {list(countries)}",
                source_id=self.id,
                url=url,
            )
        return countries[0]

    def _record(self, page: _Page, country: str, url: str) -> Record:
        vocab = vocabulary()
        alerts_part, security_part = _parts(page.content, url, vocab)
        alerts = self._kept(_alerts(alerts_part[1], explicit=alerts_part[0])) if alerts_part else []
        sections = [*_alert_sections(alerts)]
        zones: list[ZoneHeading] = []
        zone_lines: list[Block] = []
        if security_part is not None:
            zone_lines, zones, security_sections = _security(security_part, vocab)
            sections += security_sections
        level = national_level(_alert_blocks(alerts), zone_lines, zones, vocab)
        if security_part is not None and level is None:
            raise _NoStructure("the 'Zones de vigilance' block names no level (no zone heading, no band)")
        kind = "dernieres-minutes" if security_part is None else "fiche" if alerts_part else "securite"
        meta = metadata(page.chrome, page.content, vocab)
        texts = [f"{section.name}\n{section.text}" for section in sections]
        published = max((a.date for a in alerts if a.date), default=meta.get("publication"))
        return Record(
            key=country,
            title=f"{page.name or country} – {_PAGE_LABELS[kind]}",
            url=url,
            country=country,
            level=level.level if level else None,
            level_label=level.label if level else None,
            scope=level.scope if level else None,
            zones=_zones(zones),
            leave_now=flag_raised(texts, "leave_now", vocab),
            embassy_closed=flag_raised(texts, "embassy_closed", vocab),
            published_at=published,
            updated_at=meta.get("updated"),
            sections=tuple(sections),
            extra=_extra(page, kind, meta.get("zones_updated")),
        )

    def _kept(self, alerts: list[_Alert]) -> list[_Alert]:
        patterns = [re.compile(p, re.IGNORECASE) for p in self.options.ignore_titles]
        return [a for a in alerts if not any(p.search(a.title) or p.search(fold(a.title)) for p in patterns)]


class _NoStructure(Exception):
    """The page lacks a part the kind needs (turned into a ParseError with the source's id)."""


# --- reading the page ---------------------------------------------------------------------------


def _read_page(text: str, content_type: str | None, source_id: str, url: str) -> _Page:
    text = text.replace(_MARK, "")
    media = (content_type or "").split(";")[0].strip().lower()
    if media == "text/plain" or (media in ("", "application/octet-stream") and not _LOOKS_HTML.search(text)):
        return _text_page(text)
    if media in ("text/html", "application/xhtml+xml", "", "application/octet-stream"):
        return _html_page(text)
    raise ParseError(f"expected an HTML page or its plain text, not {media}", source_id=source_id, url=url)


def _text_page(text: str) -> _Page:
    blocks = [block(line) for line in clean_text(text).splitlines()]
    folded = "\n".join(b.folded for b in blocks)
    layout = "unknown"
    if "information toujours valide" in folded or "date de publication" in folded:
        layout = "spip"
    elif "information toujours valable" in folded or "dernieres minutes et alertes" in folded:
        layout = "drupal-dsfr"
    name = blocks[0].text if blocks and len(blocks[0].text) <= 80 else None
    return _Page(layout, blocks, blocks, name=name)


def _html_page(html: str) -> _Page:
    soup = parse_html(html)
    for element in soup.select(_CHROME):
        element.decompose()
    h1 = soup.find("h1")
    name = element_text(h1).replace("\n", " ") if isinstance(h1, Tag) else None
    spip = soup.select_one("#derniere_nopush, #derniere, #securite, .date_derniere_minute")
    drupal = soup.select_one('[class*="fr-"], article[class*="node--type-"]')
    layout = "spip" if spip else "drupal-dsfr" if drupal else "unknown"
    for heading in soup.find_all(re.compile(r"^h[1-6]$")):
        heading.insert(0, NavigableString(f"{_MARK}{heading.name[1]}{_MARK}"))
    chrome = _html_blocks(soup.body or soup)
    content = _spip_content(soup) if spip else _html_blocks(_drupal_root(soup))
    return _Page(layout, chrome, content, name=name or None, flag=_flag_code(soup), map_file=_map_file(soup))


def _html_blocks(element: Tag) -> list[Block]:
    blocks = []
    for line in element_text(element).splitlines():
        match = _HEADING_LINE.match(line)
        text = (match.group(2) if match else line).replace(_MARK, "").strip()
        if text:
            blocks.append(block(text, int(match.group(1)) if match else None))
    return blocks


def _drupal_root(soup: BeautifulSoup) -> Tag:
    """The fiche article when there is one, else the main content, else the body."""
    for selector in ("article.node--type-fiche-pays-article-cav", "#contenu", "main", "[role=main]"):
        root = soup.select_one(selector)
        if root is not None:
            return root
    return soup.body or soup


def _spip_content(soup: BeautifulSoup) -> list[Block]:
    """The old layout's two watched tabs, each opened by its marker line."""
    vocab = vocabulary()
    blocks: list[Block] = []
    for part, selector in _SPIP_PARTS:
        element = soup.select_one(selector)
        if element is None:
            continue
        inner = _html_blocks(element)
        if not inner or not vocab.markers[part].fullmatch(inner[0].folded):
            inner.insert(0, block("Dernière minute" if part == "alerts" else "Sécurité"))
        blocks += inner
    return blocks


def _flag_code(soup: BeautifulSoup) -> str | None:
    """The ISO code of the flag image (the file name is the code on the 2026 site)."""
    image = soup.select_one(".diplomatie--pays--drapeau-taxo img")
    source = image.get("src") if image else None
    stem = PurePosixPath(urlsplit(source).path).stem.upper() if isinstance(source, str) else ""
    return stem if len(stem) == 2 and stem.isascii() and stem.isalpha() else None


def _map_file(soup: BeautifulSoup) -> str | None:
    """The file name of the zone map (it starts with the map's date: a cheap zone-change hint)."""
    for image in soup.find_all("img"):
        for attribute in ("src", "data-src"):
            source = image.get(attribute)
            if isinstance(source, str) and "/cav/" in source and "/cav/_carte" not in source:
                return PurePosixPath(urlsplit(source).path).name or None
    spip_map = soup.select_one(".mediabox img")
    source = spip_map.get("src") if spip_map else None
    return PurePosixPath(urlsplit(source).path).name or None if isinstance(source, str) else None


# --- parts of the page ----------------------------------------------------------------------------


def _find(blocks: list[Block], marker: re.Pattern[str], start: int = 0) -> int | None:
    return next((i for i in range(start, len(blocks)) if marker.fullmatch(blocks[i].folded)), None)


def _parts(
    blocks: list[Block], url: str, vocab: Vocabulary
) -> tuple[tuple[bool, list[Block]] | None, list[Block] | None]:
    """The alerts part (with whether a marker opened it) and the security part, or None each.

    "Sécurité" (or, without it, "Zones de vigilance") opens the security part, which runs to a
    following tab of the old page or to the end, the alerts left aside."""
    blocks = without_metadata(blocks, vocab)
    path = urlsplit(url).path.lower()
    alerts = _alerts_range(blocks, vocab)
    security_at = _find(blocks, vocab.markers["security"])
    start = security_at if security_at is not None else _find(blocks, vocab.markers["zones"])
    security = None
    if start is not None:
        end = min((i for i, b in enumerate(blocks) if i > start and _is_stop(b, vocab)), default=len(blocks))
        kept = range(start + (security_at is not None), end)
        security = [
            blocks[i] for i in kept if not (alerts is not None and alerts.start - 1 <= i < alerts.stop)
        ]
        if _find(security, vocab.markers["zones"]) is None:
            raise _NoStructure("the security part has no 'Zones de vigilance' block")
    elif "conseils-aux-voyageurs-securite" in path:
        raise _NoStructure("no 'Zones de vigilance' block on the security page: the layout changed")
    if alerts is not None:
        return (True, blocks[alerts.start : alerts.stop]), security
    if security is None and "dernieres-minutes" in path:
        return (False, blocks), None
    if security is None:
        raise _NoStructure(
            "neither 'Dernière(s) minute(s)' nor 'Sécurité' / 'Zones de vigilance' found: "
            "not a Conseils aux voyageurs page, or its layout changed"
        )
    return None, security


def _alerts_range(blocks: list[Block], vocab: Vocabulary) -> range | None:
    """The blocks after "Dernière(s) minute(s)" up to "Sécurité", "Zones de vigilance", a
    following tab, a heading of a higher rank than the marker's, or the end."""
    at = _find(blocks, vocab.markers["alerts"])
    if at is None:
        return None
    rank = blocks[at].heading or 0
    ends = (i for i in range(at + 1, len(blocks)) if _ends_alerts(blocks[i], rank, vocab))
    return range(at + 1, next(ends, len(blocks)))


def _ends_alerts(b: Block, rank: int, vocab: Vocabulary) -> bool:
    # Alert titles may share their marker's rank (the markup is unconfirmed): only a higher rank ends them.
    if b.heading is not None and b.heading < rank:
        return True
    markers = vocab.markers
    return any(markers[name].fullmatch(b.folded) for name in ("stop", "security", "zones"))


def _is_stop(b: Block, vocab: Vocabulary) -> bool:
    return vocab.markers["stop"].fullmatch(b.folded) is not None


# --- alerts -----------------------------------------------------------------------------------------


def _alerts(blocks: list[Block], *, explicit: bool) -> list[_Alert]:
    """Split the alerts part into items: a title is a heading (at the level of the first one) or
    a short line followed by a "Publié le" line. Text before the first title is its own item
    when a marker opened the part, page furniture otherwise."""
    vocab = vocabulary()
    blocks = [b for b in blocks if b.heading != 1]
    title_level = next((b.heading for b in blocks if b.heading), None)
    alerts: list[_Alert] = []
    preamble = _Alert("Dernières minutes")
    for index, b in enumerate(blocks):
        published = vocab.dates["published"].match(b.folded)
        after = blocks[index + 1] if index + 1 < len(blocks) else None
        if published and alerts and alerts[-1].date_line is None:
            alerts[-1].date_line, alerts[-1].date = b.text, french_date(b.text)
        elif (b.heading is not None and title_level is not None and b.heading <= title_level) or (
            not published and after is not None and _titles_alert(b, after, vocab)
        ):
            alerts.append(_Alert(b.text))
        else:
            (alerts[-1] if alerts else preamble).body.append(b.text)
    return ([preamble] if explicit and preamble.body else []) + alerts


def _titles_alert(b: Block, after: Block, vocab: Vocabulary) -> bool:
    looks_like_title = len(b.text) <= 200 and not b.text.endswith(".")
    return looks_like_title and vocab.dates["published"].match(after.folded) is not None


def _alert_sections(alerts: list[_Alert]) -> list[Section]:
    sections, seen = [], set()
    for alert in alerts:
        name, number = alert.title, 1
        while name in seen:
            number += 1
            name = f"{alert.title} ({number})"
        seen.add(name)
        lines = [alert.date_line, *alert.body] if alert.date_line else alert.body
        sections.append(Section(name, "\n".join(lines)))
    return sections


def _alert_blocks(alerts: list[_Alert]) -> list[Block]:
    return [block(line) for alert in alerts for line in (alert.title, *alert.body)]


# --- security and zones -----------------------------------------------------------------------------


def _security(blocks: list[Block], vocab: Vocabulary) -> tuple[list[Block], list[ZoneHeading], list[Section]]:
    """The zones block's lines, its zone headings, and the security part as sections: what
    precedes the zones block, the zones block, then one section per following heading."""
    zones_at = _find(blocks, vocab.markers["zones"])
    assert zones_at is not None
    level = blocks[zones_at].heading
    starts = [zones_at] + [
        i for i in range(zones_at + 1, len(blocks)) if _opens_section(blocks[i], level, vocab)
    ]
    sections = [Section("Sécurité", "\n".join(b.text for b in blocks[:zones_at]))] if zones_at else []
    for start, end in zip(starts, [*starts[1:], len(blocks)], strict=True):
        sections.append(Section(blocks[start].text, "\n".join(b.text for b in blocks[start + 1 : end])))
    zone_lines = blocks[zones_at + 1 : starts[1] if len(starts) > 1 else len(blocks)]
    return zone_lines, zone_headings(zone_lines, vocab), sections


def _opens_section(b: Block, zones_level: int | None, vocab: Vocabulary) -> bool:
    """HTML headings split by level (a sub-heading "Terrorisme" stays inside its section);
    plain text, which has no levels, splits at the known section titles."""
    if b.heading is not None and zones_level is not None:
        return b.heading <= zones_level and band_of_heading(b, vocab) is None
    return vocab.markers["section"].fullmatch(b.folded) is not None


def _zones(headings: list[ZoneHeading]) -> tuple[Zone, ...]:
    zones, counts = [], dict[str, int]()
    for heading in headings:
        counts[heading.band.zone] = counts.get(heading.band.zone, 0) + 1
        number = counts[heading.band.zone]
        name = heading.band.zone if number == 1 else f"{heading.band.zone} ({number})"
        zones.append(Zone(name, heading.band.level, heading.label))
    return tuple(zones)


# --- extras -----------------------------------------------------------------------------------------


def _extra(page: _Page, kind: str, zones_updated: datetime | None) -> dict[str, Any]:
    extra: dict[str, Any] = {"layout": page.layout, "page": kind}
    if zones_updated:
        extra["zones_updated"] = zones_updated.date().isoformat()
    if page.map_file:
        extra["map"] = page.map_file
    return extra
