"""Which network addresses a client-supplied URL may make the gateway connect to.

A URL in a message must not turn the gateway into a probe of its own network (SSRF): the
address it resolves to must be globally routable and not a cloud metadata service. The check
runs on the address the connection is actually made to: literal IPs are checked before the
request, host names inside the aiohttp resolver, which hands the connector only the addresses
it vetted (so a second, different DNS answer cannot slip in between check and connect).
"""

from __future__ import annotations

import ipaddress
import socket

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Cloud instance metadata services. Refused even when a network containing them is allowed.
METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254",      # AWS, GCP, Azure, OpenStack, DigitalOcean, Oracle
    "169.254.170.2",        # AWS ECS task metadata
    "fd00:ec2::254",        # AWS IPv6
    "100.100.100.200",      # Alibaba Cloud
    "192.0.0.192",          # Oracle Cloud (legacy)
))
METADATA_NAMES = frozenset({
    "metadata", "metadata.google.internal", "metadata.goog", "metadata.azure.internal",
    "instance-data", "instance-data.ec2.internal",
})
NAT64 = ipaddress.ip_network("64:ff9b::/96")


class RefusedAddress(OSError):
    """Raised by the resolver; aiohttp hands it back as ClientConnectorError.os_error."""


class AddressPolicy:
    """Refusal rules plus the configured allow-list (host names, addresses, networks)."""

    def __init__(self, allow_hosts: tuple[str, ...] = ()):
        self.names: set[str] = set()
        self.networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for entry in allow_hosts:
            try:
                self.networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                self.names.add(_norm(entry))

    def check_host(self, host: str) -> None:
        """Checks a URL's host before connecting: literal IPs fully, names for metadata."""
        name = _norm(host)
        if name in METADATA_NAMES:
            raise RefusedAddress(f"{host} is a cloud metadata service")
        ip = _literal_ip(name)
        if ip is not None:
            self.check_address(name, ip)

    def check_address(self, host: str, ip: IPAddress) -> None:
        why = refusal(ip)
        if why is None:
            return
        if why != "a cloud metadata address" and (_norm(host) in self.names or
                                                  any(ip in net for net in self.networks)):
            return
        shown = host if _literal_ip(_norm(host)) is not None else f"{host} ({ip})"
        raise RefusedAddress(f"{shown} is {why}")


def refusal(ip: IPAddress) -> str | None:
    """Why this address may not be fetched from, or None when it is a public address."""
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address"
    embedded = _embedded_ipv4(ip)
    if embedded is not None:
        return refusal(embedded)
    for attr, why in (("is_unspecified", "an unspecified address"),
                      ("is_loopback", "a loopback address"),
                      ("is_link_local", "a link-local address"),
                      ("is_multicast", "a multicast address"),
                      ("is_reserved", "a reserved address"),
                      ("is_private", "a private address")):
        if getattr(ip, attr):
            return why
    if not ip.is_global:    # e.g. 100.64.0.0/10 carrier-grade NAT, documentation ranges
        return "not a globally routable address"
    return None


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address inside ::ffff:a.b.c.d, 6to4, Teredo and NAT64 forms."""
    if ip.version != 6:
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _literal_ip(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    try:    # legacy numeric forms the C library still accepts: 2130706433, 0x7f.1, 127.1
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except (OSError, ValueError):
        return None


def _norm(host: str) -> str:
    return host.strip().lower().rstrip(".")


class VettingResolver(AbstractResolver):
    """System DNS (getaddrinfo, so /etc/hosts and `localhost` count), then the policy: one
    refused answer refuses the host, and only vetted addresses reach the connector."""

    def __init__(self, policy: AddressPolicy):
        self._policy = policy
        self._inner = ThreadedResolver()

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        self._policy.check_host(host)
        results = await self._inner.resolve(host, port, family)
        for r in results:
            ip = _literal_ip(r["host"].split("%", 1)[0])
            if ip is None:
                raise RefusedAddress(f"{host} resolved to an unreadable address")
            self._policy.check_address(host, ip)
        return results

    async def close(self) -> None:
        await self._inner.close()
