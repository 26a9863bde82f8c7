"""Changes as data for scripts: the selection, the JSON contract and CSV (pure)."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace

from monitor.models import ChangeClass
from monitor.report.export import CSV_COLUMNS, as_csv, as_json, select
from monitor.report.history import ChangeEntry
from tests.support.histories import HOSTILE, hostile_history, mali_history

CONTRACT = (
    "detected_at",
    "published_at",
    "source_id",
    "kind",
    "country",
    "class",
    "level_before",
    "level_after",
    "reasons",
    "url",
)


def classes(changes: list[ChangeEntry]) -> list[str]:
    return [c.change_class.value for c in changes]


def test_min_class_keeps_the_class_and_higher_and_every_relaxation() -> None:
    changes = mali_history().changes
    assert classes(select(changes, min_class=ChangeClass.CRITICAL)) == [
        "critical",
        "critical",
        "critical",
        "relaxed",
    ]
    assert classes(select(changes, min_class=ChangeClass.SEVERE)) == [
        "severe",
        "critical",
        "critical",
        "severe",
        "critical",
        "relaxed",
    ]
    assert len(select(changes, min_class=ChangeClass.NOISE)) == len(changes) == len(select(changes))


def test_sources_select_their_changes_only() -> None:
    changes = mali_history().changes
    assert {c.source_id for c in select(changes, sources=["msc", "fr-mali"])} == {"msc", "fr-mali"}
    assert classes(select(changes, sources=["msc"], min_class=ChangeClass.CRITICAL)) == ["relaxed"]


def test_the_json_of_a_change_keeps_the_contract_fields() -> None:
    changes = mali_history().changes
    data = [as_json(c) for c in changes]
    for item in data:
        assert set(CONTRACT) <= set(item)
    json.dumps(data)  # plain JSON types only
    us_ordered = data[1]
    assert us_ordered["detected_at"] == "2025-10-30T09:00:00+00:00"
    assert us_ordered["published_at"] == "2025-10-30T08:20:00+00:00"
    assert (us_ordered["source_id"], us_ordered["kind"], us_ordered["country"]) == (
        "us-state",
        "us-state",
        "ML",
    )
    assert (us_ordered["class"], us_ordered["level_before"], us_ordered["level_after"]) == ("critical", 4, 4)
    assert us_ordered["reasons"][0] == "staff departure: authorized → ordered"
    assert us_ordered["url"] == "https://travel.state.gov/"
    assert us_ordered["alerts"] == {
        "sent": 1,
        "failed": 0,
        "pending": 0,
        "first_sent_at": "2025-10-30T09:00:04+00:00",
    }
    french = data[3]
    assert french["published_at"] is None
    msc = data[4]
    assert msc["notice"]["status"] == "suspension" and msc["url"].startswith("https://www.msc.com/")


def test_a_change_of_several_countries_has_no_single_country() -> None:
    change = replace(mali_history().changes[0], countries=("ML", "BF"))
    data = as_json(change)
    assert data["country"] is None and data["countries"] == ["ML", "BF"]
    [row] = list(csv.DictReader(io.StringIO(as_csv([change]))))
    assert row["country"] == "ML BF"


def test_csv_has_a_header_and_one_row_per_change() -> None:
    changes = mali_history().changes
    rows = list(csv.reader(io.StringIO(as_csv(changes))))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) == len(changes) + 1
    first = dict(zip(rows[0], rows[2], strict=True))
    assert first["class"] == "critical"
    assert first["reasons"] == (
        "staff departure: authorized → ordered | ordered departure: "
        "“Ordered departure of non-emergency staff and family members.”"
    )
    assert first["published_at"] == "2025-10-30T08:20:00+00:00"


def test_csv_cells_never_start_a_spreadsheet_formula() -> None:
    change = replace(
        mali_history().changes[0],
        title='=HYPERLINK("http://evil.test","click")',
        reasons=("+1 level", "-x", "@SUM(A1)"),
    )
    [row] = list(csv.DictReader(io.StringIO(as_csv([change]))))
    assert row["title"] == '\'=HYPERLINK("http://evil.test","click")'
    assert row["reasons"] == "'+1 level | -x | @SUM(A1)"


def test_hostile_text_is_data_not_markup() -> None:
    [change] = hostile_history().changes
    data = as_json(change)
    assert data["title"] == HOSTILE
    assert json.loads(json.dumps(data))["title"] == HOSTILE
    [row] = list(csv.DictReader(io.StringIO(as_csv([change]))))
    assert (row["title"], row["url"]) == (HOSTILE, "javascript:alert(document.cookie)")
