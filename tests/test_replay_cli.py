"""``monitor replay`` with bad input: one clear error, a non-zero exit code, and nothing lost."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from monitor.cli import cli
from monitor.replaycli import _Duration, _Speed
from monitor.store import Store

SEED = Path(__file__).resolve().parents[1] / "seeds" / "mali-2025-11"
PREVIOUS_DB = b"the previous replay's database"
PREVIOUS_CONFIG = "# the previous replay's configuration\n"

TIMELINE = """
title: Test
start: "2025-10-20T00:00:00Z"
end: "2025-10-22T00:00:00Z"
sources:
  - id: a
    kind: rss
    url: https://example.org/feed.xml
    content_type: application/rss+xml
    snapshots:
      - {from: "2025-10-20T00:00:00Z", file: one.xml}
      - {from: "2025-10-21T00:00:00Z", file: two.xml, expect: severe}
"""


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def error_line(result: Result) -> str:
    """The one line the command printed on stderr."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("monitor: error: "), lines[0]
    return lines[0]


@pytest.fixture
def out(tmp_path: Path) -> Path:
    """An --out folder holding a previous replay's database and configuration."""
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "monitor.db").write_bytes(PREVIOUS_DB)
    (folder / "monitor.yaml").write_text(PREVIOUS_CONFIG, encoding="utf-8")
    return folder


def assert_untouched(out: Path) -> None:
    assert (out / "monitor.db").read_bytes() == PREVIOUS_DB
    assert (out / "monitor.yaml").read_text(encoding="utf-8") == PREVIOUS_CONFIG
    assert sorted(p.name for p in out.iterdir()) == ["monitor.db", "monitor.yaml"]


def test_a_folder_without_a_timeline_is_not_a_seed(tmp_path: Path, out: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "a.xml").write_text("<rss/>")
    result = invoke("replay", str(folder), "--out", str(out))
    assert result.exit_code == 2
    line = error_line(result)
    assert str(folder) in line and "not a seed" in line and "timeline.yaml" in line
    assert_untouched(out)


def test_a_seed_folder_that_does_not_exist_is_a_usage_error(tmp_path: Path, out: Path) -> None:
    result = invoke("replay", str(tmp_path / "nowhere"), "--out", str(out))
    assert result.exit_code == 2
    assert "nowhere" in result.stderr and "does not exist" in result.stderr
    assert_untouched(out)


def test_a_timeline_naming_a_missing_file_is_refused_naming_it(tmp_path: Path, out: Path) -> None:
    seed = tmp_path / "seed"
    (seed / "a").mkdir(parents=True)
    (seed / "timeline.yaml").write_text(TIMELINE, encoding="utf-8")
    (seed / "a" / "one.xml").write_text("<rss/>")
    result = invoke("replay", str(seed), "--out", str(out))
    assert result.exit_code == 2
    line = error_line(result)
    assert "timeline.yaml" in line and "files not found in the seed: a/two.xml" in line
    assert_untouched(out)


# The option errors are found while reading the command line: the seed (an empty folder here)
# is never looked at, so an option wrongly accepted would fail with "not a seed" instead.
@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--speed", "0"),
        ("--speed", "-3"),
        ("--speed", "fast"),
        ("--speed", "inf"),
        ("--speed", "nan"),
        ("--every", "0"),
        ("--every", "soon"),
        ("--every", "-2h"),
    ],
)
def test_a_bad_speed_or_interval_is_a_usage_error_naming_the_option(
    tmp_path: Path, out: Path, option: str, value: str
) -> None:
    result = invoke("replay", str(tmp_path), "--out", str(out), option, value)
    assert result.exit_code == 2
    assert f"Invalid value for '{option}'" in result.stderr
    assert repr(value) in result.stderr
    assert "not a seed" not in result.stderr
    assert_untouched(out)


@pytest.mark.parametrize(
    ("value", "speed"), [("max", None), (" MAX ", None), ("150000", 150000.0), ("2.5", 2.5)]
)
def test_speed_takes_a_positive_number_or_max(value: str, speed: float | None) -> None:
    assert _Speed().convert(value, None, None) == speed


def test_every_takes_a_duration() -> None:
    assert _Duration().convert("90m", None, None).total_seconds() == 5400


def test_alerts_from_a_missing_file_is_refused_naming_it(tmp_path: Path, out: Path) -> None:
    missing = tmp_path / "channels.yaml"
    result = invoke("replay", str(SEED), "--out", str(out), "--alerts-from", str(missing))
    assert result.exit_code == 2
    line = error_line(result)
    assert str(missing) in line and "not found" in line and "--alerts-from" in line
    assert_untouched(out)


@pytest.mark.parametrize(
    "text",
    [
        "database: sqlite:///x.db\nsources: []\n",
        "alerts: []\n",
        "alerts: {name: desk, url: 'json://127.0.0.1:9/'}\n",
        "just a string\n",
        "",
    ],
)
def test_alerts_from_a_file_without_an_alerts_list_is_refused(tmp_path: Path, out: Path, text: str) -> None:
    channels = tmp_path / "channels.yaml"
    channels.write_text(text, encoding="utf-8")
    result = invoke("replay", str(SEED), "--out", str(out), "--alerts-from", str(channels))
    assert result.exit_code == 2
    line = error_line(result)
    assert str(channels) in line and "no `alerts` list" in line
    assert_untouched(out)


def test_a_channel_routing_an_unknown_source_is_not_valid_for_the_seed(tmp_path: Path, out: Path) -> None:
    channels = tmp_path / "channels.yaml"
    channels.write_text(
        "alerts:\n  - {name: desk, url: 'json://127.0.0.1:9/hook', sources: [us-state, ca-gac]}\n",
        encoding="utf-8",
    )
    result = invoke("replay", str(SEED), "--out", str(out), "--alerts-from", str(channels))
    assert result.exit_code == 2
    line = error_line(result)
    assert line.startswith(f"monitor: error: {channels}: alerts[0] (name: desk): sources: ")
    assert "unknown source 'ca-gac'; configured: cma-cgm, de-aa, fr-diplomatie" in line
    assert "unknown source 'us-state'" not in result.stderr
    assert result.stdout == ""  # refused before the replay starts
    assert_untouched(out)


def test_an_alert_url_apprise_cannot_use_is_refused(out: Path) -> None:
    result = invoke("replay", str(SEED), "--out", str(out), "--alert", "nope://x")
    assert result.exit_code == 2
    line = error_line(result)
    assert line.startswith("monitor: error: --alert: alerts[0] (name: alert-1): url: ")
    assert "apprise cannot use a nope:// URL" in line
    assert result.stdout == ""
    assert_untouched(out)


def test_a_database_that_already_holds_data_is_refused_and_kept(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'kept.db'}"
    with Store.open(url) as store:
        store.sync_sources([("x", "rss", "https://example.org/feed")], datetime.now(UTC))
    out = tmp_path / "out"
    result = invoke("--database", url, "replay", str(SEED), "--out", str(out), "--speed", "max")
    assert result.exit_code == 1
    line = error_line(result)
    assert url in line and "already holds data (sources)" in line and "needs an empty database" in line
    with Store.open(url) as store:
        assert [s.id for s in store.statuses()] == ["x"]
        assert {table: n for table, n in store.counts().items() if n and table != "alembic_version"} == {
            "sources": 1
        }
    assert not (out / "report.html").exists()


def test_a_database_that_already_holds_data_is_refused_before_the_out_folder_is_touched(
    tmp_path: Path, out: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'kept.db'}"
    with Store.open(url) as store:
        store.sync_sources([("x", "rss", "https://example.org/feed")], datetime.now(UTC))
    result = invoke("--database", url, "replay", str(SEED), "--out", str(out), "--speed", "max")
    assert result.exit_code == 1
    assert_untouched(out)


def test_each_problem_names_where_its_channel_came_from(tmp_path: Path, out: Path) -> None:
    channels = tmp_path / "channels.yaml"
    channels.write_text("alerts:\n  - {name: desk, url: 'json://127.0.0.1:9/hook', sources: [ca-gac]}\n")
    result = invoke(
        *("replay", str(SEED), "--out", str(out)),
        *("--alerts-from", str(channels), "--alert", "nope://x"),
    )
    assert result.exit_code == 2
    lines = result.stderr.strip().removeprefix("monitor: error: ").splitlines()
    assert len(lines) == 2
    assert any(line.startswith(f"{channels}: alerts[0] (name: desk): sources: ") for line in lines)
    assert any(line.startswith("--alert: alerts[1] (name: alert-1): url: ") for line in lines)
    assert_untouched(out)
