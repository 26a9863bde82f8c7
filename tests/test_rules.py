"""The phrase rules: their data files, sentence splitting, noise keys, negations, lifts, levels."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.models import ChangeClass
from monitor.rules import (
    LEVEL_CLASS,
    RulesError,
    SentenceMatch,
    builtin_rules,
    fold,
    fold_pattern,
    load_rules,
)
from monitor.sentences import logical_lines, minor_edit, noise_key, places, split_sentences

RULES = builtin_rules()


def said(sentence: str, kind: str = "ministry") -> SentenceMatch:
    return RULES.match(" ".join(fold(sentence).split()), kind)  # type: ignore[arg-type]


def names(rules: frozenset[object]) -> set[str]:
    return {rule.name for rule in rules}  # type: ignore[attr-defined]


def key(sentence: str) -> str:
    return noise_key(" ".join(fold(sentence).split()), RULES)


# --- data files ---------------------------------------------------------------------------------


def test_builtin_rules_are_valid_and_consistent() -> None:
    assert len(RULES.rules) >= 25
    assert {rule.name for rule in RULES.rules} >= {
        "nationals urged to leave",
        "ordered departure",
        "authorized departure",
        "embassy closed or evacuated",
        "service or booking suspension",
        "surcharge",
        "services resumed",
    }
    for rule in RULES.rules:
        assert rule.regexes and rule.applies_to <= {"ministry", "carrier"}
        if rule.states_level:
            assert rule.change_class is LEVEL_CLASS[rule.level or 0]
        if rule.partial:
            assert rule.change_class is ChangeClass.HEIGHTENED
    assert [rule.level for rule in RULES.level_rules("ministry")] == [4, 3, 2, 1]
    assert RULES.level_rules("carrier") == ()


RULE = "language: en\nrules:\n  - "


def write(tmp_path: Path, text: str, name: str = "extra.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_extra_rule_files_merge_with_the_builtin_ones(tmp_path: Path) -> None:
    extra = write(
        tmp_path,
        """
language: en
negations: ['on no account']
rules:
  - name: ordered departure
    class: critical
    applies_to: [ministry]
    topic: staff_departure
    patterns: ['staff (?:were|have been) sent home']
  - name: cholera outbreak
    class: heightened
    applies_to: [ministry]
    patterns: ['cholera']
""",
    )
    rules = load_rules([extra])
    assert len(rules.rules) == len(RULES.rules) + 1
    ordered = next(rule for rule in rules.rules if rule.name == "ordered departure")
    assert (
        len(ordered.regexes) == len(next(r for r in RULES.rules if r.name == "ordered departure").regexes) + 1
    )
    match = rules.match("non-essential staff were sent home last week.", "ministry")
    assert names(match.present) == {"ordered departure"}
    assert names(rules.match("a cholera outbreak is spreading.", "ministry").present) == {"cholera outbreak"}
    assert load_rules([extra]) is rules  # loaded once


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            RULE + "{name: x, class: severe, applies_to: [ministry], patterns: [a], colour: red}\n",
            "rule 1 'x': colour: Extra inputs are not permitted",
        ),
        (
            RULE + "{name: x, class: terrible, applies_to: [ministry], patterns: [a]}\n",
            "rule 1 'x': class: Input should be",
        ),
        (
            RULE + "{name: x, class: severe, applies_to: [ship], patterns: [a]}\n",
            "rule 1 'x': applies_to.0: Input should be 'ministry' or 'carrier'",
        ),
        (
            RULE + "{name: x, class: severe, applies_to: [ministry], patterns: ['(unclosed']}\n",
            "rule 'x': pattern '(unclosed' is not a valid regular expression",
        ),
        (
            RULE + "{name: x, class: severe, applies_to: [ministry], patterns: ['a?']}\n",
            "rule 'x': pattern 'a?' matches the empty string",
        ),
        (
            RULE + "{name: x, class: heightened, level: 4, applies_to: [ministry], patterns: [a]}\n",
            "rule 'x': a level 4 rule must have class severe, not heightened",
        ),
        (
            RULE + "{name: x, class: severe, partial: true, applies_to: [ministry], patterns: [a]}\n",
            "rule 'x': a partial rule (part of a country) must have class heightened",
        ),
        (
            RULE + "{name: surcharge, class: severe, applies_to: [carrier], patterns: [a]}\n",
            "rule 'surcharge': already defined with class",
        ),
        ("language: en\nlifts: ['(']\n", "lifts '(' is not a valid regular expression"),
        (
            RULE + "{class: severe, applies_to: [ministry], patterns: [a]}\n",
            "rule 1: name: Field required",
        ),
        ("- just\n- a list\n", "expected a mapping with `language` and `rules`"),
        ("language: en\nrules: [\n", "not valid YAML"),
    ],
)
def test_invalid_rule_files_name_the_file_and_the_rule(tmp_path: Path, content: str, message: str) -> None:
    path = write(tmp_path, content)
    with pytest.raises(RulesError) as caught:
        load_rules([path])
    assert str(caught.value).startswith(f"{path}: ")
    assert message in str(caught.value)
    assert caught.value.exit_code == 2


def test_a_missing_rule_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match=r"missing\.yaml: cannot read the rule file"):
        load_rules([tmp_path / "missing.yaml"])


# --- folding, sentences, noise --------------------------------------------------------------------


def test_folding_and_folded_patterns() -> None:
    assert fold("Déconseillé – l’Ambassade, STRAßE, Œuvre") == "deconseille - l'ambassade, strasse, oeuvre"
    assert fold("a\nb") == "a\nb"
    assert fold_pattern(r"Formellement\s+DÉCONSEILLÉ\S*\W") == r"formellement\s+deconseille\S*\W"
    # Group names are names, not text: folded, (?P<Town> would no longer compile.
    assert fold_pattern(r"(?P<Town>Bamako|Gao) - (?P=Town)") == r"(?P<Town>bamako|gao) - (?P=Town)"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("The U.S. Embassy is open. Do not travel.", ["The U.S. Embassy is open.", "Do not travel."]),
        (
            "Carry water, e.g. two litres. Mr. Smith agrees.",
            ["Carry water, e.g. two litres.", "Mr. Smith agrees."],
        ),
        ("Avoid Timbuktu, Gao, etc. and stay in Bamako.", ["Avoid Timbuktu, Gao, etc. and stay in Bamako."]),
        ("Is it safe? No. Leave now!", ["Is it safe?", "No.", "Leave now!"]),
        (
            "M. Dupont et Mme. Martin sont partis. Ils reviendront.",
            ["M. Dupont et Mme. Martin sont partis.", "Ils reviendront."],
        ),
        (
            "Am 7. November 2025 gilt z. B. Nr. 5. Danach nicht.",
            ["Am 7. November 2025 gilt z. B. Nr. 5.", "Danach nicht."],
        ),
        ("- the Gambella region", ["the Gambella region"]),
        ("• Do not travel to Kidal.", ["Do not travel to Kidal."]),
        ("   ", []),
    ],
)
def test_sentence_splitting(line: str, expected: list[str]) -> None:
    assert split_sentences(line) == expected


def test_logical_lines_join_broken_lines_and_name_list_items() -> None:
    lines = [
        "L'ensemble du pays est en vigilance normale,",
        "à l'exception de la frontière.",
        "Der Flughafen ist in Betrieb;",
        " Flugausfälle sind möglich.",
        "FCDO advises against all travel to:",
        "- the Amhara region",
        "- within 10km of the border",
        "",
        "Heading",
        "Body text.",
    ]
    assert logical_lines(lines) == [
        "L'ensemble du pays est en vigilance normale, à l'exception de la frontière.",
        "Der Flughafen ist in Betrieb; Flugausfälle sind möglich.",
        "FCDO advises against all travel to:",
        "FCDO advises against all travel to: the Amhara region",
        "FCDO advises against all travel to: within 10km of the border",
        "",
        "Heading",
        "Body text.",
    ]


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("Updated: January 30, 2025", "Updated: July 31, 2025"),
        ("Last updated: 3 November 2025 10:15 ET", "Last updated: 5 Nov 2025 at 14:30 GMT"),
        ("Still current at: 6 November 2025", "Still current at: Thursday, 13 November 2025"),
        ("Dernière mise à jour le : 4 novembre 2025", "Dernière mise à jour le : 07/11/2025"),
        (
            "Information toujours valide le : 1er décembre 2025",
            "Information toujours valable le 2 décembre 2025",
        ),
        ("Publié le 16/01/2024", "(Publié le 15 octobre 2023)"),
        ("Stand: 20.10.2025", "Stand: 29.10.2025 - 14 Uhr"),
        ("Unverändert gültig seit: 2. August 2023", "Unverändert gültig seit: 05.08.2023"),
        ("Meeting on 2025-11-06T10:00:00Z in Bamako.", "Meeting on 2025-11-07T09:30:00+01:00 in Bamako."),
        (
            "See https://x.org/mali?utm_source=tw&id=4",
            "See https://x.org/mali?id=4&utm_medium=email&fbclid=abc",
        ),
        ("Do  not travel   to Mali.", "do not TRAVEL to mali"),
    ],
)
def test_noise_keys_ignore_dates_times_labels_tracking_and_case(one: str, other: str) -> None:
    assert key(one) == key(other)


def test_noise_keys_keep_what_matters() -> None:
    assert key("Updated: January 30, 2025") == ""
    assert key("Share") == key("Imprimer") == key("Drucken") == ""
    assert key("Call +223 20 70 23 00.") != key("Call +223 20 70 23 01.")
    assert key("See https://x.org/mali?id=4") != key("See https://x.org/mali?id=5")
    assert (
        key("Reissued with updates to health information.") == "reissued with updates to health information"
    )
    assert key("Level 4: Do Not Travel") == "level 4 do not travel"


def test_minor_edits_are_typo_fixes_only() -> None:
    assert minor_edit("the goverment has limited capacity", "the government has limited capacity")
    assert minor_edit("avoid any where near the border", "avoid anywhere near the border")
    assert not minor_edit("call 20 70 23 00", "call 20 70 23 01")
    assert not minor_edit("you should leave now", "you should leave not")
    assert not minor_edit("level 3 reconsider travel", "level 4 reconsider travel")
    assert not minor_edit("the border is open", "the border is closed")


def test_places_are_the_capitalised_words_after_the_first() -> None:
    assert places("FCDO advises against all travel to: the Amhara region outside Lalibela town") == {
        "amhara",
        "lalibela",
    }
    assert places("Zones formellement déconseillées : la région de l'Extrême-Nord") == {"extreme-nord"}


# --- negations, lifts, levels -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sentence", "kind", "present", "lifted", "negated"),
    [
        # English
        (
            "The Department of State ordered the departure of non-emergency employees.",
            "ministry",
            {"ordered departure"},
            set(),
            set(),
        ),
        ("The ordered departure was lifted on January 9.", "ministry", set(), {"ordered departure"}, set()),
        (
            "On January 12 the Department ended ordered departure status.",
            "ministry",
            set(),
            {"ordered departure"},
            set(),
        ),
        (
            "Be prepared to depart immediately.",
            "ministry",
            {"prepare to leave or shelter"},
            set(),
            {"nationals urged to leave"},
        ),
        (
            "The Department has not authorized or ordered the departure of staff.",
            "ministry",
            set(),
            set(),
            {"ordered departure"},
        ),
        (
            "If you decide to leave immediately, register first.",
            "ministry",
            set(),
            set(),
            {"nationals urged to leave"},
        ),
        (
            "CMA CGM has decided not to suspend its activities to Mali.",
            "carrier",
            set(),
            set(),
            {"service or booking suspension"},
        ),
        (
            "No new bookings will be accepted for Mali.",
            "carrier",
            {"service or booking suspension"},
            set(),
            set(),
        ),
        ("We will notify you once services resume.", "carrier", set(), set(), {"services resumed"}),
        ("The war risk surcharge will no longer apply.", "carrier", {"surcharge withdrawn"}, set(), set()),
        # French
        (
            "Les services vers le Mali ne sont pas suspendus.",
            "carrier",
            set(),
            set(),
            {"service or booking suspension"},
        ),
        (
            "CMA CGM n'envisage pas, à ce stade, de suspendre ses services.",
            "carrier",
            set(),
            set(),
            {"service or booking suspension"},
        ),
        (
            "La suspension des réservations est levée.",
            "carrier",
            set(),
            {"service or booking suspension"},
            set(),
        ),
        (
            "Il n'est pas recommandé de quitter le pays par la route.",
            "ministry",
            set(),
            set(),
            {"nationals urged to leave"},
        ),
        (
            "Il est recommandé de quitter le pays sans délai.",
            "ministry",
            {"nationals urged to leave"},
            set(),
            set(),
        ),
        (
            "Le gouvernement ne recommande plus aux Canadiens de quitter le Niger.",
            "ministry",
            set(),
            set(),
            {"nationals urged to leave"},
        ),
        # German
        ("Es besteht keine Reisewarnung.", "ministry", set(), set(), {"level 4 (do not travel)"}),
        (
            "Da die Korridore nicht mehr befahren werden können, erklärt MSC höhere Gewalt.",
            "carrier",
            {"force majeure"},
            set(),
            set(),
        ),
        (
            "Die Bundesregierung fordert Deutsche auf, das Land mit kommerziellen Flügen zu verlassen.",
            "ministry",
            {"nationals urged to leave"},
            set(),
            set(),
        ),
        (
            "Die Reisewarnung für Mali wurde aufgehoben.",
            "ministry",
            set(),
            {"level 4 (do not travel)"},
            set(),
        ),
        (
            "Von Reisen nach Mali wird nicht mehr abgeraten.",
            "ministry",
            set(),
            {"level 3 (reconsider travel)"},
            set(),
        ),
        (
            "Von nicht notwendigen Reisen nach Mali wird abgeraten.",
            "ministry",
            {"level 3 (reconsider travel)"},
            set(),
            set(),
        ),
        (
            "Deutsche werden dringend aufgefordert, Libanon zu verlassen.",
            "ministry",
            {"nationals urged to leave"},
            set(),
            set(),
        ),
    ],
)
def test_negations_and_lifts(
    sentence: str, kind: str, present: set[str], lifted: set[str], negated: set[str]
) -> None:
    match = said(sentence, kind)
    assert names(match.present) >= present
    assert names(match.lifted) == lifted
    assert names(match.negated) == negated
    assert not (names(match.present) & (lifted | negated))


def test_persisting_statements_are_stated_but_not_news() -> None:
    match = said("Bookings to Mali remain suspended.", "carrier")
    assert names(match.present) == names(match.persisting) == {"service or booking suspension"}
    assert not said("Bookings to Mali are suspended.", "carrier").persisting


@pytest.mark.parametrize(
    ("sentence", "level", "partial_level"),
    [
        ("Mali - Level 4: Do Not Travel", 4, None),
        ("Reconsider travel to Niger due to crime.", 3, None),
        ("Exercise increased caution in Senegal.", 2, None),
        ("Exercise normal precautions in Ghana.", 1, None),
        ("FCDO advises against all but essential travel to the rest of Lebanon, including Beirut.", 3, None),
        ("Do not travel to the Kidal region due to terrorism.", None, 4),
        ("FCDO advises against all travel to: the Amhara region", None, 4),
        ("Northern Mali - Level 4: Do Not Travel", None, 4),
        ("Pour rappel, l'ensemble du territoire malien reste formellement déconseillé.", 4, None),
        ("Il est formellement déconseillé de s'y rendre, quel que soit le motif.", 4, None),
        ("Le district de Bamako est déconseillé sauf raison impérative.", None, 3),
        (
            "L'ensemble du pays est en vigilance normale, "
            "à l'exception de la Casamance, placée en vigilance renforcée.",
            1,
            2,
        ),
        ("La baignade est formellement déconseillée.", None, None),
        ("Vor Reisen nach Mali wird gewarnt.", 4, None),
        ("Reisewarnung", 4, None),
        ("Teilreisewarnung", None, 4),
        ("Vor Reisen in den Norden und Westen Nigers wird gewarnt.", None, 4),
        (
            "Von nicht notwendigen Reisen in die übrigen Landesteile einschließlich Niamey wird abgeraten.",
            3,
            None,
        ),
    ],
)
def test_level_detection(sentence: str, level: int | None, partial_level: int | None) -> None:
    match = said(sentence)
    assert (match.level, match.partial_level) == (level, partial_level)


def test_rules_apply_to_their_kind_only() -> None:
    assert not said("Road transport to Mali is temporarily suspended.", "ministry").present
    assert not said("Do not travel to Mali.", "carrier").present
    assert "mali" not in names(said("Somalia: war risk surcharge applies.", "carrier").present)
