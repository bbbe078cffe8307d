"""Acting on what arrives at the inbound listener.

Each kept inbound message is read once (`postroom.dsn.parse`) and acted on
by the address it came to:

- ``bounce_local+TOKEN@``: a DSN becomes a bounce record of the recipient
  row the token names (RFC 3464 ``Action: failed``), and may suppress the
  address by the policy; a ``delayed`` record is noted on the report and
  changes nothing (the reporting server is still trying). A recipient row
  fails once: a later failure report about it (a server resending after a
  lost reply) is kept as ``duplicate`` and changes nothing; so is a
  complaint about a message its recipient already complained about. An RFC 5965
  complaint that comes here is treated as at the feedback address.
- ``feedback_local@``: a complaint suppresses the recipient with reason
  ``complaint``.
- ``unsubscribe_local+TOKEN@``: the recipient the unsubscribe token names
  is suppressed for its campaign with reason ``unsubscribe``.
- ``postmaster@``: forwarded to ``inbound.postmaster_forward`` (RFC 5321
  section 4.5.1), or kept and logged when nobody is named.

How a report finds its recipient row, strongest evidence first: the
signed token of the address it came to; the signed ``X-Postroom-Rcpt``
field in the returned headers (which complaints keep while redacting the
address); and, only when the report came with no token at all, the
Message-ID of the returned message when it names a message with exactly
one recipient. A Message-ID is no secret: every recipient of a message
knows it, so it never picks one recipient among several. A token that
fails its signature marks the report forged; it is kept and changes
nothing. Auto-replies and ordinary messages are kept and ignored.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import structlog

from postroom import dsn, metrics
from postroom.clock import Clock
from postroom.config import Config
from postroom.dsn import Action, Category, Record, Report, ReportKind
from postroom.errors import NotFound
from postroom.queue.models import (
    BounceRecord,
    InboundOutcome,
    NewMessage,
    NewRecipient,
    Recipient,
)
from postroom.queue.store import Store
from postroom.queue.suppression import SuppressionPolicy, apply_policy
from postroom.relay.verp import RCPT_HEADER
from postroom.tokens import BadToken, TokenSigner
from postroom.webhooks.events import EventOutbox

log = structlog.get_logger()

POSTMASTER_CAMPAIGN = "postmaster"

RouteKind = Literal["bounce", "feedback", "unsubscribe", "postmaster"]

_HEADER_TOKEN = re.compile(
    rb"^" + RCPT_HEADER.encode() + rb":[ \t]*([A-Za-z2-7]{8,64})[ \t]*\r?$",
    re.IGNORECASE | re.MULTILINE,
)


@dataclass(frozen=True, slots=True)
class Route:
    """What one accepted RCPT address is for; ``token`` as it arrived."""

    kind: RouteKind
    address: str
    token: str | None = None


@dataclass(frozen=True, slots=True)
class Match:
    """The recipient row a report is about, and by which evidence."""

    recipient: Recipient | None
    via: str  # verp | header | message_id | forged | unmatched


@dataclass
class Outcome:
    """What came of one inbound message."""

    kind: str | None = None
    results: list[InboundOutcome] = field(default_factory=list)
    recipient_id: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def summary(self) -> str:
        return ",".join(dict.fromkeys(self.results)) or InboundOutcome.IGNORED


class ReportHandler:
    """Acts on kept inbound messages: bounces, complaints, unsubscribes."""

    def __init__(
        self,
        config: Config,
        store: Store,
        clock: Clock,
        bounces: TokenSigner,
        unsubscribes: TokenSigner,
        on_enqueue: Callable[[], None] | None = None,
    ) -> None:
        self._config = config
        self._store = store
        self._clock = clock
        self._bounces = bounces
        self._unsubscribes = unsubscribes
        self._policy = SuppressionPolicy(config.suppression)
        self._on_enqueue = on_enqueue
        self._events = EventOutbox(config.webhooks, clock)

    async def handle(
        self, report_id: int, peer: str, routes: list[Route], raw: bytes
    ) -> Outcome:
        """Act on the kept message ``report_id`` and write down the outcome."""
        outcome = Outcome()
        if any(route.kind == "postmaster" for route in routes):
            await self._forward(peer, raw, outcome)
        for route in routes:
            if route.kind == "unsubscribe":
                await self._unsubscribe(route, outcome)
        report_routes = [r for r in routes if r.kind in ("bounce", "feedback")]
        if report_routes:
            # Parsing is pure but may take a while on a large message.
            report = await asyncio.to_thread(dsn.parse, raw)
            outcome.kind = str(report.kind)
            for route in report_routes:
                await self._report(route, report, raw, outcome)

        await self._store.settle_inbound(
            report_id,
            outcome.kind,
            outcome.summary,
            outcome.recipient_id,
            "\n".join(outcome.notes),
        )
        log.info(
            "inbound.handled",
            report_id=report_id,
            kind=outcome.kind,
            outcome=outcome.summary,
            recipient_id=outcome.recipient_id,
        )
        return outcome

    # -- the kinds of address --------------------------------------------

    async def _report(
        self, route: Route, report: Report, raw: bytes, outcome: Outcome
    ) -> None:
        if report.kind not in (ReportKind.DSN, ReportKind.ARF):
            # Auto-replies (RFC 3834), ordinary mail, unreadable reports.
            unreadable = report.kind is ReportKind.UNKNOWN
            outcome.results.append(
                InboundOutcome.UNREADABLE if unreadable else InboundOutcome.IGNORED
            )
            outcome.notes.append(f"{route.address}: {report.kind}, kept")
            return
        match = await self._match(route.token, report, raw)
        if match.recipient is None:
            outcome.results.append(InboundOutcome(match.via))
            outcome.notes.append(f"{route.address}: {report.kind} {match.via}")
            log.warning(
                "inbound.unmatched",
                rcpt=route.address,
                kind=str(report.kind),
                via=match.via,
            )
            return
        outcome.recipient_id = match.recipient.id
        if report.kind is ReportKind.ARF:
            await self._complaint(match.recipient, outcome)
        else:
            await self._bounce(match.recipient, report, match.via, outcome)

    async def _bounce(
        self, recipient: Recipient, report: Report, via: str, outcome: Outcome
    ) -> None:
        record = _record_for(recipient, report.failed)
        if record is None:
            delayed = [r for r in report.records if r.action is Action.DELAYED]
            if delayed:
                # RFC 3464 section 2.3.3: the reporting server keeps trying,
                # so nothing about the recipient is settled yet.
                outcome.results.append(InboundOutcome.DELAYED)
                outcome.notes.append(_delay_note(recipient.address, delayed[0]))
            else:
                outcome.results.append(InboundOutcome.NO_FAILURE)
            return

        now = self._clock.now()
        bounce = BounceRecord(
            recipient_id=recipient.id,
            address=recipient.address,
            campaign=recipient.campaign,
            at=now,
            action="failed",
            code=_int_or_none(record.reply_code),
            status=record.status,
            category=str(record.category),
            hard=record.hard,
            diagnostic=record.diagnostic,
            remote_mta=record.remote_mta,
            source="dsn",
        )
        if not await self._store.add_bounce(bounce):
            _duplicate(recipient, "bounced", outcome)
            return
        metrics.observe_bounce(bounce.category, bounce.source)
        await self._store.add_events(
            self._events.events(
                "bounced",
                recipient,
                state="bounced",
                code=bounce.code,
                status=bounce.status,
                text=bounce.diagnostic,
                category=bounce.category,
                source="dsn",
            )
        )
        scope = await apply_policy(self._store, self._policy, bounce, now)
        outcome.results.append(InboundOutcome.BOUNCED)
        outcome.notes.append(
            f"{recipient.address}: {record.status} {record.category} via {via}"
            + (f", suppressed in {scope}" if scope else "")
        )
        log.info(
            "inbound.bounced",
            queue_id=recipient.queue_id,
            recipient=recipient.address,
            campaign=recipient.campaign,
            status=record.status,
            category=str(record.category),
            via=via,
            suppressed=scope,
        )

    async def _complaint(self, recipient: Recipient, outcome: Outcome) -> None:
        if not await self._store.mark_complaint(recipient.id, self._clock.now()):
            _duplicate(recipient, "complained", outcome)
            return
        outcome.results.append(InboundOutcome.COMPLAINT)
        await self._store.add_events(self._events.events("complaint", recipient))
        if not self._policy.covers(Category.COMPLAINT):
            outcome.notes.append(f"{recipient.address}: complaint, not suppressed")
            return
        scope = self._policy.scope(recipient.campaign)
        await self._store.suppress(
            scope, recipient.address, "complaint", self._clock.now()
        )
        outcome.notes.append(f"{recipient.address}: complaint, suppressed in {scope}")
        log.info(
            "inbound.complaint",
            queue_id=recipient.queue_id,
            recipient=recipient.address,
            scope=scope,
        )

    async def _unsubscribe(self, route: Route, outcome: Outcome) -> None:
        recipient = await self._by_token(self._unsubscribes, route.token or "")
        if recipient is None:
            outcome.results.append(InboundOutcome.FORGED)
            outcome.notes.append(f"{route.address}: bad unsubscribe token")
            log.warning("inbound.unsubscribe_forged", rcpt=route.address)
            return
        # An unsubscribe is for the list the person was mailed from.
        added = await self._store.suppress(
            recipient.campaign, recipient.address, "unsubscribe", self._clock.now()
        )
        if added:
            await self._store.add_events(
                self._events.events("unsubscribed", recipient, via="mailto")
            )
        outcome.recipient_id = recipient.id
        outcome.results.append(InboundOutcome.UNSUBSCRIBED)
        outcome.notes.append(f"{recipient.address}: unsubscribed")
        log.info(
            "inbound.unsubscribed",
            recipient=recipient.address,
            campaign=recipient.campaign,
        )

    async def _forward(self, peer: str, raw: bytes, outcome: Outcome) -> None:
        forward_to = self._config.inbound.postmaster_forward
        if not forward_to:
            outcome.results.append(InboundOutcome.KEPT)
            outcome.notes.append("postmaster: kept, no forward address configured")
            log.warning("inbound.postmaster_kept", peer=peer, size=len(raw))
            return
        # Forwarded with the null sender: if the forward itself fails,
        # its bounce must not come back to postmaster@ and loop.
        accepted = await self._store.accept(
            NewMessage(
                mail_from="",
                recipients=tuple(NewRecipient(a) for a in forward_to),
                raw=raw,
                campaign=POSTMASTER_CAMPAIGN,
                submitted_by=None,
                client_address=peer,
            ),
            self._clock.now(),
        )
        outcome.results.append(InboundOutcome.FORWARDED)
        outcome.notes.append(f"postmaster: forwarded as {accepted.queue_id}")
        log.info(
            "inbound.postmaster_forwarded",
            queue_id=accepted.queue_id,
            to=list(forward_to),
        )
        if self._on_enqueue is not None:
            self._on_enqueue()

    # -- finding the recipient row ----------------------------------------

    async def _match(self, token: str | None, report: Report, raw: bytes) -> Match:
        if token is not None:
            recipient = await self._by_token(self._bounces, token)
            if recipient is not None:
                return Match(recipient, "verp")
        header_token = _header_token(report, raw)
        if header_token is not None:
            recipient = await self._by_token(self._bounces, header_token)
            if recipient is not None:
                return Match(recipient, "header")
        if token is not None or header_token is not None:
            return Match(None, "forged")
        message_id = report.original_message_id
        if message_id:
            rows = await self._store.find_by_message_id(message_id)
            if len(rows) == 1:
                return Match(rows[0], "message_id")
        return Match(None, "unmatched")

    async def _by_token(self, signer: TokenSigner, token: str) -> Recipient | None:
        try:
            recipient_id = signer.check(token)
        except BadToken:
            return None
        try:
            return await self._store.get_recipient(recipient_id)
        except NotFound:
            return None  # purged since, or deleted from the queue


def _duplicate(recipient: Recipient, already: str, outcome: Outcome) -> None:
    """Note a report that repeats one already acted on for ``recipient``."""
    outcome.results.append(InboundOutcome.DUPLICATE)
    outcome.notes.append(f"{recipient.address}: already {already}, unchanged")
    log.info(
        "inbound.duplicate",
        queue_id=recipient.queue_id,
        recipient=recipient.address,
        already=already,
    )


def _header_token(report: Report, raw: bytes) -> str | None:
    """The token of our header in the returned headers, else anywhere in
    the raw report (a parser may not find the returned part)."""
    wanted = RCPT_HEADER.lower()
    for name, value in report.original_headers:
        if name.lower() == wanted and value.strip():
            return value.strip()
    found = _HEADER_TOKEN.search(raw)
    return found.group(1).decode("ascii") if found else None


def _record_for(recipient: Recipient, failed: tuple[Record, ...]) -> Record | None:
    """The failed record about ``recipient``: the one naming its address,
    else the first (the report came to this recipient's own address)."""
    address = recipient.address.lower()
    for record in failed:
        if record.recipient.lower() == address:
            return record
    return failed[0] if failed else None


def _delay_note(address: str, record: Record) -> str:
    """``ADDRESS: delayed CODE STATUS TEXT``, each code once: the diagnostic
    of a DSN usually begins with the codes it carries."""
    leading = record.diagnostic.split()[:2]
    codes = [c for c in (record.reply_code, record.status) if c and c not in leading]
    return " ".join([f"{address}: delayed", *codes, record.diagnostic]).strip()


def _int_or_none(code: str | None) -> int | None:
    return int(code) if code and code.isdigit() else None
