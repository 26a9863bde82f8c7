"""The generic ``rss`` kind and the shared flag phrases (monitor/flags.py). Golden cases are in
tests/fixtures/kinds/rss/ (run by test_kinds.py)."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from monitor.config import ConfigError, SourceConfig, loads
from monitor.errors import ParseError
from monitor.flags import Flags, read_flags, sentences
from monitor.models import Record, StaffDeparture
from monitor.sources import build

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "kinds" / "rss"
URL = "https://ml.usembassy.gov/category/alert/feed/"


def parse(body: bytes, countries: tuple[str, ...] = ("ML",), **options: Any) -> list[Record]:
    config = SourceConfig(id="feed", kind="rss", url=URL, countries=countries, options=options)
    return build(config).parse(body, content_type="application/rss+xml", url=URL)


def rss(*items: str, title: str = "Alerts") -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>{title}</title>'
        f"<link>https://ml.usembassy.gov</link>{''.join(items)}</channel></rss>"
    ).encode()


def item(title: str, *, guid: str | None = None, date: str | None = None, text: str = "") -> str:
    parts = [f"<title>{title}</title>", f"<description>{text}</description>"]
    if guid:
        parts.append(f'<guid isPermaLink="false">{guid}</guid>')
    if date:
        parts.append(f"<pubDate>{date}</pubDate>")
    return f"<item>{''.join(parts)}</item>"


BAMAKO = (FIXTURES / "bamako-security-alerts" / "input.xml").read_bytes()


def test_the_bamako_alert_feed_gives_one_record_for_mali_newest_first() -> None:
    [record] = parse(BAMAKO)
    assert (record.key, record.country, record.level, record.scope) == ("ML", "ML", None, None)
    assert record.title == "Alert – U.S. Embassy in Mali"
    assert record.url == "https://ml.usembassy.gov"
    assert [s.name for s in record.sections] == [
        "https://ml.usembassy.gov/?p=20748",
        "https://ml.usembassy.gov/?p=20731",
        "https://ml.usembassy.gov/?p=20512",
    ]
    assert record.sections[0].text.splitlines()[:2] == [
        "Security Alert: U.S. Embassy Bamako, Mali (October 28, 2025)",
        "2025-10-28T15:22:41+00:00",
    ]
    assert record.updated_at == datetime(2025, 10, 28, 15, 22, 41, tzinfo=UTC)
    assert record.leave_now is True
    assert (record.staff_departure, record.embassy_closed) == (StaffDeparture.NONE, False)


def test_the_full_content_is_preferred_over_the_excerpt() -> None:
    [record] = parse(BAMAKO)
    assert "U.S. citizens should depart immediately using commercial aviation." in record.sections[0].text
    assert "[…]" not in record.text
    assert record.sections[2].text.endswith(
        "planned in central Bamako on September 22."
    )  # no content:encoded


def test_a_feed_without_the_leave_alert_sets_no_flag() -> None:
    [record] = parse(BAMAKO, match="fuel shortages|demonstration")
    assert len(record.sections) == 2 and record.leave_now is False


def test_reordering_the_items_is_not_a_change() -> None:
    items = [
        item("B", guid="id-b", date="Tue, 28 Oct 2025 10:00:00 +0000"),
        item("A", guid="id-a", date="Thu, 23 Oct 2025 10:00:00 +0000"),
        item("C", guid="id-c"),
        item("D", guid="id-d", date="Tue, 28 Oct 2025 10:00:00 +0000"),
    ]
    first = parse(rss(*items))
    assert parse(rss(*reversed(items))) == first
    assert [s.name for s in first[0].sections] == ["id-b", "id-d", "id-a", "id-c"]


def test_item_ids_fall_back_to_the_link_then_a_hash() -> None:
    body = rss(
        "<item><title>With link</title><link>https://example.org/a</link></item>",
        "<item><title>Nothing</title><description>Some text</description></item>",
    )
    names = [s.name for s in parse(body)[0].sections]
    assert names[0] == "https://example.org/a"
    assert re.fullmatch(r"sha256:[0-9a-f]{16}", names[1])
    assert parse(body) == parse(body)


def test_a_repeated_guid_keeps_its_newest_item() -> None:
    body = rss(
        item("Old", guid="same", date="Mon, 01 Sep 2025 10:00:00 +0000"),
        item("New", guid="same", date="Tue, 02 Sep 2025 10:00:00 +0000"),
    )
    [section] = parse(body)[0].sections
    assert section.text.startswith("New\n")


def test_max_items_keeps_the_newest() -> None:
    items = [item(f"Alert {d}", guid=f"g{d}", date=f"{d:02d} Oct 2025 08:00:00 +0000") for d in range(1, 8)]
    record = parse(rss(*items), max_items=3)[0]
    assert [s.name for s in record.sections] == ["g7", "g6", "g5"]
    assert record.updated_at == datetime(2025, 10, 7, 8, tzinfo=UTC)


def test_match_keywords_are_literal_and_case_insensitive() -> None:
    body = rss(
        item("Alert (Mali)", guid="a"), item("Other", guid="b", text="about MALI."), item("x", guid="c")
    )
    assert [s.name for s in parse(body, match=["(mali)"])[0].sections] == ["a"]
    assert [s.name for s in parse(body, match=["mali"])[0].sections] == ["a", "b"]
    assert [s.name for s in parse(body, match=r"^x$")[0].sections] == ["c"]


@pytest.mark.parametrize(
    "options",
    [{"match": "(unclosed"}, {"match": [""]}, {"max_items": 0}, {"max_items": 5000}, {"maximum": 3}],
)
def test_invalid_options_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        build(SourceConfig(id="feed", kind="rss", url=URL, options=options))


def test_invalid_options_are_a_config_error_naming_the_source() -> None:
    text = "sources:\n  - {id: f, kind: rss, url: 'https://example.org/feed', options: {match: '(x'}}\n"
    with pytest.raises(ConfigError, match="f"):
        loads(text, path=Path("monitor.yaml"), environ={})


def test_without_a_single_country_the_record_is_the_page() -> None:
    for countries in ((), ("ML", "SN")):
        [record] = parse(BAMAKO, countries=countries)
        assert (record.key, record.country) == ("page", None)


def test_an_empty_feed_gives_a_record_without_sections() -> None:
    [record] = parse(rss())
    assert (record.key, record.sections, record.updated_at, record.leave_now) == ("ML", (), None, False)


def test_undated_and_unreadable_dates_do_not_fail() -> None:
    body = rss(item("Bad", guid="b", date="Wed, 15 Dec 20202"), item("None", guid="n"))
    record = parse(body)[0]
    assert record.updated_at is None
    assert [s.text for s in record.sections] == ["Bad", "None"]


def test_atom_entries_are_read_and_their_times_made_utc() -> None:
    [record] = parse((FIXTURES / "atom-feed" / "input.xml").read_bytes())
    assert record.title == "Mali travel advice"
    assert record.sections[1].text.splitlines()[1] == "2025-09-19T09:12:03+00:00"
    assert record.leave_now is True and record.staff_departure == StaffDeparture.ORDERED


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"<html><head><title>Just a moment...</title></head><body>Checking your browser</body></html>",
        b'{"items": [{"title": "x"}]}',
        b"/etc/passwd",
        b"https://example.org/feed.xml",
        b"\xff\xfe\x00\x00garbage",
    ],
)
def test_what_is_not_a_feed_is_a_parse_failure(body: bytes) -> None:
    with pytest.raises(ParseError):
        parse(body)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_give_a_record_or_parse_error(body: bytes) -> None:
    try:
        records = parse(body)
    except ParseError:
        return
    assert len(records) == 1 and records[0].level is None


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(max_size=200), max_size=5))
def test_arbitrary_item_text_gives_a_record_or_parse_error(texts: list[str]) -> None:
    escape = {ord("<"): "&lt;", ord("&"): "&amp;", ord(">"): "&gt;"}
    body = rss(*(item(t.translate(escape), text=t.translate(escape)) for t in texts))
    try:
        records = parse(body)
    except ParseError:
        return
    assert len(records) == 1


def test_an_entity_bomb_is_refused_fast() -> None:
    lol = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
    body = (
        f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY l0 "lol">{lol}]>'
        '<rss version="2.0"><channel><title>t</title><item><title>&l9;</title></item></channel></rss>'
    ).encode()
    started = time.monotonic()
    with pytest.raises(ParseError, match="declares entities"):
        parse(body)
    assert time.monotonic() - started < 2


def test_external_entities_are_not_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET", encoding="utf-8")
    body = (
        f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY x SYSTEM "file://{secret}">]>'
        '<rss version="2.0"><channel><title>&x;</title><item><title>&x;</title></item></channel></rss>'
    ).encode()
    with pytest.raises(ParseError):
        parse(body)


# --- the shared flag phrases ---------------------------------------------------------------------

ORDERED, AUTHORIZED, NONE = StaffDeparture.ORDERED, StaffDeparture.AUTHORIZED, StaffDeparture.NONE


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("U.S. citizens should depart immediately using commercial aviation.", Flags(leave_now=True)),
        ("We urge American citizens in Afghanistan to leave immediately.", Flags(leave_now=True)),
        ("U.S. citizens in Russia should leave immediately", Flags(leave_now=True)),
        ("Overland travel is not safe, and U.S. citizens should depart immediately.", Flags(leave_now=True)),
        ("Travelers should be prepared to depart immediately with little to no warning.", Flags()),
        ("Have a plan to leave in an emergency that does not depend on U.S. government help.", Flags()),
        (
            "On October 30, 2025, the Department of State ordered non-emergency U.S. government "
            "employees and their family members to leave Mali.",
            Flags(staff_departure=ORDERED),
        ),
        (
            "The Department ordered the departure of U.S. government employees.",
            Flags(staff_departure=ORDERED),
        ),
        ("Authorities ordered residents to leave the flooded district.", Flags()),
        (
            "On October 24, 2025, the Department authorized the departure of non-emergency staff.",
            Flags(staff_departure=AUTHORIZED),
        ),
        (
            "Family members of U.S. government employees were authorized to depart.",
            Flags(staff_departure=AUTHORIZED),
        ),
        ("authorized departure. Later: ordered departure.", Flags(staff_departure=ORDERED)),
        ("On January 9, 2026, the Department lifted the ordered departure of staff.", Flags()),
        ("Reissued after the end of the ordered departure.", Flags()),
        ("The authorized departure is no longer in effect.", Flags()),
        ("The Department has not ordered the departure of staff.", Flags()),
        ("The U.S. Embassy in Khartoum suspended its operations in April 2023.", Flags(embassy_closed=True)),
        (
            "The Department ordered the departure of U.S. government employees. It also suspended "
            "operations at U.S. Embassy Minsk.",
            Flags(staff_departure=ORDERED, embassy_closed=True),
        ),
        ("The U.S. government suspended U.S. Embassy operations in 2012.", Flags(embassy_closed=True)),
        ("All U.S. consulates in Russia have suspended operations, including consular services.", Flags()),
        ("In March 2026, the U.S. Embassy in Caracas resumed operations.", Flags()),
        ("The U.S. Embassy will be closed on Monday, November 11, for Veterans Day.", Flags()),
        ("The U.S. Embassy in Bamako is closed until further notice.", Flags(embassy_closed=True)),
        (
            "Non-essential British embassy staff have been temporarily withdrawn from Bamako.",
            Flags(staff_departure=ORDERED),
        ),
        (
            "Il est recommandé de prévoir un départ temporaire du Mali dès que possible.",
            Flags(leave_now=True),
        ),
        ("L'ambassade de France à Bamako est fermée au public.", Flags(embassy_closed=True)),
        ("Deutschen Staatsangehörigen wird empfohlen, Mali umgehend zu verlassen.", Flags(leave_now=True)),
        ("Die Reisewarnung für Mali ist aufgehoben; Sie sollten das Land nicht mehr verlassen.", Flags()),
    ],
)
def test_read_flags(text: str, expected: Flags) -> None:
    assert read_flags(text) == expected


def test_flags_combine_to_the_strongest() -> None:
    combined = Flags(staff_departure=ORDERED) | Flags(leave_now=True, staff_departure=AUTHORIZED)
    assert combined == Flags(leave_now=True, staff_departure=ORDERED)
    assert Flags() | Flags() == Flags()


def test_sentences_keep_abbreviations_whole() -> None:
    assert sentences("The U.S. Embassy in St. Louis is open. Next; third\nfourth") == [
        "The US Embassy in St Louis is open.",
        "Next;",
        "third",
        "fourth",
    ]


# --- documentation -----------------------------------------------------------------------------


def test_the_documented_example_is_a_valid_config() -> None:
    page = (ROOT / "docs" / "kinds" / "rss.md").read_text(encoding="utf-8")
    [example] = re.findall(r"```yaml\n(.*?)```", page, flags=re.DOTALL)
    config = loads(example, path=Path("rss.md"), environ={})
    assert [s.kind for s in config.sources] == ["rss", "rss"]
    assert build(config.sources[1]).options.model_dump() == {"max_items": 10, "match": "Mali|Kayes"}
