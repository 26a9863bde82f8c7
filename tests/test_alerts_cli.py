"""``monitor alerts`` and the alert delivery of ``monitor check``, run in-process (CliRunner) and,
where what the process logs to stderr matters, as a real process.

Channels point at a webhook receiver on 127.0.0.1, or at a free port where nothing listens when a
delivery has to fail.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from monitor.cli import cli
from monitor.database import ChangeRow
from monitor.store import Store
from tests.support.httpserver import LocalServer
from tests.support.ports import free_port
from tests.support.receiver import WebhookReceiver

PAGE = "<html><body><main><div class='advice'><p>{}</p></div></main></body></html>"
BEFORE = "We advise against all but essential travel to Mali."
AFTER = (
    "We advise against all travel to Mali. British nationals in Mali should leave now by commercial means."
)
TITLE = "[CRITICAL] Mali — UK FCDO: nationals urged to leave"


def write_config(tmp_path: Path, server: LocalServer, alerts: str) -> Path:
    """A configuration with the UK's Mali page served by ``server`` and the given ``alerts`` items."""
    path = tmp_path / "monitor.yaml"
    path.write_text(
        f"""
database: sqlite:///{tmp_path / "m.db"}
defaults: {{timeout: 2s}}
sources:
  - {{id: uk-mali, kind: html, url: "{server.url("/mali")}", countries: [ML], publisher: UK FCDO,
      options: {{select: .advice}}}}
alerts:
{alerts}
""",
        encoding="utf-8",
    )
    return path


def invoke(config: Path, *args: str, env: Mapping[str, str | None] | None = None) -> Result:
    return CliRunner().invoke(cli, ["--config", str(config), *args], env=env, catch_exceptions=False)


def run_monitor(config: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``monitor`` as its own process: logging goes to its real stderr."""
    return subprocess.run(
        [sys.executable, "-m", "monitor", "--config", str(config), *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def publish(server: LocalServer, config: Path, text: str, *args: str) -> Result:
    """Serve ``text`` as the advice and run ``monitor check`` once."""
    server.route("/mali", PAGE.format(text))
    return invoke(config, "check", *args)


def stored_alerts(database: Path) -> list[dict[str, object]]:
    """Every row of the ``alerts`` table, every column, as stored."""
    engine = sa.create_engine(f"sqlite:///{database}")
    try:
        with engine.connect() as conn:
            return [dict(row) for row in conn.execute(sa.text("select * from alerts")).mappings()]
    finally:
        engine.dispose()


def listed(config: Path, *args: str) -> list[dict[str, object]]:
    result = invoke(config, "alerts", "list", "--json", *args)
    assert result.exit_code == 0, result.output
    rows: list[dict[str, object]] = json.loads(result.stdout)
    return rows


# --- alerts test ------------------------------------------------------------------------------


def test_alerts_test_sends_to_each_channel_and_reports_the_outcome(
    tmp_path: Path, http_server: LocalServer
) -> None:
    down = free_port()
    with WebhookReceiver() as hook:
        config = write_config(
            tmp_path,
            http_server,
            f'  - {{name: chat, url: "json://127.0.0.1:{hook.port}/hook"}}\n'
            f'  - {{name: down, url: "json://127.0.0.1:{down}/hook"}}',
        )
        one = invoke(config, "alerts", "test", "chat")
        [post] = hook.wait_for(1)
        both = invoke(config, "alerts", "test")
        hook.wait_for(2)
        unknown = invoke(config, "alerts", "test", "chat", "nope")
        posts = hook.posts

    assert one.exit_code == 0, one.output
    assert re.fullmatch(rf"chat \(json://127\.0\.0\.1:{hook.port}/hook\?\S*\): sent\n", one.stdout)
    assert post.json["title"] == "Advisory monitor: test message"
    assert post.headers["X-Alert-Id"] == "test-chat"

    assert both.exit_code == 1
    chat_line, down_line = both.stdout.splitlines()
    assert chat_line.startswith("chat (json://") and chat_line.endswith("): sent")
    assert re.match(rf"down \(json://127\.0\.0\.1:{down}/hook\?\S*\): FAILED: \S", down_line)
    assert "Connection" in down_line

    assert unknown.exit_code == 2
    assert unknown.stdout == ""
    assert unknown.stderr == f"monitor: error: {config}: no alert channel 'nope'; configured: chat, down\n"
    assert len(posts) == 2  # nothing is sent when a named channel is unknown


# --- secrets ----------------------------------------------------------------------------------


def test_channel_secrets_never_appear_in_output_logs_or_the_database(
    tmp_path: Path, http_server: LocalServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Passwords in channel URLs, literal or from the environment, appear nowhere: not in any
    command's output, not in the logs (verbose included), not in the database."""
    caplog.set_level(logging.DEBUG)
    whole_url_secret, literal_secret, part_secret = "Sup3rS3cret", "Hunter2Pass", "Pa55-w0rd-xyz"
    down = free_port()
    env = {
        "ALERT_HOOK_URL": f"json://user:{whole_url_secret}@127.0.0.1:{down}/hook",
        "HOOK_PASSWORD": part_secret,
    }
    mail = f"mailto://bob:{literal_secret}@127.0.0.1:{down}?from=a@example.org&to=b@example.org&mode=insecure"
    config = write_config(
        tmp_path,
        http_server,
        '  - {name: hook-env, url: "${ALERT_HOOK_URL}", max_attempts: 1}\n'
        f'  - {{name: mail, url: "{mail}", max_attempts: 1}}\n'
        f'  - {{name: hook-part, url: "json://svc:${{HOOK_PASSWORD}}@127.0.0.1:{down}/part",'
        " max_attempts: 1}",
    )
    channels = ("hook-env", "mail", "hook-part")
    shown: list[str] = []

    def cli_run(*args: str, exit_code: int) -> Result:
        result = invoke(config, *args, env=env)
        shown.extend((result.stdout, result.stderr))
        assert result.exit_code == exit_code, result.output
        return result

    def process_run(*args: str, exit_code: int) -> subprocess.CompletedProcess[str]:
        result = run_monitor(config, "-v", *args, env=env)
        shown.extend((result.stdout, result.stderr))
        assert result.returncode == exit_code, result.stdout + result.stderr
        return result

    checked = cli_run("config", "check", exit_code=0)
    assert "3 alert channels" in checked.stdout
    tested = cli_run("alerts", "test", exit_code=1)
    assert [line.split(" ", 1)[0] for line in tested.stdout.splitlines()] == list(channels)
    assert all(": FAILED: " in line and "****" in line for line in tested.stdout.splitlines())

    http_server.route("/mali", PAGE.format(BEFORE))
    cli_run("check", exit_code=0)
    http_server.route("/mali", PAGE.format(AFTER))
    found = process_run("check", exit_code=1)  # the change is found, every delivery fails
    for channel in channels:
        assert f"alert change-1-{channel} to {channel} failed (marked failed): " in found.stdout
    assert " DEBUG " in found.stderr  # verbose logging did reach stderr

    table = cli_run("alerts", "list", exit_code=0)
    assert "0 pending, 0 sent, 3 failed" in table.stdout
    rows = json.loads(cli_run("alerts", "list", "--json", exit_code=0).stdout)
    assert sorted((row["channel"], row["status"]) for row in rows) == sorted(
        (channel, "failed") for channel in channels
    )
    assert all(row["last_error"] for row in rows)
    retried = cli_run("alerts", "retry", exit_code=1)
    assert retried.stdout.startswith("3 failed alerts queued again\n")
    process_run("alerts", "test", "mail", exit_code=1)
    shown.append(caplog.text)
    shown.extend(record.getMessage() for record in caplog.records)

    stored = stored_alerts(tmp_path / "m.db")
    assert len(stored) == 3
    shown.extend(str(value) for row in stored for value in row.values())
    database = (tmp_path / "m.db").read_bytes()

    for secret in (whole_url_secret, literal_secret, part_secret):
        for text in shown:
            assert secret not in text and quote(secret) not in text, text
        assert secret.encode() not in database


def test_a_token_never_appears_on_stderr(tmp_path: Path, http_server: LocalServer) -> None:
    token = "tk_SeCrEtToKeN123"
    config = write_config(
        tmp_path,
        http_server,
        f'  - {{name: phone, url: "ntfy://127.0.0.1:{free_port()}/alerts?token={token}"}}',
    )
    result = run_monitor(config, "alerts", "test", env={})  # not even in verbose mode
    assert result.returncode == 1
    assert "phone (ntfy://t...3@127.0.0.1" in result.stdout
    assert token not in result.stdout
    assert token not in result.stderr


# --- the outbox -------------------------------------------------------------------------------


def test_failed_alerts_are_listed_and_retry_delivers_them(tmp_path: Path, http_server: LocalServer) -> None:
    down = free_port()

    def alerts(chat_port: int) -> str:
        return (
            f'  - {{name: chat, url: "json://127.0.0.1:{chat_port}/hook", max_attempts: 1}}\n'
            f'  - {{name: other, url: "json://127.0.0.1:{down}/other", max_attempts: 1}}'
        )

    config = write_config(tmp_path, http_server, alerts(down))
    assert publish(http_server, config, BEFORE).exit_code == 0
    found = publish(http_server, config, AFTER)
    assert found.exit_code == 1
    assert "alert change-1-chat to chat failed (marked failed): " in found.stdout

    failed = listed(config, "--status", "failed")
    assert [row["channel"] for row in failed] == ["other", "chat"]  # newest first
    chat = failed[1]
    assert {"id", "key", "channel", "status", "attempts", "class", "source_id", "last_error"} <= set(chat)
    assert (chat["key"], chat["status"], chat["attempts"]) == ("change-1-chat", "failed", 1)
    assert (chat["class"], chat["source_id"], chat["record_key"]) == ("critical", "uk-mali", "ML")
    assert isinstance(chat["last_error"], str) and "127.0.0.1" in chat["last_error"]
    assert listed(config, "--status", "sent") == []
    assert len(listed(config, "--limit", "1")) == 1

    with WebhookReceiver() as hook:  # the chat service is back, at a new address
        config = write_config(tmp_path, http_server, alerts(hook.port))
        retried = invoke(config, "alerts", "retry", "chat")
        [post] = hook.wait_for(1)
        again = invoke(config, "alerts", "retry", "chat")

    assert retried.exit_code == 0, retried.output
    assert retried.stdout == f"1 failed alert queued again\nalert change-1-chat sent to chat: {TITLE}\n"
    assert post.headers["X-Alert-Id"] == "change-1-chat"
    assert post.json["title"] == TITLE
    [sent] = listed(config, "--status", "sent")
    assert (sent["id"], sent["status"], sent["attempts"], sent["last_error"]) == (chat["id"], "sent", 1, None)
    assert [row["channel"] for row in listed(config, "--status", "failed")] == ["other"]
    assert (again.exit_code, again.stdout) == (0, "0 failed alerts queued again\n")


def test_check_delivers_the_alert_of_the_change_it_found(tmp_path: Path, http_server: LocalServer) -> None:
    with WebhookReceiver() as hook:
        config = write_config(
            tmp_path, http_server, f'  - {{name: chat, url: "json://127.0.0.1:{hook.port}/hook"}}'
        )
        first = publish(http_server, config, BEFORE)
        found = publish(http_server, config, AFTER)
        [post] = hook.wait_for(1)
        # --json keeps stdout for JSON: the delivery line goes to stderr.
        http_server.route("/mali", PAGE.format(BEFORE))
        relaxed = invoke(config, "check", "--json")
        hook.wait_for(2)

    assert first.exit_code == 0 and "alert " not in first.stdout
    assert found.exit_code == 0, found.output
    assert f"alert change-1-chat sent to chat: {TITLE}\n" in found.stdout
    assert post.headers["X-Alert-Id"] == "change-1-chat"
    assert relaxed.exit_code == 0, relaxed.output
    [report] = json.loads(relaxed.stdout)
    assert [change["class"] for change in report["changes"]] == ["relaxed"]
    assert "alert change-2-chat sent to chat: [RELAXED] Mali — UK FCDO" in relaxed.stderr
    assert [row["status"] for row in listed(config)] == ["sent", "sent"]


def test_alerts_list_shows_health_alerts_and_both_latencies(tmp_path: Path, http_server: LocalServer) -> None:
    with WebhookReceiver() as hook:
        config = write_config(
            tmp_path, http_server, f'  - {{name: chat, url: "json://127.0.0.1:{hook.port}/hook"}}'
        )
        assert publish(http_server, config, BEFORE).exit_code == 0
        http_server.route("/mali", "down", status=500)
        failing = [invoke(config, "check") for _ in range(3)]
        [down] = hook.wait_for(1)
        back = publish(http_server, config, AFTER)
        posts = hook.wait_for(3)

    assert [r.exit_code for r in failing] == [1, 1, 1]
    assert (
        "alert health-1-chat sent to chat: [source unhealthy] uk-mali — UK FCDO: 3 checks in a row failed\n"
        in (failing[2].stdout)
    )
    assert down.headers["X-Alert-Id"] == "health-1-chat"
    assert back.exit_code == 0, back.output
    assert sorted(p.headers["X-Alert-Id"] for p in posts) == [
        "change-1-chat",
        "health-1-chat",
        "health-2-chat",
    ]
    assert "[source recovered] uk-mali — UK FCDO: works again after " in back.stdout

    # The publisher's own time of the change, as a kind that reads one would have stored it.
    with Store.open(f"sqlite:///{tmp_path / 'm.db'}") as store:
        [change] = store.changes()
        with store.engine.begin() as conn:
            published = change.detected_at - timedelta(hours=2, minutes=5)
            conn.execute(sa.update(ChangeRow).values(published_at=published))

    recovered, about_change, unhealthy = listed(config)
    assert [row["key"] for row in (recovered, about_change, unhealthy)] == [
        "health-2-chat",
        "change-1-chat",
        "health-1-chat",
    ]
    assert (unhealthy["purpose"], unhealthy["class"], unhealthy["health_state"]) == (
        "health",
        None,
        "unhealthy",
    )
    assert (unhealthy["source_id"], unhealthy["record_key"], unhealthy["change_id"]) == (
        "uk-mali",
        None,
        None,
    )
    assert isinstance(unhealthy["health_event_id"], int)
    assert unhealthy["published_at"] is None and unhealthy["published_to_detected_seconds"] is None
    assert recovered["health_state"] == "recovered"
    for row in (recovered, about_change, unhealthy):
        assert row["status"] == "sent"
        sent_after = row["detected_to_sent_seconds"]
        assert isinstance(sent_after, float) and 0 <= sent_after < 60
    assert about_change["class"] == "critical"
    assert about_change["published_to_detected_seconds"] == 2 * 3600 + 5 * 60
    assert about_change["published_at"] == published.isoformat()

    table = invoke(config, "alerts", "list")
    assert table.exit_code == 0, table.output
    lines = table.stdout.splitlines()
    assert "published→detected" in table.stdout and "detected→sent" in table.stdout
    [change_line] = [line for line in lines if "uk-mali ML" in line]
    assert "critical" in change_line and "2 h 5 min" in change_line
    health_lines = [line for line in lines if "uk-mali (health)" in line]
    assert len(health_lines) == 2
    assert "source recovered" in health_lines[0] and "source unhealthy" in health_lines[1]
    assert all(re.search(r"│ - +│ \d+ s +│", line) for line in health_lines), health_lines
    assert "0 pending, 3 sent, 0 failed" in table.stdout


# --- configuration errors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("channel", "expected"),
    [
        pytest.param(
            '{name: x, url: "nosuchservice://user:Hunter2Pass@example.org/"}',
            "alerts[0] (name: x): url: apprise cannot use a nosuchservice:// URL (",
            id="invalid-url",
        ),
        pytest.param(
            '{name: x, url: "json://127.0.0.1:9/hook", min_clas: severe}',
            "alerts[0] (name: x): unknown key 'min_clas'; allowed: countries, digest, digest_at, health, "
            "kinds, max_attempts, min_class, name, report_failures, sources, url",
            id="unknown-key",
        ),
        pytest.param(
            '{name: x, url: "json://127.0.0.1:9/hook", sources: [nope]}',
            "alerts[0] (name: x): sources: unknown source 'nope'; configured: uk-mali",
            id="unknown-source",
        ),
        pytest.param(
            '{name: x, url: "json://127.0.0.1:9/hook", min_class: urgent}',
            "alerts[0] (name: x): min_class: Input should be 'noise', 'update', 'heightened', 'severe' or "
            "'critical' (got 'urgent')",
            id="unknown-class",
        ),
        pytest.param(
            '{name: x, url: "${MONITOR_TEST_UNSET_URL}"}',
            "alerts[0] (name: x): url: environment variable MONITOR_TEST_UNSET_URL is not set",
            id="unset-variable",
        ),
    ],
)
def test_config_check_names_the_channel_and_the_problem(
    tmp_path: Path, http_server: LocalServer, channel: str, expected: str
) -> None:
    config = write_config(tmp_path, http_server, f"  - {channel}")
    result = invoke(config, "config", "check", env={"MONITOR_TEST_UNSET_URL": None})
    assert result.exit_code == 2
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith(f"monitor: error: {config}: {expected}"), line
    assert "Hunter2Pass" not in result.stderr
