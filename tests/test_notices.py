"""Carrier notices: status vocabulary, country relevance, dates, records, and the data tables."""

from __future__ import annotations

from datetime import UTC, datetime
from importlib import resources
from typing import Any

import pycountry
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from monitor import notices
from monitor.listing import CarrierOptions, country_records
from monitor.models import Notice, NoticeStatus
from monitor.notices import (
    PhraseTable,
    find_date,
    fold,
    fold_phrase,
    gazetteer,
    notice_status,
    parse_iso,
    statuses_found,
)

INFO, DISRUPTION, SURCHARGE, SUSPENSION, RESUMPTION = (
    NoticeStatus.INFO,
    NoticeStatus.DISRUPTION,
    NoticeStatus.SURCHARGE,
    NoticeStatus.SUSPENSION,
    NoticeStatus.RESUMPTION,
)


# --- status -----------------------------------------------------------------------------------

STATUS_CASES = [
    # suspensions
    ("Intermodal Notice MALI – Temporary Service Suspension", SUSPENSION),
    ("Road transportation for Mali cargo temporarily suspended until further notice", SUSPENSION),
    ("MSC will no longer accept bookings for Mali until the situation is resolved", SUSPENSION),
    ("No new bookings will be accepted for Mali", SUSPENSION),
    ("Le transport routier est suspendu jusqu'à nouvel ordre", SUSPENSION),
    ("Aucune nouvelle réservation ne sera acceptée", SUSPENSION),
    ("The voyage will be declared ended at the port of discharge", SUSPENSION),
    ("No new import bookings will be accepted to Baltimore until further notice", SUSPENSION),
    ("Vessels will pause their journey until further notice", SUSPENSION),
    # reversals and lifts: resumption, never suspension
    ("CMA CGM decided not to suspend its activities to Mali, including overland transport", RESUMPTION),
    ("Overland transport heavily impacted; CMA CGM decided not to suspend its activities", RESUMPTION),
    ("Suspension lifted", RESUMPTION),
    ("The suspension of bookings to Mali has been lifted", RESUMPTION),
    ("Our activities have resumed, thereby suspending the communiqué of 6 November", RESUMPTION),
    ("Services will not be suspended", RESUMPTION),
    ("Levée de la suspension des réservations", RESUMPTION),
    ("Reprise des activités vers le Mali", RESUMPTION),
    ("CMA CGM reprendra l'acceptation de toutes les réservations avec effet immédiat", RESUMPTION),
    ("CMA CGM a décidé de ne pas suspendre ses activités", RESUMPTION),
    ("Red Sea transits resumed on a case-by-case basis", RESUMPTION),
    ("Removal of the Emergency Risk Surcharge", RESUMPTION),
    # surcharges
    ("Emergency Risk Surcharge (ERS) – Israel imports", SURCHARGE),
    ("War risk surcharge: trade from Middle East to Sub-Saharan Africa", SURCHARGE),
    ("ERS applicable from 8 January", SURCHARGE),
    ("PCS – Port Congestion Surcharge at Chittagong", SURCHARGE),
    ("Mise en place d'une surtaxe de risque de guerre", SURCHARGE),
    # disruptions
    ("Port omission at Tema on the WAX service", DISRUPTION),
    ("Delays expected at Abidjan", DISRUPTION),
    ("Congestion at Lagos Apapa", DISRUPTION),
    ("Rerouting via the Cape of Good Hope", DISRUPTION),
    ("Grève au port de Dakar : retards", DISRUPTION),
    # information
    ("FAK Rates - From Asia to North Europe", INFO),
    ("GRR - From Asia to West Africa", INFO),
    ("General Rate Restoration from Asia to West Africa", INFO),
    ("Please contact your local MSC agency without delay", INFO),
    ("Operations in Dakar are not affected", INFO),
    ("We will reinstate our services through the Suez Canal when it is deemed safe", INFO),
    ("MSC will resume bookings once the situation stabilises", INFO),
    ("En résumé : nouveaux horaires du service", INFO),
    ("", INFO),
]


@pytest.mark.parametrize(("text", "status"), STATUS_CASES)
def test_notice_status(text: str, status: NoticeStatus) -> None:
    assert notice_status(text) is status


def test_a_future_resumption_inside_a_suspension_notice_is_not_a_resumption() -> None:
    text = "Bookings for Mali are suspended. We will notify customers once services resume."
    assert statuses_found(text) == [SUSPENSION, INFO]
    assert notice_status(text) is SUSPENSION
    assert notice_status("Bookings are suspended and will reopen once the situation improves") is SUSPENSION


def test_precedence_resumption_over_suspension_over_surcharge_over_disruption() -> None:
    assert notice_status("Delays at Tema", "Congestion surcharge") is SURCHARGE
    assert notice_status("War risk surcharge", "Bookings suspended") is SUSPENSION
    assert notice_status("Following the suspension of 6 November, services have resumed") is RESUMPTION
    assert notice_status("Title without status", "Body: port omission") is DISRUPTION


def test_the_longest_phrase_hides_the_words_inside_it() -> None:
    # "suspend" inside "decided not to suspend" and "suspension" inside "levée de la suspension"
    # count for nothing else.
    assert statuses_found("We decided not to suspend") == [RESUMPTION]
    assert statuses_found("levée de la suspension") == [RESUMPTION]
    assert statuses_found("temporarily suspended until further notice") == [SUSPENSION]


# --- phrase matching --------------------------------------------------------------------------


def test_fold_ignores_case_accents_and_punctuation() -> None:
    assert fold("Côte d’Ivoire — GUINÉE-Bissau, Œuvre!") == (
        "cote",
        "d",
        "ivoire",
        "guinee",
        "bissau",
        "oeuvre",
    )
    assert fold("Bookings stop. Services resume!", sentences=True) == (
        "bookings", "stop", ".", "services", "resume", ".",
    )  # fmt: skip


def test_a_gap_spans_up_to_six_words_of_one_sentence() -> None:
    table = PhraseTable([(fold_phrase("once * resume"), "hit")])
    assert table.find(fold("once resume", sentences=True)) == ["hit"]
    assert table.find(fold("once the road services have fully resume", sentences=True)) == ["hit"]
    assert table.find(fold("once one two three four five six resume", sentences=True)) == ["hit"]
    assert table.find(fold("once one two three four five six seven resume", sentences=True)) == []
    assert table.find(fold("Bookings stop once. Services resume", sentences=True)) == []


def test_fold_phrase_rejects_unusable_phrases() -> None:
    for phrase in ("", "  ", "* resume", "resume *", "—"):
        with pytest.raises(ValueError, match="not a usable phrase"):
            fold_phrase(phrase)


@given(st.text())
def test_status_and_relevance_never_fail_on_any_text(text: str) -> None:
    assert notice_status(text) in NoticeStatus
    assert all(len(code) == 2 for code in gazetteer().countries(text))
    assert fold(" ".join(fold(text))) == fold(text)


# --- relevance --------------------------------------------------------------------------------

RELEVANCE_CASES = [
    ("Somalia", ("SO",)),
    ("Somaliland and Somalia", ("SO",)),
    ("MALI", ("ML",)),
    ("Malian cargo via Bamako", ("ML",)),
    ("Mali and Somalia", ("ML", "SO")),
    ("Nigeria", ("NG",)),
    ("Nigerian imports, Niger Delta terminals", ("NG",)),
    ("Niger", ("NE",)),
    ("Niger and Nigeria", ("NE", "NG")),
    ("Transit via the Niger River", ()),
    ("cargo nigérien via Cotonou", ("BJ", "NE")),
    ("Guinea", ("GN",)),
    ("Guinea-Bissau", ("GW",)),
    ("Equatorial Guinea", ("GQ",)),
    ("Guinée équatoriale et Guinée-Bissau", ("GQ", "GW")),
    ("Papua New Guinea", ("PG",)),
    ("Piracy in the Gulf of Guinea", ()),
    ("Guinea, Guinea-Bissau and Equatorial Guinea", ("GN", "GQ", "GW")),
    ("Dakar-Bamako corridor", ("ML",)),
    ("Kayes", ("ML",)),
    ("Ségou and Tombouctou", ("ML",)),
    ("Ouagadougou", ("BF",)),
    ("Niamey", ("NE",)),
    ("Côte d’Ivoire", ("CI",)),
    ("COTE D IVOIRE", ("CI",)),
    ("Abidjan, Dakar, Tema, Lomé and Conakry", ("CI", "GH", "GN", "SN", "TG")),
    ("South Sudan and Sudan", ("SD", "SS")),
    ("Democratic Republic of the Congo", ("CD",)),
    ("Republic of the Congo", ("CG",)),
    ("Dominica and the Dominican Republic", ("DM", "DO")),
    ("Savannah, Georgia", ()),
    ("Sous-marin", ()),
    ("", ()),
]


@pytest.mark.parametrize(("text", "codes"), RELEVANCE_CASES)
def test_countries_named(text: str, codes: tuple[str, ...]) -> None:
    assert gazetteer().countries(text) == codes


def test_countries_are_collected_over_all_texts_sorted() -> None:
    assert gazetteer().countries("Niamey", "Bamako", "Mali") == ("ML", "NE")


def test_synonyms_add_to_the_defaults() -> None:
    assert gazetteer().countries("Deliveries from the Sénou dry port") == ()
    extended = gazetteer({"ML": ["Sénou", "Kati dry port"]})
    assert extended.countries("Deliveries from the SENOU dry port") == ("ML",)
    assert extended.countries("Kati dry port") == ("ML",)
    assert extended.countries("Bamako and Niamey") == ("ML", "NE")  # defaults kept
    assert gazetteer({"NE": ["Dakar"]}).countries("Dakar") == ("NE", "SN")


def test_carrier_options_validate_synonyms() -> None:
    options = CarrierOptions.model_validate({"synonyms": {"ml": "Sénou", "NE": ["Arlit"]}})
    assert options.synonyms == {"ML": ("Sénou",), "NE": ("Arlit",)}
    assert options.max_items == 100
    with pytest.raises(ValidationError, match="not an ISO 3166-1"):
        CarrierOptions.model_validate({"synonyms": {"XX": ["x"]}})
    with pytest.raises(ValidationError, match="not an ISO 3166-1"):
        CarrierOptions.model_validate({"synonyms": {False: ["Oslo"]}})  # YAML's unquoted NO
    with pytest.raises(ValidationError, match="not a usable phrase"):
        CarrierOptions.model_validate({"synonyms": {"ML": ["--"]}})
    with pytest.raises(ValidationError, match="list of names"):
        CarrierOptions.model_validate({"synonyms": {"ML": [3]}})
    with pytest.raises(ValidationError):
        CarrierOptions.model_validate({"max_items": 0})
    with pytest.raises(ValidationError):
        CarrierOptions.model_validate({"item_pages": True})


# --- data tables ------------------------------------------------------------------------------


def _data(name: str) -> Any:
    return yaml.safe_load(resources.files("monitor").joinpath("data", name).read_text(encoding="utf-8"))


# Countries whose capital is deliberately absent (no capital, or a name misread as a word).
NO_CAPITAL = {
    "AI",
    "AQ",
    "BM",
    "BV",
    "FK",
    "GS",
    "HM",
    "IL",
    "IM",
    "MV",
    "NF",
    "PM",
    "PS",
    "RE",
    "SC",
    "TK",
    "UM",
}


def test_every_country_has_english_and_french_names_and_a_capital() -> None:
    table = notices.country_synonyms()
    assert set(table) == {country.alpha_2 for country in pycountry.countries}
    for code, entry in table.items():
        assert set(entry) <= {"en", "fr", "capital", "places"}, code
        assert entry["en"] and entry["fr"], code
        assert bool(entry["capital"]) != (code in NO_CAPITAL), code


def test_west_african_landlocked_countries_have_their_corridors() -> None:
    table = notices.country_synonyms()
    mali = [name for names in table["ML"].values() for name in names]
    assert {"Mali", "Bamako", "Dakar-Bamako corridor", "Kayes"} <= set(mali)
    assert "Ouagadougou" in table["BF"]["capital"]
    assert "Niamey" in table["NE"]["capital"]


def test_no_phrase_names_two_countries() -> None:
    owner: dict[tuple[str, ...], str] = {}
    for code, entry in notices.country_synonyms().items():
        for name in (name for names in entry.values() for name in names):
            phrase = fold_phrase(name)
            assert owner.setdefault(phrase, code) == code, f"{name!r}: {owner[phrase]} and {code}"
    data = _data("country_synonyms.yaml")
    for name in data["not_countries"]:
        assert fold_phrase(name) not in owner, name


def test_vocabulary_has_english_and_french_for_every_status() -> None:
    data = _data("carrier_vocabulary.yaml")
    assert set(data) == {status.value for status in NoticeStatus}
    for status, languages in data.items():
        assert set(languages) == {"en", "fr"}, status
        for phrase in languages["en"] + languages["fr"]:
            fold_phrase(phrase)


# --- dates ------------------------------------------------------------------------------------


def _day(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "kwargs", "expected"),
    [
        ("Friday, March 16, 2018", {}, _day(2018, 3, 16)),
        ("Last update on March 30th, 2021", {}, _day(2021, 3, 30)),
        ("11/06/2025", {}, _day(2025, 11, 6)),
        ("11/06/2025", {"numeric": "dmy"}, _day(2025, 6, 11)),
        ("06/11/2025", {"month_hint": 11}, _day(2025, 11, 6)),
        ("07/09/2019", {"month_hint": 7}, _day(2019, 7, 9)),
        ("6 novembre 2025", {}, _day(2025, 11, 6)),
        ("Dernière mise à jour le 1er février 2024", {}, _day(2024, 2, 1)),
        ("Published 2025-11-04, updated 2025-11-06", {}, _day(2025, 11, 4)),
        ("13/13/2025", {}, None),
        ("February 30, 2025", {}, None),
        ("no date here", {}, None),
    ],
)
def test_find_date(text: str, kwargs: dict[str, object], expected: datetime | None) -> None:
    assert find_date(text, **kwargs) == expected  # type: ignore[arg-type]


def test_parse_iso_gives_aware_utc() -> None:
    assert parse_iso("2018-03-16") == _day(2018, 3, 16)
    assert parse_iso("2025-11-05T09:30:00+01:00") == datetime(2025, 11, 5, 8, 30, tzinfo=UTC)
    assert parse_iso("2025-11-05T09:30:00Z") == datetime(2025, 11, 5, 9, 30, tzinfo=UTC)
    assert parse_iso("2025-11-05T09:30") == datetime(2025, 11, 5, 9, 30, tzinfo=UTC)
    assert parse_iso("Friday") is None


# --- records ----------------------------------------------------------------------------------


def _notice(notice_id: str, day: int | None, countries: tuple[str, ...]) -> Notice:
    when = _day(2025, 11, day) if day else None
    return Notice(notice_id, f"Notice {notice_id}", f"https://x/{notice_id}", INFO, when, countries, "body")


def test_country_records_one_per_watched_country_sorted_by_date_then_id() -> None:
    listed = [
        _notice("b", 6, ("ML",)),
        _notice("a", 6, ("ML", "SN")),
        _notice("c", 4, ("ML",)),
        _notice("z", None, ("ML",)),
    ]
    ml, ne = country_records(listed, ["ML", "NE"], heading="Carrier", url="https://x/")
    assert [n.id for n in ml.notices] == ["z", "c", "a", "b"]
    assert (ml.key, ml.country, ml.title, ml.level) == ("ML", "ML", "Carrier — Mali", None)
    assert [s.name for s in ml.sections] == ["z", "c", "a", "b"]
    assert ml.sections[1].text == "Notice c\n2025-11-04 · info\nbody"
    assert ml.sections[0].text == "Notice z\nundated · info\nbody"
    assert (ne.key, ne.notices, ne.sections, ne.title) == ("NE", (), (), "Carrier — Niger")


def test_country_records_without_watched_countries() -> None:
    listed = [_notice("a", 6, ("SN", "ML")), _notice("b", 5, ())]
    assert [r.key for r in country_records(listed, [], heading="C", url="u")] == ["ML", "SN"]
    [page] = country_records([_notice("b", 5, ())], [], heading="C", url="u")
    assert (page.key, page.country, [n.id for n in page.notices]) == ("page", None, ["b"])
