"""The ``uk-fcdo`` kind: real GOV.UK Content API payloads, the level and flag rules, the slug
table, the index fetch against a real local server, and robustness against arbitrary bytes."""

from __future__ import annotations

import asyncio
import copy
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pycountry
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.config import SourceConfig, loads
from monitor.errors import FetchError, ParseError
from monitor.http import Fetcher, HttpSettings, build_client
from monitor.models import Fetched, Record, Scope, Section, StaffDeparture, Validators, Zone
from monitor.sources import build
from monitor.sources.uk_fcdo import (
    BUNDLE_CONTENT_TYPE,
    IndexEntry,
    UkFcdoSource,
    country_slug,
    read_index,
    slug_codes,
)
from tests.support.httpserver import LocalServer

ROOT = Path(__file__).resolve().parents[1]
ITEM_URL = "https://www.gov.uk/api/content/foreign-travel-advice/"
INDEX_URL = "https://www.gov.uk/api/content/foreign-travel-advice"
FIXTURES = ROOT / "tests" / "fixtures" / "kinds" / "uk-fcdo"


def source(url: str = ITEM_URL + "x", countries: tuple[str, ...] = ()) -> UkFcdoSource:
    config = SourceConfig.model_validate({"id": "uk", "kind": "uk-fcdo", "url": url, "countries": countries})
    built = build(config)
    assert isinstance(built, UkFcdoSource)
    return built


def parse(payload: bytes | dict[str, Any], countries: tuple[str, ...] = ()) -> list[Record]:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return source(countries=countries).parse(body, content_type="application/json", url=ITEM_URL + "x")


def sample(real_samples: Path, name: str) -> dict[str, Any]:
    data = json.loads((real_samples / "uk-fcdo" / name).read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def item(
    warnings: str = "<p>Most visits are trouble-free.</p>",
    *,
    alert: list[str] | None = None,
    slug: str = "chad",
    name: str = "Chad",
    other_part: str = "<p>Carry your passport.</p>",
) -> dict[str, Any]:
    """A minimal travel_advice item in the Content API shape."""
    return {
        "base_path": f"/foreign-travel-advice/{slug}",
        "document_type": "travel_advice",
        "title": f"{name} travel advice",
        "public_updated_at": "2025-03-04T10:00:00+00:00",
        "updated_at": "2025-03-05T10:00:00+00:00",
        "details": {
            "alert_status": alert or [],
            "change_description": "Latest update: new advice.",
            "country": {"name": name, "slug": slug, "synonyms": []},
            "parts": [
                {"slug": "warnings-and-insurance", "title": "Warnings and insurance", "body": warnings},
                {"slug": "safety-and-security", "title": "Safety and security", "body": other_part},
            ],
        },
    }


def one(payload: dict[str, Any]) -> Record:
    [record] = parse(payload)
    return record


# --- real samples ---------------------------------------------------------------------------


def test_haiti_2026_is_level_4_for_the_whole_country(real_samples: Path) -> None:
    [record] = parse(sample(real_samples, "haiti.content-api.2026-10-07.trimmed.json"))
    assert (record.key, record.country) == ("HT", "HT")
    assert record.level == 4
    assert record.level_label == "FCDO advises against all travel to Haiti"
    assert record.scope is Scope.WHOLE_COUNTRY
    assert record.zones == ()
    # public_updated_at 2025-12-10T13:57:03+00:00, not the republish time 2026-10-07.
    assert record.updated_at == datetime(2025, 12, 10, 13, 57, 3, tzinfo=UTC)
    assert record.published_at == datetime(2013, 3, 19, tzinfo=UTC)
    assert record.url == "https://www.gov.uk/foreign-travel-advice/haiti"
    assert record.title == "Haiti travel advice"
    assert (record.leave_now, record.staff_departure, record.embassy_closed) == (
        False,
        StaffDeparture.NONE,
        False,
    )
    assert [s.name for s in record.sections] == [
        "latest update",
        "warnings-and-insurance",
        "entry-requirements",
        "safety-and-security",
        "health",
        "getting-help",
    ]
    assert record.sections[0].text == (
        "New information about dual nationals returning to the UK (‘Entry requirements’ page)."
    )
    assert record.sections[1].text.splitlines()[1] == "FCDO advises against all travel to Haiti"
    assert record.extra == {"slug": "haiti", "alert_status": ["avoid_all_travel_to_whole_country"]}


def test_turkey_text_overrides_an_empty_alert_status_with_zones(real_samples: Path) -> None:
    data = sample(real_samples, "turkey.content-api.example.json")
    assert data["details"]["alert_status"] == []
    [record] = parse(data)
    assert record.key == "TR"
    assert record.level == 1  # the rest of Turkey has no advice against travel
    assert record.level_label is None
    assert record.scope is Scope.PARTS
    assert record.zones == (
        Zone(
            "within 10 km of the border with Syria and to the city of Diyarbakir",
            4,
            "advise against all travel",
        ),
        Zone(
            "the remaining areas of Sirnak, Mardin, Sanliurfa, Gaziantep, Diyarbakir, Kilis and Hatay"
            " provinces",
            3,
            "advise against all but essential travel",
        ),
        Zone("the provinces of Siirt, Tunceli and Hakkari", 3, "advise against all but essential travel"),
    )
    assert record.updated_at == datetime(2017, 2, 14, 15, 33, 43, tzinfo=UTC)
    assert record.published_at == datetime(2016, 2, 29, 9, 24, 10, tzinfo=UTC)


def test_albania_is_level_1(real_samples: Path) -> None:
    [record] = parse(sample(real_samples, "albania.content-api.example.json"))
    assert (record.key, record.level, record.level_label) == ("AL", 1, None)
    assert record.scope is Scope.WHOLE_COUNTRY
    assert record.zones == ()
    assert record.updated_at == datetime(2017, 2, 14, 15, 42, 21, tzinfo=UTC)
    assert [s.name for s in record.sections] == [
        "latest update",
        "summary",
        "safety-and-security",
        "terrorism",
        "local-laws-and-customs",
        "entry-requirements",
        "health",
        "natural-disasters",
        "money",
        "travel-advice-help-and-support",
    ]
    assert record.sections[1].text.startswith("The main opposition party has called for mass protests")
    assert "withdrawn_at" not in record.extra


def test_withdrawn_albania_keeps_its_record_with_a_withdrawn_section(real_samples: Path) -> None:
    [live] = parse(sample(real_samples, "albania.content-api.example.json"))
    [withdrawn] = parse(sample(real_samples, "albania-withdrawn.content-api.example.json"))
    assert withdrawn.sections[0] == Section(
        "withdrawn", "This information has been archived as it is now out of date."
    )
    assert withdrawn.extra["withdrawn_at"] == "2017-02-28T13:05:30+00:00"
    assert withdrawn.sections[1:] == live.sections
    assert (withdrawn.level, withdrawn.scope, withdrawn.updated_at) == (
        1,
        Scope.WHOLE_COUNTRY,
        live.updated_at,
    )


def test_antarctica_without_parts_takes_its_level_from_alert_status(real_samples: Path) -> None:
    [record] = parse(sample(real_samples, "antarctica-no-parts.content-api.example.json"))
    assert (record.key, record.level, record.scope) == ("AQ", 1, Scope.WHOLE_COUNTRY)
    assert record.sections == (Section("latest update", "Latest update: Info about the cold."),)
    assert record.updated_at == datetime(2015, 4, 28, 16, 11, 23, tzinfo=UTC)
    assert record.published_at is None
    assert record.url == "https://www.gov.uk/foreign-travel-advice/antarctica"


def test_read_index_lists_slugs_codes_and_major_update_times(real_samples: Path) -> None:
    entries = read_index(sample(real_samples, "foreign-travel-advice-index.content-api.example.json"))
    assert [(e.slug, e.codes, e.public_updated_at) for e in entries] == [
        ("afghanistan", ("AF",), datetime(2015, 1, 1, tzinfo=UTC)),
        ("austria", ("AT",), datetime(2015, 1, 2, tzinfo=UTC)),
        ("finland", ("FI",), datetime(2015, 1, 3, tzinfo=UTC)),
        ("india", ("IN",), datetime(2015, 1, 4, tzinfo=UTC)),
        ("malaysia", ("MY",), datetime(2015, 1, 5, tzinfo=UTC)),
        ("sao-tome-and-principe", ("ST",), datetime(2015, 12, 8, 17, 2, 23, tzinfo=UTC)),
        ("spain", ("ES",), datetime(2015, 1, 6, tzinfo=UTC)),
    ]
    assert entries[2] == IndexEntry(
        "finland",
        ("FI",),
        "Finland travel advice",
        datetime(2015, 1, 3, tzinfo=UTC),
        "Latest update: Summary – removal of advice on Northern Ireland football match",
    )


def test_read_index_skips_children_without_a_country_and_refuses_other_documents(real_samples: Path) -> None:
    index = sample(real_samples, "foreign-travel-advice-index.content-api.example.json")
    index["links"]["children"].insert(0, {"title": "Something else", "details": {}})
    assert [e.slug for e in read_index(index)][:2] == ["afghanistan", "austria"]
    with pytest.raises(ParseError, match=r"not a GOV\.UK travel_advice_index"):
        read_index(sample(real_samples, "albania.content-api.example.json"))


def test_a_bare_index_is_not_parsed_as_advice(real_samples: Path) -> None:
    with pytest.raises(ParseError, match="index carries no levels"):
        parse(sample(real_samples, "foreign-travel-advice-index.content-api.example.json"))


def test_republish_gives_the_same_record(real_samples: Path) -> None:
    data = sample(real_samples, "haiti.content-api.2026-10-07.trimmed.json")
    republished = copy.deepcopy(data)
    republished["updated_at"] = "2026-11-01T08:00:00+00:00"
    republished["details"]["updated_at"] = "2026-11-01T08:00:00Z"
    republished["details"]["reviewed_at"] = "2026-11-01T08:00:00Z"
    republished["details"]["document"]["id"] = "00000000-1111-2222-3333-444444444444"
    republished["publishing_request_id"] = "1-2-3"
    republished["links"] = {"parent": [{"title": "Foreign travel advice"}]}
    republished["details"]["change_history"] = [{"public_timestamp": "2025-12-10", "note": "x"}]
    [before], [after] = parse(data), parse(republished)
    assert before.canonical() == after.canonical()


def test_publishing_side_body_shape_is_read(real_samples: Path) -> None:
    [record] = parse(sample(real_samples, "publisher_v2-put-content.example.json"))
    assert record.key == "AL"
    assert record.sections[1] == Section(
        "summary", "Over 80,000 British nationals visit Albania every year. Most visits are trouble-free."
    )


# --- the slug table ---------------------------------------------------------------------------


def test_every_destination_of_the_publisher_list_is_mapped(real_samples: Path) -> None:
    listed = yaml.safe_load((real_samples / "uk-fcdo" / "countries.travel-advice-publisher.yml").read_text())
    table = yaml.safe_load((ROOT / "monitor" / "data" / "uk_fcdo_slugs.yaml").read_text())
    assert sorted(table["destinations"]) == sorted(entry["slug"] for entry in listed)
    codes = [code for entry in listed for code in slug_codes(entry["slug"])]
    assert len(codes) == len(set(codes)), "an ISO code belongs to two destinations"
    assert all(pycountry.countries.get(alpha_2=code) for code in codes if code != "XK")


@pytest.mark.parametrize(
    ("slug", "codes"),
    [
        ("usa", ("US",)),
        ("norway", ("NO",)),
        ("cote-d-ivoire", ("CI",)),
        ("the-gambia", ("GM",)),
        ("democratic-republic-of-the-congo", ("CD",)),
        ("congo", ("CG",)),
        ("cook-islands-tokelau-and-niue", ("CK", "TK", "NU")),
        ("st-martin-and-st-barthelemy", ("MF", "BL")),
        ("palestine", ("PS",)),
        ("antarctica", ("AQ",)),
        ("jerusalem", ()),
        ("atlantis", ()),
    ],
)
def test_slug_codes(slug: str, codes: tuple[str, ...]) -> None:
    assert slug_codes(slug) == codes


def test_country_slug_uses_current_slugs() -> None:
    assert country_slug("ML") == "mali"
    assert country_slug("aq") == "antarctica-british-antarctic-territory"
    assert country_slug("NU") == "cook-islands-tokelau-and-niue"
    assert country_slug("GB") is None


# --- levels, scope and zones ----------------------------------------------------------------------


def test_alert_status_alone_gives_the_national_level_and_frontend_wording() -> None:
    record = one(item(alert=["avoid_all_but_essential_travel_to_whole_country"]))
    assert (record.level, record.scope, record.zones) == (3, Scope.WHOLE_COUNTRY, ())
    assert record.level_label == "FCDO advises against all but essential travel to Chad"


def test_parts_alert_without_text_is_a_generic_zone() -> None:
    record = one(item(alert=["avoid_all_travel_to_parts"]))
    assert (record.level, record.level_label, record.scope) == (1, None, Scope.PARTS)
    assert record.zones == (Zone("parts of Chad", 4, "FCDO advises against all travel to parts of Chad"),)


def test_whole_country_and_parts_combine() -> None:
    text = "<p>FCDO advises against all travel to the Lake Chad region.</p>"
    record = one(
        item(text, alert=["avoid_all_but_essential_travel_to_whole_country", "avoid_all_travel_to_parts"])
    )
    assert (record.level, record.scope) == (3, Scope.PARTS)
    assert record.zones == (Zone("the Lake Chad region", 4, "advises against all travel"),)


def test_rest_of_the_country_sets_the_national_level() -> None:
    text = (
        "<p>FCDO advises against all travel to the provinces of Borkou and Ennedi, and all but essential "
        "travel to the rest of the country.</p>"
    )
    record = one(item(text))
    assert record.level == 3
    assert record.level_label == (
        "FCDO advises against all travel to the provinces of Borkou and Ennedi, and all but essential "
        "travel to the rest of the country"
    )
    assert record.zones == (Zone("the provinces of Borkou and Ennedi", 4, "advises against all travel"),)


def test_text_wins_over_an_empty_alert_status_for_the_whole_country() -> None:
    record = one(item("<p>FCDO advises against all travel to Chad, due to fighting.</p>"))
    assert (record.level, record.scope, record.level_label) == (
        4,
        Scope.WHOLE_COUNTRY,
        "FCDO advises against all travel to Chad",
    )


def test_the_country_except_a_place_is_a_zone() -> None:
    record = one(item("<p>FCDO advises against all travel to Chad, except the capital N'Djamena.</p>"))
    assert (record.level, record.scope) == (1, Scope.PARTS)
    assert record.zones == (Zone("Chad, except the capital N'Djamena", 4, "advises against all travel"),)


def test_lifted_or_neighbouring_advice_sets_no_level() -> None:
    text = (
        "<p>FCDO no longer advises against all travel to the Tibesti region.</p>"
        '<p>FCDO advises against all travel to <a href="/foreign-travel-advice/sudan">Sudan</a>.</p>'
        "<p>Consular support is severely limited where FCDO advises against travel.</p>"
    )
    record = one(item(text))
    assert (record.level, record.zones, record.scope) == (1, (), Scope.WHOLE_COUNTRY)


def test_advice_outside_the_headline_part_is_not_a_level() -> None:
    record = one(item(other_part="<p>FCDO advises against all travel to the north.</p>"))
    assert (record.level, record.zones) == (1, ())


# --- flags ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "leave_now", "staff", "closed"),
    [
        (
            "<p>You should leave immediately by commercial flight if you judge it safe to do so.</p>",
            True,
            "none",
            False,
        ),
        (
            "<p>FCDO advises British nationals in Chad to leave by any available route.</p>",
            True,
            "none",
            False,
        ),
        ("<p>If you are in Chad, you should leave Chad.</p>", True, "none", False),
        ("<p>FCDO no longer advises British nationals to leave Chad.</p>", False, "none", False),
        ("<p>The advice to leave immediately has been lifted.</p>", False, "none", False),
        ("<p>Make plans to leave the country if the situation gets worse.</p>", False, "none", False),
        (
            "<p>Non-essential British embassy staff have been temporarily withdrawn from N'Djamena.</p>",
            False,
            "ordered",
            False,
        ),
        ("<p>The UK has temporarily withdrawn its embassy staff.</p>", False, "ordered", False),
        ("<p>Embassy staff who were withdrawn in May have now returned.</p>", False, "none", False),
        (
            "<p>The British Embassy in N'Djamena has temporarily suspended operations.</p>",
            False,
            "none",
            True,
        ),
        ("<p>The British Embassy is temporarily closed.</p>", False, "none", True),
        ("<p>The British Embassy has reopened after being closed.</p>", False, "none", False),
        ("<p>The British Embassy is not closed.</p>", False, "none", False),
        ("<p>Several airlines have suspended operations.</p>", False, "none", False),
    ],
)
def test_flags(text: str, leave_now: bool, staff: str, closed: bool) -> None:
    record = one(item(text))
    assert (record.leave_now, str(record.staff_departure), record.embassy_closed) == (
        leave_now,
        staff,
        closed,
    )


def test_flags_are_read_from_the_headline_part_only() -> None:
    record = one(item(other_part="<p>If a fire alarm sounds, leave immediately.</p>"))
    assert record.leave_now is False


# --- countries ------------------------------------------------------------------------------------


def test_a_destination_with_several_codes_gives_one_record_per_code() -> None:
    payload = item(slug="cook-islands-tokelau-and-niue", name="Cook Islands, Tokelau and Niue")
    assert [r.key for r in parse(payload)] == ["CK", "TK", "NU"]
    assert [r.key for r in parse(payload, countries=("NU",))] == ["NU"]


def test_an_item_about_another_country_is_refused_clearly() -> None:
    with pytest.raises(ParseError, match="the payload is about TD, none of the configured countries ML"):
        parse(item(), countries=("ML",))


# --- broken payloads ----------------------------------------------------------------------------


def _without_details() -> dict[str, Any]:
    data = item()
    del data["details"]
    return data


def _with(path: str, value: object) -> dict[str, Any]:
    data = item()
    *parents, last = path.split(".")
    target = data
    for key in parents:
        target = target[key]
    target[last] = value
    return data


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (_without_details(), "has no details"),
        (_with("details.alert_status", None), "alert_status is missing"),
        (_with("details.alert_status", ["avoid_everything"]), "unknown alert_status"),
        (_with("details.country", {"name": "Chad"}), "no details.country.slug"),
        (_with("details.parts", [{"slug": "summary"}]), "no HTML body"),
        (_with("details.parts", "summary"), "parts is not a list"),
        (_with("public_updated_at", "last Tuesday"), "public_updated_at is not an ISO 8601 time"),
        (_with("details.country", {"name": "Jerusalem", "slug": "jerusalem"}), "no ISO 3166-1 code"),
        (_with("document_type", "guide"), "not a GOV.UK travel_advice item"),
        ([1, 2], "not a GOV.UK travel_advice item"),
    ],
)
def test_broken_items_are_parse_errors(payload: Any, reason: str) -> None:
    with pytest.raises(ParseError, match=re.escape(reason)):
        parse(json.dumps(payload).encode())


def test_the_html_page_is_refused_with_the_api_url_to_use() -> None:
    expected = r"not JSON \(Expecting value at line 1 column 1\); the kind reads the Content API"
    with pytest.raises(ParseError, match=expected):
        parse(b"<!doctype html><title>Mali travel advice - GOV.UK</title>")


def test_a_bundle_without_items_is_a_parse_error(real_samples: Path) -> None:
    index = sample(real_samples, "foreign-travel-advice-index.content-api.example.json")
    with pytest.raises(ParseError, match="holds no travel-advice item"):
        parse({"index": index, "items": {}})
    with pytest.raises(ParseError, match=r"not a GOV\.UK travel_advice_index"):
        parse({"index": {}, "items": {"chad": item()}})


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=512) | JSON.map(lambda value: json.dumps(value).encode()))
def test_arbitrary_payloads_give_records_or_parse_errors(body: bytes) -> None:
    try:
        records = parse(body)
    except ParseError:
        return
    assert all(1 <= (r.level or 0) <= 4 for r in records)


ITEM_FIELDS = st.fixed_dictionaries(
    {
        "alert_status": st.lists(
            st.sampled_from(["avoid_all_travel_to_parts", "avoid_all_travel_to_whole_country"])
        )
        | JSON,
        "country": st.fixed_dictionaries(
            {"slug": st.sampled_from(["chad", "mali", "x"]) | JSON, "name": JSON}
        ),
        "parts": st.lists(
            st.fixed_dictionaries({"slug": st.text(max_size=5) | JSON, "body": st.text() | JSON})
        )
        | JSON,
        "change_description": JSON,
    }
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ITEM_FIELDS, JSON, JSON)
def test_item_shaped_payloads_give_records_or_parse_errors(
    details: Any, updated: Any, withdrawn: Any
) -> None:
    payload = {"document_type": "travel_advice", "details": details, "public_updated_at": updated}
    payload["withdrawn_notice"] = withdrawn
    try:
        records = parse(payload)
    except ParseError:
        return
    assert records and all(r.level in (1, 3, 4) for r in records)


# --- the index fetch, against a real local server ----------------------------------------------


def _fetch(src: UkFcdoSource, validators: Validators | None = None) -> Fetched:
    async def run() -> Fetched:
        http = HttpSettings()
        async with Fetcher(build_client(http), http) as fetcher:
            return await src.fetch(fetcher, validators)

    return asyncio.run(run())


def _serve(server: LocalServer) -> None:
    bundle = json.loads((FIXTURES / "index-bundle-filtered" / "input.json").read_text(encoding="utf-8"))
    server.route(
        "/api/content/foreign-travel-advice",
        json.dumps(bundle["index"]),
        content_type="application/json",
        etag='"i1"',
    )
    for slug, payload in bundle["items"].items():
        server.route(
            f"/api/content/foreign-travel-advice/{slug}", json.dumps(payload), content_type="application/json"
        )


def test_index_fetch_bundles_the_watched_items(http_server: LocalServer) -> None:
    _serve(http_server)
    src = source(http_server.url("/api/content/foreign-travel-advice"), ("ML", "NE"))
    fetched = _fetch(src)
    assert (fetched.status, fetched.content_type) == (200, BUNDLE_CONTENT_TYPE)
    assert fetched.validators.etag == '"i1" uk-fcdo-watch=mali,niger'
    bundle = json.loads(fetched.body)
    assert sorted(bundle["items"]) == ["mali", "niger"]
    assert bundle["index"]["document_type"] == "travel_advice_index"
    records = src.parse(fetched.body, content_type=fetched.content_type, url=fetched.final_url)
    assert [(r.key, r.level, r.leave_now, r.scope) for r in records] == [
        ("ML", 4, True, Scope.WHOLE_COUNTRY),
        ("NE", 1, False, Scope.PARTS),
    ]
    assert [r.path for r in http_server.requests] == [
        "/api/content/foreign-travel-advice",
        "/api/content/foreign-travel-advice/mali",
        "/api/content/foreign-travel-advice/niger",
    ]


def test_an_unchanged_index_is_a_304_without_item_requests(http_server: LocalServer) -> None:
    _serve(http_server)
    src = source(http_server.url("/api/content/foreign-travel-advice"), ("ML",))
    first = _fetch(src)
    assert first.validators == Validators(etag='"i1" uk-fcdo-watch=mali')
    second = _fetch(src, first.validators)
    assert second.not_modified
    assert second.validators == first.validators
    assert http_server.requests[-1].headers.get("If-None-Match") == '"i1"'
    assert http_server.hits("/api/content/foreign-travel-advice/mali") == 1


def test_a_newly_watched_country_is_fetched_despite_an_unchanged_index(http_server: LocalServer) -> None:
    _serve(http_server)
    url = http_server.url("/api/content/foreign-travel-advice")
    stored = _fetch(source(url, ("ML",))).validators
    fetched = _fetch(source(url, ("ML", "NE")), stored)
    assert fetched.status == 200
    assert "If-None-Match" not in http_server.requests[-3].headers
    assert sorted(json.loads(fetched.body)["items"]) == ["mali", "niger"]
    assert fetched.validators == Validators(etag='"i1" uk-fcdo-watch=mali,niger')


def test_a_failed_item_fails_the_whole_check(http_server: LocalServer) -> None:
    _serve(http_server)
    http_server.route(
        "/api/content/foreign-travel-advice/niger", "gone", status=410, content_type="text/plain"
    )
    src = source(http_server.url("/api/content/foreign-travel-advice"), ("ML", "NE"))
    with pytest.raises(FetchError, match="410"):
        _fetch(src)


@pytest.mark.parametrize(
    ("countries", "reason"), [((), "set `countries`"), (("GB",), "no travel advice for GB")]
)
def test_the_index_needs_countries_with_fcdo_advice(
    http_server: LocalServer, countries: tuple[str, ...], reason: str
) -> None:
    _serve(http_server)
    with pytest.raises(FetchError, match=re.escape(reason)):
        _fetch(source(http_server.url("/api/content/foreign-travel-advice"), countries))
    assert http_server.requests == []


def test_an_index_that_is_not_json_is_returned_for_parse_to_refuse(http_server: LocalServer) -> None:
    http_server.route("/api/content/foreign-travel-advice", "<html>maintenance</html>")
    src = source(http_server.url("/api/content/foreign-travel-advice"), ("ML",))
    fetched = _fetch(src)
    assert fetched.body == b"<html>maintenance</html>"
    with pytest.raises(ParseError, match="not JSON"):
        src.parse(fetched.body, content_type=fetched.content_type, url=fetched.final_url)


def test_an_item_url_is_one_conditional_get(http_server: LocalServer) -> None:
    _serve(http_server)
    src = source(http_server.url("/api/content/foreign-travel-advice/mali"), ("ML",))
    fetched = _fetch(src)
    [record] = src.parse(fetched.body, content_type=fetched.content_type, url=fetched.final_url)
    assert (record.key, record.staff_departure) == ("ML", StaffDeparture.ORDERED)
    assert http_server.hits("/api/content/foreign-travel-advice/mali") == 1
    assert len(http_server.requests) == 1


# --- docs ---------------------------------------------------------------------------------------------


def test_the_documented_config_stanza_is_valid() -> None:
    doc = (ROOT / "docs" / "kinds" / "uk-fcdo.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", doc, flags=re.DOTALL)
    assert blocks
    for block in blocks:
        config = loads(block, path=Path("uk-fcdo.md"), environ={})
        assert {s.kind for s in config.sources} == {"uk-fcdo"}
