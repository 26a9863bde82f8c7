"""The ``de-aa`` kind: the two real list responses of 29 Apr and 3 May 2026, errors, phrases."""

from __future__ import annotations

import contextlib
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
from monitor.sources.de_aa import calls_to_leave

URL = "https://www.auswaertiges-amt.de/opendata/travelwarning"
DOC = Path(__file__).resolve().parents[1] / "docs" / "kinds" / "de-aa.md"
GULF = {"AE", "BH", "JO", "OM", "QA", "SA"}
PARTIAL = Zone("Teilreisewarnung", 4, "Teilreisewarnung")


def parse(payload: bytes | dict[str, Any], countries: tuple[str, ...] = ()) -> list[Record]:
    config = SourceConfig.model_validate({"id": "de-aa", "kind": "de-aa", "url": URL, "countries": countries})
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return build(config).parse(body, content_type="text/json;charset=UTF-8", url=URL)


def entry(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "lastModified": 1777559560,
        "effective": 1777559400,
        "title": "Katar: Reise- und Sicherheitshinweise",
        "countryCode": "QA",
        "iso3CountryCode": "QAT",
        "countryName": "Katar",
        "warning": False,
        "partialWarning": False,
        "situationWarning": False,
        "situationPartWarning": False,
    }
    return base | fields


def one(**fields: Any) -> Record:
    [record] = parse({"response": {"202280": entry(**fields), "contentList": ["202280"]}})
    return record


def by_key(real_samples: Path, day: str) -> dict[str, Record]:
    body = (real_samples / "de-aa" / f"travelwarning.{day}.reserialized.json").read_bytes()
    return {record.key: record for record in parse(body)}


# --- the real responses ------------------------------------------------------------------------


def test_real_days_give_one_record_per_country(real_samples: Path) -> None:
    for day, whole, parts in (("2026-04-29", 26, 26), ("2026-05-03", 19, 27)):
        records = by_key(real_samples, day)
        assert len(records) == 199
        assert all(re.fullmatch(r"[A-Z]{2}", key) and records[key].country == key for key in records)
        assert sum(r.level == 4 and r.scope is Scope.WHOLE_COUNTRY for r in records.values()) == whole
        partial = [r for r in records.values() if r.scope is Scope.PARTS]
        assert len(partial) == parts
        assert all(r.level == 1 and r.zones == (PARTIAL,) for r in partial)
        assert {r.level for r in records.values()} == {1, 4}
        assert all(r.updated_at and r.updated_at.tzinfo is UTC for r in records.values())


def test_real_days_gulf_warnings_lifted_and_israel_down_to_a_partial_warning(real_samples: Path) -> None:
    before, after = by_key(real_samples, "2026-04-29"), by_key(real_samples, "2026-05-03")
    assert before.keys() == after.keys()

    def status(record: Record) -> tuple[Any, ...]:
        return record.level, record.level_label, record.scope, record.zones

    changed = {key for key in before if status(before[key]) != status(after[key])}
    assert changed == GULF | {"IL"}
    for key in GULF:
        assert status(before[key]) == (4, "Reisewarnung", Scope.WHOLE_COUNTRY, ())
        assert status(after[key]) == (1, "Sicherheitshinweise", Scope.WHOLE_COUNTRY, ())
    assert status(before["IL"]) == (4, "Reisewarnung", Scope.WHOLE_COUNTRY, ())
    assert status(after["IL"]) == (1, "Teilreisewarnung", Scope.PARTS, (PARTIAL,))


@pytest.mark.parametrize(
    ("key", "level", "label", "zones"),
    [
        ("ML", 4, "Reisewarnung", ()),
        ("KW", 4, "Reisewarnung", ()),
        ("UA", 4, "Reisewarnung", ()),
        ("PS", 4, "Reisewarnung", ()),
        ("JP", 1, "Teilreisewarnung", (PARTIAL,)),
        ("RU", 1, "Teilreisewarnung", (PARTIAL,)),
        ("FR", 1, "Sicherheitshinweise", ()),
        ("XK", 1, "Sicherheitshinweise", ()),
    ],
)
def test_real_days_fixed_countries(
    real_samples: Path, key: str, level: int, label: str, zones: tuple[Zone, ...]
) -> None:
    for day in ("2026-04-29", "2026-05-03"):
        record = by_key(real_samples, day)[key]
        assert (record.level, record.level_label, record.zones) == (level, label, zones)
        assert record.scope is (Scope.PARTS if zones else Scope.WHOLE_COUNTRY)
        assert not record.leave_now


def test_real_days_mali_timestamps_and_url(real_samples: Path) -> None:
    before, after = by_key(real_samples, "2026-04-29")["ML"], by_key(real_samples, "2026-05-03")["ML"]
    assert before.updated_at == datetime(2026, 4, 28, 16, 26, 14, tzinfo=UTC)
    assert before.published_at == datetime(2026, 4, 28, 16, 30, tzinfo=UTC)
    assert after.updated_at == datetime(2026, 4, 29, 17, 51, 41, tzinfo=UTC)
    assert after.published_at == datetime(2026, 4, 29, 18, 0, tzinfo=UTC)
    assert after.url == f"{URL}/208258"
    assert after.title == "Mali: Reise- und Sicherheitshinweise"


def test_real_day_response_metadata_is_not_content(real_samples: Path) -> None:
    path = real_samples / "de-aa" / "travelwarning.2026-05-03.reserialized.json"
    payload = json.loads(path.read_bytes())
    original = [r.canonical() for r in parse(payload)]
    payload["response"]["lastModified"] = 1800000000
    payload["response"]["contentList"].reverse()
    assert [r.canonical() for r in parse(payload)] == original


def test_real_day_filtered_by_countries(real_samples: Path) -> None:
    body = (real_samples / "de-aa" / "travelwarning.2026-05-03.reserialized.json").read_bytes()
    records = parse(body, countries=("QA", "ML"))
    assert [(r.key, r.level) for r in records] == [("ML", 4), ("QA", 1)]


# --- levels, codes, timestamps -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "level", "label", "scope", "zones"),
    [
        ({}, 1, "Sicherheitshinweise", Scope.WHOLE_COUNTRY, ()),
        ({"warning": True}, 4, "Reisewarnung", Scope.WHOLE_COUNTRY, ()),
        ({"partialWarning": True}, 1, "Teilreisewarnung", Scope.PARTS, ((4, "Teilreisewarnung"),)),
        ({"situationWarning": True}, 3, "Reisewarnung (situationWarning)", Scope.WHOLE_COUNTRY, ()),
        (
            {"situationPartWarning": True},
            1,
            "Teilreisewarnung (situationPartWarning)",
            Scope.PARTS,
            ((3, "Teilreisewarnung (situationPartWarning)"),),
        ),
        (
            {"situationWarning": True, "partialWarning": True},
            3,
            "Teilreisewarnung",
            Scope.PARTS,
            ((4, "Teilreisewarnung"),),
        ),
        ({"warning": True, "partialWarning": True}, 4, "Reisewarnung", Scope.WHOLE_COUNTRY, ()),
        (
            {"situationWarning": True, "situationPartWarning": True},
            3,
            "Reisewarnung (situationWarning)",
            Scope.WHOLE_COUNTRY,
            (),
        ),
    ],
)
def test_flags_to_level(
    flags: dict[str, bool], level: int, label: str, scope: Scope, zones: tuple[tuple[int, str], ...]
) -> None:
    record = one(**flags)
    assert (record.level, record.level_label, record.scope) == (level, label, scope)
    assert tuple((z.level, z.label) for z in record.zones) == zones


def test_situation_flags_may_be_absent() -> None:
    fields = entry(warning=True)
    del fields["situationWarning"], fields["situationPartWarning"]
    [record] = parse({"response": {"1": fields}})
    assert record.level == 4


def test_milliseconds_and_seconds_give_the_same_time() -> None:
    seconds = one(lastModified=1777559560, effective=1777559400)
    millis = one(lastModified=1777559560000, effective=1777559400000)
    assert millis.updated_at == seconds.updated_at == datetime(2026, 4, 30, 14, 32, 40, tzinfo=UTC)
    assert millis.published_at == seconds.published_at


def test_iso3_code_wins_and_country_code_is_the_fallback() -> None:
    assert one(countryCode="XX", iso3CountryCode="QAT").key == "QA"
    assert one(countryCode="xk", iso3CountryCode="XKX").key == "XK"
    assert one(countryCode="QA", iso3CountryCode=None).key == "QA"


def test_url_is_the_per_country_endpoint_for_list_and_detail_urls() -> None:
    config = SourceConfig.model_validate({"id": "x", "kind": "de-aa", "url": f"{URL}/202280"})
    body = json.dumps({"response": {"202280": entry()}}).encode()
    [record] = build(config).parse(body, content_type=None, url=f"{URL}/202280")
    assert record.url == f"{URL}/202280"
    assert one().url == f"{URL}/202280"


# --- failures ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{}", "answers {}"),
        (b"", "not JSON"),
        (b"<html>Wartungsarbeiten</html>", "not JSON"),
        (b"[1, 2]", "no 'response'"),
        (b'{"response": []}', "no 'response'"),
        (b'{"response": {"contentList": [], "lastModified": 1}}', "no country entries"),
        (b'{"response": {"1": {"title": "x", "warning": true}}}', "no entry carries a country code"),
    ],
)
def test_payloads_without_countries_fail(payload: bytes, reason: str) -> None:
    with pytest.raises(ParseError, match=re.escape(reason)) as caught:
        parse(payload)
    assert caught.value.source_id == "de-aa"
    assert caught.value.url == URL


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"warning": None}, "QA: warning is None"),
        ({"partialWarning": "false"}, "QA: partialWarning is 'false'"),
        ({"situationWarning": 1}, "QA: situationWarning is 1"),
        ({"lastModified": "gestern"}, "QA: lastModified is 'gestern'"),
        ({"effective": 1e300}, "QA: effective"),
        ({"content": ["<p>"]}, "QA: content is list"),
    ],
)
def test_an_entry_without_a_level_or_with_bad_values_fails(fields: dict[str, Any], reason: str) -> None:
    with pytest.raises(ParseError, match=re.escape(reason)):
        one(**fields)


def test_two_entries_for_one_country_fail() -> None:
    with pytest.raises(ParseError, match="two entries for QA"):
        parse({"response": {"1": entry(), "2": entry(warning=True)}})


def test_a_configured_country_missing_from_the_payload_fails() -> None:
    with pytest.raises(ParseError, match="no entry for ML"):
        parse({"response": {"1": entry()}}, countries=("ML",))


# --- text and flags ----------------------------------------------------------------------------


def test_detail_text_becomes_sections_split_at_the_top_headings() -> None:
    record = one(
        lastChanges="Aktualisierung: Sicherheit",
        content="<p>Einleitung</p><h2>Sicherheit</h2><h3>Terrorismus</h3><p>Risiko.</p>"
        "<h2>Sicherheit</h2><p>Noch einmal.</p><script>x()</script>",
        disclaimer="<p>Ohne Gewähr.</p>",
    )
    assert [(s.name, s.text) for s in record.sections] == [
        ("Warnungen", "Sicherheitshinweise"),
        ("Letzte Änderungen", "Aktualisierung: Sicherheit"),
        ("Reise- und Sicherheitshinweise", "Einleitung"),
        ("Sicherheit", "Terrorismus\nRisiko."),
        ("Sicherheit (2)", "Noch einmal."),
    ]


@pytest.mark.parametrize(
    "sentence",
    [
        "Deutsche Staatsangehörige sind aufgefordert, Mali umgehend zu verlassen.",
        "Deutsche Staatsangehörige werden aufgefordert, unverzüglich auszureisen.",
        "Das Auswärtige Amt fordert alle Deutschen auf, das Land zu verlassen.",
        "Deutsche werden dringend zur Ausreise aufgefordert.",
        "Es gilt eine Ausreiseaufforderung für alle deutschen Staatsangehörigen.",
        "Wer sich noch in Mali aufhält, sollte das Land schnellstmöglich verlassen: Nutzen Sie dazu "
        "die noch bestehenden Flugverbindungen. Deutschen wird dringend empfohlen, Mali zu verlassen.",
        "Deutsche, die das Land noch nicht verlassen haben, werden aufgefordert, umgehend auszureisen.",
    ],
)
def test_calls_to_leave_set_leave_now(sentence: str) -> None:
    assert calls_to_leave(sentence, ("Mali",))


@pytest.mark.parametrize(
    "sentence",
    [
        "Die Reisewarnung für Mali wurde aufgehoben.",
        "Die Aufforderung zur Ausreise wurde aufgehoben.",
        "Deutsche sind nicht mehr aufgefordert, das Land zu verlassen.",
        "Es besteht keine Aufforderung, Mali zu verlassen.",
        "Es wird dringend empfohlen, die Unterkunft nachts nicht zu verlassen.",
        "Es wird empfohlen, vor Ablauf des Visums auszureisen.",
        "Bei der Ausreise wird eine Gebühr erhoben; umgehend nach der Ankunft ist eine Meldung nötig.",
        "Bei einer Tsunami-Warnung sind Küstengebiete umgehend zu verlassen.",
        "Die Möglichkeiten zur Ausreise über den Landweg sind eingeschränkt.",
        "Wer das Land verlassen möchte, benötigt eine Ausreisegenehmigung.",
    ],
)
def test_other_sentences_do_not(sentence: str) -> None:
    assert not calls_to_leave(sentence, ("Mali",))


def test_leave_now_comes_from_the_detail_text_only() -> None:
    call = "<p>Deutsche Staatsangehörige sind aufgefordert, Katar umgehend zu verlassen.</p>"
    assert one(warning=True, content=call).leave_now
    assert one(warning=True, lastChanges="<p>Aufforderung zur Ausreise</p>").leave_now
    assert not one(warning=True, title=call).leave_now


# --- robustness and docs -----------------------------------------------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(body=st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_parse_error(body: bytes) -> None:
    with contextlib.suppress(ParseError):
        parse(body)


@settings(max_examples=200, deadline=None)
@given(fields=st.dictionaries(st.sampled_from(sorted(entry())) | st.text(max_size=8), _json, max_size=8))
def test_arbitrary_entries_raise_only_parse_error(fields: dict[str, Any]) -> None:
    try:
        records = parse({"response": {"1": entry() | fields, "contentList": ["1"]}})
    except ParseError:
        return
    assert all(record.level in (1, 3, 4) and record.level_label for record in records)


def test_doc_examples_are_valid_configuration() -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.DOTALL)
    assert blocks
    for block in blocks:
        config = loads(block, path=DOC, environ={})
        assert {source.kind for source in config.sources} == {"de-aa"}
