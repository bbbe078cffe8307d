"""Reverse-DNS names of submitting clients, for the Received field.

Applications often open a new connection for every message, from the same
few addresses. The name only informs a reader of the trace field (RFC 5321
section 4.4), so it is looked up once per address and kept for a few
minutes, and a lookup that does not answer in time is given up: the field
then carries the address literal alone. Sessions from one address that
arrive while its lookup runs share that lookup.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

# A reverse lookup that has not answered by then is left out of the
# Received field rather than holding up the reply to DATA.
LOOKUP_TIMEOUT = 2.0
# How long an answer (a name, or that there is none) is kept.
KEEP_SECONDS = 300.0
# Addresses remembered at most; past that the oldest answers are dropped.
MAX_ADDRESSES = 4096

Lookup = Callable[[str], Awaitable[str | None]]


async def reverse_lookup(ip: str) -> str | None:
    """The name the resolver gives for ``ip``, or None."""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(LOOKUP_TIMEOUT):
            name, _ = await loop.getnameinfo((ip, 0), socket.NI_NAMEREQD)
    except (OSError, TimeoutError, UnicodeError):
        return None
    return name


class PeerNames:
    """Remembers the reverse-DNS name of each client address for a while."""

    def __init__(
        self,
        lookup: Lookup = reverse_lookup,
        keep: float = KEEP_SECONDS,
        size: int = MAX_ADDRESSES,
    ) -> None:
        self._lookup = lookup
        self._keep = keep
        self._size = size
        self._known: dict[str, tuple[float, asyncio.Future[str | None]]] = {}

    async def name(self, ip: str) -> str | None:
        """The name of ``ip``; looked up at most once every ``keep`` seconds."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        known = self._known.get(ip)
        if known is None or known[0] <= now:
            if len(self._known) >= self._size:
                self._forget_oldest(now)
            future = asyncio.ensure_future(self._lookup(ip))
            known = (now + self._keep, future)
            self._known[ip] = known
        # Shielded: a session that hangs up does not cancel a lookup that
        # other sessions wait for.
        return await asyncio.shield(known[1])

    def _forget_oldest(self, now: float) -> None:
        for ip in [ip for ip, (until, _) in self._known.items() if until <= now]:
            del self._known[ip]
        while len(self._known) >= self._size:
            del self._known[next(iter(self._known))]
