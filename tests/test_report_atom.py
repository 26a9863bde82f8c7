"""Atom feeds of changes: what feedparser reads back, which changes are in, and that a source's
hostile text arrives as text in the raw XML too."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import feedparser
import lxml.html
import pytest
from lxml import etree

from monitor.models import ChangeClass
from monitor.report.atom import DIFF_LINES, render_feed
from monitor.report.history import History
from tests.support.histories import (
    GENERATED,
    HOSTILE,
    JS_URL,
    UK,
    US,
    at,
    change,
    hostile_history,
    mali_history,
)

ATOM = "{http://www.w3.org/2005/Atom}"
FEED_URL = "http://127.0.0.1:8080/feeds/ML.atom"
REPORT_URL = "http://127.0.0.1:8080/?country=ML#country-ML"


def feed_of(history: History, country: str | None = "ML", **options: Any) -> bytes:
    return render_feed(history, country=country, feed_url=FEED_URL, report_url=REPORT_URL, **options)


def parsed(xml: bytes) -> Any:
    result = feedparser.parse(xml)
    assert not result.bozo, result.get("bozo_exception")
    return result


def ids(xml: bytes) -> list[str]:
    return [entry.id for entry in parsed(xml).entries]


def change_id(number: int) -> str:
    return f"tag:advisory-monitor,2025:change/{number}"


def with_changes(*changes: Any) -> History:
    return replace(mali_history(), changes=changes)


def test_a_country_feed_lists_its_changes_newest_first_without_noise() -> None:
    feed = parsed(feed_of(mali_history()))

    assert [entry.id for entry in feed.entries] == [change_id(n) for n in (8, 6, 5, 4, 3, 2, 1)]
    assert feed.feed.id == "tag:advisory-monitor,2025:feed/ML"
    assert feed.feed.title == "Travel advisory changes — Mali"
    assert feed.feed.updated == "2025-11-10T09:00:00+00:00"
    links = {link.rel: link.href for link in feed.feed.links}
    assert links == {"self": FEED_URL, "alternate": REPORT_URL}
    assert feed.feed.author == "Travel advisory monitor"
    assert feed.feed.generator == "advisory-monitor"


def test_an_entry_carries_title_dates_link_class_and_what_changed() -> None:
    entries = {entry.id: entry for entry in parsed(feed_of(mali_history())).entries}

    uk = entries[change_id(3)]
    assert uk.title == "[CRITICAL] Mali — UK FCDO: leave now"
    assert uk.updated == "2025-10-30T14:00:00+00:00"
    assert uk.published == "2025-10-30T13:20:00+00:00"
    assert uk.link == UK.url
    assert [tag.term for tag in uk.tags] == ["critical"]
    body = uk.content[0].value
    assert "Level: 4 (Advise against all travel), unchanged" in body
    assert "If you are in Mali, you should leave by commercial means now." in body
    assert "FCDO advises against all travel to Mali." not in body  # a context line, not a change

    us = entries[change_id(2)]
    assert us.title == "[CRITICAL] Mali — US State Department: staff departure: authorized → ordered"
    assert "Authorized departure of non-emergency staff." in us.content[0].value
    assert "Ordered departure of non-emergency staff and family members." in us.content[0].value


def test_published_falls_back_to_detection_when_the_publisher_gives_no_time() -> None:
    france = {entry.id: entry for entry in parsed(feed_of(mali_history())).entries}[change_id(4)]

    assert france.published == france.updated == "2025-11-04T09:00:00+00:00"


def test_a_level_change_shows_before_and_after() -> None:
    raised = change(
        20, UK, at(11), ChangeClass.SEVERE, level_before=3, level_after=4, label_before="A", label_after="B"
    )

    [entry] = parsed(feed_of(with_changes(raised))).entries

    assert "Level: 3 (A) → 4 (B)" in entry.content[0].value


def test_ids_do_not_depend_on_where_the_feed_is_served_or_when_it_is_made() -> None:
    first = render_feed(mali_history(), country="ML", feed_url=FEED_URL, report_url=REPORT_URL)
    elsewhere = render_feed(
        mali_history(),
        country="ml",
        feed_url="https://example.org/feeds/ML.atom",
        report_url="https://example.org/",
    )

    assert ids(first) == ids(elsewhere)
    assert parsed(first).feed.id == parsed(elsewhere).feed.id


def test_feeds_filter_by_country_and_the_all_feed_has_every_country() -> None:
    elsewhere = change(
        30, US, at(11), ChangeClass.HEIGHTENED, countries=("BF",), key="BF", reasons=("unrest",)
    )
    both = change(31, US, at(12), ChangeClass.UPDATE, countries=("BF", "ML", "NE", "TD"), reasons=("region",))
    history = replace(mali_history(), changes=(*mali_history().changes, elsewhere, both))

    assert change_id(30) not in ids(feed_of(history, "ML"))
    assert ids(feed_of(history, "BF")) == [change_id(31), change_id(30)]
    everything = parsed(feed_of(history, None))
    assert [entry.id for entry in everything.entries][:2] == [change_id(31), change_id(30)]
    assert len(everything.entries) == 9  # the eight of Mali but the noise, and these two
    assert everything.feed.title == "Travel advisory changes — all countries"
    assert everything.feed.id == "tag:advisory-monitor,2025:feed/all"
    titles = [entry.title for entry in everything.entries]
    assert titles[0] == "[UPDATE] Burkina Faso, Mali, Niger and 1 more — US State Department: region"
    assert titles[1] == "[HEIGHTENED] Burkina Faso — US State Department: unrest"
    assert parsed(feed_of(history, "BF")).entries[0].title.startswith("[UPDATE] Burkina Faso — US State")


def test_noise_is_left_out_even_when_it_is_all_there_is() -> None:
    noise = change(40, UK, at(11), ChangeClass.NOISE, reasons=("dates only",))

    feed = parsed(feed_of(with_changes(noise)))

    assert feed.entries == []
    assert feed.feed.updated == GENERATED.isoformat()


def test_limit_keeps_the_newest() -> None:
    assert ids(feed_of(mali_history(), limit=2)) == [change_id(8), change_id(6)]
    assert ids(feed_of(mali_history(), limit=0)) == []
    with pytest.raises(ValueError, match="limit"):
        feed_of(mali_history(), limit=-1)


def test_an_empty_feed_is_valid_and_dated_when_generated() -> None:
    feed = parsed(feed_of(with_changes(), "NE"))

    assert feed.entries == []
    assert feed.feed.title == "Travel advisory changes — Niger"
    assert datetime(*feed.feed.updated_parsed[:6], tzinfo=UTC) == GENERATED


def test_a_change_without_reasons_is_titled_by_its_record() -> None:
    bare = change(50, UK, at(11), ChangeClass.UPDATE, title="Mali travel advice\nsummary")

    [entry] = parsed(feed_of(with_changes(bare))).entries

    assert entry.title == "[UPDATE] Mali — UK FCDO: Mali travel advice summary"


def test_long_diffs_are_cut() -> None:
    diff = "--- before\n+++ after\n" + "".join(f"+line {n}\n" for n in range(DIFF_LINES + 5))
    long = change(60, UK, at(11), ChangeClass.UPDATE, diff=diff)

    [entry] = parsed(feed_of(with_changes(long))).entries

    assert f"line {DIFF_LINES - 1}<" in entry.content[0].value
    assert f"line {DIFF_LINES}<" not in entry.content[0].value
    assert "… and 5 more changed lines." in entry.content[0].value


def test_characters_xml_cannot_carry_are_dropped() -> None:
    odd = change(70, UK, at(11), ChangeClass.UPDATE, reasons=("bell\x07 and\x00 null",), title="\ufffe\x0b")

    [entry] = parsed(feed_of(with_changes(odd))).entries

    assert entry.title == "[UPDATE] Mali — UK FCDO: bell and null"


def test_only_http_links_are_made() -> None:
    odd = change(80, UK, at(11), ChangeClass.UPDATE, url="ftp://example.org/x")

    xml = feed_of(with_changes(odd))

    assert parsed(xml).entries[0].get("links", []) == []
    assert b"ftp://" not in xml


# Hostile source text -------------------------------------------------------------------------


def hostile_xml() -> bytes:
    return feed_of(hostile_history(), None)


def test_hostile_text_arrives_as_text() -> None:
    [entry] = parsed(hostile_xml()).entries

    assert entry.title == f"[CRITICAL] Mali — {HOSTILE}: leave now"
    assert entry.get("links", []) == []  # the javascript: URL makes no link


def test_hostile_text_never_becomes_markup_in_the_raw_xml() -> None:
    root = etree.fromstring(hostile_xml(), etree.XMLParser(resolve_entities=False, no_network=True))

    elements = list(root.iter())
    assert not [el for el in elements if etree.QName(el).localname.lower() in ("script", "img", "a", "h1")]
    for element in elements:
        for value in element.attrib.values():
            assert "javascript:" not in value.lower()
            assert "<" not in value
    holders = {etree.QName(el).localname for el in elements if el.text and HOSTILE in el.text}
    assert holders == {"title"}  # as plain text; the HTML content holds it escaped


def test_hostile_text_in_the_html_content_is_escaped_once_more() -> None:
    root = etree.fromstring(hostile_xml())
    content = root.find(f"{ATOM}entry/{ATOM}content")
    assert content is not None and content.get("type") == "html"

    page = lxml.html.fragment_fromstring(content.text or "", create_parent="div")

    assert page.xpath("//script | //img | //h1 | //table") == []
    assert [a.get("href") for a in page.iter("a")] == []
    assert HOSTILE in page.text_content()
    assert JS_URL in page.text_content()  # shown, as text, in the diff
