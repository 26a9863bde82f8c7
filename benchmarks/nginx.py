"""A private nginx serving a folder on 127.0.0.1, for benchmarks against a real static web server.

::

    ensure_nginx()
    with Nginx(fixtures.root, log=True) as server:
        httpx.get(server.url + "/advice/country-0001.html")
        print(server.statuses())  # Counter({200: 1})

    ensure_echo_module()
    with Nginx(fixtures.root, log=True, delay=0.05) as slow:  # every answer 50 ms late
        ...

Debian's nginx binary runs as a child process of the current user, with a configuration file of
its own written into a temporary folder, which also holds the pid file, the logs and the temporary
paths. It listens on 127.0.0.1 only and does not depend on, or interfere with, a system-wide nginx
service.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import grp
import http.client
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Literal, NamedTuple, Self

NGINX = Path("/usr/sbin/nginx")
# Debian's libnginx-mod-http-echo (echo_sleep, echo_exec) installs its module here.
ECHO_MODULE_PACKAGE = "libnginx-mod-http-echo"
ECHO_MODULE_NAME = "ngx_http_echo_module.so"
MODULE_DIRS = (Path("/usr/lib/nginx/modules"), Path("/usr/share/nginx/modules"))
READY_PREFIX = "/.harness-ready-"
START_DEADLINE = 10.0
STOP_GRACE = 5.0
BIND_ATTEMPTS = 5

Conditional = Literal["exact", "before"]


def find_nginx() -> Path | None:
    """The nginx binary: Debian's ``/usr/sbin/nginx``, else one on PATH; None when there is none."""
    if NGINX.is_file() and os.access(NGINX, os.X_OK):
        return NGINX
    found = shutil.which("nginx")
    return Path(found) if found else None


def ensure_nginx() -> Path:
    """The nginx binary, installed with apt-get first when it is missing and we are root.

    ``apt-get update`` runs at most once per process. Without root (or without apt-get) a missing
    nginx raises RuntimeError saying how to install it.
    """
    found = find_nginx()
    if found:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise RuntimeError(
            "nginx is not installed and cannot be installed from here (needs root and apt-get); "
            "install it with: sudo apt-get install -y nginx"
        )
    _apt_update()
    _apt(["apt-get", "install", "-y", "-q", "nginx"])
    found = find_nginx()
    if not found:
        raise RuntimeError("apt-get installed nginx, but no nginx binary was found afterwards")
    return found


def find_echo_module() -> Path | None:
    """The echo module's shared object (``ngx_http_echo_module.so``), None when it is not installed."""
    for folder in MODULE_DIRS:
        candidate = folder / ECHO_MODULE_NAME
        if candidate.is_file():
            return candidate
    return None


def ensure_echo_module() -> Path:
    """The echo module (for ``Nginx(delay=...)``), installed with apt-get with nginx when missing.

    Like :func:`ensure_nginx`: without root (or apt-get) a missing module raises RuntimeError
    saying how to install it.
    """
    ensure_nginx()
    found = find_echo_module()
    if found:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise RuntimeError(
            "nginx's echo module is not installed and cannot be installed from here (needs root and "
            f"apt-get); install it with: sudo apt-get install -y {ECHO_MODULE_PACKAGE}"
        )
    _apt_update()
    _apt(["apt-get", "install", "-y", "-q", ECHO_MODULE_PACKAGE])
    found = find_echo_module()
    if not found:
        raise RuntimeError(
            f"apt-get installed {ECHO_MODULE_PACKAGE}, but no {ECHO_MODULE_NAME} was found in "
            + " or ".join(str(folder) for folder in MODULE_DIRS)
        )
    return found


@functools.cache
def _apt_update() -> None:
    """``apt-get update``, once per process (a failed run is not remembered, so it is retried)."""
    _apt(["apt-get", "update", "-q"])


def _apt(command: list[str]) -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = (result.stderr or result.stdout)[-2000:]
        raise RuntimeError(f"{' '.join(command)} failed with status {result.returncode}:\n{tail}")


def pick_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (another process may take it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _quote(value: str | Path) -> str:
    """A string as an nginx configuration literal."""
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def _user_directive() -> str:
    """Workers keep the current identity; nginx only reads ``user`` when started as root."""
    if os.geteuid() != 0:
        return ""
    user = pwd.getpwuid(os.geteuid()).pw_name
    group = grp.getgrgid(os.getegid()).gr_name
    return f"user {user} {group};\n"


def render_config(
    root: Path,
    prefix: Path,
    *,
    port: int,
    conditional: Conditional,
    log: bool,
    workers: int,
    ready_path: str = READY_PREFIX + "0",
    delay: float = 0.0,
    echo_module: Path | None = None,
) -> str:
    """The nginx configuration: static files from ``root``, everything else under ``prefix``.

    ``ready_path`` answers 204 at once and is not logged: it tells this server from any other on
    the port. With ``delay`` > 0 the echo module (``echo_module``, its ``.so``) is loaded and
    every other request waits ``delay`` seconds (``echo_sleep``, a timer: the worker serves other
    requests meanwhile), then is served by a named location with the same static handling.
    """
    if delay < 0:
        raise ValueError("delay must not be negative")
    if delay > 0 and echo_module is None:
        raise ValueError("a delay needs the echo module (ensure_echo_module())")
    load = f"load_module {_quote(echo_module)};\n" if delay > 0 and echo_module is not None else ""
    access = f"access_log {_quote(prefix / 'access.log')} entry;" if log else "access_log off;"
    temp_paths = "\n".join(
        f"    {kind}_temp_path {_quote(prefix / 'temp' / kind)};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    api = "/api/content/foreign-travel-advice/"
    api_body = "default_type application/json;\n            try_files $uri $uri.json =404;"
    static_body = "try_files $uri =404;"
    if delay > 0:
        sleep = f"echo_sleep {delay:.3f};"
        locations = f"""        location {api} {{
            {sleep}
            echo_exec @api;
        }}

        location @api {{
            {api_body}
        }}

        location / {{
            {sleep}
            echo_exec @static;
        }}

        location @static {{
            {static_body}
        }}"""
    else:
        locations = f"""        location {api} {{
            {api_body}
        }}

        location / {{
            {static_body}
        }}"""
    return f"""# Written by benchmarks/nginx.py for one run; deleted when the server stops.
{load}{_user_directive()}worker_processes {workers};
pid {_quote(prefix / "nginx.pid")};
error_log {_quote(prefix / "error.log")} warn;

events {{
    worker_connections 1024;
}}

http {{
    types {{
        text/html html;
        application/json json;
        application/rss+xml xml;
        text/plain txt;
    }}
    default_type application/octet-stream;
    charset utf-8;
    charset_types text/plain;  # and text/html, always

    # One line per request: its status, its time in seconds (ms resolution), its connection.
    log_format entry '$status $request_time $connection';
    {access}
{temp_paths}

    sendfile on;
    tcp_nopush on;
    keepalive_timeout 65s;
    keepalive_requests 1000000;
    etag on;
    if_modified_since {conditional};
    server_tokens on;

    server {{
        listen 127.0.0.1:{port};
        server_name localhost;
        root {_quote(root)};

        location = {ready_path} {{
            access_log off;
            return 204;
        }}

{locations}
    }}
}}
"""


class Request(NamedTuple):
    """One request as nginx logged it: its status, its time (seconds), its connection's serial."""

    status: int
    seconds: float
    connection: int


class Nginx:
    """Context manager: entering starts nginx serving ``root`` and waits until it answers; leaving
    stops it (SIGQUIT, then SIGKILL after 5 s) and deletes its temporary folder.

    ``port=0`` picks a free port. Responses carry an ETag (from the file's mtime and size) and a
    Last-Modified header. ``conditional`` sets nginx's ``if_modified_since``:

    * ``"exact"`` (nginx's default) answers 304 only when If-Modified-Since equals the file's
      modification time to the second;
    * ``"before"`` answers 304 whenever the file is not newer than If-Modified-Since. Some clients
      send their own last-check time rather than echoing Last-Modified; that time never equals the
      file's exactly, so under ``"exact"`` they would always get the whole body again.

    nginx answers 304 only when every validator a request carries holds: a matching If-None-Match
    sent with an If-Modified-Since older than the file still gets 200 (HTTP says to ignore
    If-Modified-Since when If-None-Match is present).

    With ``log=True`` every request is written to an access log: ``statuses()`` counts them by
    status, ``requests()`` lists each one's status, time and connection (the readiness probe is not
    logged). Files are not cached by nginx, so a file replaced on disk is served (with a new ETag)
    from the next request on. ``workers`` is nginx's ``worker_processes``; ``binary`` defaults to
    ``ensure_nginx()``, which may install nginx.

    ``delay`` (seconds) makes every answer that late, as a distant server's would be: the request
    waits on a timer in nginx (the echo module's ``echo_sleep``, no process of its own and no CPU
    while waiting), then is served as without a delay (the same validators, 304s and keep-alive).
    It needs Debian's ``libnginx-mod-http-echo``, which ``ensure_echo_module()`` installs.
    """

    def __init__(
        self,
        root: Path,
        *,
        port: int = 0,
        conditional: Conditional = "before",
        log: bool = False,
        workers: int = 1,
        binary: Path | None = None,
        delay: float = 0.0,
    ) -> None:
        if conditional not in ("exact", "before"):
            raise ValueError(f"conditional must be 'exact' or 'before', not {conditional!r}")
        if delay < 0:
            raise ValueError(f"delay must not be negative, not {delay!r}")
        self.root = Path(root).resolve()
        self.conditional: Conditional = conditional
        self.log = log
        self.workers = workers
        self.delay = delay
        self._echo_module: Path | None = None
        self._requested_port = port
        self._binary = binary
        self._port: int | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._final_log: list[Request] | None = None
        self._ready_path = READY_PREFIX + secrets.token_hex(8)

    # --- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Start nginx and return once it answers HTTP; RuntimeError if it does not within 10 s."""
        if self._process is not None:
            raise RuntimeError("nginx is already running")
        binary = self._binary or ensure_nginx()
        if self.delay > 0:
            self._echo_module = ensure_echo_module()
        self._tmp = tempfile.TemporaryDirectory(prefix="bench-nginx-")
        self._final_log = None
        attempts = 1 if self._requested_port else BIND_ATTEMPTS
        try:
            for attempt in range(1, attempts + 1):
                port = self._requested_port or pick_port()
                if self._launch(binary, port):
                    return
                if attempt == attempts or not self._bind_failed():
                    raise RuntimeError(f"nginx did not start on 127.0.0.1:{port}:\n{self._errors()}")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop nginx gracefully (SIGKILL to its process group after 5 s) and clean up."""
        process, self._process = self._process, None
        if process is not None:
            _terminate(process)
        if self.log and self._tmp is not None:
            self._final_log = self._read_log()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
        self._port = None

    def _launch(self, binary: Path, port: int) -> bool:
        """Start nginx on ``port``; True once it answers, False if it exited (e.g. port taken)."""
        prefix = self._prefix
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (prefix / "temp" / kind).mkdir(parents=True, exist_ok=True)
        (prefix / "error.log").write_bytes(b"")
        (prefix / "nginx.pid").unlink(missing_ok=True)
        conf = prefix / "nginx.conf"
        conf.write_text(
            render_config(
                self.root,
                prefix,
                port=port,
                conditional=self.conditional,
                log=self.log,
                workers=self.workers,
                ready_path=self._ready_path,
                delay=self.delay,
                echo_module=self._echo_module,
            ),
            encoding="utf-8",
        )
        command = [str(binary), "-c", str(conf), "-p", f"{prefix}/", "-e", str(prefix / "error.log")]
        with (prefix / "stderr.log").open("wb") as stderr:
            self._process = subprocess.Popen(
                [*command, "-g", "daemon off;"],
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=stderr,
                start_new_session=True,
            )
        self._port = port
        if self._wait_ready(self._process, port):
            return True
        if self._process.poll() is None:
            _terminate(self._process)
            self._process = None
            raise RuntimeError(f"nginx on 127.0.0.1:{port} did not answer within {START_DEADLINE:.0f} s")
        self._process = None
        return False

    def _wait_ready(self, process: subprocess.Popen[bytes], port: int) -> bool:
        """Poll until nginx answers its own readiness path; False as soon as it exits.

        nginx writes its pid file only once its socket is bound, so nothing is sent to the port
        before then: when the port is taken, nginx retries bind() for about 2.5 s and exits, and
        the server holding the port never sees our probes.
        """
        deadline = time.monotonic() + START_DEADLINE
        pid_file = self._prefix / "nginx.pid"
        while time.monotonic() < deadline:
            if process.poll() is not None:
                return False
            if pid_file.exists() and _probe(port, self._ready_path):
                return process.poll() is None
            time.sleep(0.02)
        return False

    # --- inspection --------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The port nginx listens on; only while it runs."""
        if self._port is None:
            raise RuntimeError("nginx is not running")
        return self._port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``, without a trailing slash."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        """The nginx master process id."""
        if self._process is None:
            raise RuntimeError("nginx is not running")
        return self._process.pid

    def statuses(self) -> collections.Counter[int]:
        """How many requests got each HTTP status so far (or in the whole run, once stopped)."""
        return collections.Counter(request.status for request in self.requests())

    def requests(self) -> list[Request]:
        """Every request logged so far (or in the whole run, once stopped), in the log's order."""
        if not self.log:
            raise RuntimeError("statuses() and requests() need Nginx(..., log=True)")
        if self._final_log is not None:
            return list(self._final_log)
        return self._read_log()

    @property
    def _prefix(self) -> Path:
        if self._tmp is None:
            raise RuntimeError("nginx is not running")
        return Path(self._tmp.name)

    def _read_log(self) -> list[Request]:
        """The access log's complete lines (nginx may be writing the last one)."""
        path = self._prefix / "access.log"
        if not path.exists():
            return []
        entries = []
        for line in path.read_text(encoding="ascii").splitlines(keepends=True):
            fields = line.split()
            if not line.endswith("\n") or len(fields) != 3:
                continue
            entries.append(Request(int(fields[0]), float(fields[1]), int(fields[2])))
        return entries

    def _errors(self) -> str:
        texts = []
        for name in ("stderr.log", "error.log"):
            path = self._prefix / name
            if path.exists():
                texts.append(path.read_text(encoding="utf-8", errors="replace").strip())
        return "\n".join(text for text in texts if text)[-4000:]

    def _bind_failed(self) -> bool:
        return "Address already in use" in self._errors()


def local_get(port: int, path: str, timeout: float) -> http.client.HTTPResponse | None:
    """GET ``path`` from 127.0.0.1:``port`` (no proxy), its body read; None when nothing answers."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
    except OSError:
        return None
    finally:
        connection.close()
    return response


def _probe(port: int, path: str) -> bool:
    """Whether an nginx answers 204 to ``path`` on ``port``."""
    response = local_get(port, path, 1.0)
    return (
        response is not None
        and response.status == 204
        and (response.getheader("Server") or "").startswith("nginx")
    )


def _terminate(process: subprocess.Popen[bytes]) -> None:
    """SIGQUIT (graceful shutdown), then SIGKILL to the process group after the grace period."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGQUIT)
        try:
            process.wait(timeout=STOP_GRACE)
        except subprocess.TimeoutExpired:
            # The master and its workers share a process group of their own (start_new_session).
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
