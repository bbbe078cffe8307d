"""HTTP Basic authentication (RFC 7617) for the results pages and metrics.

The users and their scrypt hashes come from ``web.users``, made with
``postroom passwd`` like those of submission. A check costs tens of
milliseconds of scrypt, so it runs in a thread, off the event loop.
Without users every request passes: the listener is on loopback unless
the configuration says otherwise.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Awaitable, Callable, Mapping

import structlog
from aiohttp import web

from postroom.relay.passwords import verify_password

log = structlog.get_logger()

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

REALM = "postroom"


class BasicAuth:
    """Wraps handlers so that they answer 401 without valid credentials."""

    def __init__(self, users: Mapping[str, str]) -> None:
        self._users = dict(users)

    def guard(self, handler: Handler) -> Handler:
        """``handler``, answering only requests that name a user and the
        right password (all requests when no users are configured)."""
        if not self._users:
            return handler

        async def guarded(request: web.Request) -> web.StreamResponse:
            if not await self._allows(request.headers.get("Authorization", "")):
                return web.Response(
                    status=401,
                    text="Authentication required.\n",
                    headers={
                        "WWW-Authenticate": f'Basic realm="{REALM}", charset="UTF-8"'
                    },
                )
            return await handler(request)

        return guarded

    async def _allows(self, header: str) -> bool:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        name, colon, password = decoded.partition(":")
        hashed = self._users.get(name)
        if not colon or hashed is None:
            log.warning("web.auth_refused", user=name, reason="unknown user")
            return False
        if await asyncio.to_thread(verify_password, password, hashed):
            return True
        log.warning("web.auth_refused", user=name, reason="wrong password")
        return False
