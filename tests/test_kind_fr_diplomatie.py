"""The ``fr-diplomatie`` kind: real page text, both layouts, levels, flags, dates and failures.

The golden cases (``tests/fixtures/kinds/fr-diplomatie/``) are checked by ``test_kinds.py``; this
file pins the behaviour they rely on with exact values.
"""

from __future__ import annotations

import contextlib
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from monitor.classify import classify
from monitor.cli import cli
from monitor.config import SourceConfig, loads
from monitor.diff import diff_records
from monitor.errors import ConfigError, ParseError
from monitor.models import ChangeClass, Record, Scope, Zone
from monitor.sources import build
from monitor.sources.fr_diplomatie import FrDiplomatieSource, french_date

CASES = Path(__file__).parent / "fixtures" / "kinds" / "fr-diplomatie"
DOC = Path(__file__).resolve().parents[1] / "docs" / "kinds" / "fr-diplomatie.md"
SITE = "https://www.diplomatie.gouv.fr/fr/information-par-pays"
SECURITY_URL = f"{SITE}/mali/conseils-aux-voyageurs-securite"
ALERTS_URL = f"{SITE}/mali/dernieres-minutes-et-alertes"
OLD_URL = "https://www.diplomatie.gouv.fr/fr/conseils-aux-voyageurs/conseils-par-pays-destination/mali/"
EXCERPT = "fr-diplomatie/mali.page-text.excerpt.txt"


def source(
    countries: tuple[str, ...] = ("ML",), url: str = SECURITY_URL, **options: Any
) -> FrDiplomatieSource:
    config = SourceConfig(id="fr-test", kind="fr-diplomatie", url=url, countries=countries, options=options)
    built = build(config)
    assert isinstance(built, FrDiplomatieSource)
    return built


def parse(
    body: str | bytes, *, url: str = SECURITY_URL, content_type: str | None = "text/html", **options: Any
) -> Record:
    data = body.encode("utf-8") if isinstance(body, str) else body
    [record] = source(url=url, **options).parse(data, content_type=content_type, url=url)
    return record


def case(name: str, file: str = "input.html") -> bytes:
    return (CASES / name / file).read_bytes()


def text_page(*lines: str) -> str:
    return "\n".join(lines)


# --- the real page text of the old layout -------------------------------------------------------------


def test_real_mali_page_text_excerpt(real_samples: Path) -> None:
    record = parse((real_samples / EXCERPT).read_bytes(), url=OLD_URL, content_type="text/plain")
    assert (record.key, record.country, record.level, record.scope) == ("ML", "ML", 4, Scope.WHOLE_COUNTRY)
    assert record.level_label == "l’ensemble du territoire malien est formellement déconseillé"
    assert record.zones == (
        Zone("zone orange", 3, "Zone déconseillée sauf raison impérative (en orange sur la carte)"),
    )
    assert [s.name for s in record.sections] == ["Situation au Mali", "Zones de vigilance"]
    assert record.sections[0].text.startswith("Publié le 16/01/2024\nLes ressortissants français au Mali")
    assert record.sections[1].text.startswith("Zone déconseillée sauf raison impérative")
    assert record.published_at == datetime(2024, 1, 16, tzinfo=UTC)
    assert record.updated_at is None  # the stored text has no date after "Dernière mise à jour le :"
    assert (record.leave_now, record.embassy_closed) == (False, False)
    assert "Partager" not in record.text and "toujours valide" not in record.text
    assert record.extra == {"layout": "spip", "page": "fiche"}


def test_real_excerpt_keeps_the_generic_notice_when_nothing_is_ignored(real_samples: Path) -> None:
    record = parse((real_samples / EXCERPT).read_bytes(), content_type="text/plain", ignore_titles=[])
    urgence = "Urgence Attentat – Vigilance renforcée pour les ressortissants français à l’étranger"
    assert [s.name for s in record.sections] == ["Situation au Mali", urgence, "Zones de vigilance"]
    assert record.sections[1].text.startswith("(Publié le 15/10/2023)\nCompte tenu du relèvement")
    assert record.published_at == datetime(2024, 1, 16, tzinfo=UTC)  # the newest item
    assert record.level == 4  # "sur l'ensemble du territoire national" names no band


def test_monitor_parse_reads_the_text_file(real_samples: Path) -> None:
    result = CliRunner().invoke(
        cli, ["parse", "--kind", "fr-diplomatie", "--country", "ML", str(real_samples / EXCERPT)]
    )
    assert result.exit_code == 0, result.output
    [record] = json.loads(result.output)
    assert (record["key"], record["level"], record["scope"]) == ("ML", 4, "whole_country")
    assert record["published_at"] == "2024-01-16T00:00:00+00:00"


# --- the 2026 layout and the old one, from the golden inputs ------------------------------------------


def test_mali_security_page_before_4_november_is_red_everywhere() -> None:
    record = parse(case("mali-securite-2025-10"))
    assert (record.level, record.scope, record.title) == (4, Scope.WHOLE_COUNTRY, "Mali – Sécurité")
    assert record.zones == (Zone("zone rouge", 4, "Zones formellement déconseillées (zone rouge)"),)
    assert record.updated_at == datetime(2025, 10, 21, tzinfo=UTC)
    assert record.extra["zones_updated"] == "2025-09-12"
    assert record.extra["map"] == "20250912_mali-fcv_cle0a41b7.jpg"
    names = [s.name for s in record.sections]
    assert names == [
        "Zones de vigilance",
        "Risques encourus et recommandations associées",
        "Recommandations générales",
    ]
    assert not re.search(
        "Imprimer|Fil d'Ariane\n|Voir le fil|Dernière actualisation|toujours valable", record.text
    )


def test_4_november_vigilance_accrue_is_not_a_call_to_leave() -> None:
    record = parse(case("mali-dernieres-minutes-2025-11-04"), url=ALERTS_URL)
    assert record.leave_now is False  # "ne pas quitter Bamako", "il n'est pas recommandé de quitter le pays"
    assert (record.level, record.scope) == (4, Scope.WHOLE_COUNTRY)
    assert [s.name for s in record.sections] == ["Mali –Vigilance accrue", "Mali –Pénuries de carburant"]
    assert record.sections[0].text.splitlines()[0] == "Publié le 4 novembre 2025"
    assert record.published_at == datetime(2025, 11, 4, tzinfo=UTC)
    assert record.zones == ()


def test_7_november_temporary_departure_sets_leave_now() -> None:
    record = parse(case("mali-dernieres-minutes-2025-11-07"), url=ALERTS_URL)
    assert record.leave_now is True
    assert record.embassy_closed is False  # "L'ambassade de France à Bamako reste ouverte"
    assert record.level_label == "formellement déconseillé de se rendre au Mali, quel que soit le motif"
    assert record.sections[0].name == "Mali –Départ temporaire recommandé"
    assert "départ temporaire du Mali dès que possible" in record.sections[0].text
    assert (record.published_at, record.updated_at) == (datetime(2025, 11, 7, tzinfo=UTC),) * 2


def test_4_to_7_november_is_a_critical_change() -> None:
    before = parse(case("mali-dernieres-minutes-2025-11-04"), url=ALERTS_URL)
    after = parse(case("mali-dernieres-minutes-2025-11-07"), url=ALERTS_URL)
    diff = diff_records(before, after)
    assert diff is not None
    change_class, reasons = classify(diff)
    assert change_class is ChangeClass.CRITICAL
    assert reasons[0] == "nationals urged to leave"  # then the quoted sentences (new attacks)


def test_republish_changing_only_the_still_valid_date_gives_the_same_record() -> None:
    first, again = (
        case("mali-dernieres-minutes-2025-11-07"),
        case("mali-dernieres-minutes-2025-11-07", "republished.html"),
    )
    assert first != again
    assert parse(first, url=ALERTS_URL).canonical() == parse(again, url=ALERTS_URL).canonical()


def test_old_layout_generic_notice_is_ignored_by_default_and_kept_on_request() -> None:
    default = parse(case("mali-fiche-spip-2025-10"), url=OLD_URL)
    assert default.sections[0].name == "Blocus sur le carburant"
    assert not any(s.name.startswith("Urgence") for s in default.sections)
    everything = parse(case("mali-fiche-spip-2025-10"), url=OLD_URL, ignore_titles=[])
    assert everything.sections[1].name.startswith("Urgence Attentat")
    assert everything.sections[1].text.startswith("(Publié le 15/10/2023)")
    only_blocus = parse(case("mali-fiche-spip-2025-10"), url=OLD_URL, ignore_titles="^blocus")
    assert only_blocus.sections[0].name.startswith("Urgence Attentat")


def test_orange_and_red_zones_give_the_least_severe_band_for_parts() -> None:
    url = f"{SITE}/niger/conseils-aux-voyageurs-securite"
    [record] = source(countries=("NE",), url=url).parse(
        case("niger-securite-zones"), content_type=None, url=url
    )
    assert (record.key, record.level, record.scope) == ("NE", 3, Scope.PARTS)
    assert record.level_label == "Zones déconseillées sauf raisons impératives (zone orange)"
    assert [(z.name, z.level) for z in record.zones] == [("zone rouge", 4), ("zone orange", 3)]
    assert record.embassy_closed is True  # "L'ambassade de France à Niamey est fermée."
    assert record.extra["map"] == "20260303_niger-fcv_cle41d0e2.jpg"  # from data-src, src is a placeholder
    assert "Une vigilance renforcée s’impose" in record.sections[0].text  # a sentence, not a zone heading


def test_alerts_inside_the_security_article_are_split_from_the_zones() -> None:
    page = """<html><body class="page-node-1"><main id="contenu"><h1>Mali</h1>
    <article class="node node--type-fiche-pays-article-cav"><h2>Sécurité</h2>
    <h3>Dernières minutes</h3><h4>Mali –Départ temporaire</h4><p>Publié le 07/11/2025</p>
    <p>Il est recommandé de quitter le pays dès que possible.</p>
    <h3>Zones de vigilance</h3><h4>Zones formellement déconseillées (zone rouge)</h4>
    <p>Tout le pays, y compris Bamako.</p>
    <h3>Risques encourus et recommandations associées</h3><p>Menace terroriste élevée.</p>
    </article></main></body></html>"""
    record = parse(page)
    assert [s.name for s in record.sections] == [
        "Mali –Départ temporaire",
        "Zones de vigilance",
        "Risques encourus et recommandations associées",
    ]
    assert (
        record.sections[0].text
        == "Publié le 07/11/2025\nIl est recommandé de quitter le pays dès que possible."
    )
    assert (record.level, record.leave_now, record.extra["page"]) == (4, True, "fiche")


def test_a_call_to_leave_in_an_alert_title_counts() -> None:
    page = text_page(
        "Mali", "Dernière minute", "Quitter le pays dès que possible", "Publié le 07/11/2025", "Vols."
    )
    assert parse(page, url=ALERTS_URL, content_type="text/plain").leave_now is True


# --- national level rules -----------------------------------------------------------------------------

ZONES = ("Mali", "Sécurité", "Zones de vigilance")


@pytest.mark.parametrize(
    ("lines", "level", "scope", "label"),
    [
        (
            (
                "Zone déconseillée sauf raison impérative (en orange sur la carte)",
                "Le nord.",
                "Le reste du pays est en vigilance renforcée.",
            ),
            2,
            Scope.PARTS,
            "Le reste du pays est en vigilance renforcée",
        ),
        (
            (
                "Zones déconseillées sauf raison impérative (zone orange)",
                "Niamey.",
                "Zones formellement déconseillées (zone rouge)",
                "Le reste du territoire.",
            ),
            4,
            Scope.PARTS,
            "Zones formellement déconseillées (zone rouge)",
        ),
        (
            ("Vigilance normale (zone verte)", "Tout le pays."),
            1,
            Scope.WHOLE_COUNTRY,
            "Vigilance normale (zone verte)",
        ),
        (
            ("L'ensemble du pays est en vigilance normale.",),
            1,
            Scope.WHOLE_COUNTRY,
            "L'ensemble du pays est en vigilance normale",
        ),
        (
            (
                "Vigilance renforcée (zone jaune)",
                "Le sud.",
                "La totalité du territoire est formellement déconseillée.",
            ),
            4,
            Scope.WHOLE_COUNTRY,
            "La totalité du territoire est formellement déconseillée",
        ),
    ],
)
def test_national_level(lines: tuple[str, ...], level: int, scope: Scope, label: str) -> None:
    record = parse(text_page(*ZONES, *lines), content_type="text/plain")
    assert (record.level, record.scope, record.level_label) == (level, scope, label)


def test_negated_whole_country_sentence_is_not_a_level() -> None:
    page = text_page(
        *ZONES,
        "Vigilance renforcée (zone jaune)",
        "L'ensemble du territoire n'est plus formellement déconseillé.",
    )
    assert parse(page, content_type="text/plain").level == 2


def test_band_words_outside_the_zones_block_make_no_zone() -> None:
    page = text_page(
        *ZONES,
        "Vigilance normale (zone verte)",
        "Tout le pays.",
        "Risques encourus et recommandations associées",
        "Zone formellement déconseillée aux baigneurs",
        "Une vigilance renforcée est de mise lors des fêtes.",
    )
    record = parse(page, content_type="text/plain")
    assert record.zones == (Zone("zone verte", 1, "Vigilance normale (zone verte)"),)
    assert [s.name for s in record.sections] == [
        "Zones de vigilance",
        "Risques encourus et recommandations associées",
    ]


def test_same_band_twice_gets_distinct_zone_names() -> None:
    page = text_page(
        *ZONES,
        "Zone rouge",
        "Le nord.",
        "Zones formellement déconseillées (rouge sur la carte)",
        "L'est.",
        "Vigilance renforcée (zone jaune)",
        "Le reste.",
    )
    assert [z.name for z in parse(page, content_type="text/plain").zones] == [
        "zone rouge",
        "zone rouge (2)",
        "zone jaune",
    ]


# --- flags --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sentence", "leave_now"),
    [
        ("Il est recommandé de quitter le pays.", True),
        ("Les Français sont invités à prévoir un départ temporaire, par tout moyen, dès que possible.", True),
        ("Il est demandé de quitter Bamako dans les meilleurs délais.", True),
        (
            "Il est recommandé aux ressortissants français qui le peuvent de quitter temporairement le Mali.",
            True,
        ),
        ("Il n'est pas recommandé de quitter le pays.", False),
        ("La recommandation de quitter le pays est levée.", False),
        ("Il est conseillé de ne pas quitter son domicile.", False),
        ("Les ressortissants sont appelés à une vigilance accrue.", False),
    ],
)
def test_leave_now(sentence: str, leave_now: bool) -> None:
    page = text_page("Mali", "Dernière minute", "Situation", "Publié le 07/11/2025", sentence)
    assert parse(page, url=ALERTS_URL, content_type="text/plain").leave_now is leave_now


@pytest.mark.parametrize(
    ("sentence", "closed"),
    [
        ("L'ambassade de France est fermée au public jusqu'à nouvel ordre.", True),
        ("L’ambassade de France à Niamey est temporairement fermée.", True),
        ("La fermeture de l'ambassade a été décidée.", True),
        ("L'ambassade reste ouverte.", False),
        ("La fermeture de l'ambassade n'est pas prévue.", False),
        ("L'ambassade n'est pas fermée.", False),
    ],
)
def test_embassy_closed(sentence: str, closed: bool) -> None:
    page = text_page("Mali", "Dernière minute", "Situation", "Publié le 07/11/2025", sentence)
    assert parse(page, url=ALERTS_URL, content_type="text/plain").embassy_closed is closed


# --- dates --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Publié le 16/01/2024", datetime(2024, 1, 16, tzinfo=UTC)),
        ("(Publié le 15/10/2023)", datetime(2023, 10, 15, tzinfo=UTC)),
        ("Publié le : 19/09/2023", datetime(2023, 9, 19, tzinfo=UTC)),
        ("Publié le 30 octobre 2023", datetime(2023, 10, 30, tzinfo=UTC)),
        ("Dernière mise à jour le : 7 novembre 2025", datetime(2025, 11, 7, tzinfo=UTC)),
        ("le 1er août 2025", datetime(2025, 8, 1, tzinfo=UTC)),
        ("12 févr. 2026", datetime(2026, 2, 12, tzinfo=UTC)),
        ("3 MARS 2026", datetime(2026, 3, 3, tzinfo=UTC)),
        ("31/02/2025", None),
        ("45/13/2025", None),
        ("le 7 brumaire an VIII", None),
        ("12/09/0001", None),
        ("", None),
    ],
)
def test_french_dates(text: str, expected: datetime | None) -> None:
    assert french_date(text) == expected


def test_old_date_line_cuts_the_still_valid_date_off() -> None:
    page = text_page(
        "Mali",
        "Dernière mise à jour le : - Information toujours valide le : 13/11/2025",
        *ZONES,
        "Zone rouge",
        "Tout.",
    )
    assert parse(page, content_type="text/plain").updated_at is None
    page = page.replace("le : -", "le : 12/11/2025 -")
    record = parse(page, content_type="text/plain")
    assert record.updated_at == datetime(2025, 11, 12, tzinfo=UTC)
    assert "13/11/2025" not in record.canonical()


# --- failures -----------------------------------------------------------------------------------------


def test_redesigned_security_page_without_zones_is_a_parse_error() -> None:
    with pytest.raises(ParseError, match="no 'Zones de vigilance' block"):
        parse(case("mali-securite-2025-10", "redesigned-no-zones.html"))


def test_zones_block_without_any_band_is_a_parse_error() -> None:
    with pytest.raises(ParseError, match="names no level"):
        parse(
            text_page(*ZONES, "Consultez la carte interactive.", "Terrorisme", "Une vigilance renforcée."),
            content_type="text/plain",
        )


def test_a_page_with_neither_part_is_a_parse_error() -> None:
    with pytest.raises(ParseError, match="not a Conseils aux voyageurs page"):
        parse("<html><body><main><h1>Mali</h1><p>Politique et économie</p></main></body></html>", url=OLD_URL)


@pytest.mark.parametrize("countries", [(), ("ML", "NE")])
def test_exactly_one_country_is_required(countries: tuple[str, ...]) -> None:
    with pytest.raises(ParseError, match="exactly one country"):
        source(countries=countries).parse(
            case("mali-securite-2025-10"), content_type="text/html", url=SECURITY_URL
        )


def test_a_page_about_another_country_is_a_parse_error() -> None:
    with pytest.raises(ParseError, match="the page is about ML, the source is for NE"):
        source(countries=("NE",)).parse(
            case("mali-securite-2025-10"), content_type="text/html", url=SECURITY_URL
        )


def test_a_payload_that_is_not_a_page_is_a_parse_error() -> None:
    with pytest.raises(ParseError, match="not application/json"):
        parse(b'{"zones": []}', content_type="application/json")


def test_invalid_ignore_titles_regex_is_a_config_error() -> None:
    with pytest.raises(ValidationError, match="invalid regular expression"):
        source(ignore_titles=["(unclosed"])
    stanza = (
        f"sources:\n  - id: fr-mali\n    kind: fr-diplomatie\n    url: {SECURITY_URL}\n    countries: [ML]\n"
    )
    with pytest.raises(ConfigError, match="ignore_titles"):
        loads(stanza + "    options: {ignore_titles: ['(']}\n", path=Path("t.yaml"), environ={})


@settings(max_examples=300, deadline=None)
@given(
    body=st.binary(max_size=3000) | st.text(max_size=2000).map(lambda t: t.encode("utf-8", "surrogatepass")),
    content_type=st.sampled_from([None, "text/html", "text/plain", "application/octet-stream"]),
    url=st.sampled_from([SECURITY_URL, ALERTS_URL, OLD_URL]),
)
def test_arbitrary_bytes_give_records_or_a_parse_error(
    body: bytes, content_type: str | None, url: str
) -> None:
    try:
        records = source(url=url).parse(body, content_type=content_type, url=url)
    except ParseError:
        return
    assert [r.key for r in records] == ["ML"]
    assert all(r.level is None or 1 <= r.level <= 4 for r in records)


@settings(max_examples=150, deadline=None)
@given(
    noise=st.text(alphabet="Zzones de vigilancerougeSécuritéDernière minute.\n:/0123456789()", max_size=400)
)
def test_page_like_noise_gives_records_or_a_parse_error(noise: str) -> None:
    with contextlib.suppress(ParseError):
        record = parse(text_page("Mali", noise), content_type="text/plain")
        assert record.level is None or 1 <= record.level <= 4


# --- fixtures and docs agree with the site --------------------------------------------------------------


def test_fixture_urls_use_the_sites_slugs(real_samples: Path) -> None:
    slugs = json.loads(
        (real_samples / "fr-diplomatie/derived-country-slugs.trek.diplomatie-slugs.json").read_text()
    )
    for stanza_path in CASES.glob("*/source.yaml"):
        stanza = yaml.safe_load(stanza_path.read_text(encoding="utf-8"))
        [country] = stanza["countries"]
        match = re.search(
            r"/(?:information-par-pays|conseils-par-pays-destination)/([a-z-]+)/", stanza["url"]
        )
        assert match and match.group(1) == slugs[country]["slug"], stanza_path


def test_doc_example_is_a_valid_configuration() -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.DOTALL)
    assert blocks
    for block in blocks:
        config = loads(block, path=DOC, environ={})
        assert config.sources
        for stanza in config.sources:
            assert stanza.kind == "fr-diplomatie"
            build(stanza)


def test_doc_names_every_option_and_the_default_ignore_list() -> None:
    text = DOC.read_text(encoding="utf-8")
    for name in FrDiplomatieSource.Options.model_fields:
        assert f"`{name}`" in text
    for pattern in source().options.ignore_titles:
        assert pattern in text
