"""Where adapters may connect: the operator's rule on network addresses, checked when an adapter is registered and
again, on the resolved addresses, every time it connects.

Vendor agents live on the public internet. An address that is loopback, link-local (the cloud metadata service at
169.254.169.254 among them), private, carrier-grade NAT, unspecified, multicast, reserved or otherwise not global is
refused, in any spelling a client accepts (`2852039166`, `0xa9fea9fe`, `0251.0376.0251.0376`, `169.254.43518`,
`::ffff:169.254.169.254`, 6to4 and NAT64 forms of the same), unless the operator allows its range
(`COS_ADAPTER_ALLOWED_NETWORKS`, e.g. an on-premises vendor at 10.20.0.0/16). Nothing from chat can allow a range.

- At registration (`Egress.host_problem`), a host is checked as written: an address, or a name that is internal by
  definition (`localhost`, the metadata names). Other names are not looked up then (a registration must not depend
  on DNS, and an answer then proves nothing about later).
- When connecting (`Egress.address_for`), a name is resolved, every address it resolves to must be allowed, and the
  connection goes to the address that was checked: a name that answers a public address to the check and a private
  one to the connection (DNS rebinding) gets nowhere. `EgressTransport` does this for every HTTP request of an MCP
  agent; the browser adapter pins each origin's host to its checked address in Chromium's host resolver.

A refused address is reported to the log, and to the caller as `AddressRefused`; the agents turn it into the same
words as a refused or timed-out connection, so an adapter's errors cannot be used to map the network.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import httpx
import httpx2

logger = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolve = Callable[[str, int], Awaitable[Sequence[str]]]
"""Resolves a host name and port to the addresses a connection could go to (as text)."""

ALLOWED_NETWORKS_SETTING = "COS_ADAPTER_ALLOWED_NETWORKS"
UNREACHABLE = "could not reach the agent (refused, timed out or not allowed; the server log has the details)"
"""What a caller is told, whatever kept the connection from being made."""

_METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(text) for text in ("169.254.169.254", "169.254.170.2", "100.100.100.200", "fd00:ec2::254")
)
_METADATA_NAMES = frozenset({"metadata", "metadata.google.internal", "metadata.goog", "instance-data"})
_CARRIER_GRADE_NAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_LOCAL_NAT64 = ipaddress.ip_network("64:ff9b:1::/48")
_LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")


class AddressRefused(PermissionError):
    """An adapter may not reach this host: what it is, and which setting would allow it."""

    def __init__(self, host: str, address: IPAddress | None, kind: str) -> None:
        self.host = host
        self.address = address
        self.kind = kind
        shown = host if address is None or str(address) == host else f"{host} ({address})"
        super().__init__(
            f"{shown} is {kind}: adapters may not reach it. If the agent really runs there, the operator can allow "
            f"its range in {ALLOWED_NETWORKS_SETTING} (a chat message cannot)"
        )


class HostNotFound(OSError):
    """The host name resolves to no address."""

    def __init__(self, host: str, reason: str) -> None:
        self.host = host
        super().__init__(f"{host} does not resolve: {reason}")


def parse_address(host: str) -> IPAddress | None:
    """The IP address `host` stands for, in any spelling a client accepts; None when it is a name.

    IPv4 as the URL standard (and `inet_aton`) reads it: one to four parts, each decimal, octal (leading 0) or hex
    (0x), the last part filling the remaining bytes; a trailing dot is allowed. IPv6 with or without brackets, with
    an optional zone.
    """
    text = host.strip().lower().removeprefix("[").removesuffix("]")
    if ":" in text:
        try:
            return ipaddress.IPv6Address(text.split("%", 1)[0])
        except ValueError:
            return None
    return _legacy_ipv4(text)


def _legacy_ipv4(text: str) -> ipaddress.IPv4Address | None:
    parts = text.split(".")
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()
    if not 1 <= len(parts) <= 4:
        return None
    numbers: list[int] = []
    for part in parts:
        try:
            if part.startswith(("0x", "0X")):
                numbers.append(int(part[2:] or "0", 16))
            elif len(part) > 1 and part.startswith("0"):
                numbers.append(int(part[1:], 8))
            elif part.isdigit():
                numbers.append(int(part))
            else:
                return None
        except ValueError:
            return None
    *leading, last = numbers
    if any(number > 255 for number in leading) or last >= 256 ** (5 - len(numbers)):
        return None
    value = last
    for position, number in enumerate(leading):
        value += number << (8 * (3 - position))
    return ipaddress.IPv4Address(value)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries to the same host: mapped, 6to4, Teredo's client, NAT64, compatible."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64 or address in _LOCAL_NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if int(address) >> 32 == 0 and int(address) > 1:
        return ipaddress.IPv4Address(int(address))  # ::a.b.c.d, the deprecated "IPv4-compatible" form
    return None


def address_kind(address: IPAddress) -> str | None:
    """Why an adapter may not reach `address` by default ("a private address"…), or None for a public one."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return address_kind(embedded)
    if address in _METADATA_ADDRESSES:
        return "the cloud metadata address"
    if address.is_unspecified:
        return "the unspecified address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if isinstance(address, ipaddress.IPv4Address) and address in _CARRIER_GRADE_NAT:
        return "a carrier-grade NAT address"
    if address.is_reserved:
        return "a reserved address"
    if address.is_private:
        return "a private address"
    if not address.is_global:
        return "not a public address"
    return None


async def system_resolve(host: str, port: int) -> list[str]:
    """The addresses the system resolver gives for `host` (TCP)."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise HostNotFound(host, str(error)) from None
    return [str(info[4][0]) for info in infos]


def parse_networks(text: str) -> tuple[IPNetwork, ...]:
    """The networks of a comma-separated setting like `10.20.0.0/16, 127.0.0.1/32`.

    Raises:
        ValueError: naming the entry that is not a network.
    """
    networks: list[IPNetwork] = []
    for entry in (part.strip() for part in text.replace(";", ",").split(",")):
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(f"{entry!r} is not a network (write it like 10.20.0.0/16 or 127.0.0.1/32)") from None
    return tuple(networks)


@dataclass(frozen=True)
class Egress:
    """The addresses adapters may connect to: public ones, and the ranges the operator allows.

    `resolve` turns a name into addresses (the system resolver by default; tests inject their own).
    """

    allowed: tuple[IPNetwork, ...] = ()
    resolve: Resolve = field(default=system_resolve, compare=False, repr=False)

    @classmethod
    def allowing(cls, *networks: str, resolve: Resolve = system_resolve) -> Egress:
        """Public addresses and these ranges (`"127.0.0.0/8"`…)."""
        return cls(tuple(ipaddress.ip_network(text, strict=False) for text in networks), resolve)

    def _allows(self, address: IPAddress) -> bool:
        candidates: list[IPAddress] = [address]
        if isinstance(address, ipaddress.IPv6Address) and (embedded := _embedded_ipv4(address)) is not None:
            candidates.append(embedded)
        return any(candidate in network for candidate in candidates for network in self.allowed)

    def check(self, host: str, address: IPAddress) -> None:
        """Raises `AddressRefused` unless `address` (of `host`) may be reached."""
        kind = address_kind(address)
        if kind is not None and not self._allows(address):
            raise AddressRefused(host, address, kind)

    def host_problem(self, host: str) -> str | None:
        """Why `host`, as written in a config, may not be registered (None when it may): no DNS is asked."""
        try:
            for address in _written_addresses(host):
                self.check(host, address)
        except AddressRefused as refused:
            return str(refused)
        return None

    async def address_for(self, host: str, port: int) -> str:
        """The address to connect to for `host`: every address it resolves to checked, the first one returned.

        Raises:
            AddressRefused: the host is, or resolves to (even among others), an address adapters may not reach.
            HostNotFound: the name resolves to nothing.
        """
        written = _written_addresses(host)
        if written:
            for address in written:
                self.check(host, address)
            return str(written[0])
        resolved = await self.resolve(host, port)
        addresses = [parsed for text in resolved if (parsed := parse_address(text)) is not None]
        if not addresses:
            raise HostNotFound(host, "no address")
        for address in addresses:
            self.check(host, address)
        return str(addresses[0])

    async def pinned(self, hosts: Iterable[str]) -> dict[str, str]:
        """Each host's checked address (see `address_for`; the port does not change the check)."""
        return {host: await self.address_for(host, 443) for host in hosts}


def _written_addresses(host: str) -> list[IPAddress]:
    """The addresses a host means as written: an address in any spelling, or a name internal by definition."""
    address = parse_address(host)
    if address is not None:
        return [address]
    name = host.strip().lower().rstrip(".")
    if name in _LOOPBACK_NAMES or name.endswith(".localhost"):
        return [ipaddress.IPv6Address("::1") if name.startswith("ip6-") else ipaddress.IPv4Address("127.0.0.1")]
    if name in _METADATA_NAMES:
        return [ipaddress.IPv4Address("169.254.169.254")]
    return []


_Request = TypeVar("_Request", httpx.Request, httpx2.Request)


async def route_to_checked_address(
    request: _Request, egress: Egress, *, agent: str, log: logging.Logger = logger
) -> None:
    """Points `request` (of `httpx`, which `a2a-sdk` uses, or of `httpx2`, which the MCP SDK uses) at its host's checked
    address, the name kept for the `Host` header and for TLS. A refused or unknown host is logged to `log` and raised
    as the request's own library's `ConnectError`, saying `UNREACHABLE`."""
    host = request.url.host
    port = request.url.port or (443 if request.url.scheme == "https" else 80)
    try:
        address = await egress.address_for(host, port)
    except (AddressRefused, HostNotFound) as error:
        log.warning("agent %r: not connecting to %s: %s", agent, host, error)
        if isinstance(request, httpx.Request):
            raise httpx.ConnectError(UNREACHABLE, request=request) from None
        raise httpx2.ConnectError(UNREACHABLE, request=request) from None
    if address != host:
        if request.url.scheme == "https":
            request.extensions = {**request.extensions, "sni_hostname": host}
        request.url = request.url.copy_with(host=address)


class EgressTransport(httpx2.AsyncBaseTransport):
    """An HTTP transport that connects only to checked addresses: each request's host is resolved and checked, and
    the request is sent to that address (`route_to_checked_address`)."""

    def __init__(self, inner: httpx2.AsyncBaseTransport, egress: Egress, *, agent: str) -> None:
        self._inner = inner
        self._egress = egress
        self._agent = agent

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        await route_to_checked_address(request, self._egress, agent=self._agent)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()
