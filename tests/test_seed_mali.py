"""The Mali seed (``seeds/mali-2025-11``): every file parses with its kind, and polling the
files in order records exactly the changes the timeline expects (date-only republishes as
noise), with no change held back by the glitch guard. The same parse and compare as a check.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.models import ChangeClass
from monitor.pipeline import compare, parse_file
from monitor.replay.timeline import SeedSource, Timeline, load_timeline
from monitor.store import StoredSnapshot, content_hash

SEED = Path(__file__).resolve().parents[1] / "seeds" / "mali-2025-11"
TIMELINE = load_timeline(SEED)

# The publishers' moves of autumn 2025, in order (dates are the publishers').
STORY = [
    ("us-state", ChangeClass.SEVERE, "2025-10-24"),
    ("us-embassy-bamako", ChangeClass.CRITICAL, "2025-10-28"),
    ("de-aa", ChangeClass.CRITICAL, "2025-10-29"),
    ("us-state", ChangeClass.CRITICAL, "2025-10-30"),
    ("uk-fcdo", ChangeClass.CRITICAL, "2025-10-30"),
    ("fr-diplomatie", ChangeClass.HEIGHTENED, "2025-11-04"),
    ("cma-cgm", ChangeClass.SEVERE, "2025-11-05"),
    ("cma-cgm", ChangeClass.RELAXED, "2025-11-06"),
    ("msc", ChangeClass.SEVERE, "2025-11-06"),
    ("fr-diplomatie", ChangeClass.CRITICAL, "2025-11-07"),
    ("msc", ChangeClass.RELAXED, "2025-11-10"),
]


def poll_in_order(source: SeedSource) -> list[tuple[str, list[ChangeClass], int]]:
    """Each file after the first: its name, the classes of the changes it records, the holds."""
    previous: dict[str, StoredSnapshot] = {}
    seen = []
    for number, served in enumerate(source.snapshots):
        records = parse_file(
            source.kind,
            SEED / source.id / served.file,
            countries=source.countries,
            url=source.url,
            content_type=source.content_type,
            options=source.options,
        )
        found = compare(previous, records)
        if number:
            seen.append((served.file, [c.change.change_class for c in found.changes], len(found.holds)))
        at = served.from_
        for write in found.snapshots:
            previous[write.key] = StoredSnapshot(
                number, write.key, content_hash(write.record), write.record, at
            )
    return seen


@pytest.mark.parametrize("source", TIMELINE.sources, ids=lambda s: s.id)
def test_each_file_records_the_change_the_timeline_expects(source: SeedSource) -> None:
    expected = [
        (served.file, [] if served.expect == "unchanged" else [served.expect], 0)
        for served in source.snapshots[1:]
    ]
    assert poll_in_order(source) == expected


def test_the_story_unfolds_in_the_publishers_order() -> None:
    moves = [
        (source, change_class, at.astimezone(UTC).date().isoformat())
        for at, source, change_class in TIMELINE.changes_expected()
        if change_class is not ChangeClass.NOISE
    ]
    assert moves == STORY


def test_every_ministry_republishes_with_only_new_dates_at_least_once() -> None:
    quiet = {
        source.id
        for source in TIMELINE.sources
        for served in source.snapshots
        if served.expect in (ChangeClass.NOISE, "unchanged")
    }
    assert {"uk-fcdo", "us-state", "de-aa", "fr-diplomatie"} <= quiet


def test_the_seed_spans_the_crisis() -> None:
    assert isinstance(TIMELINE, Timeline)
    assert TIMELINE.start <= datetime(2025, 10, 20, tzinfo=UTC)
    assert TIMELINE.end >= datetime(2025, 11, 12, tzinfo=UTC)
