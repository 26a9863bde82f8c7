"""``msc`` kind: the customer-advisories listing of MSC (msc.com)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from monitor.listing import CarrierOptions, Listing, ListingItem, country_records, parse_listing, read_item
from monitor.models import Notice, Record
from monitor.notices import MONTHS, gazetteer, notice_status
from monitor.sources.base import Source, register

# /{lang}/newsroom/customer-advisories/{yyyy}/{month-name}/{slug}, on msc.com or a mirror.
_ADVISORY = re.compile(
    r"^(?:/[a-z]{2}(?:-[a-z]{2})?)?/newsroom/customer-advisories"
    r"/(?P<year>\d{4})/(?P<month>[a-z]+)/(?P<slug>[^/]+)/?$",
    re.IGNORECASE,
)


def advisory_key(url: str) -> tuple[str, str] | None:
    """(slug, URL without query) for an advisory URL, else None. The slug is the stable key:
    the same advisory under several language prefixes or on msccargo.cn is one advisory."""
    parts = urlsplit(url)
    match = _ADVISORY.match(parts.path)
    if parts.scheme not in ("http", "https") or not match:
        return None
    return match["slug"].lower(), f"{parts.scheme}://{parts.netloc}{parts.path}"


def url_month(url: str) -> tuple[int, int] | None:
    """(year, month) of an advisory URL when its month name is known."""
    match = _ADVISORY.match(urlsplit(url).path)
    month = MONTHS.get(match["month"].lower()) if match else None
    return (int(match["year"]), month) if match and month else None


class MscOptions(CarrierOptions):
    """``max_items``: how many advisories of the listing are read, from the top (default 100).
    ``synonyms``: more names per country code, added to the built-in table, e.g.
    ``{ML: [Sénou]}``."""


@register
class MscSource(Source):
    """MSC customer advisories (https://www.msc.com/en/newsroom/customer-advisories). Advisories
    are found by the shape of their links (``/{lang}/newsroom/customer-advisories/{yyyy}/
    {month}/{slug}``), not by class names, and keyed by slug. Each becomes a notice with a
    status (info, disruption, surcharge, suspension, resumption) read from its wording and the
    countries it names; each watched country gets one record listing its notices, possibly
    none. The date is a ``time`` element or a date line of the item (US order, MM/DD/YYYY),
    else the first of the month in its URL. msc.com refuses plain HTTP clients: use
    ``fetcher: browser``. A page without any advisory link is a parse failure."""

    kind = "msc"
    title = "MSC customer advisories (listing page)"
    publisher = "MSC"
    default_interval = timedelta(minutes=60)  # carriers publish a few notices a week
    Options = MscOptions
    options: MscOptions

    heading = "MSC customer advisories"

    def parse(self, body: bytes, *, content_type: str | None, url: str) -> list[Record]:
        listing = parse_listing(
            body,
            content_type=content_type,
            url=url,
            key_of=advisory_key,
            limit=self.options.max_items,
            source_id=self.id,
            missing="no customer-advisory link (/newsroom/customer-advisories/yyyy/month/slug) in the page: "
            "the listing structure changed or this is a block page",
        )
        notices = [self._notice(item, listing) for item in listing.items]
        return country_records(notices, self.config.countries, heading=self.heading, url=url)

    def _notice(self, item: ListingItem, listing: Listing) -> Notice:
        year_month = url_month(item.url)
        parts = read_item(item, listing, numeric="mdy", month_hint=year_month[1] if year_month else None)
        published = parts.published_at
        if published is None and year_month:
            published = datetime(*year_month, 1, tzinfo=UTC)
        title = parts.title or item.key.replace("-", " ").capitalize()
        names = gazetteer(self.options.synonyms)
        return Notice(
            id=item.key,
            title=title,
            url=item.url,
            status=notice_status(title, parts.text),
            published_at=published,
            countries=names.countries(title, parts.text, item.key.replace("-", " ")),
            text=parts.text,
        )
