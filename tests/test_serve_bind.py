"""``monitor serve`` as a real process on a real socket: loopback by default, a token required
anywhere else (from the environment, so that it is not on a command line), every path but
/healthz behind it, and the token never in its log."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

TOKEN = "srv-T0ken-9c2f61aa"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "monitor.yaml"
    path.write_text(f"database: sqlite:///{tmp_path / 'm.db'}\nsources: []\n", encoding="utf-8")
    return path


def _command(config: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "monitor", "--config", str(config), "-v", "serve", "--port", "0", *args]


class Served:
    """A running ``monitor serve``: its base URL (as printed), and its stderr once stopped."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        assert process.stderr is not None
        self.lines: list[str] = []
        for line in process.stderr:
            self.lines.append(line)
            match = re.search(r"monitor: serving (http://\S+/) ", line)
            if match:
                self.url = match.group(1)
                return
        raise AssertionError("the server did not start: " + "".join(self.lines))

    def stop(self) -> str:
        self.process.send_signal(signal.SIGINT)
        _, rest = self.process.communicate(timeout=20)
        return "".join(self.lines) + rest


Start = Callable[..., "Served"]


@pytest.fixture
def serve(config: Path) -> Iterator[Start]:
    started: list[Served] = []

    def start(*args: str, env: dict[str, str] | None = None) -> Served:
        process = subprocess.Popen(
            _command(config, *args),
            env={**os.environ, **(env or {})},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        started.append(Served(process))
        return started[-1]

    yield start
    for served in started:
        if served.process.poll() is None:
            served.process.kill()
            served.process.communicate()


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "[::]", "192.168.1.20", "monitor.example.org"])
def test_a_reachable_address_without_a_token_is_refused(config: Path, host: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "MONITOR_SERVE_TOKEN"}
    result = subprocess.run(
        _command(config, "--host", host), env=env, capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 2
    assert f"--host {host} is reachable from other machines: set a token" in result.stderr
    assert "serving" not in result.stderr


def test_a_blank_token_is_no_token(config: Path) -> None:
    result = subprocess.run(
        _command(config, "--host", "0.0.0.0"),
        env={**os.environ, "MONITOR_SERVE_TOKEN": "  "},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "is reachable from other machines" in result.stderr


def test_loopback_is_the_default_and_needs_no_token(serve: Start) -> None:
    served = serve()
    assert served.url.startswith("http://127.0.0.1:")
    assert httpx.get(served.url).status_code == 200
    served.stop()


def test_every_path_but_healthz_needs_the_token_and_the_log_never_shows_it(serve: Start) -> None:
    served = serve("--host", "0.0.0.0", env={"MONITOR_SERVE_TOKEN": TOKEN})
    port = served.url.rsplit(":", 1)[1].rstrip("/")
    base = f"http://127.0.0.1:{port}/"
    assert httpx.get(base + "healthz").status_code == 200
    for path in ("", "feeds/all.atom", "feeds/ML.atom", "?country=ML"):
        assert httpx.get(base + path).status_code == 401
        assert httpx.get(base + path, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert httpx.get(base + path, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert httpx.get(base, params={"token": TOKEN}).status_code == 200
    assert httpx.get(base + "feeds/all.atom", params={"token": TOKEN}).status_code == 200
    feed = httpx.get(base + "feeds/all.atom", params={"token": TOKEN}).text
    with socket.create_connection(("127.0.0.1", int(port))) as raw:  # a malformed request line
        raw.sendall(f"GET /x y?token={TOKEN} HTTP/1.1 extra\r\n\r\n".encode())
        assert b"400" in raw.recv(4000)
    log = served.stop()
    assert "GET / 401" in log and "GET /feeds/all.atom 200" in log
    assert TOKEN not in log and TOKEN not in feed
