"""`monitor run` as users run it: a real process, real signals, a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from monitor.errors import StorageError
from monitor.store import Store
from tests.support.httpserver import LocalServer
from tests.support.ports import free_port

PAGE = "<html><body><div class='advice'><p>We advise against all travel to Mali. {n}</p></div></body></html>"


def write_config(path: Path, database: str, sources: list[tuple[str, str]], service: str = "{}") -> Path:
    lines = [
        f"database: '{database}'",
        "defaults: {timeout: 60s, host_spacing: 0, interval: 1h, concurrency: 64, per_host: 64}",
        f"service: {service}",
        "sources:",
    ]
    lines += [
        f"  - {{id: {sid}, kind: html, url: '{url}', options: {{select: .advice}}}}" for sid, url in sources
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def start(config: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "monitor", "--config", str(config), "run", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def wait_for(condition: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


@pytest.fixture
def service_procs() -> Iterator[list[subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def checks(database: str) -> int:
    """The checks recorded so far; 0 while the service has not created its tables yet."""
    try:
        with Store.open(database, migrate=False) as store:
            return store.counts()["checks"]
    except StorageError:
        return 0


def test_a_second_service_on_one_sqlite_database_refuses_to_start(
    tmp_path: Path, http_server: LocalServer, service_procs: list[subprocess.Popen[str]]
) -> None:
    http_server.route("/a", PAGE.format(n=1))
    database = f"sqlite:///{tmp_path / 'monitor.db'}"
    config = write_config(tmp_path / "monitor.yaml", database, [("a", http_server.url("/a"))])
    first = start(config)
    service_procs.append(first)
    wait_for(lambda: http_server.hits("/a") == 1)
    second = subprocess.run(
        [sys.executable, "-m", "monitor", "--config", str(config), "run"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert second.returncode == 1
    assert f"(pid {first.pid} on " in second.stderr
    assert "is already running the service" in second.stderr
    assert "use PostgreSQL" in second.stderr
    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=10) == 0


def test_sigterm_during_a_busy_cycle_exits_cleanly_within_10_s(
    tmp_path: Path, database_url: str, http_server: LocalServer, service_procs: list[subprocess.Popen[str]]
) -> None:
    sources = []
    for i in range(40):
        # A quarter answer at once, the rest take 0.5 to 30 s: the cycle is busy when SIGTERM comes.
        http_server.route(f"/s{i}", PAGE.format(n=i), delay=0 if i % 4 == 0 else min(30.0, 0.5 * i))
        sources.append((f"s{i:02d}", http_server.url(f"/s{i}")))
    config = write_config(tmp_path / "monitor.yaml", database_url, sources, "{shutdown_grace: 3s}")
    proc = start(config)
    service_procs.append(proc)
    wait_for(lambda: checks(database_url) >= 10, timeout=40)
    proc.send_signal(signal.SIGTERM)
    signalled = time.monotonic()
    code = proc.wait(timeout=15)
    took = time.monotonic() - signalled
    _, stderr = proc.communicate()
    assert code == 0, stderr
    assert took < 10, f"took {took:.1f} s"
    assert "monitor: stopped" in stderr
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            done = conn.execute(sa.text("SELECT count(*) FROM checks")).scalar_one()
            snapshots = conn.execute(sa.text("SELECT count(*) FROM snapshots")).scalar_one()
            orphans = conn.execute(
                sa.text(
                    "SELECT count(*) FROM snapshots s LEFT JOIN checks c ON c.id = s.check_id "
                    "WHERE c.id IS NULL"
                )
            ).scalar_one()
            held = conn.execute(
                sa.text("SELECT count(*) FROM sources WHERE lease_owner IS NOT NULL")
            ).scalar_one()
            workers = conn.execute(sa.text("SELECT state FROM workers")).scalars().all()
            if engine.dialect.name == "sqlite":
                assert conn.execute(sa.text("PRAGMA integrity_check")).scalar_one() == "ok"
    finally:
        engine.dispose()
    assert 10 <= done < 40  # some checks were abandoned ...
    assert snapshots == done  # ... and every recorded one is whole: one first snapshot per check
    assert (orphans, held, workers) == (0, 0, ["stopped"])
    print(f"\nSIGTERM in a busy cycle: exit 0 after {took:.1f} s; {done} of 40 checks recorded")


def test_a_second_signal_exits_at_once(
    tmp_path: Path, http_server: LocalServer, service_procs: list[subprocess.Popen[str]]
) -> None:
    http_server.route("/slow", PAGE.format(n=1), delay=30)
    database = f"sqlite:///{tmp_path / 'monitor.db'}"
    config = write_config(
        tmp_path / "m.yaml", database, [("slow", http_server.url("/slow"))], "{shutdown_grace: 60s}"
    )
    proc = start(config)
    service_procs.append(proc)
    wait_for(lambda: http_server.hits("/slow") == 1)
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    assert proc.poll() is None  # waiting for the check in flight
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=5) == 128 + signal.SIGTERM


def test_sighup_reloads_the_configuration_and_http_serves_health_and_metrics(
    tmp_path: Path, http_server: LocalServer, service_procs: list[subprocess.Popen[str]]
) -> None:
    http_server.route("/a", PAGE.format(n=1))
    http_server.route("/b", PAGE.format(n=2))
    database = f"sqlite:///{tmp_path / 'monitor.db'}"
    config = write_config(tmp_path / "m.yaml", database, [("a", http_server.url("/a"))])
    port = free_port()
    proc = start(config, "--http", f"127.0.0.1:{port}")
    service_procs.append(proc)
    wait_for(lambda: http_server.hits("/a") == 1)
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: _get(base + "/healthz") == 200)
    metrics = httpx.get(base + "/metrics").text
    assert 'monitor_checks_total{outcome="new",source="a"} 1.0' in metrics

    write_config(config, database, [("a", http_server.url("/a")), ("b", http_server.url("/b"))])
    proc.send_signal(signal.SIGHUP)
    wait_for(lambda: http_server.hits("/b") == 1)
    write_config(config, database, [("a", http_server.url("/a")), ("b", "not a url")])
    proc.send_signal(signal.SIGHUP)  # an invalid file is refused; the running configuration stays
    time.sleep(1)
    assert proc.poll() is None
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=10) == 0
    _, stderr = proc.communicate()
    assert "configuration reloaded: 2 sources (1 added, 0 removed, 0 changed)" in stderr
    assert "configuration not reloaded, the running one stays in force" in stderr
    assert http_server.hits("/a") == 1  # the unchanged source was not checked again

    write_config(config, database, [("a", http_server.url("/a")), ("b", http_server.url("/b"))])
    status = subprocess.run(
        [sys.executable, "-m", "monitor", "--config", str(config), "status", "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    document = json.loads(status.stdout)
    assert document["scheduler"] == "stopped"
    assert [w["state"] for w in document["workers"]] == ["stopped"]
    assert {s["id"]: (s["health"], s["last_outcome"]) for s in document["sources"]} == {
        "a": ("ok", "new"),
        "b": ("ok", "new"),
    }
    assert document["outbox"] == {"pending": 0, "sent": 0, "failed": 0}
    table = subprocess.run(
        [sys.executable, "-m", "monitor", "--config", str(config), "status"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "COLUMNS": "200"},
    ).stdout
    assert "scheduler: not running" in table
    assert "outbox: 0 pending, 0 sent, 0 failed" in table


def _get(url: str) -> int:
    try:
        return httpx.get(url, timeout=2).status_code
    except httpx.HTTPError:
        return 0
