"""The ``cma-cgm`` kind: the real 2018 listing markup, ids, local news, errors, the Mali reversal."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.classify import classify
from monitor.config import SourceConfig
from monitor.diff import diff_records
from monitor.errors import ParseError
from monitor.models import ChangeClass, Notice, NoticeStatus, Record
from monitor.sources import build
from monitor.sources.cma_cgm import news_key

SITE = "https://www.cma-cgm.com"
CASES = Path(__file__).parent / "fixtures" / "kinds" / "cma-cgm"
EXCERPT = "carriers/cma-cgm/cma-cgm-homepage-2018-news-blocks.excerpt.html"
INFO = NoticeStatus.INFO


def _parse(
    body: bytes | str, countries: tuple[str, ...] = ("ML",), url: str = f"{SITE}/news", **options: Any
) -> list[Record]:
    config = SourceConfig.model_validate(
        {"id": "cma", "kind": "cma-cgm", "url": url, "countries": countries, "options": options}
    )
    data = body.encode() if isinstance(body, str) else body
    return build(config).parse(data, content_type=None, url=url)


def _case(name: str) -> bytes:
    return (CASES / name / "input.html").read_bytes()


def _day(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, tzinfo=UTC)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            f"{SITE}/news/1966/fak-rates-from-asia-to-north-europe",
            ("1966", f"{SITE}/news/1966/fak-rates-from-asia-to-north-europe"),
        ),
        (f"{SITE}/news/1966", ("1966", f"{SITE}/news/1966")),
        (f"{SITE}/news/1966/x?utm=1#top", ("1966", f"{SITE}/news/1966/x")),
        (
            f"{SITE}/local/belgium/news/511/booking-cancellation-fee",
            ("belgium/511", f"{SITE}/local/belgium/news/511/booking-cancellation-fee"),
        ),
        (f"{SITE}/local/United-States/news/9/x", ("united-states/9", f"{SITE}/local/United-States/news/9/x")),
        (f"{SITE}/news/corporate-feed", None),
        (f"{SITE}/news/business-feed", None),
        (f"{SITE}/latest-news", None),
        (f"{SITE}/local/united-states/all-news", None),
        ("http://www.cma-cgm.com/products-services/ocean-alliance#download", None),
    ],
)
def test_news_key(url: str, expected: tuple[str, str] | None) -> None:
    assert news_key(url) == expected


# The six news items of the real 2018 home page excerpt: (id, title, date, status, countries).
REAL_2018 = [
    (
        "1973",
        "2017 ANNUAL FINANCIAL RESULTS: CMA CGM pursues its development strategy and once again delivers "
        "strong operating results, outperforming its industry.",
        _day(2018, 3, 16),
        (),
        "/news/1973/2017-annual-financial-results-cma-cgm-pursues-its-development-strategy-and-once-again-"
        "delivers-strong-operating-results-outperforming-its-industry-",
    ),
    (
        "1943",
        "The CMA CGM BIANCA, largest ship to call in Cameroon (Kribi)",
        _day(2018, 3, 2),
        ("CM",),
        "/news/1943/the-cma-cgm-bianca-largest-ship-to-call-in-cameroon-kribi-",
    ),
    (
        "1936",
        "The CMA CGM Group to set up a multi-temperature logistics facility at DP World London Gateway to "
        "offer new services to its customers",
        _day(2018, 2, 23),
        ("GB",),
        "/news/1936/the-cma-cgm-group-to-set-up-a-multi-temperature-logistics-facility-at-dp-world-london-"
        "gateway-to-offer-new-services-to-its-customers",
    ),
    (
        "1966",
        "FAK Rates - From Asia to North Europe",
        _day(2018, 3, 15),
        (),
        "/news/1966/fak-rates-from-asia-to-north-europe",
    ),
    (
        "1970",
        "GRR - From Asia to West Africa",
        _day(2018, 3, 15),
        (),
        "/news/1970/grr-from-asia-to-west-africa",
    ),
    (
        "1969",
        "GRR - From Asia to Mozambique and Madagascar",
        _day(2018, 3, 15),
        ("MG", "MZ"),
        "/news/1969/grr-from-asia-to-mozambique-and-madagascar",
    ),
]


def _expected(notice_id: str) -> Notice:
    [(_, title, when, countries, path)] = [row for row in REAL_2018 if row[0] == notice_id]
    return Notice(notice_id, title, SITE + path, INFO, when, countries, "")


def test_the_real_2018_listing(real_samples: Path) -> None:
    body = (real_samples / EXCERPT).read_bytes()
    records = _parse(body, ("CM", "GB", "MG", "MZ", "ML"), url=f"{SITE}/")
    assert [r.key for r in records] == ["CM", "GB", "MG", "MZ", "ML"]
    cm, gb, mg, mz, ml = records
    assert cm.notices == (_expected("1943"),)
    assert gb.notices == (_expected("1936"),)
    assert mg.notices == mz.notices == (_expected("1969"),)
    assert ml.notices == ()
    assert cm.title == "CMA CGM news — Cameroon"
    assert cm.url == f"{SITE}/"
    assert cm.sections[0].name == "1943"
    assert (
        cm.sections[0].text
        == "The CMA CGM BIANCA, largest ship to call in Cameroon (Kribi)\n2018-03-02 · info"
    )


def test_the_real_2018_listing_without_countries_reads_all_six_items(real_samples: Path) -> None:
    body = (real_samples / EXCERPT).read_bytes()
    records = _parse(body, (), url=f"{SITE}/")
    assert [r.key for r in records] == ["CM", "GB", "MG", "MZ"]
    # With names that every item contains, all six notices land in the Mali record.
    everything = _parse(body, ("ML",), url=f"{SITE}/", synonyms={"ML": ["CMA CGM", "Asia"]})
    assert [n.id for n in everything[0].notices] == ["1936", "1943", "1966", "1969", "1970", "1973"]
    for notice in everything[0].notices:
        expected = _expected(notice.id)
        assert (notice.title, notice.url, notice.published_at, notice.status, notice.text) == (
            expected.title, expected.url, expected.published_at, INFO, "",
        )  # fmt: skip


def test_the_4_november_intermodal_notice() -> None:
    ml, ne = _parse(_case("intermodal-notice-mali-2025-11-04"), ("ML", "NE"))
    [notice] = ml.notices
    assert notice.id == "5318"
    assert notice.title == "Intermodal Notice MALI – Temporary Service Suspension"
    assert notice.url == f"{SITE}/news/5318/intermodal-notice-mali-temporary-service-suspension"
    assert notice.status is NoticeStatus.SUSPENSION
    assert notice.published_at == _day(2025, 11, 4)
    assert notice.countries == ("CI", "GH", "GN", "ML", "SN")
    assert notice.text.splitlines()[0] == "Customer Advisory"  # the category line
    assert [(n.id, n.status) for n in ne.notices] == [("5309", INFO)]


def test_local_news_is_keyed_by_site_and_names_its_country() -> None:
    [sn] = _parse(_case("intermodal-notice-mali-2025-11-04"), ("SN",))
    assert [(n.id, n.status) for n in sn.notices] == [
        ("senegal/812", NoticeStatus.DISRUPTION),
        ("5318", NoticeStatus.SUSPENSION),
    ]
    ml, ne, bf = _parse(_case("local-news-article-markup"), ("ML", "NE", "BF"))
    assert [(n.id, n.status, n.published_at) for n in ml.notices] == [
        ("mali/213", NoticeStatus.SUSPENSION, _day(2025, 11, 4)),
        ("mali/214", NoticeStatus.RESUMPTION, _day(2025, 11, 6)),
    ]
    assert [(n.id, n.published_at, n.countries) for n in ne.notices] == [
        ("niger/77", _day(2024, 1, 4), ("BJ", "NE"))
    ]
    assert bf.notices == ()


def test_the_6_november_reversal_relaxes_mali() -> None:
    [before] = _parse(_case("intermodal-notice-mali-2025-11-04"))
    [after] = _parse(_case("mali-reversal-2025-11-06"))
    assert [(n.id, n.status) for n in after.notices] == [
        ("5318", NoticeStatus.SUSPENSION),
        ("5321", NoticeStatus.RESUMPTION),
    ]
    diff = diff_records(before, after)
    assert diff is not None
    change_class, reasons = classify(diff)
    assert change_class is ChangeClass.RELAXED
    assert reasons[0] == "resumption: Intermodal Notice MALI – Update"


def test_synonyms_and_max_items() -> None:
    [record] = _parse(_case("local-news-article-markup"), ("ML",), max_items=1)
    assert [n.id for n in record.notices] == ["mali/214"]
    html = '<ul><li><p class="title"><a href="/news/7/senou">Sénou dry port: congestion</a></p></li></ul>'
    assert _parse(html)[0].notices == ()
    [record] = _parse(html, synonyms={"ML": "Sénou"})
    assert [(n.id, n.status, n.published_at) for n in record.notices] == [
        ("7", NoticeStatus.DISRUPTION, None)
    ]


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"<html><body><h1>Please verify you are a human</h1></body></html>",
        b'<html><body><a href="/news/corporate-feed">RSS</a><a href="/latest-news">All</a></body></html>',
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
    ],
)
def test_a_page_without_news_links_is_a_parse_error(body: bytes) -> None:
    with pytest.raises(ParseError, match="no news link"):
        _parse(body)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_crash(body: bytes) -> None:
    try:
        records = _parse(body)
    except ParseError:
        return
    assert records


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_item_text_never_crashes(text: str) -> None:
    html = f'<ul><li><p class="title"><a href="/news/1/x">{text}</a></p><p>{text}</p></li></ul>'
    [record] = _parse(html.encode("utf-8", "surrogatepass"), ("ML",))
    assert all(n.id == "1" for n in record.notices)
