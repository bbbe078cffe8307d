"""Where to deliver mail for a domain: static routes, then MX records.

How this works: a route in the config (the exact domain, else ``"*"`` for
a smarthost) names one next hop and skips DNS. Otherwise the domain's MX
records are looked up and ordered as RFC 5321 section 5.1 asks: lowest
preference first, equal preferences in random order. A domain without MX
records but with an address is its own mail exchanger (the implicit MX).
A domain whose only MX names the root (``.``) accepts no mail at all
(RFC 7505, the null MX).

DNS answers that say the domain cannot receive mail are permanent; DNS
trouble (SERVFAIL, timeouts, no nameserver answering) is temporary, and
the recipient waits for a retry. Positive answers are cached for their
TTL, measured on the injectable clock.
"""

from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

import dns.asyncresolver
import dns.exception
import dns.name
import dns.rdatatype
import dns.resolver

from postroom.clock import Clock, SystemClock
from postroom.config import split_hostport
from postroom.config.schema import DeliveryConfig
from postroom.errors import NoSuchDomain, NullMx, RouteError


@dataclass(frozen=True, slots=True)
class Hop:
    """One next hop: a host name (or IP literal) and port, in preference order."""

    host: str
    port: int
    preference: int


@dataclass(frozen=True, slots=True)
class _Cached:
    expires: datetime
    values: tuple[str, ...]


class _NoRecords(Exception):
    """The name exists but has no records of the asked type."""


class MxResolver:
    """Resolves destination domains to ordered next hops, with a TTL cache."""

    def __init__(self, delivery: DeliveryConfig, clock: Clock | None = None) -> None:
        self._routes = {key.lower(): value for key, value in delivery.routes.items()}
        self._smtp_port = delivery.smtp_port
        self._clock = clock or SystemClock()
        self._cache: dict[tuple[str, str], _Cached] = {}
        self._resolver = _make_resolver(delivery)

    async def resolve(self, domain: str) -> list[Hop]:
        """The next hops for ``domain``, most preferred first.

        Raises `RouteError`: permanent (`NoSuchDomain`, `NullMx`) when the
        domain cannot receive mail, temporary when DNS could not answer.
        """
        domain = domain.lower().rstrip(".")
        route = self._routes.get(domain) or self._routes.get("*")
        if route is not None:
            host, port = split_hostport(route)
            return [Hop(host, port, 0)]

        try:
            records = await self._lookup(domain, "MX")
        except _NoRecords:
            return await self._implicit_mx(domain)
        return self._order(domain, records)

    async def addresses(self, host: str) -> list[str]:
        """The IPv4 then IPv6 addresses of ``host``; [] when it has none.

        Raises a temporary `RouteError` when DNS could not answer.
        """
        try:
            ipaddress.ip_address(host)
        except ValueError:
            pass
        else:
            return [host]

        found: list[str] = []
        for rdtype in ("A", "AAAA"):
            try:
                found.extend(await self._lookup(host, rdtype))
            except (_NoRecords, NoSuchDomain):
                continue
        return found

    async def _implicit_mx(self, domain: str) -> list[Hop]:
        # RFC 5321 section 5.1: with no MX records, the domain itself is the
        # mail exchanger, with preference 0, if it has an address.
        if not await self.addresses(domain):
            raise NoSuchDomain(domain, "the domain has no MX and no address records")
        return [Hop(domain, self._smtp_port, 0)]

    def _order(self, domain: str, records: tuple[str, ...]) -> list[Hop]:
        hops: list[Hop] = []
        for record in records:
            preference, _, exchange = record.partition(" ")
            if exchange == ".":
                continue
            hops.append(Hop(exchange.rstrip("."), self._smtp_port, int(preference)))
        if not hops:
            # RFC 7505 section 3: a single MX whose exchange is the root.
            raise NullMx(domain)

        # RFC 5321 section 5.1: hosts of equal preference are tried in a
        # random order, so that load spreads across them.
        random.shuffle(hops)
        hops.sort(key=lambda hop: hop.preference)
        return hops

    async def _lookup(self, name: str, rdtype: str) -> tuple[str, ...]:
        key = (name, rdtype)
        now = self._clock.now()
        cached = self._cache.get(key)
        if cached is not None and cached.expires > now:
            return cached.values

        ttl, values = await self._query(name, rdtype)
        self._cache[key] = _Cached(now + timedelta(seconds=ttl), values)
        return values

    async def _query(self, name: str, rdtype: str) -> tuple[int, tuple[str, ...]]:
        try:
            qname = dns.name.from_text(name)
            answer = await self._resolver.resolve(qname, rdtype, search=False)
        except dns.resolver.NXDOMAIN as exc:
            raise NoSuchDomain(name, "the domain does not exist (NXDOMAIN)") from exc
        except dns.resolver.NoAnswer as exc:
            raise _NoRecords(name) from exc
        except (
            dns.name.EmptyLabel,
            dns.name.LabelTooLong,
            dns.name.NameTooLong,
        ) as exc:
            raise NoSuchDomain(name, f"not a valid domain name: {exc}") from exc
        except dns.exception.Timeout as exc:
            raise RouteError(name, "DNS lookup timed out", permanent=False) from exc
        except dns.resolver.NoNameservers as exc:
            raise RouteError(
                name, "no nameserver answered (SERVFAIL or refused)", permanent=False
            ) from exc
        except dns.exception.DNSException as exc:
            raise RouteError(
                name, f"DNS lookup failed: {exc}", permanent=False
            ) from exc

        rrset = answer.rrset
        if rrset is None:
            raise _NoRecords(name)
        return rrset.ttl, tuple(_to_text(rdata) for rdata in rrset)


def _to_text(rdata: object) -> str:
    exchange = getattr(rdata, "exchange", None)
    if exchange is not None:
        return f"{getattr(rdata, 'preference', 0)} {exchange.to_text()}"
    return str(rdata)


def _make_resolver(delivery: DeliveryConfig) -> dns.asyncresolver.Resolver:
    servers = list(delivery.dns.nameservers)
    resolver = dns.asyncresolver.Resolver(configure=not servers)
    if servers:
        resolver.nameservers = servers
        resolver.port = delivery.dns.port
    lifetime = delivery.dns.timeout.total_seconds()
    resolver.lifetime = lifetime
    resolver.timeout = min(resolver.timeout, lifetime)
    return resolver
