"""Classifying text changes: ``classify_texts``, the text signals inside ``classify(diff)``, the
pipeline's glitch guard, the ``monitor classify`` command, and properties of noise."""

from __future__ import annotations

import json
import random
import runpy
from dataclasses import FrozenInstanceError, replace
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.classify import TextClassification, classify, classify_texts, text_supports_level_change
from monitor.cli import cli
from monitor.diff import RecordDiff, diff_records
from monitor.models import ChangeClass, Notice, NoticeStatus, Record, Section, StaffDeparture
from monitor.rules import load_rules

ROOT = Path(__file__).resolve().parents[1]
C = ChangeClass


def lines(*sentences: str) -> str:
    return "\n".join(sentences)


# --- the Mali sequence, autumn 2025 -------------------------------------------------------------

US_HEAD = ("Mali - Level 4: Do Not Travel", "Updated: {date}")
US_BODY = (
    "Do not travel to Mali for any reason due to crime, terrorism, kidnapping and armed conflict.",
    "The U.S. government has very limited ability to provide emergency services to U.S. citizens in Mali.",
    "Enroll in the Smart Traveler Enrollment Program (STEP) to receive alerts.",
)
AUTHORIZED = (
    "On October 24, 2025, the Department of State authorized the departure of non-emergency "
    "U.S. government employees and their family members from Mali."
)
ORDERED = (
    "On October 30, 2025, the Department of State ordered non-emergency U.S. government "
    "employees and their family members to leave Mali."
)


def us(date: str, *extra: str) -> str:
    return lines(US_HEAD[0], US_HEAD[1].format(date=date), *extra, *US_BODY)


FR_RED = "Pour rappel, l’ensemble du territoire malien reste formellement déconseillé."
FR_4_NOV = (
    "La situation sécuritaire au Mali continue de se dégrader et les difficultés d’approvisionnement "
    "en carburant se prolongent. Les ressortissants français présents dans le pays sont appelés à "
    "une vigilance accrue."
)
FR_7_NOV = (
    "Il est recommandé aux ressortissants français de prévoir un départ temporaire du Mali dès que "
    "possible par les vols commerciaux encore disponibles."
)

CMA_SUSPENSION = lines(
    "Intermodal Notice MALI – Temporary Service Suspension",
    "Dear Customers, due to the security situation, road transportation of cargo destined for Mali "
    "via all PODs, including Abidjan, Dakar, Tema and Conakry, is temporarily suspended until further "
    "notice. No new bookings will be accepted for Mali.",
)
CMA_REVERSAL = lines(
    "Intermodal Notice MALI – Update",
    "Overland transport to Mali remains heavily impacted in terms of both transit times and costs.",
    "CMA CGM has nevertheless decided not to suspend its activities to Mali, including overland transport.",
)
MSC_SUSPENSION = lines(
    "Road transportation for Mali cargo",
    "Road transportation for cargo destined for Mali is temporarily suspended until further notice.",
    "MSC will no longer accept bookings for Mali until the situation is resolved.",
)
MSC_RESUMPTION = lines(
    "Road transportation for Mali cargo",
    "After fruitful discussions, our activities in Mali have resumed, thereby suspending the "
    "communiqué of 6 November.",
)


@pytest.mark.parametrize(
    ("kind", "before", "after", "expected", "reason"),
    [
        (
            "ministry",
            us("October 1, 2025"),
            us("October 24, 2025", AUTHORIZED),
            C.SEVERE,
            "authorized departure: “On October 24",
        ),
        (
            "ministry",
            us("October 24, 2025", AUTHORIZED),
            us("October 30, 2025", ORDERED),
            C.CRITICAL,
            "ordered departure: “On October 30",
        ),
        ("ministry", us("October 30, 2025", ORDERED), us("November 3, 2025", ORDERED), C.NOISE, "only dates"),
        (
            "ministry",
            lines(FR_RED),
            lines(FR_4_NOV, FR_RED),
            C.HEIGHTENED,
            "fuel or supply shortages, heightened threat: “La situation",
        ),
        (
            "ministry",
            lines(FR_4_NOV, FR_RED),
            lines(FR_7_NOV, FR_4_NOV, FR_RED),
            C.CRITICAL,
            "nationals urged to leave: “Il est recommandé",
        ),
        (
            "ministry",
            lines("Stand: 20.10.2025", "Vor Reisen nach Mali wird gewarnt."),
            lines(
                "Stand: 29.10.2025",
                "Vor Reisen nach Mali wird gewarnt.",
                "Deutschen Staatsangehörigen wird empfohlen, Mali umgehend zu verlassen.",
            ),
            C.CRITICAL,
            "nationals urged to leave: “Deutschen",
        ),
        (
            "carrier",
            "Intermodal notices: none at present.",
            CMA_SUSPENSION,
            C.SEVERE,
            "service or booking suspension: “",
        ),
        (
            "carrier",
            CMA_SUSPENSION,
            CMA_REVERSAL,
            C.RELAXED,
            "service or booking suspension ruled out: “CMA CGM",
        ),
        (
            "carrier",
            MSC_SUSPENSION,
            MSC_RESUMPTION,
            C.RELAXED,
            "services resumed: “After fruitful discussions",
        ),
    ],
)
def test_the_mali_sequence(kind: str, before: str, after: str, expected: C, reason: str) -> None:
    result = classify_texts(kind, "ML", before, after)  # type: ignore[arg-type]
    assert result.change_class is expected, result.reasons
    assert result.reasons[0].startswith(reason), result.reasons


def test_a_departure_order_replacing_an_authorization_is_not_also_a_relaxation() -> None:
    """The authorized departure is no longer stated because it became ordered: a step up on one
    scale, whose reasons say nothing of a relaxation."""
    reissued = "Reissued with the authorized departure of non-emergency staff and family members."
    reordered = "Reissued with the ordered departure of non-emergency staff and family members."
    result = classify_texts(
        "ministry",
        "ML",
        us("October 24, 2025", reissued, AUTHORIZED),
        us("October 30, 2025", reordered, ORDERED),
    )
    assert result.change_class is C.CRITICAL, result.reasons
    assert not [reason for reason in result.reasons if "no longer stated" in reason], result.reasons
    # Without the graver statement the authorization's end still relaxes.
    ended = classify_texts("ministry", "ML", us("October 24, 2025", AUTHORIZED), us("November 3, 2025"))
    assert ended.change_class is C.RELAXED, ended.reasons
    assert any("no longer stated" in reason for reason in ended.reasons), ended.reasons


# --- representative cases, three languages ------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "country", "before", "after", "expected"),
    [
        # levels
        (
            "ministry",
            "NE",
            "Niger - Level 2: Exercise Increased Caution\nExercise increased caution in Niger.",
            "Niger - Level 3: Reconsider Travel\nReconsider travel to Niger due to crime.",
            C.SEVERE,
        ),
        (
            "ministry",
            "SN",
            "Senegal - Level 1: Exercise Normal Precautions\nExercise normal precautions in Senegal.",
            "Senegal - Level 2: Exercise Increased Caution\nExercise increased caution in Senegal.",
            C.HEIGHTENED,
        ),
        (
            "ministry",
            "NE",
            "Niger - Level 4: Do Not Travel\nDo not travel to Niger due to crime.",
            "Niger - Level 3: Reconsider Travel\nReconsider travel to Niger due to crime.",
            C.RELAXED,
        ),
        (
            "ministry",
            "LB",
            "Vor Reisen nach Libanon wird gewarnt.\nDie Lage ist angespannt.",
            "Die Reisewarnung für Libanon wird aufgehoben.\nDie Lage ist angespannt.",
            C.RELAXED,
        ),
        (
            "ministry",
            "SN",
            "L'ensemble du pays est en vigilance normale.\nLes rassemblements sont à éviter.",
            "L'ensemble du pays est placé en vigilance renforcée.\nLes rassemblements sont à éviter.",
            C.HEIGHTENED,
        ),
        # part of the country
        (
            "ministry",
            "ET",
            "FCDO advises against all travel to:\n- within 10km of the border with Eritrea",
            "FCDO advises against all travel to:\n- within 10km of the border with Eritrea"
            "\n- the Amhara region",
            C.HEIGHTENED,
        ),
        # threats, embassy, staff
        (
            "ministry",
            "BF",
            "Do not travel to Burkina Faso.\nTerrorists may attack with little warning.",
            "Do not travel to Burkina Faso.\nTerrorists may attack with little warning.\n"
            "On August 24, militants killed several hundred people in Barsalogho.",
            C.HEIGHTENED,
        ),
        (
            "ministry",
            "HT",
            "L'ambassade assure les services consulaires habituels.",
            "L'ambassade fonctionne en format réduit : seules les demandes urgentes sont traitées.",
            C.SEVERE,
        ),
        (
            "ministry",
            "SD",
            "The U.S. Embassy in Khartoum offers limited services.",
            "The Department of State suspended operations at U.S. Embassy Khartoum.",
            C.CRITICAL,
        ),
        (
            "ministry",
            "NE",
            "The Department ordered the departure of non-emergency employees from Niger.",
            "The Department ended ordered departure status. Employees remain authorized to depart on a "
            "voluntary basis.",
            C.RELAXED,
        ),
        # update and noise
        (
            "ministry",
            "ML",
            "Do not travel to Mali.\nContact the embassy at +223 20 70 23 00.",
            "Do not travel to Mali.\nContact the embassy at +223 20 70 23 01.",
            C.UPDATE,
        ),
        (
            "ministry",
            "ML",
            "Do not travel to Mali.\nThe goverment has limited capacity.",
            "Do not travel to Mali.\nThe government has limited capacity.",
            C.NOISE,
        ),
        (
            "ministry",
            "MA",
            "Partager\nL'ensemble du pays est en vigilance normale.",
            "Imprimer\nL'ensemble du pays est en vigilance normale.",
            C.NOISE,
        ),
        # carriers
        (
            "carrier",
            "IL",
            "Israel imports: bookings accepted as usual.",
            "Israel imports: an Emergency Risk Surcharge (ERS) of USD 50 per TEU applies from 8 January.",
            C.HEIGHTENED,
        ),
        (
            "carrier",
            "IL",
            "Israel imports: an Emergency Risk Surcharge (ERS) of USD 50 per TEU applies.",
            "Israel imports: the Emergency Risk Surcharge (ERS) will no longer apply from 1 October.",
            C.RELAXED,
        ),
        (
            "carrier",
            "LB",
            "Dear Customers, services to Beirut continue as planned.",
            "Dear Customers, vessels on the EMA service will omit Beirut on the next two rotations.",
            C.HEIGHTENED,
        ),
        (
            "carrier",
            "NE",
            "Bookings for Niger via Cotonou are accepted.",
            "Bookings for Niger via Cotonou are accepted. CMA CGM has no plans to suspend this service.",
            C.UPDATE,
        ),
        (
            "carrier",
            "ML",
            "Mali: services operating normally.\n\nIsrael: port congestion at Haifa.",
            "Mali: services operating normally.\n\nIsrael: war risk surcharge of USD 50 per TEU.",
            C.NOISE,
        ),
        (
            "carrier",
            "LB",
            "Hamburg, 14. Oktober 2024\nLibanon - Kriegsrisikozuschlag\nWir erheben einen Zuschlag.",
            "Hamburg, 6. Januar 2025\nLibanon - Kriegsrisikozuschlag"
            "\nDer Zuschlag entfällt ab dem 15. Januar.",
            C.RELAXED,
        ),
    ],
)
def test_representative_changes(kind: str, country: str, before: str, after: str, expected: C) -> None:
    result = classify_texts(kind, country, before, after)  # type: ignore[arg-type]
    assert result.change_class is expected, result.reasons


def test_result_carries_the_levels_and_is_frozen() -> None:
    result = classify_texts(
        "ministry", "NE", "Niger - Level 2: Exercise Increased Caution", "Niger - Level 3: Reconsider Travel"
    )
    assert result == TextClassification(
        C.SEVERE, ("level 2 → 3: “Niger - Level 3: Reconsider Travel”",), 2, 3
    )
    with pytest.raises(FrozenInstanceError):
        result.change_class = C.NOISE  # type: ignore[misc]
    carrier = classify_texts("carrier", None, "a", "b")
    assert (carrier.level_before, carrier.level_after) == (None, None)


def test_html_is_read_as_text() -> None:
    before = "<html><body><h1>Mali</h1><p>Do not travel to Mali.</p><script>x()</script></body></html>"
    after = before.replace("</p>", "</p><ul><li>A curfew is in effect in Bamako from 21:00.</li></ul>")
    result = classify_texts("ministry", "ML", before, after)
    assert result.change_class is C.HEIGHTENED
    assert result.reasons == ("curfew or state of emergency: “A curfew is in effect in Bamako from 21:00.”",)
    assert result.level_before == result.level_after == 4


def test_user_rules_are_used_when_given(tmp_path: Path) -> None:
    extra = tmp_path / "rules.yaml"
    extra.write_text(
        "language: en\nrules:\n"
        "  - {name: cholera outbreak, class: heightened, applies_to: [ministry], patterns: [cholera]}\n",
        encoding="utf-8",
    )
    before, after = "Do not travel to Mali.", "Do not travel to Mali.\nA cholera outbreak is spreading."
    assert classify_texts("ministry", "ML", before, after).change_class is C.UPDATE
    result = classify_texts("ministry", "ML", before, after, rules=load_rules([extra]))
    assert result.reasons == ("cholera outbreak: “A cholera outbreak is spreading.”",)


def test_unknown_kind_is_rejected() -> None:
    with pytest.raises(ValueError, match="kind must be one of ministry, carrier"):
        classify_texts("embassy", None, "a", "b")  # type: ignore[arg-type]


# --- classify(diff): structured and text signals together ---------------------------------------


def record(text: str, level: int | None = 4, **fields: object) -> Record:
    return Record(
        key="ML",
        title="Mali",
        url="https://x.org/ml",
        country="ML",
        level=level,
        sections=(Section("main", text),),
        **fields,  # type: ignore[arg-type]
    )


def changed(before: Record, after: Record) -> RecordDiff:
    diff = diff_records(before, after)
    assert diff is not None
    return diff


def test_text_signals_complete_the_structured_ones_without_repeating_them() -> None:
    before = record("Do not travel to Mali.")
    after = replace(
        record("Do not travel to Mali.\nU.S. citizens should depart immediately.\nA curfew is in effect."),
        leave_now=True,
    )
    change_class, reasons = classify(changed(before, after))
    assert change_class is C.CRITICAL
    # The call to leave is said once (structured); the curfew comes from the text, quoted.
    assert reasons == ("nationals urged to leave", "curfew or state of emergency: “A curfew is in effect.”")


def test_text_signals_alone_can_escalate_a_record() -> None:
    before = record("Do not travel to Mali.")
    after = record("Do not travel to Mali.\n" + ORDERED)
    assert after.staff_departure is StaffDeparture.NONE  # the parser did not see it
    assert classify(changed(before, after)) == (C.CRITICAL, (f"ordered departure: “{ORDERED}”",))


def test_text_noise_makes_a_record_change_noise() -> None:
    before = record("Still current at: 5 November 2025\nDo not travel to Mali.")
    after = record("Still current at: 6 November 2025\nDo not travel to Mali.")
    assert classify(changed(before, after)) == (
        C.NOISE,
        ("only dates, times, whitespace or page furniture changed",),
    )


def test_carrier_records_use_the_notice_text() -> None:
    notice = Notice("5318", "Intermodal Notice MALI", "u", NoticeStatus.INFO, text="Services normal.")
    before = Record(
        "ML",
        "CMA — Mali",
        "u",
        country="ML",
        notices=(notice,),
        sections=(Section("5318", "Services normal."),),
    )
    text = "Overland transport is heavily impacted in terms of transit times."
    after = replace(before, sections=(Section("5318", text),), notices=(replace(notice, text=text),))
    assert classify(changed(before, after)) == (C.HEIGHTENED, (f"delays: “{text}”",))


def test_text_supports_level_change() -> None:
    old, new = "Mali - Level 2: Exercise Increased Caution", "Mali - Level 4: Do Not Travel"
    raised = changed(record(old, 2), record(new, 4))
    assert text_supports_level_change(raised)
    glitch = changed(record(new, 4), record(new, 1))  # the feed dropped to 1, the text did not
    assert not text_supports_level_change(glitch)
    contrary = changed(record(old, 4), record(new, 2))  # the text says the opposite
    assert not text_supports_level_change(contrary)
    critical = changed(record(new, 4), record(new + "\nU.S. citizens should depart immediately.", 1))
    assert text_supports_level_change(critical)


# --- the command --------------------------------------------------------------------------------


def invoke(*args: str) -> object:
    return CliRunner().invoke(cli, list(args))


def test_cli_classifies_two_files(tmp_path: Path) -> None:
    before, after = tmp_path / "before.txt", tmp_path / "after.html"
    before.write_text(us("October 24, 2025", AUTHORIZED), encoding="utf-8")
    after.write_text(f"<p>{US_HEAD[0]}</p><p>{ORDERED}</p>", encoding="utf-8")
    result = CliRunner().invoke(
        cli,
        ["classify", "--kind", "ministry", "--country", "ml", "--before", str(before), "--after", str(after)],
    )
    assert result.exit_code == 0, result.output
    output = json.loads(result.output)
    assert output["class"] == "critical"
    assert output["reasons"][0] == f"ordered departure: “{ORDERED}”"
    assert (output["level_before"], output["level_after"]) == (4, 4)


def test_cli_batch_prints_one_line_per_case(tmp_path: Path) -> None:
    batch = tmp_path / "changes.jsonl"
    cases = [
        {"id": "a", "kind": "carrier", "country": "ML", "before": CMA_SUSPENSION, "after": CMA_REVERSAL},
        {
            "id": 2,
            "kind": "ministry",
            "country": None,
            "before": "Do not travel.",
            "after": "Do not travel. ",
        },
    ]
    batch.write_text("\n".join(json.dumps(c) for c in cases) + "\n\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["classify", "--batch", str(batch)])
    assert result.exit_code == 0, result.output
    printed = [json.loads(line) for line in result.output.splitlines()]
    assert [(p["id"], p["class"]) for p in printed] == [("a", "relaxed"), (2, "noise")]
    assert all(set(p) == {"id", "class", "reasons"} for p in printed)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "line 2: not valid JSON"),
        ('["a list"]', "line 2: expected a JSON object"),
        ('{"id": "x", "kind": "embassy", "before": "a", "after": "b"}', "line 2: kind: Input should be"),
        (
            '{"id": "x", "kind": "carrier", "country": "Mali", "before": "a", "after": "b"}',
            "line 2: country:",
        ),
        ('{"id": "x", "kind": "carrier", "before": "a"}', "line 2: after: Field required"),
    ],
)
def test_cli_batch_rejects_a_bad_line_before_printing_anything(
    tmp_path: Path, line: str, message: str
) -> None:
    batch = tmp_path / "changes.jsonl"
    good = {"id": "ok", "kind": "ministry", "country": "ML", "before": "a", "after": "b"}
    batch.write_text(json.dumps(good) + "\n" + line + "\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["classify", "--batch", str(batch)])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert f"monitor: error: {batch} {message}" in result.stderr


def test_cli_wants_either_files_or_a_batch(tmp_path: Path) -> None:
    path = tmp_path / "x.txt"
    path.write_text("x", encoding="utf-8")
    neither = CliRunner().invoke(cli, ["classify", "--kind", "ministry"])
    assert neither.exit_code == 2 and "give --kind, --before and --after" in neither.output
    both = CliRunner().invoke(cli, ["classify", "--batch", str(path), "--kind", "carrier"])
    assert both.exit_code == 2 and "--batch cannot be combined" in both.output
    binary = tmp_path / "b.txt"
    binary.write_bytes(b"\xff\xfe\x00")
    unreadable = CliRunner().invoke(
        cli, ["classify", "--kind", "ministry", "--before", str(binary), "--after", str(path)]
    )
    assert unreadable.exit_code == 2 and "cannot read" in unreadable.stderr


# --- properties: what never counts as a change ---------------------------------------------------

SENTENCES = (
    "Do not travel to Mali due to crime, terrorism and kidnapping.",
    "A curfew is in effect in Bamako.",
    "U.S. citizens should depart immediately using commercial aviation.",
    "L’ensemble du territoire malien reste formellement déconseillé.",
    "Les ressortissants français sont appelés à une vigilance accrue.",
    "Vor Reisen nach Mali wird gewarnt.",
    "Deutschen Staatsangehörigen wird empfohlen, Mali umgehend zu verlassen.",
    "Road transportation for Mali cargo is temporarily suspended until further notice.",
    "An Emergency Risk Surcharge of USD 50 per TEU applies.",
    "Contact the embassy on +223 20 70 23 00.",
    "Carry a copy of your passport at all times.",
)
DATES = (
    "6 November 2025",
    "November 6, 2025",
    "Thursday, 6 November 2025",
    "2025-11-06",
    "06/11/2025",
    "6 novembre 2025",
    "jeudi 6 novembre 2025",
    "6. November 2025",
    "06.11.2025",
    "1er décembre 2025",
    "Nov. 6, 2025 10:15 ET",
    "6 novembre 2025 à 14h30",
    "7. Oktober 2025, 14:00 Uhr",
)
LABELS = (
    "Last updated: {}",
    "Still current at: {}",
    "Dernière mise à jour le : {}",
    "Stand: {}",
    "Publié le {}",
)

texts = st.lists(st.sampled_from(SENTENCES), min_size=1, max_size=8, unique=True)
kinds = st.sampled_from([("ministry", "ML"), ("ministry", None), ("carrier", None)])


def verdict(kind: tuple[str, str | None], before: str, after: str) -> ChangeClass:
    return classify_texts(kind[0], kind[1], before, after).change_class  # type: ignore[arg-type]


@settings(max_examples=60, deadline=None)
@given(texts, kinds, st.randoms(use_true_random=False))
def test_shuffling_lines_is_noise(
    sentences: list[str], kind: tuple[str, str | None], rnd: random.Random
) -> None:
    shuffled = list(sentences)
    rnd.shuffle(shuffled)
    assert verdict(kind, "\n".join(sentences), "\n".join(shuffled)) is C.NOISE


@settings(max_examples=60, deadline=None)
@given(texts, kinds, st.lists(st.sampled_from(["  ", "\t", " \u00a0", "\n\n", "\r\n"]), min_size=1))
def test_changing_whitespace_is_noise(
    sentences: list[str], kind: tuple[str, str | None], spaces: list[str]
) -> None:
    respaced = []
    for index, sentence in enumerate(sentences):
        gap = spaces[index % len(spaces)]
        words = sentence.split(" ")
        respaced.append(gap.join(words) if "\n" not in gap else sentence + gap)
    assert verdict(kind, "\n".join(sentences), "\n".join(respaced)) is C.NOISE


@settings(max_examples=60, deadline=None)
@given(texts, kinds, st.sampled_from(LABELS), st.sampled_from(DATES), st.sampled_from(DATES))
def test_changing_dates_is_noise(
    sentences: list[str], kind: tuple[str, str | None], label: str, old: str, new: str
) -> None:
    before = "\n".join([label.format(old), *sentences, f"Published {old}."])
    after = "\n".join([label.format(new), *sentences, f"Published {new}."])
    assert verdict(kind, before, after) is C.NOISE


# --- the benchmark does not rot -----------------------------------------------------------------


def test_benchmark_runs(capsys: pytest.CaptureFixture[str]) -> None:
    benchmark = runpy.run_path(str(ROOT / "benchmarks" / "classify.py"), run_name="benchmark")
    benchmark["main"](["-n", "2"])
    output = capsys.readouterr().out
    assert "long advisory page" in output and "short carrier notice" in output and "median" in output
