"""The ``us-state`` kind on the State Department's real feed excerpt, the derived digests and
hostile payloads. Golden cases are in tests/fixtures/kinds/us-state/ (run by test_kinds.py)."""

from __future__ import annotations

import json
import random
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pycountry
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.config import SourceConfig, loads
from monitor.errors import ParseError
from monitor.flags import read_flags
from monitor.models import Record, StaffDeparture
from monitor.sources import build
from monitor.sources.rss import load_feed
from monitor.sources.us_state import (
    FEED_URL,
    country_by_name,
    decide_level,
    parse_pub_date,
    resolve_country,
    split_title,
    tables,
)

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "kinds" / "us-state"
EXCERPT = "us-state/TAsTWs.2026-10-07.excerpt-first-9-items.xml"
DIGEST = "us-state/derived-rss-digest.johnmarkschofield.current_advisories.json"
MALI_ITEM = "us-state/derived-rss-item.johnmarkschofield.mali.json"


def parse(body: bytes, countries: tuple[str, ...] = ()) -> list[Record]:
    config = SourceConfig(id="us-state", kind="us-state", url=FEED_URL, countries=countries)
    return build(config).parse(body, content_type="application/rss+xml", url=FEED_URL)


def feed(*items: str) -> bytes:
    """A feed in the publisher's shape (CRLF) around the given <item> elements."""
    text = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<rss xmlns:dc="http://purl.org/dc/elements/1.1/" version="2.0">\n  <channel>\n'
        "    <title>travel.state.gov: Travel Advisories</title>\n"
        "    <pubDate>Wed, 07 Oct 2026 21:02:01 GMT</pubDate>\n" + "".join(items) + "  </channel>\n</rss>\n"
    )
    return text.replace("\n", "\r\n").encode()


def item(title: str, tag: str | None, level: str | None, *, date: str = "Tue, 15 Sep 2026") -> str:
    categories = f'<category domain="Threat-Level">{level}</category>' if level else ""
    categories += f'<category domain="Country-Tag">{tag}</category>' if tag else ""
    slug = re.sub(r"\W+", "-", title)
    return (
        f"<item><title>{title}</title><link>https://travel.state.gov/x/{slug}.html</link>"
        f"<pubDate>{date}</pubDate><description><![CDATA[<p>Advice.</p>]]></description>"
        f"{categories}</item>\n"
    )


# --- the real feed excerpt (2026-10-07, first nine items) -------------------------------------

EXPECTED_EXCERPT = {
    # key: (level, label, updated_at, destination as titled, Country-Tag)
    "SA": (3, "Reconsider Travel", "2026-09-15", "Saudi Arabia", "SA"),
    "KH": (2, "Exercise Increased Caution", "2026-09-15", "Cambodia", "KH"),
    "IT": (2, "Exercise Increased Caution", "2026-09-10", "Italy", "IT"),
    "MK": (1, "Exercise Normal Precautions", "2026-09-10", "North Macedonia", "MK"),
    "CW": (1, "Exercise Normal Precautions", "2026-09-09", "Curaçao", "UC"),
    "GB": (2, "Exercise Increased Caution", "2026-09-09", "United Kingdom", "UK"),
    "SR": (1, "Exercise Normal Precautions", "2026-09-08", "Suriname", "NS"),
    "HK": (2, "Exercise Increased Caution", "2026-09-04", "Hong Kong", "HK"),
    "ST": (2, "Exercise Increased Caution", "2026-09-04", "São Tomé and Príncipe", "TP"),
}


def test_every_item_of_the_real_excerpt_gives_its_country_level_and_date(real_samples: Path) -> None:
    records = parse((real_samples / EXCERPT).read_bytes())
    assert [r.key for r in records] == sorted(EXPECTED_EXCERPT)
    for record in records:
        level, label, day, destination, _ = EXPECTED_EXCERPT[record.key]
        assert record.country == record.key
        assert (record.level, record.level_label) == (level, label)
        assert record.updated_at == datetime.fromisoformat(day).replace(tzinfo=UTC)
        assert record.title == f"{destination} - Level {level}: {label}"
        assert record.extra == {"destination": destination}
        assert record.scope == "whole_country" and record.zones == ()
        assert record.url.startswith("https://travel.state.gov/content/tsg_aem/us/en/home/")
        assert (record.leave_now, record.staff_departure, record.embassy_closed) == (
            False,
            StaffDeparture.NONE,
            False,
        )
        assert [s.name for s in record.sections] == ["advisory"]  # the 2026 template has no note


def test_the_real_advisory_text_reads_as_a_reader_sees_it(real_samples: Path) -> None:
    records = {r.key: r for r in parse((real_samples / EXCERPT).read_bytes())}
    saudi = records["SA"].sections[0].text.splitlines()
    assert saudi[0].startswith("Reconsider travel to Saudi Arabia due to risk of Iranian drone and missile")
    assert saudi[1] == "U.S. government employee travel restrictions"
    assert saudi[-1] == "Do Not Travel to the Yemen border due to threat of terrorism."
    assert records["CW"].sections[0].text.splitlines()[0] == "Exercise normal precaution in Curaçao."
    assert (
        records["HK"]
        .sections[0]
        .text.startswith(
            "Exercise increased caution when traveling to the Hong Kong Special Administrative Region"
        )
    )
    assert records["KH"].url.endswith("/destination.khm.html")
    assert "<" not in records["SA"].text and "\xa0" not in records["SA"].text


def test_the_tags_of_the_real_excerpt_map_through_the_table(real_samples: Path) -> None:
    parsed = load_feed((real_samples / EXCERPT).read_bytes(), None, source_id="t", url=FEED_URL)
    seen = {}
    for entry in parsed.entries:
        tag = next(t["term"] for t in entry.tags if t["scheme"] == "Country-Tag")
        destination, _, _ = split_title(entry.title)
        seen[tag] = resolve_country(tag, destination)
        assert country_by_name(destination) == seen[tag][0], destination  # name and tag agree
    expected = {iso: (iso, False) for iso in EXPECTED_EXCERPT}
    assert seen == {EXPECTED_EXCERPT[iso][4]: v for iso, v in expected.items()}


def test_watching_countries_keeps_only_them_and_a_missing_one_fails(real_samples: Path) -> None:
    body = (real_samples / EXCERPT).read_bytes()
    assert [r.key for r in parse(body, ("GB", "SA"))] == ["GB", "SA"]
    with pytest.raises(ParseError, match="no item with a level for ML"):
        parse(body, ("GB", "ML"))


def test_order_of_the_items_does_not_matter(real_samples: Path) -> None:
    text = (real_samples / EXCERPT).read_text(encoding="utf-8")
    head, *items = re.split(r"(?=    <item>)", text)
    items[-1], tail = items[-1].split("  </channel>")
    random.Random(7).shuffle(items)
    shuffled = (head + "".join(items) + "  </channel>" + tail).encode()
    assert parse(shuffled) == parse(text.encode())


def test_shuffled_duplicates_give_the_same_records() -> None:
    text = (FIXTURES / "duplicates" / "input.xml").read_text(encoding="utf-8")
    head, *items = re.split(r"(?=    <item>)", text)
    items[-1], tail = items[-1].split("  </channel>")
    expected = parse(text.encode())
    for seed in range(5):
        random.Random(seed).shuffle(items)
        assert parse((head + "".join(items) + "  </channel>" + tail).encode()) == expected


# --- the derived digest (217 titles, links and dates of the feed, August 2026) ----------------


def digest(real_samples: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads((real_samples / DIGEST).read_text(encoding="utf-8"))
    return rows


def test_every_title_of_the_digest_splits_into_destination_and_level(real_samples: Path) -> None:
    rows = digest(real_samples)
    assert len(rows) == 217
    for row in rows:
        destination, level, label = split_title(row["full_title"])
        assert level == row["level"] and level in (1, 2, 3, 4), row["full_title"]
        assert label == tables().labels[level], row["full_title"]
        assert destination and " - Level" not in destination and not destination.endswith("Advisory")
    assert split_title("Mexico Travel Advisory - Level 2: Exercise Increased Caution")[0] == "Mexico"
    assert split_title("Guinea-Bissau - Level 3: Reconsider Travel") == (
        "Guinea-Bissau",
        3,
        "Reconsider Travel",
    )


def test_every_destination_of_the_digest_has_a_country(real_samples: Path) -> None:
    not_one_country = {"French West Indies", "Mainland China, Hong Kong & Macau - See Summaries"}
    iso = {c.alpha_2 for c in pycountry.countries} | {"XK"}
    for row in digest(real_samples):
        destination = split_title(row["full_title"])[0]
        country, _ = resolve_country(None, destination)
        if destination in not_one_country:
            assert country is None
        else:
            assert country in iso, destination
    named = {
        "Burma": "MM",
        "Cote d Ivoire": "CI",
        "Curaçao": "CW",
        "Sao Tome and Principe": "ST",
        "Kingdom of Denmark": "DK",
        "The Kyrgyz Republic": "KG",
        "Democratic Republic of the Congo": "CD",
        "Republic of the Congo": "CG",
        "Sint Maarten": "SX",
        "Saint Barthelemy": "BL",
        "Kosovo": "XK",
        "Macau": "MO",
        "Niger": "NE",
        "Nigeria": "NG",
        "Guinea-Bissau": "GW",
        "Guinea": "GN",
    }
    assert {name: resolve_country(None, name)[0] for name in named} == named
    assert resolve_country(None, "Saba") == ("BQ", True)
    assert resolve_country(None, "Sint Eustatius") == ("BQ", True)


def test_the_digest_dates_parse_to_utc_midnight(real_samples: Path) -> None:
    for row in digest(real_samples):
        parsed = parse_pub_date(row["date"])
        assert parsed is not None and parsed.tzinfo == UTC and parsed.hour == 0, row["date"]
        assert parsed.strftime("%a, %d %b %Y") == row["date"]
    assert parse_pub_date("Fri, 21 Aug 2026") == datetime(2026, 8, 21, tzinfo=UTC)


@pytest.mark.parametrize(
    "raw",
    ["Wed, 15 Dec 20202", "Wed, 05 Jun 20242024", "", "   ", None, "Tue, 31 Feb 2026", "soon", "15 Foo 2026"],
)
def test_malformed_pub_dates_give_none(raw: str | None) -> None:
    assert parse_pub_date(raw) is None


def test_pub_dates_with_a_time_keep_it_in_utc() -> None:
    assert parse_pub_date("Tue, 15 Sep 2026 22:30:00 -0400") == datetime(2026, 9, 16, 2, 30, tzinfo=UTC)
    assert parse_pub_date("15 September 2026") == datetime(2026, 9, 15, tzinfo=UTC)


def test_the_derived_mali_item_sets_no_flag(real_samples: Path) -> None:
    mali = json.loads((real_samples / MALI_ITEM).read_text(encoding="utf-8"))
    assert split_title(mali["full_title"]) == ("Mali", 4, "Do Not Travel")
    assert parse_pub_date(mali["date"]) == datetime(2026, 6, 8, tzinfo=UTC)
    flags = read_flags(mali["content_md"])
    assert (flags.leave_now, flags.staff_departure, flags.embassy_closed) == (
        False,
        StaffDeparture.NONE,
        False,
    )
    lifted = (
        mali["content_md"] + "\nOn January 9, 2026, the Department of State lifted the ordered departure."
    )
    assert read_flags(lifted).staff_departure == StaffDeparture.NONE


# --- titles, levels and tags ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Mali - Level 4: Do Not Travel", ("Mali", 4, "Do Not Travel")),
        (
            "Timor-Leste - Level 2: Exercise Increased Caution",
            ("Timor-Leste", 2, "Exercise Increased Caution"),
        ),
        (
            "Israel - Level 3: Reconsider Travel - Level 3: Reconsider Travel",
            ("Israel", 3, "Reconsider Travel"),
        ),
        (
            "Switzerland  - Level 1: Exercise Normal Precautions",
            ("Switzerland", 1, "Exercise Normal Precautions"),
        ),
        (
            "Mainland China, Hong Kong & Macau - See Summaries - Level 2: Exercise Increased Caution",
            ("Mainland China, Hong Kong & Macau - See Summaries", 2, "Exercise Increased Caution"),
        ),
        ("Mali - Do Not Travel", ("Mali", 4, "Do Not Travel")),
        ("Mali - Level 4:", ("Mali", 4, "Do Not Travel")),
        ("Mali", ("Mali", None, None)),
        ("Guinea-Bissau - Level 9: Unknown", ("Guinea-Bissau", None, None)),
    ],
)
def test_split_title(title: str, expected: tuple[str, int | None, str | None]) -> None:
    assert split_title(title) == expected


def test_the_higher_of_title_and_category_wins_and_the_disagreement_is_kept() -> None:
    four, one = (4, "Do Not Travel"), (1, "Exercise Normal Precautions")
    assert decide_level(one, four) == (4, "Do Not Travel", {"title_level": 1, "category_level": 4})
    assert decide_level(four, one) == (4, "Do Not Travel", {"title_level": 4, "category_level": 1})
    assert decide_level(four, (None, None)) == (4, "Do Not Travel", {})
    assert decide_level((None, None), (None, None)) == (None, None, {})


def test_the_tag_table_is_complete_and_maps_the_fips_codes() -> None:
    t = tables()
    assert len(t.tags) >= 215
    iso = {c.alpha_2 for c in pycountry.countries} | {"XK"}
    assert all(code is None or code in iso for code in t.tags.values())
    fips = {"UK": "GB", "UC": "CW", "TP": "ST", "NI": "NG", "NG": "NE", "KH": "KH", "ML": "ML", "UV": "BF"}
    fips |= {"IV": "CI", "NS": "SR", "CH": "CN", "TU": "TR", "BC": "BW", "LT": "LS", "SF": "ZA", "GM": "DE"}
    assert {tag: t.tags[tag] for tag in fips} == fips
    assert t.ambiguous <= t.tags.keys()
    assert t.tags["NO"] == "NO"  # not YAML's false


@pytest.mark.parametrize(
    ("tag", "destination", "expected"),
    [
        ("KN", "Saint Kitts and Nevis", ("KN", False)),
        ("KN", "North Korea", ("KP", False)),
        ("SC", "Saint Kitts and Nevis", ("KN", False)),
        ("TN", "Tonga", ("TO", False)),
        ("TN", "Tunisia", ("TN", False)),
        ("IS", "Israel", ("IL", False)),
        ("IS", "West Bank", ("PS", True)),
        ("IS", "Gaza", ("PS", True)),
        ("A1", "Bonaire", ("BQ", True)),
        ("A3", "French West Indies", (None, False)),
        ("ZZ", "Mali", ("ML", False)),
        (None, "Côte d’Ivoire", ("CI", False)),
        (None, "Atlantis", (None, False)),
    ],
)
def test_resolve_country(tag: str | None, destination: str, expected: tuple[str | None, bool]) -> None:
    assert resolve_country(tag, destination) == expected


def test_an_item_without_a_country_is_left_out() -> None:
    body = feed(
        item("Atlantis - Level 2: Exercise Increased Caution", None, None),
        item("Mali - Level 4: Do Not Travel", "ML", None),
    )
    assert [r.key for r in parse(body)] == ["ML"]


# --- failures: a level is never blank ----------------------------------------------------------


def test_a_watched_country_without_a_level_is_a_parse_failure() -> None:
    body = feed(item("Mali", "ML", None), item("Niger - Level 4: Do Not Travel", "NG", None))
    assert [r.key for r in parse(body, ("NE",))] == ["NE"]
    with pytest.raises(ParseError, match="no item with a level for ML"):
        parse(body, ("ML", "NE"))
    assert [r.key for r in parse(body)] == ["NE"]  # without countries: the level-less item is left out


def test_a_duplicate_without_a_level_does_not_hide_the_one_with_a_level() -> None:
    body = feed(
        item("Mali", "ML", None, date="Fri, 09 Jan 2026"),
        item("Mali - Level 4: Do Not Travel", "ML", None, date="Thu, 30 Oct 2025"),
    )
    [record] = parse(body, ("ML",))
    assert (record.level, record.updated_at) == (4, datetime(2025, 10, 30, tzinfo=UTC))


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"<html><head><title>Access Denied</title></head><body>Blocked</body></html>",
        b'{"items": []}',
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>',
        feed(item("Atlantis - Level 2: Exercise Increased Caution", None, None)),
        feed(item("Mali", "ML", None)),
    ],
)
def test_payloads_without_usable_items_are_parse_failures(body: bytes) -> None:
    with pytest.raises(ParseError):
        parse(body)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_give_records_or_parse_error(body: bytes) -> None:
    try:
        records = parse(body)
    except ParseError:
        return
    assert all(r.level in (1, 2, 3, 4) for r in records)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=300), st.sampled_from(["ML", "UV", "KN", "A1", "IS", "", "??"]), st.text(max_size=40))
def test_arbitrary_item_fields_give_records_or_parse_error(title: str, tag: str, level: str) -> None:
    escape = {ord("<"): "&lt;", ord("&"): "&amp;", ord(">"): "&gt;"}
    body = feed(item(title.translate(escape), tag, level.translate(escape) or None))
    try:
        records = parse(body)
    except ParseError:
        return
    assert all(r.level in (1, 2, 3, 4) and r.level_label for r in records)


def test_entity_expansion_is_harmless_and_fast() -> None:
    lol = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
    body = (
        f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY l0 "lol">{lol}]>'
        '<rss version="2.0"><channel><item><title>&l9; - Level 4: Do Not Travel</title>'
        '<category domain="Country-Tag">ML</category></item></channel></rss>'
    ).encode()
    started = time.monotonic()
    try:
        records = parse(body)
    except ParseError:
        records = []
    assert time.monotonic() - started < 2
    assert all(len(r.title) < 1000 for r in records)


def test_external_entities_are_not_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET", encoding="utf-8")
    body = (
        f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY x SYSTEM "file://{secret}">]>'
        '<rss version="2.0"><channel><item><title>Mali &x; - Level 4: Do Not Travel</title>'
        '<category domain="Country-Tag">ML</category><description>&x;</description></item></channel></rss>'
    ).encode()
    try:
        records = parse(body)
    except ParseError:
        return
    assert all("TOP-SECRET" not in r.canonical() for r in records)


# --- documentation -----------------------------------------------------------------------------


def test_the_documented_example_is_a_valid_config() -> None:
    page = (ROOT / "docs" / "kinds" / "us-state.md").read_text(encoding="utf-8")
    [example] = re.findall(r"```yaml\n(.*?)```", page, flags=re.DOTALL)
    config = loads(example, path=Path("us-state.md"), environ={})
    assert [s.kind for s in config.sources] == ["us-state"]
