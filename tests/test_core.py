"""Unit tests of the pure core: text normalisation, diff, classification."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from monitor.classify import classify
from monitor.diff import diff_records, only_undecodable
from monitor.models import ChangeClass, Notice, NoticeStatus, Record, Section, StaffDeparture, Zone
from monitor.normalise import clean_text, element_text, parse_html


def record(text: str, level: int | None = None, **fields: object) -> Record:
    return Record(
        key="ML",
        title="Mali",
        url="https://x.org/mali",
        level=level,
        sections=(Section("main", text),),
        **fields,
    )  # type: ignore[arg-type]


def test_clean_text_folds_whitespace_and_invisible_characters() -> None:
    raw = "  Avoid\u00a0all  travel\u200b \r\n\n\t\n Leave\u00adnow  \n"
    assert clean_text(raw) == "Avoid all travel\nLeavenow"


def test_clean_text_drops_control_characters_a_terminal_would_obey() -> None:
    assert clean_text("Leave\x1b]0;owned\x07 now\x1b[2J.\x00\x9b") == "Leave]0;owned now[2J."


def test_clean_text_is_nfc() -> None:
    assert clean_text("renforce\u0301e") == "renforcée"


def test_element_text_blocks_inline_and_invisible() -> None:
    soup = parse_html(
        "<body><div>Level 4:<b> Do not</b>\n travel<br>Mali</div><script>x()</script>"
        "<style>p{}</style><!-- hidden --><ul><li>one</li><li>two</li></ul></body>"
    )
    assert element_text(soup) == "Level 4: Do not travel\nMali\none\ntwo"


def test_element_text_survives_deep_nesting() -> None:
    html = "<div>" * 5000 + "deep" + "</div>" * 5000
    assert element_text(parse_html(html)) == "deep"


def test_identical_records_have_no_diff() -> None:
    assert diff_records(record("a\nb"), record("a\nb")) is None


def test_characters_lost_to_undecodable_bytes_are_no_change() -> None:
    before = record("Vigilance renforcée à Bamako.\nÉvitez les déplacements.", level=3)

    damaged = record("Vigilance renforc\ufffde \ufffd Bamako.\n\ufffd\ufffdvitez les déplacements.", level=3)
    assert diff_records(before, damaged) is None
    # Whatever else differs is a change, replacement characters or not.
    assert diff_records(before, record("Vigilance renforc\ufffde à Bamako.\nQuittez le pays.", level=3))
    assert diff_records(
        before, record("Vigilance renforc\ufffde à Bamako.\nÉvitez les déplacements.", level=4)
    )


def test_only_undecodable_matches_whole_texts() -> None:
    assert only_undecodable("école", "\ufffdcole")
    assert only_undecodable("école", "\ufffd\ufffdcole")  # one character, two bytes lost
    assert not only_undecodable("école", "\ufffdcoles")
    assert not only_undecodable("école", "école")  # nothing lost: the caller compares equal texts
    assert not only_undecodable("cole", "\ufffdcole")  # a replacement stands for at least one character
    assert not only_undecodable("abc.d", "a\ufffd.d")  # a run stands for at most its length


@given(st.text(max_size=40), st.data())
def test_replacing_characters_of_a_text_is_only_undecodable(text: str, data: st.DataObject) -> None:
    positions = data.draw(st.sets(st.integers(0, max(len(text) - 1, 0)), max_size=5)) if text else set()
    damaged = "".join("\ufffd" if i in positions else c for i, c in enumerate(text))
    assert only_undecodable(text, damaged) == (damaged != text)


def test_reordered_lines_are_noise() -> None:
    diff = diff_records(record("a\nb\nc"), record("c\na\nb"))
    assert diff is not None
    assert (diff.added, diff.removed) == ((), ())
    assert classify(diff) == (ChangeClass.NOISE, ("same lines, reordered",))


def test_only_dates_changed_is_noise() -> None:
    before = record("a", updated_at=datetime(2025, 11, 1, tzinfo=UTC))
    after = record("a", updated_at=datetime(2025, 11, 2, tzinfo=UTC))
    diff = diff_records(before, after)
    assert diff is not None
    assert classify(diff) == (ChangeClass.NOISE, ("only updated_at changed",))


def test_text_change_is_update_with_counts() -> None:
    diff = diff_records(record("a\nb\nb"), record("a\nb\nc\nd"))
    assert diff is not None
    assert diff.added == ("c", "d")
    assert diff.removed == ("b",)
    assert classify(diff) == (ChangeClass.UPDATE, ("2 lines added, 1 line removed",))
    assert "+c" in diff.unified and "-b" in diff.unified


def test_level_changes() -> None:
    cases = [
        (1, 2, ChangeClass.HEIGHTENED),
        (2, 3, ChangeClass.SEVERE),
        (3, 4, ChangeClass.SEVERE),
        (4, 3, ChangeClass.RELAXED),
    ]
    for before, after, expected in cases:
        diff = diff_records(record("a", before), record("b", after))
        assert diff is not None
        assert classify(diff) == (expected, (f"level {before} → {after}",))


def test_missing_level_is_not_a_level_change() -> None:
    diff = diff_records(record("a", 4), record("a", None))
    assert diff is not None
    assert classify(diff)[0] is ChangeClass.NOISE


def test_record_json_round_trip() -> None:
    original = record("x", 3, published_at=datetime(2025, 10, 30, 12, tzinfo=UTC), extra={"leave_now": True})
    assert Record.from_json(original.to_json()) == original
    assert Record.from_json(original.to_json()).canonical() == original.canonical()


lines = st.lists(st.text(alphabet="abc xyz", min_size=1, max_size=8).map(str.strip).filter(bool), max_size=8)


@given(lines, st.randoms())
def test_shuffling_lines_is_never_more_than_noise(items: list[str], rnd: object) -> None:
    shuffled = list(items)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    diff = diff_records(record("\n".join(items)), record("\n".join(shuffled)))
    assert diff is None or classify(diff)[0] is ChangeClass.NOISE


def _classify(before: Record, after: Record) -> tuple[ChangeClass, tuple[str, ...]]:
    diff = diff_records(before, after)
    assert diff is not None
    return classify(diff)


def test_structured_flags() -> None:
    base = record("a", 4)
    assert _classify(base, replace(base, leave_now=True)) == (
        ChangeClass.CRITICAL,
        ("nationals urged to leave",),
    )
    assert _classify(replace(base, leave_now=True), base) == (ChangeClass.RELAXED, ("call to leave lifted",))
    authorized = replace(base, staff_departure=StaffDeparture.AUTHORIZED)
    ordered = replace(base, staff_departure=StaffDeparture.ORDERED)
    assert _classify(base, authorized) == (ChangeClass.SEVERE, ("staff departure: none → authorized",))
    assert _classify(authorized, ordered) == (
        ChangeClass.CRITICAL,
        ("staff departure: authorized → ordered",),
    )
    assert _classify(ordered, base)[0] is ChangeClass.RELAXED
    assert _classify(base, replace(base, embassy_closed=True))[0] is ChangeClass.CRITICAL


def test_highest_escalation_wins_and_relaxed_only_alone() -> None:
    before = record("a", 3, zones=(Zone("north", 4, "rouge"), Zone("south", 3, "orange")))
    after = replace(before, zones=(Zone("north", 3, "orange"), Zone("south", 4, "rouge")), leave_now=True)
    change_class, reasons = _classify(before, after)
    assert change_class is ChangeClass.CRITICAL
    assert reasons == ("nationals urged to leave", "zone 'south' 3 → 4", "zone 'north' 4 → 3")


def test_carrier_notices() -> None:
    suspension = Notice("5120", "Mali - temporary service suspension", "u", NoticeStatus.SUSPENSION)
    resumption = Notice("5121", "Mali - services resume", "u", NoticeStatus.RESUMPTION)
    empty = record("a")
    suspended = replace(empty, notices=(suspension,))
    assert _classify(empty, suspended) == (
        ChangeClass.SEVERE,
        ("suspension: Mali - temporary service suspension",),
    )
    assert _classify(suspended, replace(empty, notices=(suspension, resumption)))[0] is ChangeClass.RELAXED


def test_zones_appearing_and_disappearing() -> None:
    national = record("a", 1)
    partial = replace(national, zones=(Zone("Teilreisewarnung", 4, "Teilreisewarnung"),))
    assert _classify(national, partial) == (
        ChangeClass.HEIGHTENED,
        ("new zone 'Teilreisewarnung' at level 4 (Teilreisewarnung)",),
    )
    assert _classify(partial, national) == (
        ChangeClass.RELAXED,
        ("zone 'Teilreisewarnung' (level 4) lifted",),
    )
