"""The ``ca-gac`` kind: the real Haiti file, the vocabulary, errors, zones, dates and phrases."""

from __future__ import annotations

import contextlib
import copy
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.config import SourceConfig, loads
from monitor.errors import ParseError
from monitor.models import Record, Scope, Zone
from monitor.sources import build
from monitor.sources.ca_gac import vocabulary

URL = "https://data.international.gc.ca/travel-voyage/cta-cap-ml.json"
DOC = Path(__file__).resolve().parents[1] / "docs" / "kinds" / "ca-gac.md"
REGIONAL = " (with regional advisories)"


def parse(payload: bytes | dict[str, Any], countries: tuple[str, ...] = ()) -> list[Record]:
    config = SourceConfig.model_validate({"id": "ca", "kind": "ca-gac", "url": URL, "countries": countries})
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return build(config).parse(body, content_type="application/json", url=URL)


def country_file(**data: Any) -> dict[str, Any]:
    eng = {
        "name": "Mali",
        "url-slug": "mali",
        "friendly-date": "October 29, 2025 09:42 EDT",
        "advisory-text": "Avoid all travel",
        "recent-updates": "Risk levels – editorial change",
    }
    base = {"country-iso": "ML", "advisory-state": 3, "update-metadata": "Editorial change", "eng": eng}
    return {
        "metadata": {"generated": {"timestamp": 1761747412, "date": "2025-10-29 10:16:52"}},
        "data": base | data,
    }


def one(**data: Any) -> Record:
    [record] = parse(country_file(**data))
    return record


def eng(**fields: Any) -> dict[str, Any]:
    return dict(country_file()["data"]["eng"]) | fields


# --- the real Haiti file -----------------------------------------------------------------------


def haiti(real_samples: Path) -> dict[str, Any]:
    path = real_samples / "ca-gac" / "cta-cap-ht.2026-09-24.trimmed.json"
    payload: dict[str, Any] = json.loads(path.read_bytes())
    return payload


def test_real_haiti_file(real_samples: Path) -> None:
    [record] = parse(haiti(real_samples))
    assert (record.key, record.country) == ("HT", "HT")
    assert (record.level, record.level_label, record.scope, record.zones) == (
        4,
        "Avoid all travel",
        Scope.WHOLE_COUNTRY,
        (),
    )
    # "September 24, 2026 08:53 EDT"
    assert record.updated_at == datetime(2026, 9, 24, 12, 53, tzinfo=UTC)
    assert record.published_at is None
    assert record.title == "Travel advice and advisories for Haiti"
    assert record.url == "https://travel.gc.ca/destinations/haiti"
    assert [s.name for s in record.sections] == ["Latest updates", "Risk levels", "Safety and security"]
    assert record.sections[0].text == "Health – editorial change"
    assert record.sections[1].text.startswith("HAITI - AVOID ALL TRAVEL\nAvoid all travel to Haiti due to")
    assert "outside Pétion-Ville." in record.sections[2].text  # &eacute; decoded
    # "If you can do so safely, consider leaving the country by commercial means."
    assert record.leave_now
    assert record.extra == {"advisory_state": 3, "update_type": "Editorial change"}


def test_real_haiti_generated_stamp_is_not_content(real_samples: Path) -> None:
    payload = haiti(real_samples)
    original = parse(payload)[0].canonical()
    payload["metadata"]["generated"] = {"timestamp": 1790300000, "date": "2026-09-24 21:33:20"}
    assert parse(payload)[0].canonical() == original


def test_real_haiti_file_for_another_country_fails(real_samples: Path) -> None:
    with pytest.raises(ParseError, match="no entry for ML"):
        parse(haiti(real_samples), countries=("ML",))


def test_vocabulary_covers_the_published_risk_levels(real_samples: Path) -> None:
    path = real_samples / "ca-gac" / "derived-advisories-table.marcolussetti.canada_summary.json"
    table = json.loads(path.read_bytes())
    published = {row["risk_level"].removesuffix(REGIONAL) for row in table}
    assert published == {wording for _, wording in vocabulary().levels.values()}
    haiti_row = next(row for row in table if row["destination"] == "Haiti")
    assert haiti_row["risk_level"] == "Avoid all travel"


# --- levels and dates --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "level", "wording"),
    [
        (0, 1, "Take normal security precautions"),
        (1, 2, "Exercise a high degree of caution"),
        (2, 3, "Avoid non-essential travel"),
        (3, 4, "Avoid all travel"),
    ],
)
def test_advisory_state_is_zero_based(state: int, level: int, wording: str) -> None:
    record = one(**{"advisory-state": state, "eng": eng(**{"advisory-text": None})})
    assert (record.level, record.level_label) == (level, wording)


def test_label_is_the_advisory_text_verbatim() -> None:
    record = one(**{"advisory-state": 2, "eng": eng(**{"advisory-text": "Avoid non-essential&nbsp;travel"})})
    assert record.level_label == "Avoid non-essential travel"


@pytest.mark.parametrize("state", [None, -1, 4, True, "3", 2.0])
def test_an_entry_without_a_level_fails(state: object) -> None:
    with pytest.raises(ParseError, match=re.escape(f"ML: advisory-state is {state!r}, not 0 to 3")):
        one(**{"advisory-state": state})


@pytest.mark.parametrize(
    ("friendly", "expected"),
    [
        ("October 29, 2025 09:42 EDT", datetime(2025, 10, 29, 13, 42, tzinfo=UTC)),
        ("January 5, 2026 8:07 EST", datetime(2026, 1, 5, 13, 7, tzinfo=UTC)),
        ("January 5, 2026 08:07", None),
        ("January 5, 2026", None),
        ("Smarch 5, 2026 08:07 EST", None),
        ("February 30, 2026 08:07 EST", None),
        ("January 5, 2026 08:07 PST", None),
    ],
)
def test_friendly_date(friendly: str, expected: datetime | None) -> None:
    assert one(eng=eng(**{"friendly-date": friendly})).updated_at == expected


def test_date_published_wins_over_the_friendly_date() -> None:
    stamp = {"timestamp": 1787239553, "date": "2026-08-20 11:25:53", "asp": "2026-08-20T11:25:53-04:00"}
    without_stamp = {"date": "2026-08-20 11:25:53", "asp": "2026-08-20T11:25:53.1200000-04:00"}
    assert one(**{"date-published": stamp}).updated_at == datetime(2026, 8, 20, 15, 25, 53, tzinfo=UTC)
    assert one(**{"date-published": without_stamp}).updated_at == datetime(
        2026, 8, 20, 15, 25, 53, 120000, tzinfo=UTC
    )
    assert one(**{"date-published": {"date": "2026-08-20 11:25:53"}}).updated_at == datetime(
        2025, 10, 29, 13, 42, tzinfo=UTC
    )


# --- zones and sections ------------------------------------------------------------------------


def test_regional_advisory_blocks_become_zones() -> None:
    advisories = (
        '<div class="AdvisoryContainer ExHigh"><h3>EGYPT - EXERCISE A HIGH DEGREE OF CAUTION</h3></div>'
        '<div class="AdvisoryContainer AvoidAll"><h3>North Sinai &ndash; Avoid all travel</h3><p>x</p></div>'
        '<div class="AdvisoryContainer AvoidAll"><h3>Regional advisory - Avoid all travel</h3>'
        "<ul><li>the border with Libya</li><li>the Western Desert</li></ul></div>"
        '<div class="AdvisoryContainer"><h3>North Sinai - AVOID NON-ESSENTIAL TRAVEL</h3></div>'
        '<div class="AdvisoryContainer"><h3>Red Sea coast - Be careful</h3></div>'
        '<div class="AdvisoryContainer"><p>No heading</p></div>'
    )
    record = one(**{"advisory-state": 1, "eng": eng(advisories=advisories)})
    assert record.level == 2
    assert record.scope is Scope.PARTS
    assert record.zones == (
        Zone("North Sinai", 4, "Avoid all travel"),
        Zone("the border with Libya; the Western Desert", 4, "Avoid all travel"),
        Zone("North Sinai (2)", 3, "Avoid non-essential travel"),
    )


def test_zones_at_or_below_the_national_level_keep_the_whole_country_scope() -> None:
    advisories = (
        '<div class="AdvisoryContainer"><h3>ISRAEL - AVOID NON-ESSENTIAL TRAVEL</h3></div>'
        '<div class="AdvisoryContainer"><h3>Eilat - Exercise a high degree of caution</h3></div>'
    )
    record = one(**{"advisory-state": 2, "eng": eng(advisories=advisories)})
    assert record.zones == (Zone("Eilat", 2, "Exercise a high degree of caution"),)
    assert record.scope is Scope.WHOLE_COUNTRY


def test_sections_are_the_english_tabs_in_page_order() -> None:
    fields = {
        "health": "<p>Vaccines</p>",
        "security": "<h3>Crime</h3><p>Petty crime</p>",
        "laws-culture": "",
        "offices-html": "<p>Embassy of Canada</p>",
        "flag": "ml.png",
    }
    record = one(eng=eng(**fields), fra={"security": "<p>Crime en français</p>"})
    assert [(s.name, s.text) for s in record.sections] == [
        ("Latest updates", "Risk levels – editorial change"),
        ("Safety and security", "Crime\nPetty crime"),
        ("Health", "Vaccines"),
        ("Help abroad", "Embassy of Canada"),
    ]


# --- leave_now ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lang", "sentence"),
    [
        ("eng", "If you are in Mali, you should leave the country by commercial means."),
        ("eng", "If you can do so safely, consider leaving the country by commercial means."),
        ("eng", "Canadians are urged to leave Mali immediately."),
        ("eng", "If you are in the region, you should consider leaving."),
        ("fra", "Si vous êtes au Mali, vous devriez quitter le pays par des moyens commerciaux."),
        ("fra", "Nous vous recommandons de quitter le Mali dès maintenant."),
    ],
)
def test_calls_to_leave_set_leave_now(lang: str, sentence: str) -> None:
    texts = {"security": f"<p>{sentence}</p>", "name": "Mali"}
    assert one(**{lang: eng(**texts) if lang == "eng" else texts}).leave_now


@pytest.mark.parametrize(
    ("lang", "sentence"),
    [
        ("eng", "The airport in Bamako is your best option to leave the country."),
        ("eng", "Do not leave Mali by land; you should fly out of Bamako."),
        ("eng", "You should not leave Mali by road."),
        ("eng", "The advice that you should leave the country by commercial means was lifted."),
        ("eng", "When you leave the country, you should show your exit stamp."),
        ("eng", "You should leave the country before your visa expires."),
        ("fra", "Vous ne devriez pas quitter le pays par la route."),
        ("fra", "Lorsque vous devez quitter le pays, présentez votre passeport."),
    ],
)
def test_other_sentences_do_not(lang: str, sentence: str) -> None:
    texts = {"security": f"<p>{sentence}</p>", "name": "Mali"}
    assert not one(**{lang: eng(**texts) if lang == "eng" else texts}).leave_now


def test_exit_rules_are_not_read_for_leave_now() -> None:
    sentence = "<p>You should leave the country by commercial means.</p>"
    assert not one(eng=eng(**{"entry-exit": sentence, "health": sentence})).leave_now
    assert one(eng=eng(advisories=sentence)).leave_now


# --- payload shapes and failures ---------------------------------------------------------------


def test_index_entries_are_filtered_by_countries() -> None:
    entry = country_file()["data"]
    payload = {
        "data": {
            code: copy.deepcopy(entry) | {"country-iso": code, "eng": eng(name=code)}
            for code in ("ML", "NE", "FR")
        }
    }
    assert [r.key for r in parse(payload)] == ["FR", "ML", "NE"]
    assert [r.key for r in parse(payload, countries=("NE", "ML"))] == ["ML", "NE"]


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{}", "no 'data' object"),
        (b"", "not JSON"),
        (b"\xff\xfe<html>", "not JSON"),
        (b'{"data": {}}', "no 'data' object"),
        (b'{"data": []}', "no 'data' object"),
        (b'{"data": {"country-iso": "Haiti", "advisory-state": 3}}', "two-letter 'country-iso'"),
        (b'{"data": {"HT": {"advisory-state": 3}}}', "two-letter 'country-iso'"),
    ],
)
def test_payloads_without_countries_fail(payload: bytes, reason: str) -> None:
    with pytest.raises(ParseError, match=re.escape(reason)) as caught:
        parse(payload)
    assert (caught.value.source_id, caught.value.url) == ("ca", URL)


def test_two_entries_for_one_country_fail() -> None:
    entry = country_file()["data"]
    with pytest.raises(ParseError, match="two entries for ML"):
        parse({"data": {"ML": entry, "ml": entry}})


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
_html = st.lists(
    st.sampled_from(
        ['<div class="AdvisoryContainer">', "<h3>", "</h3>", "A - Avoid all travel", "<li>", " - "]
    )
    | st.text(max_size=10),
    max_size=12,
).map("".join)


@settings(max_examples=200, deadline=None)
@given(body=st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_parse_error(body: bytes) -> None:
    with contextlib.suppress(ParseError):
        parse(body)


@settings(max_examples=200, deadline=None)
@given(
    data=st.dictionaries(
        st.sampled_from(sorted(country_file()["data"])) | st.text(max_size=8), _json, max_size=6
    ),
    texts=st.dictionaries(
        st.sampled_from([*sorted(eng()), "advisories", "security"]), _json | _html, max_size=6
    ),
)
def test_arbitrary_entries_raise_only_parse_error(data: dict[str, Any], texts: dict[str, Any]) -> None:
    try:
        records = parse(country_file(**data | {"eng": eng(**texts)}))
    except ParseError:
        return
    assert all(record.level in (1, 2, 3, 4) and record.level_label for record in records)


def test_doc_examples_are_valid_configuration() -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.DOTALL)
    assert blocks
    for block in blocks:
        config = loads(block, path=DOC, environ={})
        assert {source.kind for source in config.sources} == {"ca-gac"}
