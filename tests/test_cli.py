"""The ``monitor`` command, in-process (CliRunner) and as a real process where signals matter."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from monitor.cli import cli
from tests.support.httpserver import LocalServer
from tests.support.receiver import WebhookReceiver

ROOT = Path(__file__).resolve().parents[1]
PAGE = "<html><head><title>Mali</title></head><body><main><p>{text}</p></main></body></html>"


def write_config(tmp_path: Path, server: LocalServer, database: str | None = None) -> Path:
    database = database or f"sqlite:///{tmp_path / 'data' / 'monitor.db'}"
    path = tmp_path / "monitor.yaml"
    path.write_text(
        f"""
database: {database}
defaults: {{timeout: 2s, interval: 1h}}
countries: [ML, NE]
sources:
  - {{id: fr-mali, kind: html, url: "{server.url("/mali")}", countries: [ML], options: {{select: main}}}}
  - {{id: fr-niger, kind: html, url: "{server.url("/niger")}", countries: [NE]}}
""",
        encoding="utf-8",
    )
    return path


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_check_stores_snapshots_only_on_change(tmp_path: Path, http_server: LocalServer) -> None:
    config = write_config(tmp_path, http_server)
    http_server.route("/mali", PAGE.format(text="Avoid all travel."))
    http_server.route("/niger", PAGE.format(text="Reconsider travel."))

    first = invoke("--config", str(config), "check", "--json")
    assert first.exit_code == 0, first.output
    reports = json.loads(first.output)
    assert [(r["source_id"], r["outcome"], r["new"]) for r in reports] == [
        ("fr-mali", "new", ["ML"]),
        ("fr-niger", "new", ["NE"]),
    ]
    second = json.loads(invoke("--config", str(config), "check", "--json").output)
    assert [r["outcome"] for r in second] == ["unchanged", "unchanged"]

    http_server.route("/mali", PAGE.format(text="Leave Mali now by commercial flight."))
    third = invoke("--config", str(config), "check", "fr-mali")
    assert third.exit_code == 0
    assert "fr-mali" in third.output and "changed" in third.output
    assert "fr-niger" not in third.output
    assert "1 sources checked, 1 changes, 0 failed" in third.output

    listing = json.loads(invoke("--config", str(config), "sources", "--json").output)
    mali = next(s for s in listing if s["id"] == "fr-mali")
    assert mali["last_outcome"] == "changed"
    assert mali["last_change_class"] == "critical"  # "Leave Mali now": a call to leave
    assert mali["levels"] == {"ML": None}
    table = invoke("--config", str(config), "sources").output
    assert "fr-niger" in table and "unchanged" in table


def test_check_exit_code_when_a_source_fails(tmp_path: Path, http_server: LocalServer) -> None:
    config = write_config(tmp_path, http_server)
    http_server.route("/mali", PAGE.format(text="ok"))
    result = invoke("--config", str(config), "check")
    assert result.exit_code == 1
    assert "HTTP 404" in result.output
    assert "2 sources checked, 0 changes, 1 failed" in result.output


def test_unknown_source_id_is_one_clear_line(tmp_path: Path, http_server: LocalServer) -> None:
    config = write_config(tmp_path, http_server)
    result = CliRunner().invoke(cli, ["--config", str(config), "check", "nope"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"monitor: error: {config}: no source with id 'nope'; configured: fr-mali, fr-niger"
    ]


def test_config_check_on_shipped_config() -> None:
    result = invoke("--config", str(ROOT / "config" / "monitor.yaml"), "config", "check")
    assert result.exit_code == 0
    assert "OK — 12 sources (ca-gac, cma-cgm, de-aa, fr-diplomatie, msc, uk-fcdo, us-state)" in result.output


def test_config_typo_exits_2_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("sources:\n  - {id: fr-mali, kind: html, url: 'https://x.org', intervall: 5m}\n")
    result = CliRunner().invoke(cli, ["--config", str(path), "config", "check"])
    assert result.exit_code == 2
    assert result.output == (
        f"monitor: error: {path}: sources[0] (id: fr-mali): unknown key 'intervall'; "
        "allowed: countries, fetcher, id, interval, kind, options, publisher, url, wait_for\n"
    )
    assert "Traceback" not in result.output


def test_verbose_adds_traceback(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["--verbose", "--config", str(tmp_path / "none.yaml"), "config", "check"]
    )
    assert result.exit_code == 2
    assert "Traceback" in result.output
    assert "configuration file not found" in result.output


def test_database_option_overrides_config(tmp_path: Path, http_server: LocalServer) -> None:
    config = write_config(tmp_path, http_server)
    other = tmp_path / "other.db"
    http_server.route("/mali", PAGE.format(text="ok"))
    invoke("--config", str(config), "--database", f"sqlite:///{other}", "check", "fr-mali")
    assert other.exists()
    assert not (tmp_path / "data" / "monitor.db").exists()


def test_db_upgrade_and_kinds(tmp_path: Path) -> None:
    result = invoke("--database", f"sqlite:///{tmp_path / 'x.db'}", "db", "upgrade")
    assert result.exit_code == 0
    assert (tmp_path / "x.db").exists()
    kinds = json.loads(invoke("kinds", "--json").output)
    assert {
        "kind": "html",
        "title": "Any web page (CSS selectors)",
        "options": ["exclude", "required", "select"],
    } in kinds


def test_bad_database_url_is_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["--database", "postgresql+psycopg://u:hunter2@127.0.0.1:1/x", "db", "upgrade"]
    )
    assert result.exit_code == 1
    assert result.output.startswith("monitor: error: ")
    assert "hunter2" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def _monitor(*args: str, cwd: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "monitor", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_run_polls_then_stops_cleanly_on_sigint(tmp_path: Path, http_server: LocalServer) -> None:
    config = write_config(tmp_path, http_server)
    http_server.route("/mali", PAGE.format(text="ok"))
    process = _monitor("--config", str(config), "run", cwd=tmp_path)
    deadline = time.monotonic() + 20
    while http_server.hits("/niger") == 0 or http_server.hits("/mali") == 0:
        assert time.monotonic() < deadline, "no request reached the server"
        time.sleep(0.05)
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=15)
    assert process.returncode == 0, output
    assert "watching 2 sources" in output
    assert "fr-mali: new HTTP 200" in output
    assert "fr-niger: failed HTTP 404" in output
    assert "monitor: stopped" in output


def test_run_once_reports_unreachable_sources_and_goes_on(tmp_path: Path, http_server: LocalServer) -> None:
    config = write_config(tmp_path, http_server)
    http_server.route("/niger", PAGE.format(text="ok"))
    text = config.read_text().replace(http_server.url("/mali"), "http://unreachable.invalid/mali")
    config.write_text(text)
    process = _monitor("--config", str(config), "run", "--once", cwd=tmp_path)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 1, output
    assert "fr-niger" in output and "new" in output
    assert "unreachable.invalid" in output or "fr-mali" in output
    assert "2 sources checked, 0 changes, 1 failed" in output


@pytest.mark.parametrize(
    "args", [["--help"], ["check", "--help"], ["run", "--help"], ["config", "check", "--help"]]
)
def test_help_texts(args: list[str]) -> None:
    result = invoke(*args)
    assert result.exit_code == 0
    assert "Usage: " in result.output


def test_monitor_config_environment_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "elsewhere.yaml"
    path.write_text("sources: []\n")
    monkeypatch.setenv("MONITOR_CONFIG", str(path))
    result = invoke("config", "check")
    assert result.exit_code == 0
    assert result.output.startswith(f"{path}: OK — 0 sources")


def test_parse_prints_the_record_contract(tmp_path: Path) -> None:
    page = ROOT / "tests" / "fixtures" / "kinds" / "html" / "gov-page-main" / "input.html"
    url = "https://www.gov.uk/foreign-travel-advice/niger"
    result = invoke("parse", "--kind", "html", str(page), "--country", "ne", "--url", url)
    assert result.exit_code == 0, result.output
    [record] = json.loads(result.output)
    contract = {"country", "level", "level_label", "scope", "leave_now", "staff_departure", "updated_at"}
    assert contract | {"title", "url", "notices"} <= set(record)
    assert (record["country"], record["url"], record["level"]) == ("NE", url, None)
    assert "advises against all travel to Niger." in record["sections"][0]["text"]


def test_parse_failure_is_one_line_and_exit_1(tmp_path: Path) -> None:
    empty = tmp_path / "empty.html"
    empty.write_text("<html><body>   </body></html>")
    result = CliRunner().invoke(cli, ["parse", "--kind", "html", str(empty)])
    assert result.exit_code == 1
    assert result.output == f"monitor: error: {empty}: the page has no visible text\n"
    bad_country = CliRunner().invoke(cli, ["parse", "--kind", "html", str(empty), "--country", "XX"])
    assert bad_country.exit_code == 2
    assert "not an ISO 3166-1 alpha-2 country code" in bad_country.output


def test_ctrl_c_to_the_process_group_stops_a_browser_run_with_exit_0(
    tmp_path: Path, http_server: LocalServer
) -> None:
    """A terminal's Ctrl-C reaches the browser driver too; the monitor still stops with exit 0."""
    if not shutil.which("chromium") and os.environ.get("CI", "").lower() != "true":
        pytest.skip("chromium is not installed")
    http_server.route("/mali", PAGE.format(text="Avoid all travel."))
    path = tmp_path / "monitor.yaml"
    path.write_text(
        f"database: sqlite:///{tmp_path / 'm.db'}\nsources:\n"
        f'  - {{id: fr-mali, kind: html, url: "{http_server.url("/mali")}", fetcher: browser}}\n'
        + "".join(
            f'  - {{id: gone-{n}, kind: html, url: "https://nowhere-{n}.invalid/", fetcher: browser}}\n'
            for n in range(3)
        ),
        encoding="utf-8",
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "monitor", "--config", str(path), "run"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while http_server.hits("/mali") == 0:
        assert time.monotonic() < deadline, "the browser never fetched the page"
        time.sleep(0.1)
    time.sleep(4)  # the unresolvable hosts fail too
    os.killpg(process.pid, signal.SIGINT)
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    assert "fr-mali: new HTTP 200" in output
    assert "monitor: stopped" in output
    assert "gone-2: failed" in output
    assert "Traceback" not in output and "Connection closed" not in output and "ERROR" not in output


def test_run_delivers_the_alert_of_a_change_while_running(tmp_path: Path, http_server: LocalServer) -> None:
    with WebhookReceiver() as hook:
        config = tmp_path / "monitor.yaml"
        config.write_text(
            f"""
database: sqlite:///{tmp_path / "monitor.db"}
defaults: {{timeout: 2s}}
sources:
  - {{id: fr-mali, kind: html, url: "{http_server.url("/mali")}", countries: [ML], interval: 1s,
      publisher: France Diplomatie, options: {{select: main}}}}
alerts:
  - {{name: chat, url: "json://127.0.0.1:{hook.port}/hook"}}
""",
            encoding="utf-8",
        )
        http_server.route("/mali", PAGE.format(text="Il est formellement déconseillé de se rendre au Mali."))
        process = _monitor("--config", str(config), "run", cwd=tmp_path)
        deadline = time.monotonic() + 20
        while http_server.hits("/mali") == 0:
            assert time.monotonic() < deadline, "no request reached the server"
            time.sleep(0.05)
        leave = "Il est recommandé aux ressortissants français de quitter le Mali dès que possible."
        http_server.route(
            "/mali", PAGE.format(text=f"Il est formellement déconseillé de se rendre au Mali. {leave}")
        )
        [post] = hook.wait_for(1, timeout=20)
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=15)
    assert process.returncode == 0, output
    assert post.json["title"] == "[CRITICAL] Mali — France Diplomatie: nationals urged to leave"
    assert leave in post.json["message"]
    assert post.headers["X-Alert-Id"] == "change-1-chat"
    assert "alert change-1-chat sent to chat" in output
    assert len(hook.posts) == 1
