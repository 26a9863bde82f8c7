"""The labelled corpus of before/after changes and the classifier's accuracy on it.

``tests/corpus/classification.jsonl`` holds one change per line, written in the publishers' own
styles (ministries and carriers, in English, French and German) and labelled on the shared scale.
The validation tests check the corpus itself and do not need the classifier. The accuracy test
runs ``monitor.classify.classify_texts`` on every case, prints a confusion matrix and the list of
misclassified cases (visible with ``-s`` and on failure), and requires an accuracy of at least
95 % with no ``critical`` case missed. See ``tests/corpus/README.md``.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest

CORPUS = Path(__file__).resolve().parent / "corpus" / "classification.jsonl"
# Written without sight of the rules and never used to tune them: it measures generalisation.
BLIND = Path(__file__).resolve().parent / "corpus" / "blind.jsonl"
# The first measurement was 80.0 % (48/60); the floor guards against regressions only.
MIN_BLIND_ACCURACY = 0.75

# The scale, in display order (escalations lowest to highest, then ``relaxed``).
CLASSES = ("noise", "update", "heightened", "severe", "critical", "relaxed")
LANGUAGES = ("en", "fr", "de")
KINDS = ("ministry", "carrier")
Kind = Literal["ministry", "carrier"]
FIELDS = ("id", "kind", "country", "lang", "before", "after", "expected", "note")

MIN_CASES = 150
MIN_PER_CLASS = 15
MIN_PER_LANGUAGE = 40
MIN_PER_KIND = 40
CARRIER_LANGUAGES = ("en", "fr", "de")
MIN_SENTENCES, MAX_SENTENCES = 3, 15

MIN_ACCURACY = 0.95

_ID = re.compile(r"^(en|fr|de)-(ministry|carrier)-\d{3}$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
# A sentence ends with . ! or ? (optionally followed by a closing quote or bracket), before
# whitespace and an upper-case letter, a digit or a quote, or at the end of the line. Lines without
# final punctuation (titles, headings, greetings, signatures, list items) are not sentences.
_SENTENCE_END = re.compile(r"[.!?][»\"”)]?(?=\s+[\"«„A-ZÀ-ÖØ-Þ0-9]|\s*$)")


@dataclass(frozen=True)
class Case:
    id: str
    kind: Kind  # checked by test_kinds_are_known
    country: str
    lang: str
    before: str
    after: str
    expected: str
    note: str


def _raw_lines(path: Path = CORPUS) -> list[tuple[int, str]]:
    text = path.read_text(encoding="utf-8")
    return [(number, line) for number, line in enumerate(text.splitlines(), start=1) if line.strip()]


def _load(path: Path = CORPUS) -> list[Case]:
    cases = []
    for number, line in _raw_lines(path):
        data = json.loads(line)
        try:
            cases.append(Case(**{field: data[field] for field in FIELDS}))
        except KeyError as exc:
            raise AssertionError(f"line {number}: missing field {exc}") from exc
    return cases


def count_sentences(text: str) -> int:
    """Approximate number of sentences, ignoring headings and other unpunctuated lines."""
    return sum(len(_SENTENCE_END.findall(line.strip())) for line in text.splitlines())


@pytest.fixture(scope="module")
def cases() -> list[Case]:
    return _load()


# ------------------------------------------------------------------------------------- validation


def test_every_line_is_an_object_with_exactly_the_contract_fields() -> None:
    problems = []
    for number, line in _raw_lines():
        try:
            data: Any = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"line {number}: not JSON ({exc})")
            continue
        if not isinstance(data, dict):
            problems.append(f"line {number}: not an object")
            continue
        if set(data) != set(FIELDS):
            problems.append(f"line {number}: fields {sorted(data)} != {sorted(FIELDS)}")
            continue
        empty = [field for field in FIELDS if not isinstance(data[field], str) or not data[field].strip()]
        if empty:
            problems.append(f"line {number} ({data['id']}): empty or non-string {empty}")
    assert not problems, "\n".join(problems)


def test_ids_are_unique_and_match_language_and_kind(cases: list[Case]) -> None:
    duplicates = [case_id for case_id, n in Counter(case.id for case in cases).items() if n > 1]
    assert not duplicates, f"duplicate ids: {duplicates}"
    wrong = [
        case.id
        for case in cases
        if not _ID.match(case.id) or not case.id.startswith(f"{case.lang}-{case.kind}-")
    ]
    assert not wrong, f"ids must read <lang>-<kind>-NNN and agree with the fields: {wrong}"


def test_languages_are_known(cases: list[Case]) -> None:
    wrong = [(case.id, case.lang) for case in cases if case.lang not in LANGUAGES]
    assert not wrong, f"languages must be one of {LANGUAGES}: {wrong}"


def test_kinds_are_known(cases: list[Case]) -> None:
    wrong = [(case.id, case.kind) for case in cases if case.kind not in KINDS]
    assert not wrong, f"kinds must be one of {KINDS}: {wrong}"


def test_labels_are_on_the_scale(cases: list[Case]) -> None:
    wrong = [(case.id, case.expected) for case in cases if case.expected not in CLASSES]
    assert not wrong, f"expected must be one of {CLASSES}: {wrong}"


def test_carriers_never_expect_critical(cases: list[Case]) -> None:
    """``critical`` is about people (leave, ordered departure, embassy closed); carriers top out at severe."""
    wrong = [case.id for case in cases if case.kind == "carrier" and case.expected == "critical"]
    assert not wrong, f"carrier cases labelled critical: {wrong}"


def test_countries_are_iso_alpha2(cases: list[Case]) -> None:
    wrong = [(case.id, case.country) for case in cases if not _COUNTRY.match(case.country)]
    assert not wrong, f"country must be an upper-case ISO 3166 alpha-2 code: {wrong}"


def test_before_and_after_differ(cases: list[Case]) -> None:
    same = [case.id for case in cases if case.before == case.after]
    assert not same, f"before == after: {same}"


def test_texts_are_realistic_length(cases: list[Case]) -> None:
    wrong = [
        f"{case.id} {side}: {n} sentences"
        for case in cases
        for side, text in (("before", case.before), ("after", case.after))
        if not MIN_SENTENCES <= (n := count_sentences(text)) <= MAX_SENTENCES
    ]
    assert not wrong, f"texts must have {MIN_SENTENCES}-{MAX_SENTENCES} sentences:\n" + "\n".join(wrong)


def test_every_note_explains_the_label(cases: list[Case]) -> None:
    short = [case.id for case in cases if len(case.note.strip()) < 30]
    assert not short, f"notes too short to let a reviewer check the label: {short}"


def test_at_least_the_minimum_number_of_cases(cases: list[Case]) -> None:
    assert len(cases) >= MIN_CASES, f"{len(cases)} cases, need at least {MIN_CASES}"


@pytest.mark.parametrize("label", CLASSES)
def test_every_class_has_enough_cases(cases: list[Case], label: str) -> None:
    n = sum(case.expected == label for case in cases)
    assert n >= MIN_PER_CLASS, f"{label}: {n} cases, need at least {MIN_PER_CLASS}"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_language_has_enough_cases(cases: list[Case], lang: str) -> None:
    n = sum(case.lang == lang for case in cases)
    assert n >= MIN_PER_LANGUAGE, f"{lang}: {n} cases, need at least {MIN_PER_LANGUAGE}"


def test_enough_carrier_cases(cases: list[Case]) -> None:
    n = sum(case.kind == "carrier" for case in cases)
    assert n >= MIN_PER_KIND, f"{n} carrier cases, need at least {MIN_PER_KIND}"


@pytest.mark.parametrize("lang", CARRIER_LANGUAGES)
def test_carrier_cases_in_every_language(cases: list[Case], lang: str) -> None:
    assert any(case.kind == "carrier" and case.lang == lang for case in cases), f"no carrier case in {lang}"


def test_enough_ministry_cases(cases: list[Case]) -> None:
    n = sum(case.kind == "ministry" for case in cases)
    assert n >= MIN_PER_KIND, f"{n} ministry cases, need at least {MIN_PER_KIND}"


# ---------------------------------------------------------------------------------- classification


@dataclass(frozen=True)
class Prediction:
    case: Case
    predicted: str  # a class word, or "error" when classify_texts raised
    reason: str  # the first reason given, or the exception


def _classify_all(cases: list[Case]) -> Iterator[Prediction]:
    from monitor.classify import classify_texts
    from monitor.models import ChangeClass

    assert {member.value for member in ChangeClass} == set(CLASSES), "the scale and the corpus disagree"
    for case in cases:
        try:
            result = classify_texts(case.kind, case.country, case.before, case.after)
        except Exception as exc:  # one broken case must not hide the others
            yield Prediction(case, "error", f"{type(exc).__name__}: {exc}")
            continue
        reasons = tuple(result.reasons)
        yield Prediction(
            case, ChangeClass(result.change_class).value, reasons[0] if reasons else "(no reason)"
        )


def _matrix(predictions: list[Prediction]) -> str:
    columns = list(CLASSES) + (["error"] if any(o.predicted == "error" for o in predictions) else [])
    counts = Counter((o.case.expected, o.predicted) for o in predictions)
    label_width = max(len("expected \\ predicted"), *(len(c) for c in CLASSES))
    widths = [max(len(column), 4) for column in columns]
    header = (
        "expected \\ predicted".ljust(label_width)
        + " | "
        + " ".join(column.rjust(width) for column, width in zip(columns, widths, strict=True))
    )
    lines = [header + " | total", "-" * (len(header) + 8)]
    for row in CLASSES:
        cells = [
            (str(counts[(row, column)]) if counts[(row, column)] else ".").rjust(width)
            for column, width in zip(columns, widths, strict=True)
        ]
        total = sum(counts[(row, column)] for column in columns)
        lines.append(row.ljust(label_width) + " | " + " ".join(cells) + f" | {total:5d}")
    return "\n".join(lines)


def _breakdown(predictions: list[Prediction], key: str) -> str:
    groups: dict[str, list[Prediction]] = {}
    for prediction in predictions:
        groups.setdefault(getattr(prediction.case, key), []).append(prediction)
    parts = []
    for name in sorted(groups):
        group = groups[name]
        right = sum(o.predicted == o.case.expected for o in group)
        parts.append(f"{name} {right}/{len(group)} ({right / len(group):.1%})")
    return f"by {key}: " + ", ".join(parts)


def _report(predictions: list[Prediction], title: str = "classification corpus") -> str:
    right = sum(o.predicted == o.case.expected for o in predictions)
    wrong = [o for o in predictions if o.predicted != o.case.expected]
    lines = [
        "",
        f"{title}: {right}/{len(predictions)} correct, accuracy {right / len(predictions):.1%}",
        _breakdown(predictions, "lang"),
        _breakdown(predictions, "kind"),
        "",
        "confusion matrix (rows: expected, columns: predicted)",
        _matrix(predictions),
        "",
        f"misclassified ({len(wrong)}):",
    ]
    width = max((len(o.case.id) for o in wrong), default=0)
    lines += [
        f"  {o.case.id.ljust(width)}  expected {o.case.expected:<10} got {o.predicted:<10} {o.reason}"
        for o in wrong
    ]
    return "\n".join(lines)


def test_classifier_accuracy_on_the_corpus(cases: list[Case]) -> None:
    predictions = list(_classify_all(cases))
    report = _report(predictions)
    print(report)
    right = sum(o.predicted == o.case.expected for o in predictions)
    missed_critical = [
        o.case.id for o in predictions if o.case.expected == "critical" and o.predicted != "critical"
    ]
    accuracy = right / len(predictions)
    assert accuracy >= MIN_ACCURACY and not missed_critical, (
        f"accuracy {accuracy:.1%} (need {MIN_ACCURACY:.0%}); critical missed: {missed_critical or 'none'}"
        + report
    )


def test_classify_texts_keeps_its_contract(cases: list[Case]) -> None:
    """The result carries a ChangeClass, a tuple of string reasons and both levels."""
    from monitor.classify import classify_texts
    from monitor.models import ChangeClass

    sample = {case.expected: case for case in cases}.values()  # one case per class
    for case in sample:
        result = classify_texts(case.kind, case.country, case.before, case.after)
        assert isinstance(result.change_class, ChangeClass), case.id
        assert isinstance(result.reasons, tuple), case.id
        assert all(isinstance(reason, str) for reason in result.reasons), case.id
        assert hasattr(result, "level_before"), case.id
        assert hasattr(result, "level_after"), case.id


def test_blind_set_accuracy() -> None:
    """The held-out set: its figures are printed and must not fall below the floor.

    Failures here are fixed with general rules tested on the development corpus, never by
    reading the blind cases; once they are used for tuning they move to the corpus and a new
    blind set is written."""
    blind = _load(BLIND)
    assert len(blind) >= 60
    assert Counter(case.expected for case in blind) == dict.fromkeys(CLASSES, 10)
    predictions = list(_classify_all(blind))
    report = _report(predictions, "blind set")
    print(report)
    accuracy = sum(o.predicted == o.case.expected for o in predictions) / len(predictions)
    assert accuracy >= MIN_BLIND_ACCURACY, (
        f"blind accuracy {accuracy:.1%} < {MIN_BLIND_ACCURACY:.0%}" + report
    )
