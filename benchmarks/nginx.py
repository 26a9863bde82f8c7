"""A private nginx serving a folder on 127.0.0.1, for benchmarks against a real static web server.

::

    ensure_nginx()
    with Nginx(fixtures.root, log=True) as server:
        httpx.get(server.url + "/advice/country-0001.html")
        print(server.statuses())  # Counter({200: 1})

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
from typing import Literal, Self

NGINX = Path("/usr/sbin/nginx")
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
) -> str:
    """The nginx configuration: static files from ``root``, everything else under ``prefix``.

    ``ready_path`` answers 204 and is not logged: it tells this server from any other on the port.
    """
    access = f"access_log {_quote(prefix / 'access.log')} status;" if log else "access_log off;"
    temp_paths = "\n".join(
        f"    {kind}_temp_path {_quote(prefix / 'temp' / kind)};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""# Written by benchmarks/nginx.py for one run; deleted when the server stops.
{_user_directive()}worker_processes {workers};
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

    log_format status '$status';
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

        location /api/content/foreign-travel-advice/ {{
            default_type application/json;
            try_files $uri $uri.json =404;
        }}

        location / {{
            try_files $uri =404;
        }}
    }}
}}
"""


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

    With ``log=True`` every request's status is written to an access log, and ``statuses()`` counts
    them (the readiness probe is not logged). Files are not cached by nginx, so a file replaced on
    disk is served (with a new ETag) from the next request on. ``workers`` is nginx's
    ``worker_processes``; ``binary`` defaults to ``ensure_nginx()``, which may install nginx.
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
    ) -> None:
        if conditional not in ("exact", "before"):
            raise ValueError(f"conditional must be 'exact' or 'before', not {conditional!r}")
        self.root = Path(root).resolve()
        self.conditional: Conditional = conditional
        self.log = log
        self.workers = workers
        self._requested_port = port
        self._binary = binary
        self._port: int | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._final_statuses: collections.Counter[int] | None = None
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
        self._tmp = tempfile.TemporaryDirectory(prefix="bench-nginx-")
        self._final_statuses = None
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
            self._final_statuses = self._read_statuses()
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
        if not self.log:
            raise RuntimeError("statuses() needs Nginx(..., log=True)")
        if self._final_statuses is not None:
            return collections.Counter(self._final_statuses)
        return self._read_statuses()

    @property
    def _prefix(self) -> Path:
        if self._tmp is None:
            raise RuntimeError("nginx is not running")
        return Path(self._tmp.name)

    def _read_statuses(self) -> collections.Counter[int]:
        path = self._prefix / "access.log"
        if not path.exists():
            return collections.Counter()
        lines = path.read_text(encoding="ascii").split()
        return collections.Counter(int(line) for line in lines)

    def _errors(self) -> str:
        texts = []
        for name in ("stderr.log", "error.log"):
            path = self._prefix / name
            if path.exists():
                texts.append(path.read_text(encoding="utf-8", errors="replace").strip())
        return "\n".join(text for text in texts if text)[-4000:]

    def _bind_failed(self) -> bool:
        return "Address already in use" in self._errors()


def _probe(port: int, path: str) -> bool:
    """Whether an nginx answers 204 to ``path`` on ``port``."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1.0)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
    except OSError:
        return False
    finally:
        connection.close()
    return response.status == 204 and (response.getheader("Server") or "").startswith("nginx")


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
