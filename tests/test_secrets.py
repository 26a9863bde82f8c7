"""Secrets in alert channel URLs appear nowhere: not in any command's output, not in the logs
(verbose, text or JSON, tracebacks included), not in the report, not in /metrics, not in the
database.

The channels fail for real: a webhook and an ntfy server on a closed port of 127.0.0.1
(connection refused), an SMTP server (aiosmtpd) that refuses the login, a secure SMTP channel
to a server that offers no TLS. Source URLs are not secrets (the report links to them); only
the channels' URLs are checked here.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from click.testing import CliRunner

from monitor.cli import cli
from tests.support.httpserver import LocalServer
from tests.support.ports import free_port
from tests.support.smtp import SmtpServer

MAIL_PASSWORD = "Ml4il-P4ss-QX7w"
SECURE_PASSWORD = "S3cureTls-Pw-81k"
HOOK_PATH_TOKEN = "PathTok-6f1c9e2ad0"
HOOK_QUERY_TOKEN = "QueryTok-b7e43a0c55"
NTFY_TOKEN = "tk_NtfyS3cr3tToken42"
ENV_SECRET = "EnvHookPw-Zq93LmX"
SECRETS = (MAIL_PASSWORD, SECURE_PASSWORD, HOOK_PATH_TOKEN, HOOK_QUERY_TOKEN, NTFY_TOKEN, ENV_SECRET)

PAGE = "<html><body><main><div class='advice'><p>{}</p></div></main></body></html>"
BEFORE = "We advise against all but essential travel to Mali."
AFTER = "We advise against all travel to Mali. British nationals in Mali should leave now."
ENV = {"HOOK_PASSWORD": ENV_SECRET}


class Seen:
    """Everything the monitor showed, to be searched for the secrets at the end."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def add(self, *texts: str | bytes) -> None:
        self.texts.extend(t.decode("utf-8", "replace") if isinstance(t, bytes) else t for t in texts)

    def leaks(self) -> list[tuple[str, str]]:
        found = []
        for secret in SECRETS:
            for form in {secret, quote(secret, safe=""), secret.lower()}:
                found += [(secret, _around(text, form)) for text in self.texts if form in text]
        return found


def _around(text: str, needle: str) -> str:
    at = text.index(needle)
    return text[max(0, at - 120) : at + 60]


@pytest.fixture
def seen() -> Seen:
    return Seen()


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer(users={"alerts": "the-right-password"}) as server:
        yield server


def _config(tmp_path: Path, server: LocalServer, smtp: SmtpServer, *, interval: str = "") -> Path:
    down = free_port()
    mail = (
        f"mailto://alerts:{MAIL_PASSWORD}@127.0.0.1:{smtp.port}"
        "?from=monitor@example.org&to=desk@example.org&mode=insecure&cto=2"
    )
    secure = (
        f"mailtos://alerts:{SECURE_PASSWORD}@127.0.0.1:{smtp.port}"
        "?from=monitor@example.org&to=desk@example.org"
    )
    path = tmp_path / "monitor.yaml"
    path.write_text(
        f"""
database: sqlite:///{tmp_path / "m.db"}
defaults: {{timeout: 2s, host_spacing: 0s}}
sources:
  - {{id: uk-mali, kind: html, url: "{server.url("/mali")}", countries: [ML], publisher: UK FCDO,
      {interval} options: {{select: .advice}}}}
alerts:
  - {{name: mail, url: "{mail}", max_attempts: 1}}
  - {{name: secure-mail, url: "{secure}", max_attempts: 1}}
  - {{name: hook, url: "json://127.0.0.1:{down}/hooks/{HOOK_PATH_TOKEN}?token={HOOK_QUERY_TOKEN}",
      max_attempts: 1}}
  - {{name: phone, url: "ntfy://127.0.0.1:{down}/alerts?token={NTFY_TOKEN}", max_attempts: 1}}
  - {{name: env-hook, url: "json://svc:${{HOOK_PASSWORD}}@127.0.0.1:{down}/env", max_attempts: 1}}
""",
        encoding="utf-8",
    )
    return path


def _invoke(seen: Seen, config: Path, *args: str, exit_code: int | None = None) -> str:
    result = CliRunner().invoke(cli, ["--config", str(config), *args], env=ENV, catch_exceptions=False)
    seen.add(result.stdout, result.stderr)
    if exit_code is not None:
        assert result.exit_code == exit_code, result.output
    return result.stdout


def _process(seen: Seen, config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "monitor", "--config", str(config), *args],
        env={**os.environ, **ENV},
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    seen.add(result.stdout, result.stderr)
    return result


def _database_text(seen: Seen, database: Path) -> None:
    """Every value of every table, and the file's raw bytes."""
    with sqlite3.connect(database) as conn:
        tables = [row[0] for row in conn.execute("select name from sqlite_master where type = 'table'")]
        for table in tables:
            for row in conn.execute(f'select * from "{table}"'):
                seen.add(*(str(value) for value in row))
    seen.add(database.read_bytes())


def _log_text(caplog: pytest.LogCaptureFixture) -> str:
    """The captured records as a handler would write them, tracebacks included.

    pytest also hooks its capture onto loggers that do not propagate, so it sees apprise's own
    log, which the monitor keeps away from every handler (see monitor.alerts.applog): those
    records are left out; what the application logs, and what reaches a real stderr (the
    processes run here), is all checked."""
    formatter = logging.Formatter("%(levelname)s %(name)s %(message)s")
    own = [record for record in caplog.records if not record.name.startswith("apprise")]
    assert any(record.exc_info for record in own) or own, "nothing was logged"
    return "\n".join(formatter.format(record) for record in own)


def test_channel_secrets_appear_nowhere(
    tmp_path: Path, http_server: LocalServer, smtp: SmtpServer, seen: Seen, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    config = _config(tmp_path, http_server, smtp)

    assert "5 alert channels" in _invoke(seen, config, "config", "check", exit_code=0)

    tested = _invoke(seen, config, "alerts", "test", exit_code=1)
    assert len(re.findall(r": FAILED: ", tested)) == 5, tested

    http_server.route("/mali", PAGE.format(BEFORE))
    _invoke(seen, config, "check", exit_code=0)
    http_server.route("/mali", PAGE.format(AFTER))
    found = _process(seen, config, "-v", "check")
    assert found.returncode == 1, found.stdout + found.stderr
    assert " DEBUG " in found.stderr
    assert found.stdout.count("failed (marked failed)") == 5, found.stdout

    rows = json.loads(_invoke(seen, config, "alerts", "list", "--json", exit_code=0))
    assert {row["status"] for row in rows} == {"failed"} and all(row["last_error"] for row in rows)
    _invoke(seen, config, "alerts", "list", exit_code=0)
    _invoke(seen, config, "alerts", "retry", exit_code=1)
    retried = _process(seen, config, "-v", "--log-format", "json", "alerts", "retry")
    assert retried.returncode == 1
    assert all(json.loads(line) for line in retried.stderr.splitlines() if line.startswith("{"))
    _process(seen, config, "-v", "--log-format", "json", "check")

    _invoke(seen, config, "status", exit_code=None)
    _invoke(seen, config, "sources", exit_code=0)
    _invoke(seen, config, "history", "--json", exit_code=0)
    report = tmp_path / "report.html"
    _invoke(seen, config, "report", "--out", str(report), exit_code=0)
    seen.add(report.read_text(encoding="utf-8"))
    assert "UK FCDO" in seen.texts[-1]

    seen.add(_log_text(caplog))
    _database_text(seen, tmp_path / "m.db")
    assert seen.leaks() == []


@pytest.mark.parametrize(
    "entry",
    [
        # an unknown key next to a literal secret
        '{{name: hook, url: "json://127.0.0.1:9/hooks/{token}?token={token}", colour: red}}',
        # a value of the wrong type next to it
        '{{name: hook, url: "json://127.0.0.1:9/hooks/{token}", max_attempts: lots}}',
        # a URL apprise cannot use at all
        '{{name: hook, url: "jsn://user:{token}@127.0.0.1:9/hooks/{token}"}}',
        # a URL that is not even a string
        '{{name: hook, url: {{token: "{token}"}}}}',
        # broken YAML on the line of the secret
        '{{name: hook, url: "json://127.0.0.1:9/hooks/{token}" max_attempts: [}}',
    ],
)
def test_an_invalid_configuration_does_not_echo_a_secret(tmp_path: Path, seen: Seen, entry: str) -> None:
    config = tmp_path / "monitor.yaml"
    config.write_text(
        "sources: []\nalerts:\n  - " + entry.format(token=HOOK_PATH_TOKEN) + "\n", encoding="utf-8"
    )
    result = _process(seen, config, "-v", "config", "check")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "monitor.yaml" in result.stderr
    assert seen.leaks() == []


def test_metrics_and_the_service_log_carry_no_secret(
    tmp_path: Path, http_server: LocalServer, smtp: SmtpServer, seen: Seen
) -> None:
    """``monitor run --http``: /metrics names channels, never their URLs; the service's JSON log
    at DEBUG neither."""
    config = _config(tmp_path, http_server, smtp, interval="interval: 1s,")
    http_server.route("/mali", PAGE.format(BEFORE))
    _invoke(seen, config, "check", exit_code=0)
    http_server.route("/mali", PAGE.format(AFTER))
    port = free_port()
    service = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "monitor",
            "--config",
            str(config),
            "-v",
            "--log-format",
            "json",
            "run",
            "--http",
            f"127.0.0.1:{port}",
        ],
        env={**os.environ, **ENV},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        metrics = _scrape_until(f"http://127.0.0.1:{port}/metrics", 'outcome="failed"', service)
    finally:
        service.send_signal(signal.SIGTERM)
        out, err = service.communicate(timeout=30)
    seen.add(metrics, out, err)
    assert re.search(r'monitor_alerts_total\{channel="hook",outcome="failed"\} 1\.0', metrics), metrics
    assert seen.leaks() == []


def _scrape_until(url: str, needle: str, service: subprocess.Popen[str], timeout: float = 40) -> str:
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline and service.poll() is None:
        try:
            text = httpx.get(url, timeout=2).text
        except httpx.HTTPError:
            text = ""
        if needle in text and text.count(needle) >= 5:
            return text
        time.sleep(0.2)
    raise AssertionError(f"no {needle} in /metrics within {timeout}s: {text[-2000:]}")
