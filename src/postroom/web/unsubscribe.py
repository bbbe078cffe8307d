"""The unsubscribe endpoint behind each List-Unsubscribe URL.

``POST BASE_PATH/TOKEN`` with the body ``List-Unsubscribe=One-Click`` is
what a mail client sends when its reader presses "unsubscribe" (RFC 8058
section 3.2): it must work without a cookie, a login or a second step, so
it suppresses the recipient at once and answers 200. Doing it again
changes nothing and answers the same.

``GET`` on the same URL never unsubscribes: link scanners and previews
follow every link in a message. It shows a page whose button sends the
same POST.

A token that is forged, truncated or signed for another purpose, or whose
recipient has been purged, gets a 404 that says no more than that.
"""

from __future__ import annotations

from typing import Any

import structlog
from aiohttp import web

from postroom.clock import Clock
from postroom.errors import NotFound
from postroom.queue.models import Recipient
from postroom.queue.store import GLOBAL_SCOPE, Store
from postroom.tokens import BadToken, TokenSigner
from postroom.webhooks.events import EventOutbox

log = structlog.get_logger()

ONE_CLICK_KEY = "List-Unsubscribe"
ONE_CLICK_VALUE = "One-Click"
REASON = "unsubscribe"

_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'"
    ),
}

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>body{{font-family:sans-serif;max-width:32em;margin:4em auto;padding:0 1em}}
button{{font-size:1.1em;padding:.5em 1.2em}}</style></head>
<body><h1>{title}</h1>{body}</body></html>
"""

_CONFIRM = _PAGE.format(
    title="Unsubscribe",
    body=(
        "<p>Press the button to stop receiving these mailings.</p>"
        '<form method="post" action="">'
        f'<input type="hidden" name="{ONE_CLICK_KEY}" value="{ONE_CLICK_VALUE}">'
        '<button type="submit">Unsubscribe</button></form>'
    ),
)
_DONE = _PAGE.format(
    title="Unsubscribed",
    body="<p>You will receive no more of these mailings.</p>",
)
_NOT_FOUND = _PAGE.format(title="Link not valid", body="<p>This link is not valid.</p>")
_BAD_REQUEST = _PAGE.format(
    title="Not understood",
    body="<p>An unsubscribe request must carry List-Unsubscribe=One-Click.</p>",
)


class UnsubscribeHandler:
    """Answers GET and POST on ``BASE_PATH/{token}``.

    ``global_scope`` puts the address on the list that covers every
    campaign instead of the list of the recipient's campaign.
    """

    def __init__(
        self,
        store: Store,
        signer: TokenSigner,
        clock: Clock,
        *,
        global_scope: bool = False,
        events: EventOutbox | None = None,
    ) -> None:
        self._store = store
        self._signer = signer
        self._clock = clock
        self._global = global_scope
        self._events = events

    def routes(self, base_path: str) -> list[web.RouteDef]:
        """The routes to add to an application, under ``base_path``."""
        path = base_path.rstrip("/") + "/{token}"
        return [web.get(path, self.confirm), web.post(path, self.unsubscribe)]

    async def confirm(self, request: web.Request) -> web.Response:
        """The confirmation page; changes nothing."""
        if await self._recipient(request) is None:
            return _html(_NOT_FOUND, 404)
        return _html(_CONFIRM, 200)

    async def unsubscribe(self, request: web.Request) -> web.Response:
        """Suppress the token's recipient for its campaign; idempotent."""
        recipient = await self._recipient(request)
        if recipient is None:
            return _html(_NOT_FOUND, 404)

        # aiohttp reads both application/x-www-form-urlencoded and
        # multipart/form-data here; RFC 8058 section 3.2 allows either.
        try:
            form = await request.post()
        except ValueError:
            return _html(_BAD_REQUEST, 400)
        if form.get(ONE_CLICK_KEY) != ONE_CLICK_VALUE:
            return _html(_BAD_REQUEST, 400)

        scope = GLOBAL_SCOPE if self._global else recipient.campaign
        added = await self._store.suppress(
            scope, recipient.address, REASON, self._clock.now()
        )
        if added and self._events is not None:
            # Stored before the answer: the event is not lost once the
            # person has been told they are unsubscribed.
            await self._store.add_events(
                self._events.events("unsubscribed", recipient, via="one-click")
            )
        log.info(
            "unsubscribe.accepted",
            recipient_id=recipient.id,
            recipient=recipient.address,
            campaign=recipient.campaign,
            scope=scope,
            already=not added,
        )
        return _html(_DONE, 200)

    async def _recipient(self, request: web.Request) -> Recipient | None:
        try:
            recipient_id = self._signer.check(request.match_info["token"])
            return await self._store.get_recipient(recipient_id)
        except (BadToken, NotFound):
            return None


def suppression_is_global(config: Any) -> bool:
    """Whether the configuration asks for one suppression list for all
    campaigns (``suppression.scope: global``); per campaign otherwise."""
    section = getattr(config, "suppression", None)
    return getattr(section, "scope", None) == "global"


def _html(page: str, status: int) -> web.Response:
    return web.Response(
        text=page, status=status, content_type="text/html", headers=_HEADERS
    )
