"""The records the store keeps, as frozen dataclasses.

A message is stored once (its raw bytes); each envelope recipient gets its
own row with its own state, attempts and bounce records. All times are
aware datetimes in UTC.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class State(StrEnum):
    """Where one recipient of one message stands.

    ``queued -> delivered | deferred -> ... | bounced | expired``; plus
    ``suppressed`` (never attempted) and ``invalid`` (known undeliverable
    without asking anyone: bad syntax, NXDOMAIN, null MX). ``expired``
    counts as bounced in statistics and exports.
    """

    QUEUED = "queued"
    DEFERRED = "deferred"
    DELIVERED = "delivered"
    BOUNCED = "bounced"
    EXPIRED = "expired"
    SUPPRESSED = "suppressed"
    INVALID = "invalid"

    @property
    def is_final(self) -> bool:
        return self not in (State.QUEUED, State.DEFERRED)


class Outcome(StrEnum):
    """What one delivery attempt ended in."""

    DELIVERED = "delivered"
    DEFERRED = "deferred"
    BOUNCED = "bounced"
    INVALID = "invalid"


@dataclass(frozen=True, slots=True)
class NewRecipient:
    address: str
    display_name: str = ""  # from the To:/Cc: header when it names this address


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message as accepted over SMTP, before it has a queue id."""

    mail_from: str
    recipients: tuple[NewRecipient, ...]
    raw: bytes  # the message exactly as it will be delivered (CRLF lines)
    campaign: str
    submitted_by: str | None  # the AUTH user, if any
    client_address: str
    message_id: str | None = None  # the Message-ID header, if any


@dataclass(frozen=True, slots=True)
class Accepted:
    """What the store answers once a message is durably committed."""

    queue_id: str
    recipient_ids: tuple[int, ...]
    suppressed: tuple[str, ...] = ()  # recipients stored as suppressed


@dataclass(frozen=True, slots=True)
class Recipient:
    id: int
    queue_id: str
    address: str
    display_name: str
    campaign: str
    state: State
    attempts: int
    accepted_at: datetime
    next_attempt_at: datetime | None
    updated_at: datetime
    last_code: int | None = None
    last_status: str | None = None
    last_reply: str | None = None

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2].lower()


@dataclass(frozen=True, slots=True)
class Message:
    queue_id: str
    mail_from: str
    campaign: str
    submitted_by: str | None
    client_address: str
    message_id: str | None
    accepted_at: datetime
    size: int
    body_purged: bool


@dataclass(frozen=True, slots=True)
class Attempt:
    """One try at delivering to one recipient, with the whole reply."""

    recipient_id: int
    at: datetime
    outcome: Outcome
    mx_host: str | None  # the host that answered, or None when none did
    code: int | None  # basic reply code; None for timeouts, refused connections
    status: str | None  # enhanced status "4.7.1"
    text: str  # every line of the reply, or the local error


@dataclass(frozen=True, slots=True)
class BounceRecord:
    """A failure that counts: a synchronous 5xx, an expiry or a DSN.

    The same shape serves rejections seen while delivering and bounces that
    arrive later as reports.
    """

    recipient_id: int | None  # None for a report that matched no recipient
    address: str
    campaign: str | None
    at: datetime
    action: str  # failed | delayed | delivered | relayed | expanded
    code: int | None
    status: str | None
    category: str
    hard: bool
    diagnostic: str
    remote_mta: str | None = None
    source: str = "smtp"  # smtp | expiry | dsn


@dataclass(frozen=True, slots=True)
class Delivery:
    """A due recipient leased to this node for one attempt."""

    recipient: Recipient
    mail_from: str
    lease_until: datetime


@dataclass(frozen=True, slots=True)
class AttemptResult:
    """Everything one finished attempt changes, written in one transaction.

    ``next_attempt_at`` is set for a deferral that will be retried.
    ``bounce`` is set when the attempt produced a bounce record.
    ``events`` go to the webhook outbox in the same transaction.
    """

    attempt: Attempt
    state: State
    next_attempt_at: datetime | None = None
    bounce: BounceRecord | None = None
    events: tuple[OutboxEvent, ...] = ()  # webhook posts, stored with the change


@dataclass(frozen=True, slots=True)
class Stats:
    """Counts for one campaign or all, in the words survey platforms use."""

    sent_ok: int = 0
    bounced: int = 0  # bounced and expired
    invalid: int = 0
    deferred: int = 0
    queued: int = 0
    suppressed: int = 0
    unsubscribed: int = 0  # on the campaign's list by unsubscribe or complaint
    complaints: int = 0  # of those, by complaint
    by_state: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ExportRow:
    """One line of the bounce or deferral CSV."""

    address: str
    display_name: str
    campaign: str
    code: int | None
    status: str | None
    at: datetime
    text: str


# -- the daily blacklist scan ---------------------------------------------


@dataclass(frozen=True, slots=True)
class Failure:
    """One refusal seen on a day: a failed attempt or a later bounce report.

    ``source`` is ``attempt`` for a delivery attempt (deferred or bounced)
    and the bounce record's source otherwise (``dsn``). ``queue_id`` is
    None when a report matched no recipient.
    """

    source: str
    at: datetime
    address: str
    campaign: str
    queue_id: str | None
    mx_host: str | None
    code: int | None
    status: str | None
    text: str


@dataclass(frozen=True, slots=True)
class DailyReport:
    """What the store remembers of one day's blacklist report."""

    day: str  # YYYY-MM-DD in the scan's time zone
    sent_at: datetime | None
    queue_id: str | None  # the report mail, when one was enqueued
    summary: str


@dataclass(frozen=True, slots=True)
class Suppression:
    """One address on one suppression list (a campaign, or ``*`` for all)."""

    scope: str
    address: str
    reason: str  # unsubscribe | complaint | a bounce category | manual | import
    created_at: datetime


@dataclass(frozen=True, slots=True)
class NewInboundReport:
    """A message that arrived at the inbound listener, before it is read."""

    peer: str
    mail_from: str
    rcpts: tuple[str, ...]
    raw: bytes


class InboundOutcome(StrEnum):
    """What came of one address of a kept inbound message.

    A message sent to several of our addresses gets the outcomes of each,
    joined by commas in the order they came (``forwarded,bounced``).
    """

    PENDING = "pending"  # kept, not acted on yet
    BOUNCED = "bounced"  # a failure recorded for the recipient it names
    DUPLICATE = "duplicate"  # a failure or complaint already recorded
    DELAYED = "delayed"  # the reporting server is still trying
    NO_FAILURE = "no_failure"  # a DSN about its recipient with no failure
    COMPLAINT = "complaint"
    UNSUBSCRIBED = "unsubscribed"
    FORWARDED = "forwarded"  # mail to postmaster, sent on
    KEPT = "kept"  # mail to postmaster, with nobody to forward to
    UNMATCHED = "unmatched"  # a report about no recipient we know
    FORGED = "forged"  # a token that fails its signature
    UNREADABLE = "unreadable"  # neither a DSN, a complaint nor an auto-reply
    IGNORED = "ignored"  # an auto-reply or an ordinary message


@dataclass(frozen=True, slots=True)
class InboundReport:
    """A kept inbound message and what came of it.

    ``outcome`` is one `InboundOutcome`, or several joined by commas.
    """

    id: int
    received_at: datetime
    peer: str
    mail_from: str
    rcpts: tuple[str, ...]
    size: int
    kind: str | None
    outcome: str
    recipient_id: int | None
    detail: str


# -- results pages, metrics and webhooks ----------------------------------


@dataclass(frozen=True, slots=True)
class CampaignSummary:
    """One campaign at a glance: when it was sent and to how many."""

    campaign: str
    first_at: datetime  # the first message's acceptance
    last_at: datetime  # the last message's acceptance
    recipients: int


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    """One event waiting to be posted to one webhook endpoint.

    ``body`` is the exact JSON posted; ``id`` is the outbox row, None
    before it is stored.
    """

    endpoint: str  # the endpoint's URL
    event_id: str
    body: str
    created_at: datetime
    attempts: int = 0
    id: int | None = None


@dataclass(frozen=True, slots=True)
class StoreGauges:
    """What the store holds right now, for metrics read at scrape time."""

    recipients_by_state: dict[str, int]
    suppressions_by_reason: dict[str, int]
    webhook_outbox: int
