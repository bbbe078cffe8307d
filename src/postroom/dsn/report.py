"""What the bounce parser hands back: a report of per-recipient records."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from postroom.dsn.classify import Category


class ReportKind(StrEnum):
    """What kind of message was parsed."""

    DSN = "dsn"  # a delivery status notification, standard or not
    ARF = "arf"  # an RFC 5965 complaint (feedback report)
    AUTO_REPLY = "auto_reply"  # an RFC 3834 automatic reply, to be ignored
    NOT_BOUNCE = "not_bounce"  # an ordinary message
    UNKNOWN = "unknown"  # looks like a bounce but could not be read


class Action(StrEnum):
    """The Action field of RFC 3464 section 2.3.3."""

    FAILED = "failed"
    DELAYED = "delayed"  # a deferral: the reporting server will retry
    DELIVERED = "delivered"
    RELAYED = "relayed"
    EXPANDED = "expanded"


@dataclass(frozen=True, slots=True)
class Record:
    """What a report says about one recipient.

    ``reply_code`` is the basic SMTP code (``"550"``) and ``status`` the
    enhanced code (``"5.1.1"``), each None when the message names none.
    ``hard`` means the address itself is bad. ``date`` is the last attempt
    (or the arrival) when the message gives one that can be read.
    """

    recipient: str
    action: Action
    reply_code: str | None
    status: str | None
    category: Category
    hard: bool
    diagnostic: str
    remote_mta: str | None = None
    date: datetime | None = None
    feedback_type: str | None = None

    @property
    def is_failure(self) -> bool:
        """True for a permanent failure, the only action that is a bounce."""
        return self.action is Action.FAILED


@dataclass(frozen=True, slots=True)
class Report:
    """A parsed inbound message: its kind, its records, and what it returns.

    ``original_headers`` are the header fields of the returned message
    (for matching by Message-ID or by a header we stamped);
    ``envelope_to`` is the address this message was delivered to, as far
    as its own headers tell (for matching a VERP address).
    """

    kind: ReportKind
    records: tuple[Record, ...] = ()
    original_message_id: str | None = None
    original_headers: tuple[tuple[str, str], ...] = ()
    envelope_to: str | None = None
    dialect: str | None = None

    @property
    def failed(self) -> tuple[Record, ...]:
        """The records whose action is ``failed``."""
        return tuple(r for r in self.records if r.action is Action.FAILED)
