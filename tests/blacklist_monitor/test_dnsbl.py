"""Blocklist lookups against a real DNS server on loopback serving test
copies of the Spamhaus zones, and a zone that fails its RFC 5782 probe."""

from __future__ import annotations

from datetime import timedelta

import pytest

from postroom.blacklist_monitor.dnsbl import (
    BlocklistChecker,
    Listing,
    ListingState,
    query_name,
)
from postroom.config.schema import DnsblZone, DnsConfig
from tests.peers.dnsserver import DnsServer

ZEN = DnsblZone(zone="zen.spamhaus.org", ipv6=True)
SPAMCOP = DnsblZone(zone="bl.spamcop.net", ipv6=False)
BROKEN = DnsblZone(zone="broken.test", ipv6=False)
DBL = DnsblZone(zone="dbl.spamhaus.org")

LISTED, CLEAN, UNKNOWN = (
    ListingState.LISTED,
    ListingState.NOT_LISTED,
    ListingState.UNKNOWN,
)


def serve_zones(server: DnsServer) -> None:
    """Test copies of ZEN, SpamCop and DBL, with their RFC 5782 test
    entries, and a zone without them."""
    for zone in ("zen.spamhaus.org", "bl.spamcop.net"):
        server.add(f"2.0.0.127.{zone}", "A", "127.0.0.2")
    server.add("test.dbl.spamhaus.org", "A", "127.0.1.2")
    server.add("99.2.0.192.zen.spamhaus.org", "A", "127.0.0.2", "127.0.0.4")
    server.add(
        "99.2.0.192.zen.spamhaus.org", "TXT", '"https://check.spamhaus.org/sbl/1"'
    )
    server.add("99.2.0.192.bl.spamcop.net", "A", "127.0.0.2")
    server.add("10.2.0.192.zen.spamhaus.org", "A", "127.0.0.10")
    for last in (252, 254, 255):
        server.add(f"{last}.2.0.192.zen.spamhaus.org", "A", f"127.255.255.{last}")
    server.add("50.2.0.192.zen.spamhaus.org", "A", "127.0.0.1")
    server.add("60.2.0.192.zen.spamhaus.org", "A", "198.51.100.7")
    server.silent.add("70.2.0.192.zen.spamhaus.org")
    server.servfail.add("80.2.0.192.zen.spamhaus.org")
    server.add(query_name("2001:db8::99", "zen.spamhaus.org"), "A", "127.0.0.3")
    server.add("spammy.example.dbl.spamhaus.org", "A", "127.0.1.2")
    server.add("spammy.example.dbl.spamhaus.org", "TXT", '"spam domain"')
    server.add("asked-an-ip.example.dbl.spamhaus.org", "A", "127.0.1.255")
    # broken.test answers nothing for its test entry: it fails the probe.
    server.add("99.2.0.192.broken.test", "A", "127.0.0.2")


@pytest.fixture
def checker(dns_server: DnsServer) -> BlocklistChecker:
    serve_zones(dns_server)
    return BlocklistChecker(
        DnsConfig(
            nameservers=("127.0.0.1",),
            port=dns_server.port,
            timeout=timedelta(milliseconds=500),
        )
    )


def outcome(listings: list[Listing], target: str, zone: str) -> Listing:
    [found] = [x for x in listings if (x.target, x.zone) == (target, zone)]
    return found


def test_query_names_reverse_ipv4_octets_and_ipv6_nibbles() -> None:
    assert query_name("192.0.2.99", "zen.spamhaus.org") == "99.2.0.192.zen.spamhaus.org"
    assert query_name("2001:db8::1", "zen.spamhaus.org") == (
        "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2"
        ".zen.spamhaus.org"
    )
    assert (
        query_name("Example.ORG.", "dbl.spamhaus.org") == "example.org.dbl.spamhaus.org"
    )


@pytest.mark.parametrize(
    ("ip", "state", "code", "reason"),
    [
        ("192.0.2.99", LISTED, "127.0.0.2,127.0.0.4", "SBL"),
        ("192.0.2.10", LISTED, "127.0.0.10", "PBL"),
        ("192.0.2.1", CLEAN, None, ""),
        ("192.0.2.252", UNKNOWN, "127.255.255.252", "mistyped"),
        ("192.0.2.254", UNKNOWN, "127.255.255.254", "public or open resolver"),
        ("192.0.2.255", UNKNOWN, "127.255.255.255", "too many queries"),
        ("192.0.2.50", UNKNOWN, "127.0.0.1", "never a listing"),
        ("192.0.2.60", UNKNOWN, "198.51.100.7", "outside 127.0.0.0/8"),
        ("192.0.2.70", UNKNOWN, None, "timed out"),
        ("192.0.2.80", UNKNOWN, None, "SERVFAIL"),
    ],
)
async def test_each_answer_gets_the_right_one_of_three_outcomes(
    checker: BlocklistChecker,
    ip: str,
    state: ListingState,
    code: str | None,
    reason: str,
) -> None:
    listing = await checker.lookup(ip, "zen.spamhaus.org")

    assert listing.state is state
    assert listing.code == code
    assert reason in listing.reason


async def test_a_listing_carries_the_meaning_of_its_code_and_the_txt_reason(
    checker: BlocklistChecker,
) -> None:
    listing = await checker.lookup("192.0.2.99", "zen.spamhaus.org")

    assert "SBL: a known source of spam" in listing.reason
    assert "XBL: an exploited or infected host" in listing.reason
    assert "https://check.spamhaus.org/sbl/1" in listing.reason


async def test_check_asks_ipv6_only_of_zones_that_list_ipv6_and_domains_of_dbl(
    checker: BlocklistChecker,
) -> None:
    listings, zones = await checker.check(
        ["192.0.2.99", "2001:db8::99"],
        ["spammy.example", "clean.example", "asked-an-ip.example"],
        (ZEN, SPAMCOP),
        (DBL,),
    )

    asked = {(x.target, x.zone) for x in listings}
    assert ("2001:db8::99", "bl.spamcop.net") not in asked
    assert outcome(listings, "2001:db8::99", "zen.spamhaus.org").state is LISTED
    assert "CSS" in outcome(listings, "2001:db8::99", "zen.spamhaus.org").reason
    assert outcome(listings, "192.0.2.99", "bl.spamcop.net").state is LISTED
    spammy = outcome(listings, "spammy.example", "dbl.spamhaus.org")
    assert (spammy.state, spammy.code) == (LISTED, "127.0.1.2")
    assert spammy.reason == "DBL: a spam domain: spam domain"
    assert outcome(listings, "clean.example", "dbl.spamhaus.org").state is CLEAN
    asked_ip = outcome(listings, "asked-an-ip.example", "dbl.spamhaus.org")
    assert asked_ip.state is UNKNOWN
    assert "127.0.1.255" in asked_ip.reason
    assert all(zone.healthy for zone in zones)
    assert len(listings) == 6


async def test_a_zone_failing_its_probe_is_broken_and_its_answers_unknown(
    checker: BlocklistChecker,
) -> None:
    listings, zones = await checker.check(["192.0.2.99"], [], (ZEN, BROKEN), ())

    health = {zone.zone: zone for zone in zones}
    assert health["zen.spamhaus.org"].healthy
    assert not health["broken.test"].healthy
    assert "127.0.0.2" in health["broken.test"].reason
    broken = outcome(listings, "192.0.2.99", "broken.test")
    assert broken.state is UNKNOWN
    assert "probe" in broken.reason


async def test_a_zone_that_lists_everything_fails_its_probe(
    dns_server: DnsServer, checker: BlocklistChecker
) -> None:
    dns_server.add("1.0.0.127.bl.spamcop.net", "A", "127.0.0.2")

    health = await checker.probe("bl.spamcop.net", "127.0.0.2", "127.0.0.1")

    assert not health.healthy
    assert "127.0.0.1 must not be listed" in health.reason


async def test_a_resolver_refused_by_spamhaus_makes_the_zone_broken(
    dns_server: DnsServer, checker: BlocklistChecker
) -> None:
    dns_server.add("2.0.0.127.zen.spamhaus.org", "A", "127.255.255.254")

    health = await checker.probe("zen.spamhaus.org", "127.0.0.2", "127.0.0.1")

    assert not health.healthy
    assert "public or open resolver" in health.reason
