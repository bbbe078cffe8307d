"""MX resolution against a real DNS server on loopback."""

from __future__ import annotations

from datetime import timedelta

import pytest

from postroom.clock import ManualClock
from postroom.config.schema import DeliveryConfig, DnsConfig
from postroom.errors import NoSuchDomain, NullMx, RouteError
from postroom.relay.mx import Hop, MxResolver
from tests.peers.dnsserver import DnsServer


def _resolver(
    dns_server: DnsServer,
    clock: ManualClock,
    routes: dict[str, str] | None = None,
    timeout: float = 2.0,
) -> MxResolver:
    delivery = DeliveryConfig(
        routes=routes or {},
        dns=DnsConfig(
            nameservers=("127.0.0.1",),
            port=dns_server.port,
            timeout=timedelta(seconds=timeout),
        ),
        smtp_port=2525,
    )
    return MxResolver(delivery, clock)


async def test_mx_hosts_come_in_preference_order(
    dns_server: DnsServer, clock: ManualClock
) -> None:
    dns_server.add(
        "example.net", "MX", "20 mx2.example.net.", "10 mx1.example.net.", "30 mx3."
    )

    hops = await _resolver(dns_server, clock).resolve("Example.NET")

    assert hops == [
        Hop("mx1.example.net", 2525, 10),
        Hop("mx2.example.net", 2525, 20),
        Hop("mx3", 2525, 30),
    ]


async def test_equal_preferences_are_shuffled(
    dns_server: DnsServer, clock: ManualClock
) -> None:
    dns_server.add("example.net", "MX", "10 a.example.net.", "10 b.example.net.")
    resolver = _resolver(dns_server, clock)

    firsts = set()
    for _ in range(40):
        hops = await resolver.resolve("example.net")
        firsts.add(hops[0].host)

    assert firsts == {"a.example.net", "b.example.net"}


async def test_domain_without_mx_but_with_address_is_its_own_mx(
    dns_server: DnsServer, clock: ManualClock
) -> None:
    dns_server.add("plain.example.net", "A", "127.0.0.1")

    hops = await _resolver(dns_server, clock).resolve("plain.example.net")

    assert hops == [Hop("plain.example.net", 2525, 0)]


async def test_domain_with_only_ipv6_address_is_its_own_mx(
    dns_server: DnsServer, clock: ManualClock
) -> None:
    dns_server.add("six.example.net", "AAAA", "::1")

    hops = await _resolver(dns_server, clock).resolve("six.example.net")

    assert hops == [Hop("six.example.net", 2525, 0)]


async def test_null_mx_is_a_permanent_failure(
    dns_server: DnsServer, clock: ManualClock
) -> None:
    dns_server.add("nomail.example.net", "MX", "0 .")
    dns_server.add("nomail.example.net", "A", "127.0.0.1")

    with pytest.raises(NullMx) as caught:
        await _resolver(dns_server, clock).resolve("nomail.example.net")

    assert caught.value.permanent
    assert caught.value.status == "5.1.10"


async def test_nxdomain_is_a_permanent_failure(
    dns_server: DnsServer, clock: ManualClock
) -> None:
    with pytest.raises(NoSuchDomain) as caught:
        await _resolver(dns_server, clock).resolve("missing.example.net")

    assert caught.value.permanent
    assert caught.value.status == "5.1.2"
    assert caught.value.domain == "missing.example.net"


async def test_domain_with_neither_mx_nor_address_is_a_permanent_failure(
    dns_server: DnsServer, clock: ManualClock
) -> None:
    dns_server.add("bare.example.net", "TXT", '"v=spf1 -all"')

    with pytest.raises(RouteError) as caught:
        await _resolver(dns_server, clock).resolve("bare.example.net")

    assert caught.value.permanent


async def test_servfail_is_a_temporary_failure(
    dns_server: DnsServer, clock: ManualClock
) -> None:
    dns_server.add("broken.example.net", "MX", "10 mx.example.net.")
    dns_server.servfail.add("broken.example.net")

    with pytest.raises(RouteError) as caught:
        await _resolver(dns_server, clock).resolve("broken.example.net")

    assert not caught.value.permanent


async def test_unanswered_query_times_out_as_a_temporary_failure(
    dns_server: DnsServer, clock: ManualClock
) -> None:
    dns_server.silent.add("slow.example.net")

    with pytest.raises(RouteError) as caught:
        await _resolver(dns_server, clock, timeout=0.5).resolve("slow.example.net")

    assert not caught.value.permanent
    assert "timed out" in caught.value.reason


async def test_route_for_the_domain_skips_dns(
    dns_server: DnsServer, clock: ManualClock
) -> None:
    resolver = _resolver(
        dns_server,
        clock,
        routes={"example.net": "127.0.0.1:2626", "*": "smarthost.test:587"},
    )

    exact = await resolver.resolve("example.net")
    other = await resolver.resolve("example.org")

    assert exact == [Hop("127.0.0.1", 2626, 0)]
    assert other == [Hop("smarthost.test", 587, 0)]
    assert not dns_server.queries


async def test_answers_are_cached_for_their_ttl(
    dns_server: DnsServer, clock: ManualClock
) -> None:
    dns_server.ttl = 60
    dns_server.add("example.net", "MX", "10 mx1.example.net.")
    resolver = _resolver(dns_server, clock)

    await resolver.resolve("example.net")
    clock.advance(timedelta(seconds=59))
    await resolver.resolve("example.net")
    cached_queries = dns_server.queries[("example.net", "MX")]
    clock.advance(timedelta(seconds=2))
    await resolver.resolve("example.net")

    assert cached_queries == 1
    assert dns_server.queries[("example.net", "MX")] == 2


async def test_host_addresses_are_ipv4_then_ipv6(
    dns_server: DnsServer, clock: ManualClock
) -> None:
    dns_server.add("mx1.example.net", "A", "127.0.0.1")
    dns_server.add("mx1.example.net", "AAAA", "::1")
    resolver = _resolver(dns_server, clock)

    found = await resolver.addresses("mx1.example.net")
    missing = await resolver.addresses("gone.example.net")
    literal = await resolver.addresses("192.0.2.7")

    assert found == ["127.0.0.1", "::1"]
    assert missing == []
    assert literal == ["192.0.2.7"]
