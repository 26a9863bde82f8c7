"""``cma-cgm`` kind: the news and customer-advisory listings of CMA CGM (cma-cgm.com)."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import urlsplit

from monitor.listing import CarrierOptions, Listing, ListingItem, country_records, parse_listing, read_item
from monitor.models import Notice, Record
from monitor.notices import gazetteer, notice_status
from monitor.sources.base import Source, register

# /news/{id}/{slug} and /local/{country}/news/{id}/{slug}, optionally under a language prefix.
_NEWS = re.compile(
    r"^(?:/[a-z]{2})?(?:/local/(?P<local>[a-z0-9-]+))?/news/(?P<id>\d+)(?:/(?P<slug>[^/]*))?/?$",
    re.IGNORECASE,
)


def news_key(url: str) -> tuple[str, str] | None:
    """(key, URL without query) for a news URL, else None. The key is the numeric id; local
    news has ids of its own, so theirs is prefixed by the local site: ``belgium/511``."""
    parts = urlsplit(url)
    match = _NEWS.match(parts.path)
    if parts.scheme not in ("http", "https") or not match:
        return None
    local = (match["local"] or "").lower()
    key = f"{local}/{match['id']}" if local else match["id"]
    return key, f"{parts.scheme}://{parts.netloc}{parts.path}"


class CmaCgmOptions(CarrierOptions):
    """``max_items``: how many news items of the listing are read, from the top (default 100).
    ``synonyms``: more names per country code, added to the built-in table, e.g.
    ``{ML: [Sénou]}``."""


@register
class CmaCgmSource(Source):
    """CMA CGM news and customer advisories (https://www.cma-cgm.com/news, or a local site's
    ``/local/{country}/all-news``). Items are found by the shape of their links (``/news/{id}/
    {slug}``, ``/local/{country}/news/{id}/{slug}``) and keyed by their numeric id. Each
    becomes a notice with a status (info, disruption, surcharge, suspension, resumption) read
    from its wording and the countries it names (a local site's news also names its country);
    each watched country gets one record listing its notices, possibly none. The date is the
    item's ``time[datetime]``, else a date line ("Last update on March 30th, 2021"; numeric
    dates are read day first). A page without any news link is a parse failure."""

    kind = "cma-cgm"
    title = "CMA CGM news and customer advisories (listing page)"
    publisher = "CMA CGM"
    default_interval = timedelta(minutes=60)  # carriers publish a few notices a week
    Options = CmaCgmOptions
    options: CmaCgmOptions

    heading = "CMA CGM news"

    def parse(self, body: bytes, *, content_type: str | None, url: str) -> list[Record]:
        listing = parse_listing(
            body,
            content_type=content_type,
            url=url,
            key_of=news_key,
            limit=self.options.max_items,
            source_id=self.id,
            missing="no news link (/news/{id}/{slug}) in the page: the listing structure changed or "
            "this is a block page",
        )
        notices = [self._notice(item, listing) for item in listing.items]
        return country_records(notices, self.config.countries, heading=self.heading, url=url)

    def _notice(self, item: ListingItem, listing: Listing) -> Notice:
        parts = read_item(item, listing, numeric="dmy")
        match = _NEWS.match(urlsplit(item.url).path)
        slug = (match["slug"] or "") if match else ""
        local = (match["local"] or "") if match else ""
        title = parts.title or slug.replace("-", " ").strip().capitalize() or f"News {item.key}"
        names = gazetteer(self.options.synonyms)
        return Notice(
            id=item.key,
            title=title,
            url=item.url,
            status=notice_status(title, parts.text),
            published_at=parts.published_at,
            countries=names.countries(title, parts.text, slug.replace("-", " "), local.replace("-", " ")),
            text=parts.text,
        )
