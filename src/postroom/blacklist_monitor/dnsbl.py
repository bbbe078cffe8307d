"""DNS blocklist lookups with three outcomes: listed, not listed, unknown.

How this works (RFC 5782): an IPv4 address is asked as its octets
reversed under the zone (``2.0.0.127.zen.spamhaus.org``), an IPv6
address as its 32 nibbles reversed (section 2.4), a domain as itself
under the zone (section 3). An A record in 127.0.0.0/8 means listed and
its value says why; a TXT record at the same name gives a reason in
words; NXDOMAIN means not listed.

Not every answer is a listing. Lists answer errors with addresses too:
Spamhaus with 127.255.255.0/24 (a query through a public resolver, too
many queries, a mistyped zone), its domain list with 127.0.1.255 when
asked about an IP, and no list uses 127.0.0.1 for a listing (section 5).
An answer outside 127.0.0.0/8 comes from a resolver that rewrites
NXDOMAIN, not from the list. All of these, timeouts and SERVFAIL are
``unknown``, with the reason: a scan must never call an address listed or
clean because DNS failed.

Before a zone is trusted it is probed as section 5 describes: an IP zone
must list 127.0.0.2 and not list 127.0.0.1; a domain zone must list
``TEST`` and not list ``INVALID``. A zone failing either is broken, and
every answer it would give is unknown.
"""

from __future__ import annotations

import asyncio
import ipaddress
from dataclasses import dataclass
from enum import StrEnum

import dns.asyncresolver
import dns.exception
import dns.name
import dns.resolver

from postroom.config.schema import DnsblZone, DnsConfig

MAX_CONCURRENT = 20


class ListingState(StrEnum):
    LISTED = "listed"
    NOT_LISTED = "not_listed"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Listing:
    """What one zone says about one IP address or domain."""

    target: str
    zone: str
    state: ListingState
    code: str | None = None  # the A answer(s), "127.0.0.2"
    reason: str = ""  # what the code means and the TXT text, or why unknown


@dataclass(frozen=True, slots=True)
class ZoneHealth:
    """Whether a zone passed its RFC 5782 section 5 probe."""

    zone: str
    healthy: bool
    reason: str = ""


_ZEN = {
    "127.0.0.2": "SBL: a known source of spam (Spamhaus Block List)",
    "127.0.0.3": "SBL CSS: low-reputation or snowshoe sending",
    "127.0.0.4": "XBL: an exploited or infected host",
    "127.0.0.5": "XBL: an exploited or infected host",
    "127.0.0.6": "XBL: an exploited or infected host",
    "127.0.0.7": "XBL: an exploited or infected host",
    "127.0.0.9": "SBL DROP: a hijacked or criminal network (DROP/EDROP)",
    "127.0.0.10": "PBL: an end-user range that should not send directly "
    "(listed by its ISP)",
    "127.0.0.11": "PBL: an end-user range that should not send directly "
    "(listed by Spamhaus)",
}
_DBL = {
    "127.0.1.2": "DBL: a spam domain",
    "127.0.1.4": "DBL: a phishing domain",
    "127.0.1.5": "DBL: a malware domain",
    "127.0.1.6": "DBL: a botnet command-and-control domain",
    "127.0.1.102": "DBL: an abused legitimate domain (spam)",
    "127.0.1.103": "DBL: an abused redirector or URL shortener",
    "127.0.1.104": "DBL: an abused legitimate domain (phishing)",
    "127.0.1.105": "DBL: an abused legitimate domain (malware)",
    "127.0.1.106": "DBL: an abused legitimate domain (botnet C&C)",
}
_SPAMHAUS_ERRORS = {
    "127.255.255.252": "the zone name is mistyped (Spamhaus error 127.255.255.252)",
    "127.255.255.254": "the query came through a public or open resolver, which "
    "Spamhaus refuses (127.255.255.254)",
    "127.255.255.255": "too many queries from this resolver (127.255.255.255)",
}
_LOOPBACK = ipaddress.ip_network("127.0.0.0/8")
_SPAMHAUS_ERROR_NET = ipaddress.ip_network("127.255.255.0/24")


def query_name(target: str, zone: str) -> str:
    """The name to ask ``zone`` about an IP address or a domain."""
    try:
        address = ipaddress.ip_address(target)
    except ValueError:
        return f"{target.lower().rstrip('.')}.{zone}"
    # reverse_pointer gives the octets (RFC 5782 section 2.1) or the
    # nibbles (section 2.4) in the order the lists want.
    reversed_part = address.reverse_pointer.rsplit(".", 2)[0]
    return f"{reversed_part}.{zone}"


def judge(zone: str, answers: list[str]) -> tuple[ListingState, str]:
    """The outcome of A answers from ``zone``, and what they mean."""
    meanings: list[str] = []
    for answer in sorted(answers):
        error = _error_in(answer)
        if error is not None:
            return ListingState.UNKNOWN, error
        meanings.append(_meaning(zone, answer))
    return ListingState.LISTED, "; ".join(meanings)


def _error_in(answer: str) -> str | None:
    try:
        address = ipaddress.ip_address(answer)
    except ValueError:
        return f"not an address: {answer!r}"
    if address not in _LOOPBACK:
        return (
            f"answer {answer} is outside 127.0.0.0/8: a resolver rewrote the "
            "reply, not the list"
        )
    if address in _SPAMHAUS_ERROR_NET:
        return _SPAMHAUS_ERRORS.get(answer, f"an error code of the list ({answer})")
    if answer == "127.0.1.255":
        return "the domain list was asked about an IP address (127.0.1.255)"
    if answer == "127.0.0.1":
        # RFC 5782 section 5: 127.0.0.1 is never a listing.
        return "127.0.0.1 is never a listing (RFC 5782 section 5): an error answer"
    return None


def _meaning(zone: str, answer: str) -> str:
    if zone.endswith(("zen.spamhaus.org", ".zen.dq.spamhaus.net")):
        return _ZEN.get(answer, f"listed ({answer})")
    if zone.endswith(("dbl.spamhaus.org", ".dbl.dq.spamhaus.net")):
        return _DBL.get(answer, f"listed ({answer})")
    return f"listed ({answer})"


class BlocklistChecker:
    """Asks DNS blocklists about sending IPs and domains, after probing
    each zone once."""

    def __init__(self, dns_config: DnsConfig) -> None:
        self._resolver = _make_resolver(dns_config)
        self._limit = asyncio.Semaphore(MAX_CONCURRENT)

    async def check(
        self,
        ips: list[str],
        domains: list[str],
        ip_zones: tuple[DnsblZone, ...],
        domain_zones: tuple[DnsblZone, ...],
    ) -> tuple[list[Listing], list[ZoneHealth]]:
        """Every IP against every IP zone (IPv6 only where the zone lists
        IPv6) and every domain against every domain zone; with the health
        of each zone."""
        zones = [(zone, "127.0.0.2", "127.0.0.1") for zone in ip_zones] + [
            (zone, "test", "invalid") for zone in domain_zones
        ]
        health = await asyncio.gather(
            *(self.probe(zone.zone, listed, clean) for zone, listed, clean in zones)
        )
        healthy = {h.zone: h for h in health}

        asks: list[tuple[str, str]] = []
        for zone in ip_zones:
            for ip in ips:
                if ipaddress.ip_address(ip).version == 4 or zone.ipv6:
                    asks.append((ip, zone.zone))
        asks += [(domain, zone.zone) for zone in domain_zones for domain in domains]
        listings = await asyncio.gather(
            *(
                self._ask_if_healthy(target, zone, healthy[zone])
                for target, zone in asks
            )
        )
        return list(listings), list(health)

    async def probe(self, zone: str, listed: str, clean: str) -> ZoneHealth:
        """Whether ``zone`` lists ``listed`` and does not list ``clean``."""
        test, control = await asyncio.gather(
            self.lookup(listed, zone), self.lookup(clean, zone)
        )
        if test.state is not ListingState.LISTED:
            why = test.reason or "not listed"
            return ZoneHealth(zone, False, f"test entry {listed} not listed: {why}")
        if control.state is not ListingState.NOT_LISTED:
            why = control.reason or "listed"
            return ZoneHealth(zone, False, f"{clean} must not be listed: {why}")
        return ZoneHealth(zone, True)

    async def lookup(self, target: str, zone: str) -> Listing:
        """What ``zone`` says about ``target``, with the TXT reason when
        it is listed."""
        name = query_name(target, zone)
        try:
            answers = await self._query(name, "A")
        except _NotListed:
            return Listing(target, zone, ListingState.NOT_LISTED)
        except _Unknown as exc:
            return Listing(target, zone, ListingState.UNKNOWN, reason=exc.reason)

        state, meaning = judge(zone, answers)
        code = ",".join(sorted(answers))
        if state is ListingState.LISTED:
            text = await self._txt(name)
            meaning = f"{meaning}: {text}" if text else meaning
        return Listing(target, zone, state, code, meaning)

    async def _ask_if_healthy(
        self, target: str, zone: str, health: ZoneHealth
    ) -> Listing:
        if not health.healthy:
            reason = f"zone failed its RFC 5782 probe: {health.reason}"
            return Listing(target, zone, ListingState.UNKNOWN, reason=reason)
        return await self.lookup(target, zone)

    async def _txt(self, name: str) -> str:
        try:
            texts = await self._query(name, "TXT")
        except (_NotListed, _Unknown):
            return ""
        return " ".join(text.strip('"') for text in texts)

    async def _query(self, name: str, rdtype: str) -> list[str]:
        async with self._limit:
            try:
                answer = await self._resolver.resolve(
                    dns.name.from_text(name), rdtype, search=False
                )
            except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer) as exc:
                raise _NotListed from exc
            except dns.exception.Timeout as exc:
                raise _Unknown("DNS lookup timed out") from exc
            except dns.resolver.NoNameservers as exc:
                raise _Unknown("no nameserver answered (SERVFAIL or refused)") from exc
            except dns.exception.DNSException as exc:
                raise _Unknown(f"DNS lookup failed: {exc}") from exc
        return [rdata.to_text() for rdata in answer]


class _NotListed(Exception):
    """NXDOMAIN, or a name without A records."""


class _Unknown(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _make_resolver(config: DnsConfig) -> dns.asyncresolver.Resolver:
    servers = list(config.nameservers)
    resolver = dns.asyncresolver.Resolver(configure=not servers)
    if servers:
        resolver.nameservers = servers
        resolver.port = config.port
    lifetime = config.timeout.total_seconds()
    resolver.lifetime = lifetime
    resolver.timeout = min(resolver.timeout, lifetime)
    return resolver
