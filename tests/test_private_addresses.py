"""``defaults.private_addresses: refuse``: the address classifier (pure), the configuration, and
fetches against real servers on the loopback interface, refused at connect time.

Every server here is on a loopback address, which the option refuses; where a first request has
to get through (to be redirected, or to load a page), 127.0.0.1 is exempted and the forbidden
destination is another loopback address, 127.0.0.2 or ::1, where a listening socket shows that
nothing ever connected.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import threading
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpcore
import pytest
from click.testing import CliRunner

from monitor.cli import cli
from monitor.config import loads
from monitor.errors import ConfigError, FetchError
from monitor.http import Fetcher, HttpSettings, build_client
from monitor.netguard import AddressPolicy, AddressRefusedError, GuardedBackend, forbidden, literal_address
from tests.support.httpserver import LocalServer

REFUSE = HttpSettings(private_addresses="refuse", host_spacing=0, timeout=5)
EXEMPT_127_0_0_1 = HttpSettings(
    private_addresses="refuse",
    host_spacing=0,
    timeout=5,
    exempt_networks=(ipaddress.ip_network("127.0.0.1/32"),),
)
SETTING = "(defaults.private_addresses: refuse)"


# --- the classifier -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "a loopback address"),
        ("127.255.0.9", "a loopback address"),
        ("::1", "a loopback address"),
        ("::ffff:127.0.0.1", "a loopback address"),
        ("64:ff9b::7f00:1", "a loopback address"),  # NAT64 of 127.0.0.1
        ("2002:7f00:1::", "a loopback address"),  # 6to4 of 127.0.0.1
        ("0.0.0.0", "an unspecified address"),
        ("::", "an unspecified address"),
        ("169.254.169.254", "a link-local address"),  # cloud metadata services
        ("fe80::1", "a link-local address"),
        ("fe80::1%eth0", "a link-local address"),
        ("::ffff:169.254.169.254", "a link-local address"),
        ("224.0.0.1", "a multicast address"),
        ("239.255.255.250", "a multicast address"),
        ("ff02::1", "a multicast address"),
        ("fc00::1", "a unique-local address"),
        ("fd12:3456::1", "a unique-local address"),
        ("fec0::1", "a site-local address"),
        ("10.1.2.3", "a private address"),
        ("172.16.0.1", "a private address"),
        ("172.31.255.255", "a private address"),
        ("192.168.1.1", "a private address"),
        ("::ffff:10.0.0.1", "a private address"),
        ("100.64.0.1", "a shared (carrier-grade NAT) address"),
        ("240.0.0.1", "a reserved address"),
        ("255.255.255.255", "a reserved address"),
        ("::127.0.0.1", "a reserved address"),  # IPv4-compatible, deprecated
        ("192.0.2.10", "a special-purpose address"),  # documentation
        ("198.18.0.1", "a special-purpose address"),  # benchmarking
        ("2001:db8::1", "a special-purpose address"),  # documentation
        ("0.1.2.3", "a special-purpose address"),  # "this network"
    ],
)
def test_forbidden_addresses_are_named_by_kind(address: str, kind: str) -> None:
    assert forbidden(ipaddress.ip_address(address)) == kind


@pytest.mark.parametrize(
    "address",
    [
        "8.8.8.8",
        "151.101.0.81",
        "172.32.0.1",
        "2606:4700::1111",
        "2a00:1450:4007:80c::200e",
        "::ffff:8.8.8.8",
    ],
)
def test_public_addresses_are_allowed(address: str) -> None:
    assert forbidden(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("[::1]", "::1"),
        ("::ffff:127.0.0.1", "::ffff:127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("www.gov.uk", None),
        ("deadbeef", None),
        ("1.example", None),
    ],
)
def test_literal_addresses_in_every_numeric_form(host: str, address: str | None) -> None:
    expected = ipaddress.ip_address(address) if address else None
    assert literal_address(host) == expected


def test_an_exempt_network_is_allowed_and_its_neighbours_are_not() -> None:
    policy = AddressPolicy(exempt=(ipaddress.ip_network("127.0.0.1/32"),))
    assert policy.reason(ipaddress.ip_address("127.0.0.1")) is None
    assert policy.reason(ipaddress.ip_address("127.0.0.2")) == "a loopback address"
    assert policy.reason(ipaddress.ip_address("::1")) == "a loopback address"


def test_a_name_with_one_forbidden_address_among_public_ones_is_refused() -> None:
    async def resolve(host: str, port: int) -> Sequence[str]:
        return ["93.184.215.14", "10.0.0.7"]

    with pytest.raises(AddressRefusedError) as refused:
        asyncio.run(AddressPolicy(resolve=resolve).addresses("www.example", 443))
    assert refused.value.reason == f"refused: www.example resolves to 10.0.0.7, a private address {SETTING}"


# --- the configuration ----------------------------------------------------------------------


def _config(defaults: str, url: str) -> str:
    return f"""
defaults: {{{defaults}}}
sources:
  - {{id: local, kind: html, url: "{url}", options: {{select: p}}}}
"""


def test_the_option_is_off_by_default() -> None:
    config = loads(_config("", "http://127.0.0.1:8080/x"), path=Path("m.yaml"), environ={})
    assert config.defaults.private_addresses == "allow"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://127.0.0.1:8080/x?apikey=abc", f"refused: 127.0.0.1 is a loopback address {SETTING}"),
        ("http://[::1]/x", f"refused: ::1 is a loopback address {SETTING}"),
        ("http://2130706433/x", f"refused: 2130706433 resolves to 127.0.0.1, a loopback address {SETTING}"),
        (
            "https://169.254.169.254/latest/meta-data/",
            f"refused: 169.254.169.254 is a link-local address {SETTING}",
        ),
    ],
)
def test_a_literal_forbidden_address_is_refused_at_load(url: str, message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        loads(_config("private_addresses: refuse", url), path=Path("m.yaml"), environ={})
    assert str(refused.value) == f"m.yaml: sources[0] (id: local): url: {message}"
    assert "apikey" not in str(refused.value)


def test_names_are_left_to_connect_time_and_the_value_is_validated() -> None:
    config = loads(
        _config("private_addresses: refuse", "http://localhost:8080/x"), path=Path("m.yaml"), environ={}
    )
    assert config.defaults.private_addresses == "refuse"
    with pytest.raises(ConfigError) as invalid:
        loads(_config("private_addresses: deny", "http://localhost/x"), path=Path("m.yaml"), environ={})
    assert str(invalid.value) == (
        "m.yaml: defaults: private_addresses: Input should be 'allow' or 'refuse' (got 'deny')"
    )


# --- fetches against real servers -------------------------------------------------------------


@pytest.fixture
def listener() -> Iterator[tuple[str, int, socket.socket]]:
    """A socket listening on 127.0.0.2: any connection made to it waits in its backlog."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.2", 0))
        sock.listen(8)
        yield "127.0.0.2", sock.getsockname()[1], sock


def _nothing_connected(sock: socket.socket) -> bool:
    sock.settimeout(0.3)
    try:
        conn, _ = sock.accept()
    except TimeoutError:
        return True
    conn.close()
    return False


async def _fetch(settings: HttpSettings, url: str) -> str:
    """The fetched body, or the reason of the FetchError."""
    async with Fetcher(build_client(settings), settings) as fetcher:
        try:
            return (await fetcher.fetch(url)).body.decode()
        except FetchError as exc:
            return exc.message


@pytest.mark.parametrize(
    ("host", "message"),
    [
        ("127.0.0.1", f"refused: 127.0.0.1 is a loopback address {SETTING}"),
        ("localhost", f"refused: localhost resolves to 127.0.0.1, a loopback address {SETTING}"),
        ("2130706433", f"refused: 2130706433 resolves to 127.0.0.1, a loopback address {SETTING}"),
        ("017700000001", f"refused: 017700000001 resolves to 127.0.0.1, a loopback address {SETTING}"),
        ("0x7f.1", f"refused: 0x7f.1 resolves to 127.0.0.1, a loopback address {SETTING}"),
        ("127.1", f"refused: 127.1 resolves to 127.0.0.1, a loopback address {SETTING}"),
        ("[::1]", f"refused: ::1 is a loopback address {SETTING}"),
        ("[::ffff:127.0.0.1]", f"refused: ::ffff:127.0.0.1 is a loopback address {SETTING}"),
    ],
)
def test_a_loopback_server_is_refused_however_it_is_written(
    http_server: LocalServer, host: str, message: str
) -> None:
    http_server.route("/x", "secret admin page")
    port = http_server.base_url.rsplit(":", 1)[1]
    assert asyncio.run(_fetch(REFUSE, f"http://{host}:{port}/x")) == message
    assert http_server.requests == []


def test_a_dotted_octal_address_is_refused_as_an_invalid_url(http_server: LocalServer) -> None:
    port = http_server.base_url.rsplit(":", 1)[1]
    reason = asyncio.run(_fetch(REFUSE, f"http://0177.0.0.1:{port}/x"))
    assert reason.startswith("invalid URL: ")
    assert http_server.requests == []


def test_the_same_server_answers_when_the_option_is_off(http_server: LocalServer) -> None:
    http_server.route("/x", "the page")
    settings = HttpSettings(host_spacing=0, timeout=5)
    assert asyncio.run(_fetch(settings, http_server.url("/x"))) == "the page"
    assert asyncio.run(_fetch(EXEMPT_127_0_0_1, http_server.url("/x"))) == "the page"


@pytest.mark.parametrize(
    ("host", "message"),
    [
        ("127.0.0.2", f"refused: 127.0.0.2 is a loopback address {SETTING}"),
        ("2130706434", f"refused: 2130706434 resolves to 127.0.0.2, a loopback address {SETTING}"),
    ],
)
def test_a_redirect_to_a_forbidden_address_is_refused(
    http_server: LocalServer, listener: tuple[str, int, socket.socket], host: str, message: str
) -> None:
    _, port, sock = listener
    http_server.route("/moved", "", status=302, headers={"Location": f"http://{host}:{port}/admin"})
    assert asyncio.run(_fetch(EXEMPT_127_0_0_1, http_server.url("/moved"))) == message
    assert http_server.hits("/moved") == 1
    assert _nothing_connected(sock)


def test_a_redirect_to_ipv6_loopback_is_refused(http_server: LocalServer) -> None:
    http_server.route("/moved", "", status=301, headers={"Location": "http://[::1]:9/"})
    reason = asyncio.run(_fetch(EXEMPT_127_0_0_1, http_server.url("/moved")))
    assert reason == f"refused: ::1 is a loopback address {SETTING}"


def test_the_guard_connects_to_the_address_it_checked(http_server: LocalServer) -> None:
    """A name is resolved once per connection, by the guard; the connection goes to that very
    address (the system resolver knows nothing of ``www.example``), and a later answer that
    changes to a forbidden address (DNS rebinding) is refused on the next connection."""
    http_server.route("/x", "served")
    port = int(http_server.base_url.rsplit(":", 1)[1])
    answers = iter([["127.0.0.1"], ["127.0.0.2"]])
    asked: list[str] = []

    async def resolve(host: str, _port: int) -> Sequence[str]:
        asked.append(host)
        return next(answers)

    policy = AddressPolicy(exempt=(ipaddress.ip_network("127.0.0.1/32"),), resolve=resolve)

    async def fresh_connections() -> tuple[int, str]:
        async with httpcore.AsyncConnectionPool(network_backend=GuardedBackend(policy)) as pool:
            first = await pool.request("GET", f"http://www.example:{port}/x", headers={"Connection": "close"})
        async with httpcore.AsyncConnectionPool(network_backend=GuardedBackend(policy)) as pool:
            try:
                await pool.request("GET", f"http://www.example:{port}/x")
            except AddressRefusedError as exc:
                return first.status, exc.reason
        return first.status, "not refused"

    status, reason = asyncio.run(fresh_connections())
    assert status == 200
    assert http_server.requests[0].headers["Host"] == f"www.example:{port}"
    assert reason == f"refused: www.example resolves to 127.0.0.2, a loopback address {SETTING}"
    assert asked == ["www.example", "www.example"]


def test_through_a_proxy_forbidden_hosts_are_refused_before_the_proxy_is_asked(
    http_server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a proxy in the environment, httpx's own pool talks to the proxy; each request is
    checked beforehand, redirects included."""
    proxy = LocalServer()  # stands for the proxy: any request reaching it is recorded
    with proxy:
        for name in ("HTTP_PROXY", "http_proxy"):
            monkeypatch.setenv(name, proxy.base_url)
        for name in ("NO_PROXY", "no_proxy"):
            monkeypatch.delenv(name, raising=False)
        port = http_server.base_url.rsplit(":", 1)[1]
        assert asyncio.run(_fetch(REFUSE, f"http://localhost:{port}/x")) == (
            f"refused: localhost resolves to 127.0.0.1, a loopback address {SETTING}"
        )
        assert (
            asyncio.run(_fetch(REFUSE, f"http://[::1]:{port}/x"))
            == f"refused: ::1 is a loopback address {SETTING}"
        )
        assert proxy.requests == []


# --- the browser fetcher ----------------------------------------------------------------------

BROWSER_EXEMPT = HttpSettings(
    private_addresses="refuse", timeout=10, exempt_networks=(ipaddress.ip_network("127.0.0.1/32"),)
)


@pytest.fixture
def chromium() -> str:
    from tests.support.chromium import required

    return required()


async def _browse(settings: HttpSettings, url: str, **kwargs: object) -> str:
    from monitor.browser import BrowserFetcher

    async with BrowserFetcher(settings) as browser:
        try:
            fetched = await browser.fetch(url, **kwargs)  # type: ignore[arg-type]
        except FetchError as exc:
            return exc.message
        return f"{fetched.status} {fetched.body.decode()}"


def test_the_browser_refuses_a_forbidden_page_before_loading_it(
    chromium: str, http_server: LocalServer
) -> None:
    http_server.route("/x", "<p>admin</p>")
    port = http_server.base_url.rsplit(":", 1)[1]
    reason = asyncio.run(_browse(REFUSE, f"http://localhost:{port}/x"))
    assert reason == f"refused: localhost resolves to 127.0.0.1, a loopback address {SETTING}"
    assert http_server.requests == []


def test_the_browser_aborts_requests_to_forbidden_addresses_and_keeps_the_page(
    chromium: str, http_server: LocalServer, listener: tuple[str, int, socket.socket]
) -> None:
    _, port, sock = listener
    page = (
        "<html><body><p>Advice</p>"
        f"<img src='http://127.0.0.2:{port}/pixel.png'>"
        f"<script>fetch('http://2130706434:{port}/api').catch(() => null);"
        f"new WebSocket('ws://127.0.0.2:{port}/socket');</script>"
        "</body></html>"
    )
    http_server.route("/page", page, etag='"v1"')
    result = asyncio.run(_browse(BROWSER_EXEMPT, http_server.url("/page")))
    assert result.startswith("200 ") and "<p>Advice</p>" in result
    assert _nothing_connected(sock)


@pytest.fixture
def internal() -> Iterator[tuple[int, list[str]]]:
    """An HTTP server on 127.0.0.2 standing for an internal service: its port, and the paths asked."""
    asked: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            body = b"<html><body><p>internal secrets</p></body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.2", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield server.server_address[1], asked
    server.shutdown()
    server.server_close()
    thread.join()


def test_the_browser_refuses_a_page_redirected_to_a_forbidden_address(
    chromium: str, http_server: LocalServer, internal: tuple[int, list[str]]
) -> None:
    """Chromium follows redirects without asking the routes: the request reaches the internal
    server, but its answer is refused (the address it came from is checked) and nothing of it
    is returned."""
    port, asked = internal
    http_server.route("/moved", "", status=302, headers={"Location": f"http://127.0.0.2:{port}/admin"})
    reason = asyncio.run(_browse(BROWSER_EXEMPT, http_server.url("/moved")))
    assert reason == f"refused: 127.0.0.2 is a loopback address {SETTING}"
    assert asked == ["/admin"]


def test_the_browser_still_sends_validators_through_the_guard(
    chromium: str, http_server: LocalServer
) -> None:
    from monitor.models import Validators

    http_server.route("/page", "<p>Advice</p>", etag='"v1"')
    result = asyncio.run(
        _browse(BROWSER_EXEMPT, http_server.url("/page"), validators=Validators('"v1"', None))
    )
    assert result == "304 "
    assert http_server.requests[0].headers.get("If-None-Match") == '"v1"'


def test_monitor_check_records_the_refusal(tmp_path: Path, http_server: LocalServer) -> None:
    http_server.route("/mali", "<html><div class='advice'><p>x</p></div></html>")
    port = http_server.base_url.rsplit(":", 1)[1]
    config = tmp_path / "monitor.yaml"
    config.write_text(
        f"database: sqlite:///{tmp_path / 'm.db'}\n"
        "defaults: {private_addresses: refuse, timeout: 2s}\n"
        "sources:\n"
        f'  - {{id: local, kind: html, url: "http://localhost:{port}/mali", options: {{select: .advice}}}}\n',
        encoding="utf-8",
    )
    result = CliRunner().invoke(cli, ["--config", str(config), "check"])
    assert result.exit_code == 1
    assert "refused: localhost resolves to 127.0.0.1, a loopback address" in result.output
    assert http_server.requests == []
