"""Atom feeds of advisory changes (pure): one feed per country, and one for all countries.

Noise is left out: people subscribe for news. Ids are ``tag:`` URIs that do not depend on the
host the feed is served from, so a reader never sees an entry twice. Every text from a source
is untrusted: titles are Atom ``text``; the entry's content is HTML built here with every value
escaped, so a source's markup is shown as text and never becomes markup for the reader. Links
are only made for http(s) addresses, and characters XML cannot carry are dropped.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator, Sequence

from feedgen.entry import FeedEntry
from feedgen.feed import FeedGenerator

from monitor.alerts.render import changed_lines, country_name, format_utc
from monitor.display import level_change, one_line, safe_href, shorten
from monitor.models import ChangeClass
from monitor.report.history import ChangeEntry, History

TAG = "tag:advisory-monitor,2025"
GENERATOR = "advisory-monitor"
GENERATOR_URI = "https://github.com/advisory-monitor/advisory-monitor"
TITLE_REASON_CHARS = 80
TEXT_CHARS = 600  # a reason, title or label in the content is cut to about this
DIFF_LINES = 20
DIFF_LINE_CHARS = 400
PLACE_COUNTRIES = 3  # an entry about more countries names this many and counts the others

# Characters XML 1.0 cannot carry (controls, lone surrogates, U+FFFE/U+FFFF): lxml refuses them.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_QUOTE_START = ": “"


def render_feed(
    history: History, *, country: str | None, feed_url: str, report_url: str, limit: int = 100
) -> bytes:
    """The Atom feed (UTF-8 XML) of the changes in ``history`` about ``country`` (an ISO 3166-1
    alpha-2 code; None: every change), newest first, at most ``limit`` of them, noise left out.

    ``feed_url`` is the feed's own address (its ``self`` link), ``report_url`` the report's
    section the feed follows (its ``alternate`` link). The feed is ``updated`` at its newest
    entry, or at ``history.generated_at`` when it has none. Raises ``ValueError`` for a
    negative ``limit``.
    """
    if limit < 0:
        raise ValueError(f"limit must be 0 or more, not {limit}")
    code = country.upper() if country else None
    changes = _newest(history.changes, code)[:limit]
    feed = FeedGenerator()
    feed.id(f"{TAG}:feed/{code or 'all'}")
    feed.title(f"Travel advisory changes — {country_name(code) if code else 'all countries'}")
    feed.subtitle(
        "Changes in governments' travel advice and carriers' notices, newest first; noise left out."
    )
    feed.updated(changes[0].detected_at if changes else history.generated_at)
    feed.link(href=_clean(feed_url), rel="self", type="application/atom+xml")
    feed.link(href=_clean(report_url), rel="alternate", type="text/html")
    feed.author(name="Travel advisory monitor")
    feed.generator(GENERATOR, uri=GENERATOR_URI)
    feed.language("en")
    for change in changes:
        _fill(feed.add_entry(order="append"), change, code)
    result: bytes = feed.atom_str(pretty=True)
    return result


def _title(change: ChangeEntry, country: str | None) -> str:
    """One line: "[CRITICAL] Mali — UK FCDO: leave now". ``country`` names the place when the
    feed is about one country; otherwise the change's own countries do."""
    place = _place(change, country)
    publisher = one_line(change.publisher)
    heading = f"{place} — {publisher}" if place else publisher
    return _clean(f"[{change.change_class.value.upper()}] {heading}: {_main_reason(change)}")


def _newest(changes: Sequence[ChangeEntry], country: str | None) -> list[ChangeEntry]:
    shown = [
        change
        for change in changes
        if change.change_class is not ChangeClass.NOISE and (country is None or country in change.countries)
    ]
    return sorted(shown, key=lambda change: (change.detected_at, change.id), reverse=True)


def _fill(entry: FeedEntry, change: ChangeEntry, country: str | None) -> None:
    # The same id in every feed and at every regeneration: a reader never shows a change twice.
    entry.id(f"{TAG}:change/{change.id}")
    entry.title(_title(change, country))
    entry.updated(change.detected_at)
    entry.published(change.published_at or change.detected_at)
    entry.category(term=change.change_class.value, label=change.change_class.value.upper())
    href = _safe_href(change.url)
    if href:
        entry.link(href=href, rel="alternate", type="text/html")
    entry.content(_clean(_content_html(change, href)), type="html")


def _content_html(change: ChangeEntry, href: str | None) -> str:
    """The entry's body as HTML: every value from the change is escaped here."""
    parts = [f"<p><strong>{_esc(one_line(change.publisher))}</strong>: {_esc(_cut(change.title))}</p>"]
    level = _level_line(change)
    if level:
        parts.append(f"<p>Level: {_esc(level)}</p>")
    if change.notice:
        status = change.notice.status.value
        parts.append(f"<p>Carrier notice ({_esc(status)}): {_esc(_cut(change.notice.title))}</p>")
    reasons = [_cut(reason) for reason in change.reasons if reason.strip()]
    if reasons:
        parts.append("<p>Why:</p><ul>" + "".join(f"<li>{_esc(reason)}</li>" for reason in reasons) + "</ul>")
    parts.extend(_diff_html(change.diff))
    parts.append(f"<p>{_esc(_times(change))}</p>")
    if href:
        parts.append(f'<p><a href="{_esc(href)}">Official page</a></p>')
    return "\n".join(parts)


def _diff_html(diff: str) -> Iterator[str]:
    lines = list(changed_lines(diff))
    if not lines:
        return
    items = [
        f"<li>+ <ins>{_esc(_cut(text, DIFF_LINE_CHARS))}</ins></li>"
        if sign == "+"
        else f"<li>− <del>{_esc(_cut(text, DIFF_LINE_CHARS))}</del></li>"
        for sign, text in lines[:DIFF_LINES]
    ]
    yield "<p>What changed:</p><ul>" + "".join(items) + "</ul>"
    if len(lines) > DIFF_LINES:
        yield f"<p>… and {len(lines) - DIFF_LINES} more changed lines.</p>"


def _times(change: ChangeEntry) -> str:
    detected = f"Detected {format_utc(change.detected_at)}"
    if change.published_at is None:
        return detected + "."
    return f"{detected}; published by the source {format_utc(change.published_at)}."


def _level_line(change: ChangeEntry) -> str | None:
    """ "2 (Exercise increased caution) → 4 (Do not travel)", "4 (…), unchanged", or None."""
    before = (change.level_before, _cut(change.label_before or ""))
    after = (change.level_after, _cut(change.label_after or ""))
    return level_change(before, after, unchanged=", unchanged")


def _place(change: ChangeEntry, country: str | None) -> str:
    """The country the entry is about: the feed's, else the change's own (a few named)."""
    codes = (country,) if country else change.countries
    names = [country_name(code) for code in codes[:PLACE_COUNTRIES]]
    more = len(codes) - len(names)
    return ", ".join(names) + (f" and {more} more" if more > 0 else "")


def _main_reason(change: ChangeEntry) -> str:
    """The first reason without its quoted evidence, or the title, in a few words."""
    reason = change.reasons[0].split(_QUOTE_START, 1)[0] if change.reasons else ""
    return _cut(reason, TITLE_REASON_CHARS) or _cut(change.title, TITLE_REASON_CHARS)


def _safe_href(url: str) -> str | None:
    """``url`` when it is an http(s) address (one that cannot run script), else None."""
    return safe_href(_clean(url))


def _cut(text: str, limit: int = TEXT_CHARS) -> str:
    """``text`` on one line, cut to at most ``limit`` characters, "…" included."""
    return shorten(one_line(text), limit, at_word=False)


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def _clean(text: str) -> str:
    """``text`` without the characters XML cannot carry."""
    return _NOT_XML.sub("", text)
