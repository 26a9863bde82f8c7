"""``monitor report``, ``monitor history`` and ``monitor serve`` on a real database."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import feedparser
import httpx
import pytest
from bs4 import BeautifulSoup
from click.testing import CliRunner

from monitor.cli import cli
from monitor.store import Store
from tests.test_report_load import CONFIG, RESUMED, SUSPENDED, fill


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, str]:
    """A configuration file and a SQLite database holding the Mali history of test_report_load."""
    database = f"sqlite:///{tmp_path / 'monitor.db'}"
    path = tmp_path / "monitor.yaml"
    path.write_text(f"database: {database}\n{CONFIG}")
    with Store.open(database) as store:
        fill(store)
    return path, database


def invoke(path: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--config", str(path), *args])
    return result.exit_code, result.stdout, result.stderr


def history_json(path: Path, *args: str) -> list[dict[str, object]]:
    code, out, err = invoke(path, "history", "--json", *args)
    assert code == 0, err
    data = json.loads(out)
    assert isinstance(data, list)
    return data


def test_history_json_lists_every_change_oldest_first(setup: tuple[Path, str]) -> None:
    path, _ = setup
    data = history_json(path)
    assert [(d["source_id"], d["class"]) for d in data] == [
        ("uk", "severe"),
        ("sahel", "update"),
        ("msc", "severe"),
        ("msc", "relaxed"),
    ]
    first = data[0]
    assert first["detected_at"] == "2025-10-30T09:00:00+00:00"
    assert first["published_at"] == "2025-10-30T09:00:00+00:00"
    assert (first["kind"], first["country"], first["level_before"], first["level_after"]) == (
        "uk-fcdo",
        "ML",
        3,
        4,
    )
    assert first["reasons"] == ["level raised: “all travel”"]
    assert first["url"] == "https://www.gov.uk/foreign-travel-advice/mali"


def test_history_filters(setup: tuple[Path, str]) -> None:
    path, _ = setup
    assert [d["source_id"] for d in history_json(path, "--country", "bf")] == ["sahel"]
    assert [d["class"] for d in history_json(path, "--source", "msc")] == ["severe", "relaxed"]
    assert [d["class"] for d in history_json(path, "--min-class", "severe")] == [
        "severe",
        "severe",
        "relaxed",
    ]
    assert [d["source_id"] for d in history_json(path, "--since", "2025-11-01", "--until", "2025-11-06")] == [
        "sahel",
        "msc",
    ]
    assert [d["source_id"] for d in history_json(path, "--until", "2025-10-30")] == ["uk"]  # the whole day


def test_history_csv_and_table(setup: tuple[Path, str]) -> None:
    path, _ = setup
    code, out, _ = invoke(path, "history", "--csv", "--source", "uk")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["source_id"], r["class"], r["level_before"], r["level_after"]) for r in rows] == [
        ("uk", "severe", "3", "4")
    ]
    code, out, _ = invoke(path, "history")
    assert code == 0
    assert "Mali" in out and "UK FCDO" in out and "3 → 4" in out and "4 changes" in out
    code, out, _ = invoke(path, "history", "--country", "FR")
    assert (code, out.strip()) == (0, "No changes recorded for this selection.")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "30/10/2025"], "is not a date (YYYY-MM-DD)"),
        (["--since", "2025-11-02", "--until", "2025-11-01"], "is before since"),
        (["--country", "Mali"], "is not a country code"),
        (["--source", "nope"], "no source 'nope'; known: msc, sahel, uk"),
        (["--json", "--csv"], "exclude each other"),
        (["--min-class", "relaxed"], "Invalid value for '--min-class'"),
    ],
)
def test_history_rejects_bad_options_with_a_clear_message(
    setup: tuple[Path, str], args: list[str], message: str
) -> None:
    path, _ = setup
    code, out, err = invoke(path, "history", *args)
    assert code == 2 and out == ""
    assert message in err


def test_report_writes_one_html_file_and_says_where(setup: tuple[Path, str], tmp_path: Path) -> None:
    path, _ = setup
    out = tmp_path / "out" / "mali.html"
    code, _, err = invoke(path, "report", "--out", str(out), "--country", "ML")
    assert code == 0, err
    assert f"report written to {out}" in err and "4 changes, 1 countries" in err
    soup = BeautifulSoup(out.read_text(encoding="utf-8"), "html.parser")
    assert soup.find(id="country-ML") is not None
    assert soup.find(id="country-BF") is None
    assert [p.name for p in out.parent.iterdir()] == ["mali.html"]  # no temporary file left
    code, page_text, _ = invoke(path, "report", "--out", "-")
    assert code == 0 and page_text.lstrip().lower().startswith("<!doctype html>")


def test_report_to_a_path_it_cannot_write_fails_clearly(setup: tuple[Path, str], tmp_path: Path) -> None:
    path, _ = setup
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, _, err = invoke(path, "report", "--out", str(blocker / "report.html"))
    assert code == 1
    assert "cannot write the report to" in err


def test_serve_refuses_a_public_address_without_a_token(setup: tuple[Path, str]) -> None:
    path, _ = setup
    code, _, err = invoke(path, "serve", "--host", "0.0.0.0")
    assert code == 2
    assert "set a token" in err


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def served(setup: tuple[Path, str]) -> Iterator[str]:
    path, _ = setup
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor", "--config", str(path), "serve", "--port", str(port)],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ},
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 20
    while True:
        try:
            httpx.get(url + "healthz", timeout=1)
            break
        except httpx.TransportError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise AssertionError(f"monitor serve did not start: {proc.communicate()[1]}") from None
            time.sleep(0.1)
    yield url
    proc.send_signal(signal.SIGINT)
    code = proc.wait(timeout=10)
    _, err = proc.communicate()
    assert code == 0, err


def test_serve_shows_the_report_and_the_feeds(served: str) -> None:
    page = httpx.get(served)
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    soup = BeautifulSoup(page.text, "html.parser")
    assert soup.find(id="country-ML") is not None and soup.find(id="country-BF") is not None
    only_bf = BeautifulSoup(httpx.get(served, params={"country": "BF"}).text, "html.parser")
    assert only_bf.find(id="country-ML") is None
    feed = feedparser.parse(httpx.get(served + "feeds/ML.atom").content)
    assert not feed.bozo
    assert [e.link for e in feed.entries][:2] == [RESUMED.url, SUSPENDED.url]
    everything = feedparser.parse(httpx.get(served + "feeds/all.atom").content)
    assert len(everything.entries) == 4
    again = httpx.get(served + "feeds/all.atom", headers={"If-None-Match": page.headers.get("etag", "")})
    assert again.status_code == 200  # another path, another tag
    tag = httpx.get(served + "feeds/all.atom").headers["etag"]
    assert httpx.get(served + "feeds/all.atom", headers={"If-None-Match": tag}).status_code == 304
