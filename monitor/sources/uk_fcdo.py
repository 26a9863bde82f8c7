"""``uk-fcdo`` kind: UK FCDO travel advice from the GOV.UK Content API.

Two ways to configure it: the URL of one destination's item
(``https://www.gov.uk/api/content/foreign-travel-advice/<slug>``), or the URL of the index
(``https://www.gov.uk/api/content/foreign-travel-advice``) with ``countries``: the index is
fetched conditionally, then the item of every watched country, and ``parse`` reads the bundle.
The slug ↔ ISO code table and the level vocabulary are data files in ``monitor/data``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

import yaml
from bs4.element import Tag

from monitor.decoding import decode_body
from monitor.errors import FetchError, ParseError
from monitor.models import Fetched, Record, Scope, Section, StaffDeparture, Validators, Zone
from monitor.normalise import clean_text, element_text, parse_html
from monitor.sources.base import Fetches, Source, json_problem, load_json, register

INDEX_PATH = "/api/content/foreign-travel-advice"
WEB_ROOT = "https://www.gov.uk"
BUNDLE_CONTENT_TYPE = "application/vnd.monitor.uk-fcdo-bundle+json"
_WATCH_MARK = " uk-fcdo-watch="
# Where the FCDO states its advice: the first part of today's items, and of pre-2023 items.
HEADLINE_PARTS = ("warnings-and-insurance", "summary")

_LEAVES = ("p", "li", "h1", "h2", "h3", "h4", "h5", "h6", "td", "th", "dd", "dt", "div")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9“\"'(])")
_AGAINST = re.compile(r"\badvis(?:e|es|ed|ing)\s+against\s+", re.I)
_TRAVEL = re.compile(r"\b(all\s+but\s+essential|all)\s+travel\s+to\b", re.I)
_NEGATION = re.compile(r"\b(?:no\s+longer|not|never)\b|n[’']t\b", re.I)
_TARGET_TAIL = re.compile(r"(?:[\s,;:.]|\b(?:and|or)\b(?:\s+against\b)?)+$", re.I)
_WHOLE_PREFIX = r"(?:the\s+whole\s+of\s+|all\s+(?:parts\s+|areas\s+)?of\s+)?(?:the\s+)?"
# Why the FCDO advises against travel is not part of where: "to X due to ..." is about X.
_REASON = re.compile(
    r"(?:\s*,)?(?<!\bthe)\s+(?:due\s+to|because|following|owing\s+to|given|as\s+a\s+result|in\s+light\s+of"
    r"|in\s+view\s+of|at\s+(?:this\s+time|present)|until\s+further\s+notice|for\s+any\s+reason)\b.*$",
    re.I,
)
_NATIONAL_TARGETS = (
    rf"^{_WHOLE_PREFIX}(?:{{names}}|country)(?:\s*\([^)]*\))?$",
    r"^(?:the\s+)?(?:rest|remainder|remaining\s+(?:areas|parts))\s+of\s+(?:the\s+)?(?:{names}|country)\b",
)
_PARTS_TARGET = r"^parts\s+of\s+(?:the\s+)?(?:{names})$"
_ADVICE_LINK = re.compile(r"/foreign-travel-advice/([a-z0-9-]+)")


@dataclass(frozen=True)
class _Tables:
    codes: Mapping[str, tuple[str, ...]]  # slug (current or former) -> ISO codes
    slugs: Mapping[str, str]  # ISO code -> current slug
    alert: Mapping[str, tuple[int, Scope, str]]  # alert_status value -> level, scope, wording
    text: Mapping[str, int]  # "all" / "all but essential" -> level
    flags: Mapping[str, tuple[tuple[str, ...], re.Pattern[str]]]  # flag -> patterns said, lifted


@cache
def _tables() -> _Tables:
    data = resources.files("monitor") / "data"
    slugs = yaml.safe_load((data / "uk_fcdo_slugs.yaml").read_text(encoding="utf-8"))
    vocabulary = yaml.safe_load((data / "uk_fcdo_vocabulary.yaml").read_text(encoding="utf-8"))
    current = {slug: tuple(codes) for slug, codes in slugs["destinations"].items()}
    former = {slug: tuple(codes) for slug, codes in slugs["former_slugs"].items()}
    return _Tables(
        codes={**former, **current},
        slugs={code: slug for slug, codes in current.items() for code in codes},
        alert={
            k: (v["level"], Scope(v["scope"]), v["wording"]) for k, v in vocabulary["alert_status"].items()
        },
        text=dict(vocabulary["text"]),
        flags={
            name: (tuple(flag["said"]), re.compile(flag["lifted"], re.I))
            for name, flag in vocabulary["flags"].items()
        },
    )


def slug_codes(slug: str) -> tuple[str, ...]:
    """The ISO codes a GOV.UK travel-advice slug covers; () for an unknown or code-less slug."""
    return _tables().codes.get(slug, ())


def country_slug(code: str) -> str | None:
    """The current GOV.UK travel-advice slug of an ISO code, or None when the FCDO has none."""
    return _tables().slugs.get(code.upper())


def is_index_url(url: str) -> bool:
    return urlsplit(url).path.rstrip("/") == INDEX_PATH


def item_url(index_url: str, slug: str) -> str:
    """The Content API URL of a destination, on the same origin as the index URL."""
    parts = urlsplit(index_url)
    return f"{parts.scheme}://{parts.netloc}{INDEX_PATH}/{slug}"


@dataclass(frozen=True)
class IndexEntry:
    """One destination as the index lists it (the index carries no level)."""

    slug: str
    codes: tuple[str, ...]
    title: str
    public_updated_at: datetime | None
    change_description: str


def read_index(index: object) -> list[IndexEntry]:
    """The destinations of a ``travel_advice_index`` document, in its order; children without a
    country slug are skipped. Raises ParseError when the document is not such an index."""
    if not isinstance(index, dict) or index.get("document_type") != "travel_advice_index":
        raise ParseError("not a GOV.UK travel_advice_index document")
    children = _get(index, "links", "children")
    if not isinstance(children, list):
        raise ParseError("the travel-advice index has no links.children list")
    entries = []
    for child in children:
        slug = _get(child, "details", "country", "slug")
        if not isinstance(slug, str) or not slug:
            continue
        entries.append(
            IndexEntry(
                slug=slug,
                codes=slug_codes(slug),
                title=_text(_get(child, "title")),
                public_updated_at=_datetime(_get(child, "public_updated_at"), "public_updated_at"),
                change_description=_text(_get(child, "details", "change_description")),
            )
        )
    return entries


@dataclass(frozen=True)
class _Advice:
    """One "advises against ... travel to <target>" found in the text."""

    level: int
    target: str
    clause: str  # the sentence, verbatim, up to the end of the target
    words: str  # "advises against all travel"
    listed: bool = False  # "... travel to:" introduces a list of places


@register
class UkFcdoSource(Source):
    """UK FCDO travel advice (GOV.UK Content API, JSON). ``level`` comes from
    ``details.alert_status`` cross-checked with the advice sentences of the
    ``warnings-and-insurance`` part (``summary`` in older items): the higher of the two wins.
    The national level is what covers the whole country ("all travel to X" 4, "all but
    essential travel to X" 3, "the rest of the country", else 1); parts of the country with a
    higher level are ``zones`` and make the scope ``parts``. ``updated_at`` is the last major
    update (``public_updated_at``); the change description is the section ``latest update``,
    then one section per part. Fields that move on every republish are ignored. A withdrawn
    item still yields its record, with a ``withdrawn`` section and ``extra.withdrawn_at``.
    With the index URL, ``countries`` is required and one item per watched country is fetched."""

    kind = "uk-fcdo"
    title = "UK FCDO travel advice (GOV.UK Content API)"
    publisher = "UK FCDO"

    async def fetch(self, fetcher: Fetches, validators: Validators | None) -> Fetched:
        """An item URL: one conditional GET. The index URL: a conditional GET of the index (a 304
        is returned as is), then a GET of each watched country's item, returned as one JSON
        bundle ``{"index": ..., "items": {slug: item}}`` with the index's validators. Any failed
        item fetch fails the check. Raises FetchError, also when no country is configured.

        The validators returned carry the watched slugs after the server's own, so that a
        change of ``countries`` makes the next index request unconditional: a 304 must not
        hide a newly watched country."""
        url = self.config.url
        if not is_index_url(url):
            return await super().fetch(fetcher, validators)
        slugs = self._watched_slugs()
        mark = _WATCH_MARK + ",".join(slugs)
        sent = _unmarked(validators, mark)
        index = await fetcher.fetch(url, validators=sent, source_id=self.id)
        index = replace(index, validators=_marked(index.validators, mark))
        index_data = _json_or_none(index)
        if index.not_modified or not isinstance(index_data, dict):
            return index  # a 304, or a payload parse will reject with its reason
        items: dict[str, Any] = {}
        elapsed = index.elapsed
        for slug in slugs:
            item = await fetcher.fetch(item_url(url, slug), source_id=self.id)
            elapsed += item.elapsed
            items[slug] = _json_or_none(item)
        body = json.dumps({"index": index_data, "items": items}, ensure_ascii=False, sort_keys=True)
        return replace(index, url=url, body=body.encode(), content_type=BUNDLE_CONTENT_TYPE, elapsed=elapsed)

    def _watched_slugs(self) -> list[str]:
        if not self.config.countries:
            raise FetchError(
                "the travel-advice index lists no levels: set `countries` to the countries to "
                f"watch, or configure one item URL {INDEX_PATH}/<slug>",
                source_id=self.id,
                url=self.config.url,
            )
        slugs = {code: country_slug(code) for code in self.config.countries}
        for code, slug in slugs.items():
            if slug is None:
                raise FetchError(f"the FCDO publishes no travel advice for {code}", source_id=self.id)
        return list(dict.fromkeys(slug for slug in slugs.values() if slug))

    def parse(self, body: bytes, *, content_type: str | None, url: str) -> list[Record]:
        """An item, or a bundle made by ``fetch``, to one record per ISO code covered (only the
        configured countries when ``countries`` is set). Raises ParseError."""
        try:
            return self._select(_records(body, content_type))
        except ParseError as exc:
            raise ParseError(exc.message, source_id=self.id, url=url) from None

    def _select(self, records: list[Record]) -> list[Record]:
        wanted = self.config.countries
        kept = [record for record in records if record.key in wanted] if wanted else records
        if not kept:
            about = ", ".join(sorted({record.key for record in records}))
            raise ParseError(
                f"the payload is about {about}, none of the configured countries {', '.join(wanted)}"
            )
        return kept


def _records(body: bytes, content_type: str | None) -> list[Record]:
    try:
        data = load_json(decode_body(body, content_type))
    except (ValueError, RecursionError) as exc:
        raise ParseError(
            f"not JSON ({json_problem(exc)}); the kind reads the Content API: {WEB_ROOT}{INDEX_PATH}/<slug>"
        ) from None
    if not (isinstance(data, dict) and "items" in data and "index" in data):
        if isinstance(data, dict) and data.get("document_type") == "travel_advice_index":
            raise ParseError("the travel-advice index carries no levels: it is read through the kind's fetch")
        return _ItemReader(data).records()
    read_index(data["index"])
    items = data["items"]
    if not isinstance(items, dict) or not items:
        raise ParseError("the bundle holds no travel-advice item")
    return [record for item in items.values() for record in _ItemReader(item).records()]


class _ItemReader:
    """Reads one ``travel_advice`` item; every structural problem is a ParseError."""

    def __init__(self, item: object) -> None:
        if not isinstance(item, dict) or item.get("document_type", "travel_advice") != "travel_advice":
            raise ParseError("not a GOV.UK travel_advice item")
        details = item.get("details")
        if not isinstance(details, dict):
            raise ParseError("the travel-advice item has no details")
        slug = _get(details, "country", "slug")
        if not isinstance(slug, str) or not slug:
            raise ParseError("the travel-advice item has no details.country.slug")
        self.item, self.details, self.slug = item, details, slug
        self.codes = slug_codes(slug)
        if not self.codes:
            raise ParseError(f"destination {slug!r} has no ISO 3166-1 code in uk_fcdo_slugs.yaml")
        self.name = _text(_get(details, "country", "name")) or slug
        titled = _text(item.get("title")).removesuffix(" travel advice")
        names = sorted({n for n in (self.name, titled) if n}, key=len, reverse=True)
        self.names = "|".join(re.escape(n) for n in names)
        self.parts = _parts(details.get("parts"))
        # Where the advice is stated: the headline part(s), else the first part.
        headline = [part for part in self.parts if part[0] in HEADLINE_PARTS] or self.parts[:1]
        self.headline = [tag for _, body in headline for tag in _leaf_blocks(body)]

    def records(self) -> list[Record]:
        level, label, zones = self._assess()
        headline = [s for tag in self.headline for s in _sentences(tag)]
        withdrawn = self.item.get("withdrawn_notice")
        withdrawn = withdrawn if isinstance(withdrawn, dict) and withdrawn else None
        extra: dict[str, Any] = {"slug": self.slug, "alert_status": sorted(self._alert_status())}
        if withdrawn is not None:
            withdrawn_at = _datetime(withdrawn.get("withdrawn_at"), "withdrawn_at")
            extra["withdrawn_at"] = withdrawn_at.isoformat() if withdrawn_at else None
        record = Record(
            key=self.codes[0],
            title=_text(self.item.get("title")) or f"{self.name} travel advice",
            url=self._web_url(),
            country=self.codes[0],
            level=level,
            level_label=label,
            scope=Scope.PARTS if zones else Scope.WHOLE_COUNTRY,
            zones=tuple(zones),
            leave_now=self._said(headline, "leave_now"),
            staff_departure=(
                StaffDeparture.ORDERED if self._said(headline, "staff_withdrawn") else StaffDeparture.NONE
            ),
            embassy_closed=self._said(headline, "embassy_closed"),
            published_at=_datetime(self.item.get("first_published_at"), "first_published_at"),
            updated_at=_datetime(self.item.get("public_updated_at"), "public_updated_at"),
            sections=self._sections(withdrawn),
            extra=extra,
        )
        return [replace(record, key=code, country=code) for code in self.codes]

    def _said(self, sentences: Sequence[str], flag: str) -> bool:
        """Whether a sentence states the flag, not negated before it nor lifted anywhere in it."""
        said, lifted = _tables().flags[flag]
        patterns = [re.compile(pattern.replace("{names}", self.names), re.I) for pattern in said]
        for sentence in sentences:
            if lifted.search(sentence):
                continue
            for pattern in patterns:
                match = pattern.search(sentence)
                if match and not _NEGATION.search(sentence[: match.start()]):
                    return True
        return False

    def _web_url(self) -> str:
        base_path = self.item.get("base_path")
        if isinstance(base_path, str) and base_path.startswith("/foreign-travel-advice/"):
            return WEB_ROOT + base_path
        return f"{WEB_ROOT}/foreign-travel-advice/{self.slug}"

    def _alert_status(self) -> list[str]:
        status = self.details.get("alert_status")
        if not isinstance(status, list) or not all(isinstance(value, str) for value in status):
            raise ParseError("details.alert_status is missing or not a list of strings")
        unknown = [value for value in status if value not in _tables().alert]
        if unknown:
            raise ParseError(f"unknown alert_status {unknown}; known: {sorted(_tables().alert)}")
        return status

    def _assess(self) -> tuple[int, str | None, list[Zone]]:
        """The national level, its label and the zones above it."""
        national: list[tuple[int, bool, str | None]] = []  # level, from the text, label
        parts: dict[int, str] = {}
        for value in self._alert_status():
            alert_level, scope, wording = _tables().alert[value]
            if scope is Scope.WHOLE_COUNTRY:
                national.append((alert_level, False, wording.format(country=self.name)))
            else:
                parts.setdefault(alert_level, wording.format(country=self.name))
        zones: dict[str, Zone] = {}
        for advice in self._advice():
            kind = self._target_kind(advice.target)
            if kind == "national":
                national.append((advice.level, True, advice.clause))
            elif kind == "parts":
                parts[advice.level] = advice.clause
            elif advice.target not in zones or zones[advice.target].level < advice.level:
                zones[advice.target] = Zone(advice.target, advice.level, advice.words)
        # The highest level wins; at equal levels the text's own words are the label.
        level, _, label = max(national, key=lambda entry: entry[:2], default=(1, False, None))
        above = [zone for zone in zones.values() if zone.level > level]
        for part_level, part_label in sorted(parts.items(), reverse=True):
            if part_level > level and all(zone.level != part_level for zone in above):
                above.append(Zone(f"parts of {self.name}", part_level, part_label))
        return level, label, above

    def _target_kind(self, target: str) -> str:
        """``national`` (the whole country, or the rest of it), ``parts`` ("parts of X") or ``zone``."""
        if any(re.match(p.replace("{names}", self.names), target, re.I) for p in _NATIONAL_TARGETS):
            return "national"
        if re.match(_PARTS_TARGET.replace("{names}", self.names), target, re.I):
            return "parts"
        return "zone"

    def _advice(self) -> Iterator[_Advice]:
        for tag in self.headline:
            foreign = _foreign_links(tag, self.slug)
            for sentence in _sentences(tag):
                for advice in _sentence_advice(sentence):
                    if any(name.lower() in advice.target.lower() for name in foreign):
                        continue  # advice about a neighbouring destination
                    listed = list(_listed(tag, advice, self.slug)) if advice.listed else []
                    yield from listed or ([advice] if advice.target else [])

    def _sections(self, withdrawn: dict[str, Any] | None) -> tuple[Section, ...]:
        sections = []
        if withdrawn is not None:
            explanation = _text(withdrawn.get("explanation"))
            sections.append(Section("withdrawn", element_text(parse_html(explanation)) or "withdrawn"))
        latest = clean_text(_text(self.details.get("change_description")))
        if latest:
            sections.append(Section("latest update", latest))
        for slug, body in self.parts:
            text = element_text(parse_html(body))
            if text:
                sections.append(Section(slug, text))
        return tuple(sections)


def _parts(parts: object) -> list[tuple[str, str]]:
    """``(slug, body HTML)`` of each part; the publishing side's ``[{content_type, content}]``
    bodies are read too."""
    if parts is None:
        return []
    if not isinstance(parts, list):
        raise ParseError("details.parts is not a list")
    result = []
    for part in parts:
        slug = _get(part, "slug")
        body = _get(part, "body")
        if isinstance(body, list):
            html = [_get(b, "content") for b in body if _get(b, "content_type") == "text/html"]
            body = html[0] if html else None
        if not isinstance(slug, str) or not slug or not isinstance(body, str):
            raise ParseError("a part has no slug or no HTML body")
        result.append((slug, body))
    return result


def _leaf_blocks(html: str) -> list[Tag]:
    """The innermost block elements, in document order: each sentence is read once."""
    soup = parse_html(html)
    blocks = [tag for tag in soup.find_all(_LEAVES) if isinstance(tag, Tag)]
    # The elements holding a block, marked upwards from each block up to one already marked:
    # every element is visited once. (``tag.find(_LEAVES)`` per block walks the block's whole
    # subtree each time: quadratic, minutes for a part nested 100,000 deep.)
    holders: set[int] = set()
    for tag in blocks:
        parent = tag.parent
        while parent is not None and id(parent) not in holders:
            holders.add(id(parent))
            parent = parent.parent
    return [tag for tag in blocks if id(tag) not in holders]


def _sentences(tag: Tag) -> list[str]:
    return [s for line in element_text(tag).splitlines() for s in _SENTENCE_END.split(line) if s]


def _sentence_advice(sentence: str) -> Iterator[_Advice]:
    against = _AGAINST.search(sentence)
    if against is None or _NEGATION.search(sentence[: against.start()]):
        return
    matches = [m for m in _TRAVEL.finditer(sentence, against.end()) if _joined(sentence, against, m)]
    for i, match in enumerate(matches):
        segment = sentence[match.end() : matches[i + 1].start() if i + 1 < len(matches) else None]
        target = _REASON.sub("", _TARGET_TAIL.sub("", segment)).strip()
        clause_end = match.end() + len(segment) - len(segment.lstrip()) + len(target)
        clause = _TARGET_TAIL.sub("", sentence[:clause_end]).strip()
        words = " ".join(f"{against.group(0)}{match.group(1)} travel".split())
        level = _tables().text[" ".join(match.group(1).lower().split())]
        yield _Advice(level, target, clause, words, segment.rstrip().endswith(":"))


def _joined(sentence: str, against: re.Match[str], match: re.Match[str]) -> bool:
    """The first "all ... travel to" follows "advises against"; later ones follow "and" or a comma."""
    between = sentence[against.end() : match.start()]
    return not between.strip() or re.search(r"(?:,|\band|\bagainst)\s*$", between) is not None


def _listed(tag: Tag, advice: _Advice, own_slug: str) -> Iterator[_Advice]:
    """ "... all travel to:" followed by a list: one zone per list item."""
    listing = tag.find_next_sibling()
    if not isinstance(listing, Tag) or listing.name not in ("ul", "ol"):
        return
    for item in listing.find_all("li", recursive=False):
        if not isinstance(item, Tag) or _foreign_links(item, own_slug):
            continue
        target = _REASON.sub("", _TARGET_TAIL.sub("", element_text(item))).strip()
        if target:
            yield _Advice(advice.level, target, advice.clause, advice.words)


def _foreign_links(tag: Tag, own_slug: str) -> list[str]:
    """The texts of links to other destinations' travel advice."""
    texts = []
    for link in tag.find_all("a"):
        if not isinstance(link, Tag):
            continue
        match = _ADVICE_LINK.search(str(link.get("href") or ""))
        if match and match.group(1) != own_slug:
            texts.append(element_text(link))
    return [text for text in texts if text]


def _marked(validators: Validators, mark: str) -> Validators:
    etag, modified = validators.etag, validators.last_modified
    return Validators(etag + mark if etag else None, modified + mark if modified else None)


def _unmarked(validators: Validators | None, mark: str) -> Validators | None:
    """The server's validators, when they were stored for the same watched slugs; else None."""
    if validators is None:
        return None
    given = [v for v in (validators.etag, validators.last_modified) if v]
    if not given or not all(v.endswith(mark) for v in given):
        return None
    etag, modified = validators.etag, validators.last_modified
    return Validators(etag and etag.removesuffix(mark), modified and modified.removesuffix(mark))


def _json_or_none(fetched: Fetched) -> Any:
    try:
        return load_json(decode_body(fetched.body, fetched.content_type))
    except (ValueError, RecursionError):
        return None


def _get(data: object, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _datetime(value: object, name: str) -> datetime | None:
    """An ISO 8601 time as aware UTC; None when absent. Raises ParseError when unreadable."""
    if value is None or value == "":
        return None
    try:
        if not isinstance(value, str):
            raise TypeError
        parsed = datetime.fromisoformat(value)
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)
    except (TypeError, ValueError, OverflowError):
        raise ParseError(f"{name} is not an ISO 8601 time: {value!r}") from None
