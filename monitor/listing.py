"""The listing pages of the carrier kinds (``msc``, ``cma-cgm``): their shared options, the
reader that turns a page's links into items, and the records filed under the watched countries.
Everything here is pure.

* :class:`CarrierOptions`: ``max_items`` and per-country ``synonyms``.
* :func:`parse_listing` / :func:`listing_items` / :func:`read_item` turn the links of a listing
  page into items (title, date, teaser) without relying on class names.
* :func:`country_records` files the notices under the watched countries.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urljoin

import pycountry
from bs4 import BeautifulSoup
from bs4.element import Tag
from pydantic import BaseModel, ConfigDict, Field, field_validator

from monitor.decoding import decode_body
from monitor.errors import ParseError
from monitor.models import Notice, Record, Section
from monitor.normalise import element_text, parse_html
from monitor.notices import country_name, find_date, fold, fold_phrase, is_date_line, parse_iso

# --- options ----------------------------------------------------------------------------------


class CarrierOptions(BaseModel):
    """``max_items``: how many items of the listing are read, from the top (default 100).
    ``synonyms``: more names per country code, added to the built-in table, e.g.
    ``{ML: [Sénou, Kati]}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_items: int = Field(100, ge=1, le=1000)
    synonyms: dict[str, tuple[str, ...]] = Field(default_factory=dict)

    @field_validator("synonyms", mode="before")
    @classmethod
    def _valid_synonyms(cls, value: object) -> object:
        if not isinstance(value, Mapping):
            return value
        checked: dict[str, list[str]] = {}
        for code, phrases in value.items():
            if not isinstance(code, str) or pycountry.countries.get(alpha_2=code.upper()) is None:
                raise ValueError(f"{code!r} is not an ISO 3166-1 alpha-2 country code (quote NO for Norway)")
            listed = [phrases] if isinstance(phrases, str) else phrases
            if not isinstance(listed, list | tuple) or not all(isinstance(p, str) for p in listed):
                raise ValueError(f"synonyms of {code}: expected a list of names")
            for phrase in listed:
                fold_phrase(phrase)
            checked[code.upper()] = list(listed)
        return checked


# --- listing pages ----------------------------------------------------------------------------

ItemKey = Callable[[str], tuple[str, str] | None]  # absolute URL -> (stable key, clean URL)

_ITEM_TAGS = frozenset(("li", "article", "tr"))
_STOP_TAGS = frozenset(("body", "html", "main", "ul", "ol", "table", "tbody", "[document]"))
_CLIMB = 5
_HEADING = re.compile(r"^h[1-6]$")
_GENERIC_LINKS = frozenset(
    fold(text)
    for text in (
        "read more", "more", "learn more", "see more", "view more", "details", "more details",
        "view all news", "see all", "en savoir plus", "lire la suite", "voir plus", "plus", "suite",
    )
)  # fmt: skip


@dataclass
class ListingItem:
    """The links of one item of a listing, in document order."""

    key: str
    url: str
    anchors: list[Tag]


@dataclass(frozen=True)
class Listing:
    """The items of a listing page, and which item links each element holds."""

    items: list[ListingItem]
    below: dict[int, str | None]  # id(element) -> the one item linked inside it, None if several


@dataclass(frozen=True)
class ItemParts:
    """What the listing shows of one item; the title is None when nothing names it."""

    title: str | None
    published_at: datetime | None
    text: str


def parse_listing(
    body: bytes,
    *,
    content_type: str | None,
    url: str,
    key_of: ItemKey,
    limit: int,
    source_id: str,
    missing: str,
) -> Listing:
    """The listing of an HTML payload (see :func:`listing_items`).

    Raises ParseError with the message ``missing`` when no link is recognised as an item."""
    soup = parse_html(decode_body(body, content_type))
    listing = listing_items(soup, url, key_of, limit)
    if not listing.items:
        raise ParseError(missing, source_id=source_id, url=url)
    return listing


def listing_items(soup: BeautifulSoup, base_url: str, key_of: ItemKey, limit: int) -> Listing:
    """The items whose links ``key_of`` recognises, de-duplicated by key, the first ``limit``."""
    items: dict[str, ListingItem] = {}
    below: dict[int, str | None] = {}
    for anchor in soup.find_all("a", href=True):
        href = anchor.get("href")
        if not isinstance(href, str):
            continue
        try:
            found = key_of(urljoin(base_url, href.strip()))
        except ValueError:  # a malformed URL (bad IPv6 host, port) is not an item link
            continue
        if found is None:
            continue
        key, url = found
        items.setdefault(key, ListingItem(key, url, [])).anchors.append(anchor)
        _mark_ancestors(anchor, key, below)
    return Listing(list(items.values())[:limit], below)


def _mark_ancestors(anchor: Tag, key: str, below: dict[int, str | None]) -> None:
    """Record ``key`` as linked inside every ancestor of ``anchor`` (None once two keys are).

    Every ancestor of a marked element is marked, and of a None one is None: stop there."""
    node: Tag | None = anchor
    while node is not None:
        seen = below.get(id(node), key)
        if id(node) in below and (seen is None or seen == key):
            return
        below[id(node)] = key if seen == key else None
        node = node.parent


def read_item(
    item: ListingItem, listing: Listing, *, numeric: str, month_hint: int | None = None
) -> ItemParts:
    """Title, date and teaser of an item, from the block around its first link.

    The block is the largest ancestor (up to a list item or article) holding no other item's
    link. The date is a ``time[datetime]`` in it, else its first short line holding a date;
    that line, the title and "Read more" links are left out of the teaser."""
    block = _block(item.anchors[0], item.key, listing.below)
    title = _title(item, block)
    lines = element_text(block).splitlines()
    date_line = next((line for line in lines if line != title and is_date_line(line)), None)
    published = _time_attribute(block)
    if published is None and date_line:
        published = find_date(date_line, numeric=numeric, month_hint=month_hint)
    kept = [line for line in lines if line not in (title, date_line) and fold(line) not in _GENERIC_LINKS]
    return ItemParts(title, published, "\n".join(kept))


def _block(anchor: Tag, key: str, below: Mapping[int, str | None]) -> Tag:
    node = anchor
    for _ in range(_CLIMB):
        parent = node.parent
        if node.name in _ITEM_TAGS or parent is None or parent.name in _STOP_TAGS:
            break
        if below.get(id(parent)) != key:  # another item's link is inside
            break
        node = parent
    return node


def _title(item: ListingItem, block: Tag) -> str | None:
    mine = {id(anchor) for anchor in item.anchors}
    headings = block.find_all(_HEADING)
    for heading in headings:  # a heading inside the item's link, or holding it
        inside = any(id(parent) in mine for parent in heading.parents)
        holds = any(id(a) in mine for a in heading.find_all("a"))
        if (inside or holds) and (line := _first_line(heading)):
            return line
    for anchor in item.anchors:
        line = _first_line(anchor)
        if line and fold(line) not in _GENERIC_LINKS:
            return line
    return next((line for heading in headings if (line := _first_line(heading))), None)


def _first_line(element: Tag) -> str:
    return next(iter(element_text(element).splitlines()), "")


def _time_attribute(block: Tag) -> datetime | None:
    for time in block.find_all("time"):
        value = time.get("datetime")
        if isinstance(value, str) and (parsed := parse_iso(value)):
            return parsed
    return None


# --- records ----------------------------------------------------------------------------------


def country_records(
    notices: Sequence[Notice], countries: Sequence[str], *, heading: str, url: str
) -> list[Record]:
    """One record per watched country with the notices naming it (possibly none).

    Without watched countries: one per country named by some notice; when no notice names
    one, a single ``page`` record with every notice."""
    wanted = list(countries) or sorted({code for notice in notices for code in notice.countries})
    if not wanted:
        return [_record("page", None, heading, url, notices)]
    records = []
    for code in wanted:
        relevant = [notice for notice in notices if code in notice.countries]
        records.append(_record(code, code, f"{heading} — {country_name(code)}", url, relevant))
    return records


def _record(key: str, country: str | None, title: str, url: str, notices: Iterable[Notice]) -> Record:
    ordered = tuple(sorted(notices, key=_order))
    sections = tuple(Section(notice.id, _section_text(notice)) for notice in ordered)
    return Record(key=key, title=title, url=url, country=country, sections=sections, notices=ordered)


def _order(notice: Notice) -> tuple[datetime, str]:
    return notice.published_at or datetime.min.replace(tzinfo=UTC), notice.id


def _section_text(notice: Notice) -> str:
    when = notice.published_at.date().isoformat() if notice.published_at else "undated"
    return "\n".join(line for line in (notice.title, f"{when} · {notice.status}", notice.text) if line)
