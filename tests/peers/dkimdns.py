"""DKIM key look-ups for dkimpy's verifier, answered by a real DNS server."""

from __future__ import annotations

from collections.abc import Callable

import dns.resolver


def txt_lookup(port: int) -> Callable[..., bytes | None]:
    """A ``dnsfunc`` for `dkim.verify` that asks the server on 127.0.0.1:port."""
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = ["127.0.0.1"]
    resolver.port = port

    def lookup(name: bytes | str, timeout: float = 5) -> bytes | None:
        if isinstance(name, bytes):
            name = name.decode("ascii")
        try:
            answer = resolver.resolve(name, "TXT", lifetime=timeout)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return None
        return b"".join(b"".join(rdata.strings) for rdata in answer)

    return lookup
