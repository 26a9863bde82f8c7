"""Refusing private, loopback and other non-public addresses (``defaults.private_addresses: refuse``).

A deployment whose configurations come from people it does not trust must not let a source URL
reach the machine itself or its network: ``http://127.0.0.1:5432/``, a cloud metadata address
such as ``http://169.254.169.254/``, a public-looking name that resolves to ``10.0.0.7``, a
redirect to ``http://[::1]/``. The check belongs where it cannot be bypassed, on the address
actually connected to: :class:`GuardedBackend` is an httpcore network backend that resolves the
host itself, refuses the connection when any of its addresses is forbidden, and connects to an
address it has checked (so a DNS answer that changes between a check and the connect changes
nothing). TLS still names the host: httpcore passes ``server_hostname`` to ``start_tls``
separately from the host connected to.

:func:`forbidden` is the pure classifier; :class:`AddressPolicy` adds the resolution and the
networks exempted from the refusal.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import string
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import httpcore

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]

SETTING = "defaults.private_addresses: refuse"

_RFC1918 = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
_SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT (RFC 6598)
_UNIQUE_LOCAL = ipaddress.ip_network("fc00::/7")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # the well-known prefix: the last 32 bits are IPv4
_NUMERIC_V4 = frozenset(string.hexdigits + "xX.")


def forbidden(address: IPAddress) -> str | None:
    """What kind of non-public address ``address`` is ("a loopback address", ...), or None for
    a public one.

    Refused: unspecified, loopback, link-local, multicast, private (RFC 1918), unique-local
    (``fc00::/7``), site-local, shared (``100.64.0.0/10``), reserved, and every other range IANA
    does not mark globally reachable (documentation, benchmarking, ...). An IPv6 address that
    carries an IPv4 one (``::ffff:127.0.0.1``, NAT64 ``64:ff9b::/96``, 6to4 ``2002::/16``) is
    judged by the IPv4 address it carries.
    """
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        return forbidden(embedded)
    for test, kind in _KINDS:
        if test(address):
            return kind
    return None


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour


_KINDS: tuple[tuple[Callable[[Any], bool], str], ...] = (
    (lambda a: a.is_unspecified, "an unspecified address"),
    (lambda a: a.is_loopback, "a loopback address"),
    (lambda a: a.is_link_local, "a link-local address"),
    (lambda a: a.is_multicast, "a multicast address"),
    (lambda a: a in _UNIQUE_LOCAL, "a unique-local address"),
    (lambda a: isinstance(a, ipaddress.IPv6Address) and a.is_site_local, "a site-local address"),
    (lambda a: any(a in network for network in _RFC1918), "a private address"),
    (lambda a: a in _SHARED, "a shared (carrier-grade NAT) address"),
    (lambda a: a.is_reserved, "a reserved address"),
    (lambda a: not a.is_global, "a special-purpose address"),
)


def literal_address(host: str) -> IPAddress | None:
    """The address ``host`` (a URL's host) spells literally, or None for a name.

    Beyond the usual forms (``127.0.0.1``, ``[::1]``), the numeric forms resolvers also accept
    count: ``2130706433``, ``0177.0.0.1``, ``0x7f.1``, ``127.1``.
    """
    bare = host.strip().removeprefix("[").removesuffix("]").partition("%")[0]
    try:
        return ipaddress.ip_address(bare)
    except ValueError:
        pass
    if bare and set(bare) <= _NUMERIC_V4 and bare[0].isdigit():
        try:
            return ipaddress.IPv4Address(socket.inet_aton(bare))
        except OSError:
            return None
    return None


class AddressRefusedError(httpcore.ConnectError):
    """A connection refused because the host is, or resolves to, a forbidden address.
    ``reason`` is the whole human message, e.g. ``refused: www.example resolves to 127.0.0.1,
    a loopback address (defaults.private_addresses: refuse)``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def refusal(host: str, address: IPAddress, kind: str) -> str:
    """The message for ``host`` refused because of ``address`` (of ``kind``)."""
    bare = host.strip().removeprefix("[").removesuffix("]")
    try:
        written = ipaddress.ip_address(bare.partition("%")[0])
    except ValueError:
        written = None  # a name, or a numeric form only resolvers read (2130706433)
    if written == address:
        return f"refused: {bare} is {kind} ({SETTING})"
    return f"refused: {bare} resolves to {address}, {kind} ({SETTING})"


async def system_resolve(host: str, port: int) -> Sequence[str]:
    """The addresses of ``host`` from the system resolver, in its order of preference.
    Raises ``socket.gaierror``."""
    answers = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return list(dict.fromkeys(str(info[4][0]) for info in answers))


@dataclass(frozen=True)
class AddressPolicy:
    """Which addresses may be connected to: every public one, and those in ``exempt``."""

    exempt: tuple[IPNetwork, ...] = ()
    resolve: Resolver = system_resolve

    def reason(self, address: IPAddress) -> str | None:
        """Why ``address`` is refused, or None when it may be connected to."""
        if any(address.version == net.version and address in net for net in self.exempt):
            return None
        return forbidden(address)

    async def addresses(self, host: str, port: int) -> list[str]:
        """The addresses to connect to for ``host``, every one checked.

        Raises :class:`AddressRefusedError` when any address of ``host`` is forbidden (a name
        with one private address among public ones is refused too: no legitimate publisher
        needs that), ``httpcore.ConnectError`` (caused by the ``socket.gaierror``) when the
        name cannot be resolved.
        """
        literal = literal_address(host)
        if literal is not None:
            found: Iterable[str] = [str(literal)]
        else:
            try:
                found = await self.resolve(host, port)
            except socket.gaierror as exc:
                raise httpcore.ConnectError(str(exc)) from exc
        checked = [_parse(text) for text in found]
        for address in checked:
            kind = self.reason(address)
            if kind is not None:
                raise AddressRefusedError(refusal(host, address, kind))
        if not checked:
            raise httpcore.ConnectError(f"{host} has no address")
        return [str(address) for address in checked]

    async def check(self, host: str, port: int) -> str | None:
        """The refusal message for ``host``, or None when it may be connected to (also when it
        cannot be resolved here: the connection then fails on its own)."""
        try:
            await self.addresses(host, port)
        except AddressRefusedError as exc:
            return exc.reason
        except httpcore.ConnectError:
            return None
        return None


def _parse(text: str) -> IPAddress:
    return ipaddress.ip_address(text.partition("%")[0])


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """An httpcore network backend that connects only to addresses ``policy`` allows.

    The host is resolved here; each allowed address is tried in the resolver's order until one
    connects. Raises :class:`AddressRefusedError` (an ``httpcore.ConnectError``) before any
    connection when the host is or resolves to a forbidden address. Unix sockets are refused.
    """

    def __init__(self, policy: AddressPolicy, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self._policy = policy
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        failure: Exception | None = None
        for address in await self._policy.addresses(host, port):
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None  # addresses() never returns an empty list
        raise failure

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise AddressRefusedError(f"refused: a Unix socket ({SETTING})")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)
