"""The ``msc`` kind: advisory links, slugs, dates, relevance, errors and the Mali sequence."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from monitor.classify import classify
from monitor.config import SourceConfig
from monitor.diff import diff_records
from monitor.errors import ParseError
from monitor.models import ChangeClass, NoticeStatus, Record
from monitor.sources import build
from monitor.sources.msc import advisory_key, url_month

LISTING = "https://www.msc.com/en/newsroom/customer-advisories"
CASES = Path(__file__).parent / "fixtures" / "kinds" / "msc"
BASE = "https://www.msc.com/en/newsroom/customer-advisories/2025/november/"
SUSPENSION_SLUG = "suspension-of-road-transportation-for-mali-cargo"


def _parse(body: bytes | str, countries: tuple[str, ...] = ("ML",), **options: Any) -> list[Record]:
    config = SourceConfig.model_validate(
        {"id": "msc", "kind": "msc", "url": LISTING, "countries": countries, "options": options}
    )
    data = body.encode() if isinstance(body, str) else body
    return build(config).parse(data, content_type="text/html; charset=utf-8", url=LISTING)


def _case(name: str) -> bytes:
    return (CASES / name / "input.html").read_bytes()


def _card(path: str, title: str, date: str = "", text: str = "") -> str:
    date_line = f"<span>{date}</span>" if date else ""
    return f'<div class="card">{date_line}<h3><a href="{path}">{title}</a></h3><p>{text}</p></div>'


def _page(*cards: str) -> str:
    return f"<html><body><main><h1>Customer Advisories</h1><div>{''.join(cards)}</div></main></body></html>"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (BASE + SUSPENSION_SLUG, (SUSPENSION_SLUG, BASE + SUSPENSION_SLUG)),
        (BASE + SUSPENSION_SLUG + "/?utm=x#top", (SUSPENSION_SLUG, BASE + SUSPENSION_SLUG + "/")),
        (
            "https://www.msccargo.cn/zh/newsroom/customer-advisories/2025/november/Mali-Update",
            (
                "mali-update",
                "https://www.msccargo.cn/zh/newsroom/customer-advisories/2025/november/Mali-Update",
            ),
        ),
        (
            "https://www.msc.com/pt-br/newsroom/customer-advisories/2022/march/gfs",
            ("gfs", "https://www.msc.com/pt-br/newsroom/customer-advisories/2022/march/gfs"),
        ),
        (LISTING, None),
        ("https://www.msc.com/en/newsroom/customer-advisories?page=2", None),
        ("https://www.msc.com/tr/newsroom/news/2019/july/msc-gayane-incident-in-philadelphia", None),
        ("https://www.msc.com/en/newsroom/customer-advisories/2025/november", None),
        ("mailto:someone@msc.com", None),
    ],
)
def test_advisory_key(url: str, expected: tuple[str, str] | None) -> None:
    assert advisory_key(url) == expected


def test_url_month() -> None:
    assert url_month(BASE + "x") == (2025, 11)
    assert url_month("https://www.msc.com/en/newsroom/customer-advisories/2024/sept/x") == (2024, 9)
    assert url_month("https://www.msc.com/fr/newsroom/customer-advisories/2024/brumaire/x") is None


def test_the_6_november_listing() -> None:
    ml, ne, sd = _parse(_case("mali-suspension-2025-11-06"), ("ML", "NE", "SD"))
    [mali] = ml.notices
    assert mali.id == SUSPENSION_SLUG
    assert mali.title == "Suspension of Road Transportation for Mali Cargo"
    assert mali.url == BASE + SUSPENSION_SLUG  # the English copy, first in the page, without query
    assert mali.status is NoticeStatus.SUSPENSION
    assert mali.published_at == datetime(2025, 11, 6, tzinfo=UTC)
    assert mali.countries == ("CI", "GH", "GN", "ML", "SN", "TG")
    assert mali.text.startswith("Due to the current security situation, road transportation for Mali cargo")
    assert mali.text.endswith("We will notify customers once services resume.")
    assert (ml.key, ml.country, ml.level, ml.url) == ("ML", "ML", None, LISTING)
    assert ml.title == "MSC customer advisories — Mali"
    assert [s.name for s in ml.sections] == [SUSPENSION_SLUG]
    assert ml.sections[0].text.splitlines()[:2] == [mali.title, "2025-11-06 · suspension"]
    assert (ne.key, ne.notices, ne.sections) == ("NE", (), ())
    [surcharge] = sd.notices
    assert (surcharge.id, surcharge.status) == (
        "war-risk-surcharge-cargo-to-and-from-port-sudan",
        NoticeStatus.SURCHARGE,
    )
    assert surcharge.title == "War Risk Surcharge (WRS) – Cargo to and from Port Sudan"
    assert surcharge.published_at == datetime(2025, 11, 3, tzinfo=UTC)


def test_the_same_slug_in_several_languages_is_one_notice() -> None:
    html = _page(
        _card("/fr/newsroom/customer-advisories/2025/november/mali", "Mali (FR)", "11/06/2025"),
        _card("https://www.msccargo.cn/en/newsroom/customer-advisories/2025/november/mali", "Mali (CN)"),
        _card("/en/newsroom/customer-advisories/2025/november/mali", "Mali (EN)", "11/06/2025"),
    )
    [record] = _parse(html)
    [notice] = record.notices
    assert (notice.id, notice.title) == ("mali", "Mali (FR)")
    assert notice.url == "https://www.msc.com/fr/newsroom/customer-advisories/2025/november/mali"


def test_dates_come_from_the_item_then_from_the_url() -> None:
    html = _page(
        _card("/en/newsroom/customer-advisories/2025/november/a-mali", "Mali A", "11/06/2025"),
        _card("/en/newsroom/customer-advisories/2025/november/b-mali", "Mali B", "06/11/2025"),
        _card("/en/newsroom/customer-advisories/2025/october/c-mali", "Mali C"),
        _card("/en/newsroom/customer-advisories/2025/brumaire/d-mali", "Mali D"),
        '<article><time datetime="2025-11-07T23:30:00-02:00">7 Nov</time>'
        '<a href="/en/newsroom/customer-advisories/2025/november/e-mali">Mali E</a></article>',
    )
    [record] = _parse(html)
    dates = {n.id: n.published_at for n in record.notices}
    assert dates == {
        "a-mali": datetime(2025, 11, 6, tzinfo=UTC),
        "b-mali": datetime(2025, 11, 6, tzinfo=UTC),  # day first, since November is the URL's month
        "c-mali": datetime(2025, 10, 1, tzinfo=UTC),
        "d-mali": None,
        "e-mali": datetime(2025, 11, 8, 1, 30, tzinfo=UTC),
    }
    assert [n.id for n in record.notices] == ["d-mali", "c-mali", "a-mali", "b-mali", "e-mali"]


def test_title_falls_back_to_the_link_text_then_the_slug() -> None:
    html = _page(
        '<div><a href="/en/newsroom/customer-advisories/2025/november/mali-notice"><p>Mali notice</p>'
        "<p>11/06/2025</p><p>Trucks wait at Diboli.</p></a></div>",
        '<div><a href="/en/newsroom/customer-advisories/2025/november/bamako-road-update">Read more</a>'
        "</div>",
    )
    [record] = _parse(html)
    assert [(n.title, n.published_at, n.text) for n in record.notices] == [
        ("Bamako road update", datetime(2025, 11, 1, tzinfo=UTC), ""),
        ("Mali notice", datetime(2025, 11, 6, tzinfo=UTC), "Trucks wait at Diboli."),
    ]


def test_only_the_first_date_line_is_the_date() -> None:
    html = _page(
        _card(
            "/en/newsroom/customer-advisories/2025/november/mali-ers",
            "Mali: Emergency Risk Surcharge",
            "11/06/2025",
            "</p><p>Effective 1 December 2025.</p><p>Read more",
        )
    )
    [record] = _parse(html)
    [notice] = record.notices
    assert notice.published_at == datetime(2025, 11, 6, tzinfo=UTC)
    assert notice.text == "Effective 1 December 2025."
    assert notice.status is NoticeStatus.SURCHARGE


def test_max_items_reads_the_top_of_the_listing() -> None:
    [record] = _parse(_case("mali-suspension-2025-11-06"), ("SD",), max_items=1)
    assert record.notices == ()
    [record] = _parse(_case("mali-suspension-2025-11-06"), ("SD",), max_items=2)
    assert [n.status for n in record.notices] == [NoticeStatus.SURCHARGE]


def test_synonyms_option_adds_names() -> None:
    html = _page(_card("/en/newsroom/customer-advisories/2025/november/senou", "Sénou dry port closed"))
    assert _parse(html)[0].notices == ()
    [record] = _parse(html, synonyms={"ML": ["Sénou"]})
    assert [(n.id, n.status, n.countries) for n in record.notices] == [
        ("senou", NoticeStatus.DISRUPTION, ("ML",))
    ]


def test_unknown_options_are_rejected() -> None:
    with pytest.raises(ValidationError):
        _parse(_case("mali-suspension-2025-11-06"), item_page=True)


def test_without_watched_countries_every_named_country_gets_a_record() -> None:
    records = _parse(_case("mali-suspension-2025-11-06"), ())
    assert [r.key for r in records] == ["BD", "CI", "GH", "GN", "ML", "SD", "SN", "TG"]
    [page] = _parse(_page(_card("/en/newsroom/customer-advisories/2025/may/price", "Price announcement")), ())
    assert (page.key, [n.title for n in page.notices]) == ("page", ["Price announcement"])


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"<html><head><title>Access Denied</title></head><body>Reference #18.2f</body></html>",
        b'{"items": []}',
        _page('<a href="/en/newsroom/news/2025/november/mali">Mali</a>').encode(),
    ],
)
def test_a_page_without_advisories_is_a_parse_error(body: bytes) -> None:
    with pytest.raises(ParseError, match="no customer-advisory link"):
        _parse(body)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_crash(body: bytes) -> None:
    try:
        records = _parse(body)
    except ParseError:
        return
    assert records


def test_parse_is_deterministic() -> None:
    body = _case("mali-resumption-2025-11-10")
    assert [r.canonical() for r in _parse(body, ("ML", "BD"))] == [
        r.canonical() for r in _parse(body, ("ML", "BD"))
    ]


def test_the_10_november_resumption_relaxes_mali() -> None:
    [before] = _parse(_case("mali-suspension-2025-11-06"))
    [after] = _parse(_case("mali-resumption-2025-11-10"))
    assert [(n.id, n.status) for n in after.notices] == [
        (SUSPENSION_SLUG, NoticeStatus.SUSPENSION),
        ("resumption-of-road-transportation-for-mali-cargo", NoticeStatus.RESUMPTION),
    ]
    diff = diff_records(before, after)
    assert diff is not None
    change_class, reasons = classify(diff)
    assert change_class is ChangeClass.RELAXED
    assert "resumption: Resumption of Road Transportation for Mali Cargo" in reasons
