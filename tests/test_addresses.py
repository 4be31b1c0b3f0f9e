"""Which addresses a URL from a message may reach: every refused class, the allow-list, and
the resolver that hands the connector only vetted addresses."""

import ipaddress
import socket

import pytest

from kimi.chat.addresses import AddressPolicy, RefusedAddress, VettingResolver, refusal

CLASSES = [
    ("127.0.0.1", "loopback"), ("127.8.9.10", "loopback"), ("::1", "loopback"),
    ("10.0.0.1", "private"), ("172.16.5.4", "private"), ("192.168.1.1", "private"),
    ("fd12:3456::1", "private"),
    ("169.254.1.1", "link-local"), ("fe80::1", "link-local"),
    ("224.0.0.1", "multicast"), ("239.255.255.250", "multicast"), ("ff02::1", "multicast"),
    ("240.0.0.1", "reserved"), ("0.0.0.0", "unspecified"), ("::", "unspecified"),
    ("169.254.169.254", "metadata"), ("169.254.170.2", "metadata"), ("fd00:ec2::254", "metadata"),
    ("100.100.100.200", "metadata"),
    ("100.64.0.1", "not a globally routable"), ("192.0.2.7", "private"),
    ("::ffff:127.0.0.1", "loopback"), ("::ffff:10.1.2.3", "private"),
    ("::ffff:169.254.169.254", "metadata"), ("2002:7f00:1::", "loopback"),
    ("64:ff9b::a9fe:a9fe", "metadata"),
    ("93.184.216.34", None), ("2606:2800:220:1:248:1893:25c8:1946", None), ("8.8.8.8", None),
]


@pytest.mark.parametrize("address,why", CLASSES, ids=[c[0] for c in CLASSES])
def test_refusal_classes(address, why):
    result = refusal(ipaddress.ip_address(address))
    if why is None:
        assert result is None
    else:
        assert result is not None and why in result


@pytest.mark.parametrize("host", ["metadata.google.internal", "METADATA.google.internal.",
                                  "metadata.goog", "instance-data", "169.254.169.254", "[::1]",
                                  "10.0.0.1", "[fd00:ec2::254]"])
def test_literal_and_metadata_hosts_are_refused_before_any_lookup(host):
    with pytest.raises(RefusedAddress):
        AddressPolicy().check_host(host)


def test_names_are_left_to_the_resolver():
    AddressPolicy().check_host("example.com")   # checked once resolved, not here


def test_allow_list_names_addresses_and_networks():
    policy = AddressPolicy(("127.0.0.1", "10.1.0.0/16", "files.lan", "::1"))
    policy.check_address("127.0.0.1", ipaddress.ip_address("127.0.0.1"))
    policy.check_address("x", ipaddress.ip_address("10.1.200.3"))
    policy.check_address("files.lan", ipaddress.ip_address("192.168.7.7"))
    policy.check_address("[::1]", ipaddress.ip_address("::1"))
    with pytest.raises(RefusedAddress, match="private"):
        policy.check_address("x", ipaddress.ip_address("10.2.0.1"))
    with pytest.raises(RefusedAddress, match="loopback"):
        policy.check_address("localhost", ipaddress.ip_address("127.0.0.2"))


def test_metadata_stays_refused_even_inside_an_allowed_network():
    policy = AddressPolicy(("169.254.0.0/16", "fd00::/8", "meta.lan"))
    policy.check_address("x", ipaddress.ip_address("169.254.1.1"))
    for ip in ("169.254.169.254", "fd00:ec2::254"):
        with pytest.raises(RefusedAddress, match="metadata"):
            policy.check_address("meta.lan", ipaddress.ip_address(ip))


async def test_resolver_refuses_localhost_and_decimal_forms():
    resolver = VettingResolver(AddressPolicy())
    try:
        for host in ("localhost", "2130706433", "0x7f.1"):
            with pytest.raises(RefusedAddress, match="loopback"):
                await resolver.resolve(host, 80, socket.AF_UNSPEC)
    finally:
        await resolver.close()


async def test_resolver_returns_only_vetted_addresses_when_allowed():
    resolver = VettingResolver(AddressPolicy(("127.0.0.0/8", "::1")))
    try:
        results = await resolver.resolve("localhost", 8080, socket.AF_INET)
        assert results and all(r["host"] == "127.0.0.1" and r["port"] == 8080 for r in results)
    finally:
        await resolver.close()
