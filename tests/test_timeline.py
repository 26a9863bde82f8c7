"""A seed's timeline: reading it, its checks, and which file is served when."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.errors import ConfigError
from monitor.models import ChangeClass
from monitor.replay.timeline import load_timeline

GOOD = """
title: Test
start: "2025-10-20T00:00:00Z"
end: "2025-11-12T00:00:00Z"
sources:
  - id: a
    kind: rss
    url: https://example.org/feed.xml?lang=en
    content_type: application/rss+xml
    countries: [ML]
    snapshots:
      - {from: "2025-10-20T00:00:00Z", file: one.xml}
      - {from: "2025-10-24T16:30:00Z", file: two.xml, expect: critical, note: leave now}
      - {from: "2025-10-25T08:00:00Z", file: three.xml, expect: unchanged}
  - id: b
    kind: html
    url: https://example.org/page
    content_type: text/html
    snapshots:
      - {from: "2025-10-19T00:00:00Z", file: one.html}
      - {from: "2025-10-22T00:00:00Z", file: two.html, expect: noise}
"""


def seed(
    tmp_path: Path,
    text: str = GOOD,
    files: tuple[str, ...] = ("a/one.xml", "a/two.xml", "a/three.xml", "b/one.html", "b/two.html"),
) -> Path:
    (tmp_path / "timeline.yaml").write_text(text)
    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    return tmp_path


def test_a_timeline_says_which_file_is_served_when(tmp_path: Path) -> None:
    timeline = load_timeline(seed(tmp_path))
    a, b = timeline.sources
    assert a.path == "/feed.xml?lang=en" and b.path == "/page"
    assert a.serving(datetime(2025, 10, 19, tzinfo=UTC)) is None
    served = a.serving(datetime(2025, 10, 24, 16, 30, tzinfo=UTC))
    assert served is not None and served.file == "two.xml" and served.expect is ChangeClass.CRITICAL
    last = a.serving(datetime(2030, 1, 1, tzinfo=UTC))
    assert last is not None and last.file == "three.xml" and last.expect == "unchanged"
    assert timeline.changes_expected() == [
        (datetime(2025, 10, 22, tzinfo=UTC), "b", ChangeClass.NOISE),
        (datetime(2025, 10, 24, 16, 30, tzinfo=UTC), "a", ChangeClass.CRITICAL),
    ]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("file: two.xml, expect: critical", "file: two.xml, expect: alarming"), "expect"),
        (('"2025-10-24T16:30:00Z"', '"2025-10-26T16:30:00Z"'), "strictly increasing order"),
        (("file: one.xml}", "file: one.xml, expect: noise}"), "the first snapshot is the baseline"),
        (("file: one.html", "file: ../one.html"), "must be a file name inside"),
        (("  - id: b", "  - id: a"), "duplicate source ids"),
        (("https://example.org/page", "https://example.org/feed.xml?lang=en"), "same URL path"),
        (('"2025-10-19T00:00:00Z"', '"2025-10-21T00:00:00Z"'), "starts after the seed's start"),
        (("    content_type: text/html", "    content_type: text/html\n    colour: red"), "colour"),
        (('end: "2025-11-12T00:00:00Z"', 'end: "2025-10-01T00:00:00Z"'), "`end` must come after"),
    ],
)
def test_a_bad_timeline_is_refused_naming_the_problem(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=r"timeline\.yaml") as raised:
        load_timeline(seed(tmp_path, GOOD.replace(*change, 1)))
    assert message in str(raised.value)


def test_missing_files_and_folders_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"files not found in the seed: a/three\.xml, b/two\.html"):
        load_timeline(seed(tmp_path, files=("a/one.xml", "a/two.xml", "b/one.html")))
    with pytest.raises(ConfigError, match="not a seed"):
        load_timeline(tmp_path / "nowhere")
