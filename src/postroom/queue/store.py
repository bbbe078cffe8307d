"""The store interface: the only way any part of postroom touches state.

Two backends implement it: SQLite (one node, the default) and, for many
nodes, PostgreSQL. Both pass the same test suite. Every method that takes
``now`` uses it for every time it writes, so callers decide what time it
is (see `postroom.clock`).

Guarantees every backend keeps:

- `accept` returns only once the message and all its recipient rows are
  committed and flushed to stable storage; on any failure it raises
  `StorageError` and leaves nothing behind.
- `lease_due` hands a recipient to at most one caller until its lease runs
  out or `record` is called for it.
- `record` writes the attempt, the new state and any bounce record in one
  transaction.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from datetime import datetime, timedelta

from postroom.queue.models import (
    Accepted,
    Attempt,
    AttemptResult,
    BounceRecord,
    CampaignSummary,
    DailyReport,
    Delivery,
    ExportRow,
    Failure,
    InboundReport,
    Message,
    NewInboundReport,
    NewMessage,
    OutboxEvent,
    Recipient,
    State,
    Stats,
    StoreGauges,
    Suppression,
)

GLOBAL_SCOPE = "*"  # the suppression scope that covers every campaign


@dataclass(frozen=True, slots=True)
class PurgeCounts:
    bodies: int
    messages: int
    attempts: int
    bounces: int


class Store(abc.ABC):
    """Durable queue, records and suppression lists."""

    # -- lifecycle --------------------------------------------------------

    @abc.abstractmethod
    async def open(self) -> None:
        """Connect and bring the schema up to date."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Finish pending writes and release the storage."""

    # -- accepting --------------------------------------------------------

    @abc.abstractmethod
    async def accept(self, message: NewMessage, now: datetime) -> Accepted:
        """Store a message and its recipients durably, due at ``now``.

        A recipient on the campaign's (or the global) suppression list is
        stored in state ``suppressed`` and named in `Accepted.suppressed`.
        Raises `StorageError` when the commit did not reach stable storage.
        """

    # -- delivering -------------------------------------------------------

    @abc.abstractmethod
    async def lease_due(
        self, now: datetime, limit: int, lease: timedelta
    ) -> list[Delivery]:
        """Take up to ``limit`` recipients due at ``now`` for one attempt.

        Recipients whose address became suppressed meanwhile are turned
        ``suppressed`` instead of being returned. Oldest due first.
        """

    @abc.abstractmethod
    async def load_raw(self, queue_id: str) -> bytes:
        """The stored bytes of a message; `NotFound` once purged."""

    @abc.abstractmethod
    async def record(self, result: AttemptResult) -> None:
        """Write one finished attempt, its new state, and its bounce record."""

    @abc.abstractmethod
    async def next_due_at(self) -> datetime | None:
        """When the earliest waiting recipient is due, if any is."""

    @abc.abstractmethod
    async def release_leases(self) -> int:
        """Free every lease (single node start-up after a crash)."""

    @abc.abstractmethod
    async def add_bounce(self, bounce: BounceRecord) -> bool:
        """Keep a bounce record that arrived after delivery (a DSN).

        A failed record about a recipient row that already has one
        repeats it: the first report wins, nothing is kept and the answer
        is False.
        """

    # -- suppression ------------------------------------------------------

    @abc.abstractmethod
    async def is_suppressed(self, campaign: str, address: str) -> bool:
        """Whether ``address`` is on ``campaign``'s or the global list."""

    @abc.abstractmethod
    async def suppress(
        self, scope: str, address: str, reason: str, now: datetime
    ) -> bool:
        """Put ``address`` on the list of ``scope`` (a campaign, or
        `GLOBAL_SCOPE`); False when it was there already."""

    @abc.abstractmethod
    async def suppressions(
        self, scope: str | None = None, limit: int | None = None
    ) -> list[Suppression]:
        """The entries of one list (or of every list), by scope, then address."""

    @abc.abstractmethod
    async def unsuppress(self, scope: str, address: str) -> bool:
        """Take ``address`` off the list of ``scope``; False when it was not on."""

    @abc.abstractmethod
    async def suppress_many(self, entries: list[Suppression]) -> int:
        """Add many entries in one transaction; how many were new (an
        address already on that list keeps its first reason)."""

    # -- inbound reports --------------------------------------------------

    @abc.abstractmethod
    async def add_inbound(self, report: NewInboundReport, now: datetime) -> int:
        """Keep an inbound message durably (outcome ``pending``); its id."""

    @abc.abstractmethod
    async def mark_complaint(self, recipient_id: int, now: datetime) -> bool:
        """Note that the recipient complained about its message; False when
        it already had (the complaint is a repeat) or the row is gone."""

    @abc.abstractmethod
    async def settle_inbound(
        self,
        report_id: int,
        kind: str | None,
        outcome: str,
        recipient_id: int | None,
        detail: str,
    ) -> None:
        """Write what came of an inbound message."""

    @abc.abstractmethod
    async def inbound_reports(
        self,
        outcome: str | None = None,
        limit: int = 1000,
        report_id: int | None = None,
        *,
        newest_first: bool = False,
    ) -> list[InboundReport]:
        """Kept inbound messages, oldest first (or ``newest_first``),
        optionally of one outcome or only the one with ``report_id``."""

    @abc.abstractmethod
    async def load_inbound_raw(self, report_id: int) -> bytes:
        """The bytes of a kept inbound message; `NotFound` when unknown."""

    @abc.abstractmethod
    async def find_by_message_id(self, message_id: str) -> list[Recipient]:
        """Every recipient of the messages whose Message-ID is ``message_id``."""

    # -- inspecting and repairing ----------------------------------------

    @abc.abstractmethod
    async def get_message(self, queue_id: str) -> Message:
        """One message's envelope facts; `NotFound` when unknown."""

    @abc.abstractmethod
    async def get_recipient(self, recipient_id: int) -> Recipient:
        """One recipient row; `NotFound` when unknown (or purged)."""

    @abc.abstractmethod
    async def recipients(
        self,
        *,
        queue_id: str | None = None,
        state: State | None = None,
        campaign: str | None = None,
        limit: int = 1000,
    ) -> list[Recipient]:
        """Recipients matching every filter given, oldest first."""

    @abc.abstractmethod
    async def attempts(self, recipient_id: int) -> list[Attempt]:
        """Every attempt for one recipient, oldest first."""

    @abc.abstractmethod
    async def retry_now(self, queue_id: str | None, now: datetime) -> int:
        """Make deferred recipients (of one message, or all) due at ``now``;
        how many of them will be attempted (a suppressed one is dropped at
        its turn instead)."""

    @abc.abstractmethod
    async def delete(self, queue_id: str) -> int:
        """Take a message out of the queue: remove its waiting (queued or
        deferred) recipients, and the message itself once none is left.

        Recipients already delivered, bounced or otherwise final keep their
        rows, attempts and bounce records, so statistics and exports still
        count them. Returns how many recipients were removed (0 for an
        unknown queue id)."""

    # -- reporting --------------------------------------------------------

    @abc.abstractmethod
    async def stats(self, campaign: str | None = None) -> Stats:
        """Counts by result for one campaign, or for all."""

    @abc.abstractmethod
    async def campaigns(self) -> list[str]:
        """Every campaign the store has messages for."""

    @abc.abstractmethod
    async def export_bounces(
        self,
        campaign: str | None,
        since: datetime | None,
        until: datetime | None,
    ) -> list[ExportRow]:
        """One row per bounce record whose time falls in [since, until)."""

    @abc.abstractmethod
    async def export_deferrals(
        self,
        campaign: str | None,
        since: datetime | None,
        until: datetime | None,
    ) -> list[ExportRow]:
        """One row per deferred attempt whose time falls in [since, until)."""

    # -- the daily blacklist scan -----------------------------------------

    @abc.abstractmethod
    async def failures(self, since: datetime, until: datetime) -> list[Failure]:
        """Every refusal whose time falls in [since, until), oldest first.

        Each refusal appears once: every attempt that was deferred or
        bounced, and every bounce record that no attempt stands for (those
        whose source is neither ``smtp`` nor ``expiry``, such as DSNs).
        """

    @abc.abstractmethod
    async def claim_report(
        self, day: str, holder: str, now: datetime, hold: timedelta, *, force: bool
    ) -> bool:
        """Take the right to send ``day``'s blacklist report, for ``hold``.

        False when another holder's claim has not run out, or when the
        report was sent already and ``force`` is not given. Only one caller
        at a time is told True for a day.
        """

    @abc.abstractmethod
    async def finish_report(
        self,
        day: str,
        holder: str,
        now: datetime,
        *,
        sent: bool,
        queue_id: str | None,
        summary: str,
    ) -> None:
        """Give up ``holder``'s claim on ``day``; with ``sent``, record the
        report as sent at ``now`` (the mail's queue id, a one-line summary)."""

    @abc.abstractmethod
    async def daily_report(self, day: str) -> DailyReport | None:
        """The record of ``day``'s report, or None when none was sent."""

    # -- results pages, metrics and the webhook outbox -------------------

    @abc.abstractmethod
    async def campaign_summaries(self) -> list[CampaignSummary]:
        """Every campaign with its first and last acceptance and its number
        of recipients, by name."""

    @abc.abstractmethod
    async def gauges(self) -> StoreGauges:
        """Recipients by state, suppressions by reason and the webhook
        outbox's length, read in one snapshot."""

    @abc.abstractmethod
    async def add_events(self, events: list[OutboxEvent]) -> None:
        """Put events in the webhook outbox, due at once (`record` does the
        same for `AttemptResult.events`, in its own transaction)."""

    @abc.abstractmethod
    async def due_events(
        self, now: datetime, limit: int, lease: timedelta
    ) -> list[OutboxEvent]:
        """Take up to ``limit`` outbox events due at ``now``, oldest first;
        each is not handed out again for ``lease`` unless settled."""

    @abc.abstractmethod
    async def event_posted(self, outbox_id: int) -> None:
        """Drop an event its endpoint has taken."""

    @abc.abstractmethod
    async def event_failed(
        self, outbox_id: int, next_attempt_at: datetime, error: str
    ) -> None:
        """Count a failed post and make the event due again at
        ``next_attempt_at``."""

    # -- housekeeping -----------------------------------------------------

    @abc.abstractmethod
    async def purge(
        self, now: datetime, keep_bodies: timedelta, keep_records: timedelta
    ) -> PurgeCounts:
        """Drop bodies ``keep_bodies`` after their last recipient became
        final, and messages, attempts and bounce records older than
        ``keep_records``."""

    @abc.abstractmethod
    async def secret(self, name: str) -> bytes:
        """A named random key, created on first use and kept for good."""
