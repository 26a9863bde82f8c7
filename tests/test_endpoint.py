"""The /healthz and /metrics endpoint on a real socket: answers, HEAD, unknown paths, binding
errors, concurrent clients and a quiet stderr."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator

import httpx
import pytest
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.parser import text_string_to_metric_families

from monitor.errors import ConfigError
from monitor.service.endpoint import Endpoint


@pytest.fixture
def registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    Counter("monitor_probe", "A counter for the tests.", registry=registry).inc(3)
    return registry


@pytest.fixture
def serve(registry: CollectorRegistry) -> Iterator[Callable[..., Endpoint]]:
    """Start endpoints on 127.0.0.1 (any free port unless told); all are stopped afterwards."""
    started: list[Endpoint] = []

    def start(healthy: Callable[[], str | None] = lambda: None, address: str = "127.0.0.1:0") -> Endpoint:
        endpoint = Endpoint(address, registry, healthy)
        endpoint.start()
        started.append(endpoint)
        return endpoint

    yield start
    for endpoint in started:
        endpoint.stop()


def test_healthz_says_ok_while_healthy_and_the_reason_when_not(serve: Callable[..., Endpoint]) -> None:
    problem: list[str | None] = [None]
    endpoint = serve(lambda: problem[0])

    healthy = httpx.get(f"{endpoint.url}/healthz")
    assert (healthy.status_code, healthy.text) == (200, "ok\n")
    assert healthy.headers["content-type"].startswith("text/plain")

    problem[0] = "the database does not answer: disk I/O error"
    unhealthy = httpx.get(f"{endpoint.url}/healthz")
    assert (unhealthy.status_code, unhealthy.text) == (503, "the database does not answer: disk I/O error\n")


def test_a_health_check_that_raises_is_unhealthy_not_an_error_page(serve: Callable[..., Endpoint]) -> None:
    def broken() -> str | None:
        raise RuntimeError("probe crashed")

    response = httpx.get(f"{serve(broken).url}/healthz")
    assert response.status_code == 503
    assert response.text == "the health check failed: RuntimeError: probe crashed\n"


def test_metrics_serves_the_registry_in_prometheus_format(serve: Callable[..., Endpoint]) -> None:
    response = httpx.get(f"{serve().url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    assert families["monitor_probe"].type == "counter"
    assert [s.value for s in families["monitor_probe"].samples if s.name == "monitor_probe_total"] == [3]


def test_openmetrics_is_served_when_asked_for(serve: Callable[..., Endpoint]) -> None:
    response = httpx.get(
        f"{serve().url}/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
    )
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.endswith("# EOF\n")


def test_head_answers_like_get_without_a_body(serve: Callable[..., Endpoint]) -> None:
    endpoint = serve()
    for path in ("/metrics", "/healthz"):
        plain = {"Accept-Encoding": "identity"}
        get, head = (
            httpx.get(endpoint.url + path, headers=plain),
            httpx.head(endpoint.url + path, headers=plain),
        )
        assert (head.status_code, head.content) == (200, b"")
        assert head.headers["content-type"] == get.headers["content-type"]
        assert head.headers["content-length"] == str(len(get.content))


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/"),
        ("GET", "/metrics/extra"),
        ("GET", "/favicon.ico"),
        ("POST", "/metrics"),
        ("DELETE", "/healthz"),
    ],
)
def test_anything_else_is_not_found(serve: Callable[..., Endpoint], method: str, path: str) -> None:
    response = httpx.request(method, serve().url + path)
    assert response.status_code == 404


def test_url_names_the_port_actually_bound(serve: Callable[..., Endpoint]) -> None:
    endpoint = serve()
    host, _, port = endpoint.url.removeprefix("http://").rpartition(":")
    assert (host, int(port) > 0) == ("127.0.0.1", True)
    assert httpx.get(f"http://127.0.0.1:{port}/healthz").text == "ok\n"


def test_an_ipv6_literal_is_served(serve: Callable[..., Endpoint]) -> None:
    endpoint = serve(address="[::1]:0")
    assert endpoint.url.startswith("http://[::1]:")
    assert httpx.get(f"{endpoint.url}/healthz").text == "ok\n"


def test_an_address_in_use_is_a_clear_configuration_error(registry: CollectorRegistry) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        endpoint = Endpoint(f"127.0.0.1:{port}", registry, lambda: None)
        with pytest.raises(ConfigError) as raised:
            endpoint.start()
    assert str(raised.value) == f"cannot serve /metrics on 127.0.0.1:{port}: address already in use"
    assert raised.value.exit_code == 2


@pytest.mark.parametrize("address", ["8765", "localhost", ":8765", "127.0.0.1:http", "127.0.0.1:70000"])
def test_an_address_that_is_not_host_port_is_refused(registry: CollectorRegistry, address: str) -> None:
    with pytest.raises(ConfigError, match=r"expected HOST:PORT such as 127\.0\.0\.1:8765"):
        Endpoint(address, registry, lambda: None)


def test_stop_releases_the_address(registry: CollectorRegistry) -> None:
    first = Endpoint("127.0.0.1:0", registry, lambda: None)
    with pytest.raises(RuntimeError, match="not started"):
        _ = first.url
    first.start()
    address = first.url.removeprefix("http://")
    first.stop()
    first.stop()  # stopping twice is harmless

    again = Endpoint(address, registry, lambda: None)
    again.start()
    try:
        assert httpx.get(f"{again.url}/healthz").text == "ok\n"
    finally:
        again.stop()


def test_a_client_that_never_finishes_its_request_does_not_block_others(
    serve: Callable[..., Endpoint],
) -> None:
    endpoint = serve()
    host, _, port = endpoint.url.removeprefix("http://").rpartition(":")
    with socket.create_connection((host, int(port))) as stalled:
        stalled.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # headers never end
        response = httpx.get(f"{endpoint.url}/metrics", timeout=3)
    assert response.status_code == 200


def test_requests_leave_stderr_quiet(
    serve: Callable[..., Endpoint], capfd: pytest.CaptureFixture[str]
) -> None:
    endpoint = serve()
    for path in ("/healthz", "/metrics", "/nowhere"):
        httpx.get(endpoint.url + path)
    httpx.post(f"{endpoint.url}/metrics")
    with socket.create_connection(("127.0.0.1", int(endpoint.url.rpartition(":")[2]))) as rude:
        rude.sendall(b"NONSENSE\r\n\r\n")
        rude.recv(1024)
    assert capfd.readouterr().err == ""
