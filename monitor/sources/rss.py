"""Generic ``rss`` kind: any RSS or Atom feed, one section per item.

For publishers without levels, such as an embassy's security-alert feed: the record says what
the items say, newest first, and the flags its prose sets (see :mod:`monitor.flags`).
"""

from __future__ import annotations

import io
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Annotated, Any

import defusedxml.ElementTree as DefusedET
import feedparser
from defusedxml import DefusedXmlException
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from monitor.errors import ParseError
from monitor.flags import Flags, read_flags
from monitor.models import Record, Section
from monitor.normalise import clean_text, element_text, parse_html, sha256
from monitor.sources.base import Source, register

# "<!ENTITY" as the bytes of every encoding feedparser may convert a document from before its
# strict parse: ASCII-compatible ones, UTF-16 and UTF-32 of either order, and EBCDIC.
_ENTITY_DECLARATIONS = tuple(
    "<!ENTITY".encode(encoding)
    for encoding in ("ascii", "utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be", "cp037")
)


def _refuse_entity_declarations(body: bytes, *, source_id: str, url: str) -> None:
    """ParseError for a document that declares entities. Feeds never need them, and expat would
    expand an entity bomb up to its 8 MiB safety margin into feedparser's slow handlers.

    A document expat cannot read is not let through on that ground alone: feedparser converts
    an encoding expat lacks (Shift_JIS, GB2312, UTF-32, an unknown label...) to UTF-8 and parses
    that strictly, so an entity declaration there would be expanded all the same. Such a
    document is refused when its bytes hold "<!ENTITY"; without one it goes on (feedparser's
    loose parser, which reads what is not well-formed, expands nothing)."""
    try:
        DefusedET.fromstring(body, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise ParseError(f"the document declares entities ({exc})", source_id=source_id, url=url) from None
    except (SyntaxError, ValueError, LookupError):  # not well-formed, unknown encoding...
        if any(declaration in body for declaration in _ENTITY_DECLARATIONS):
            raise ParseError(
                "the document declares entities (<!ENTITY in a document expat cannot read)",
                source_id=source_id,
                url=url,
            ) from None


def load_feed(body: bytes, content_type: str | None, *, source_id: str, url: str) -> Any:
    """Parse an RSS/Atom payload with feedparser; ParseError when it is not a feed.

    Entity declarations are refused first. feedparser never fetches anything here: the body is
    handed over as a stream (given bytes that look like a path or URL, it would open them).
    """
    _refuse_entity_declarations(body, source_id=source_id, url=url)
    headers = {"content-type": content_type} if content_type else {}
    try:
        feed = feedparser.parse(io.BytesIO(body), response_headers=headers)
    except Exception as exc:  # feedparser's loose parser can fail in many ways on hostile bytes
        raise ParseError(f"not a readable feed: {exc}", source_id=source_id, url=url) from None
    if not feed.get("version"):
        reason = feed.get("bozo_exception") or "no RSS or Atom structure"
        raise ParseError(f"not an RSS or Atom feed ({reason})", source_id=source_id, url=url)
    return feed


def html_text(value: str) -> str:
    """Visible text of an HTML fragment (or plain text), cleaned."""
    if "<" not in value and "&" not in value:
        return clean_text(value)
    return element_text(parse_html(value))


def entry_time(entry: Any) -> datetime | None:
    """An entry's publication (else update) time as aware UTC, or None when absent or absurd."""
    for key in ("published_parsed", "updated_parsed"):
        # dict.get: feedparser's own lookup maps a missing key to the other one, with a warning
        parsed = dict.get(entry, key)
        if isinstance(parsed, time.struct_time):
            try:
                return datetime(*parsed[:6], tzinfo=UTC)
            except (ValueError, OverflowError):
                continue
    return None


def _keywords_as_pattern(value: object) -> object:
    if isinstance(value, list | tuple):
        words = [str(v).strip() for v in value]
        if not all(words):
            raise ValueError("keywords must be non-empty strings")
        return "|".join(re.escape(word) for word in words)
    return value


class RssOptions(BaseModel):
    """``max_items``: how many items the record keeps, newest first (default 50).
    ``match``: keep only items whose title or summary matches, case-insensitively: a regular
    expression, or a list of keywords (any of them). Default: every item."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_items: int = Field(50, ge=1, le=1000)
    match: Annotated[str | None, BeforeValidator(_keywords_as_pattern)] = None

    @field_validator("match")
    @classmethod
    def _valid_regex(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            try:
                re.compile(pattern)
            # Not only re.error: a repeat count too large ("a{4294967296}") is an OverflowError
            # and groups nested too deep a RecursionError, which pydantic would let through.
            except (re.error, OverflowError, RecursionError) as exc:
                raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from None
        return pattern


@lru_cache(maxsize=64)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


@dataclass(frozen=True)
class FeedItem:
    """One item as the record shows it; ``summary`` is its full content, else its summary."""

    id: str
    title: str
    published: datetime | None
    summary: str

    @property
    def text(self) -> str:
        when = self.published.isoformat() if self.published else ""
        return "\n".join(part for part in (self.title, when, self.summary) if part)


def feed_item(entry: Any) -> FeedItem:
    """The id (guid, else link, else a hash of the text), title, time and text of an entry."""
    title = html_text(str(entry.get("title") or ""))
    # The full text (content:encoded, Atom content) when there is one: WordPress and others cut
    # the description down to an excerpt that may stop before the sentence that matters.
    contents = [str(c.get("value") or "") for c in entry.get("content") or ()]
    summary = html_text(next((c for c in contents if c.strip()), str(entry.get("summary") or "")))
    item_id = str(entry.get("id") or entry.get("link") or "").strip()
    if not item_id:
        item_id = "sha256:" + sha256(f"{title}\n{summary}")[:16]
    return FeedItem(id=item_id, title=title, published=entry_time(entry), summary=summary)


def newest_first(items: list[FeedItem]) -> list[FeedItem]:
    """Items by time, newest first, undated last; ties by id. Feed order plays no part, so a
    publisher reshuffling its items is not a change. Repeated ids keep their newest item."""
    oldest = datetime.min.replace(tzinfo=UTC)
    ordered = sorted(items, key=lambda i: (i.published is None, -(i.published or oldest).timestamp(), i.id))
    seen: set[str] = set()
    unique = []
    for item in ordered:
        if item.id not in seen:
            seen.add(item.id)
            unique.append(item)
    return unique


@register
class RssSource(Source):
    """Any RSS or Atom feed. The record has one section per item, named by the item's guid or
    link, newest first, at most ``max_items``: the title, the time, then the full content when
    the item has one, else its summary, as text. Feeds carry no level, so ``level`` stays
    empty; ``leave_now``, ``staff_departure`` and ``embassy_closed`` come from the items'
    wording. A source covering exactly one country files its record under that country's code,
    otherwise under ``page``. A payload that is not a feed is a parse failure; a feed without
    items gives a record without sections."""

    kind = "rss"
    title = "Any RSS or Atom feed (one section per item)"
    Options = RssOptions
    options: RssOptions

    def parse(self, body: bytes, *, content_type: str | None, url: str) -> list[Record]:
        feed = load_feed(body, content_type, source_id=self.id, url=url)
        items = [feed_item(entry) for entry in feed.get("entries", [])]
        if self.options.match:
            pattern = _compiled(self.options.match)
            items = [i for i in items if pattern.search(i.title) or pattern.search(i.summary)]
        items = newest_first(items)[: self.options.max_items]
        flags = Flags()
        for item in items:
            flags |= read_flags(item.text)
        channel = feed.get("feed", {})
        link = str(channel.get("link") or "")
        countries = self.config.countries
        country = countries[0] if len(countries) == 1 else None
        return [
            Record(
                key=country or "page",
                title=html_text(str(channel.get("title") or "")),
                url=link if link.startswith(("http://", "https://")) else url,
                country=country,
                leave_now=flags.leave_now,
                staff_departure=flags.staff_departure,
                embassy_closed=flags.embassy_closed,
                updated_at=max((i.published for i in items if i.published), default=None),
                sections=tuple(Section(item.id, item.text) for item in items),
            )
        ]
