"""The fallback: any message that looks like a bounce, read as prose.

It takes the text before the returned copy, finds the addresses that are
neither ours nor the returned message's sender, and reads the reply that
follows each. It only runs when the message shows it is a bounce: a
mailer-daemon sender, a bounce subject, ``X-Failed-Recipients`` or a
delivery-status part.
"""

from __future__ import annotations

import re

from postroom.dsn.dialects.base import Dialect, Finding
from postroom.dsn.dialects.scan import scan
from postroom.dsn.evidence import ADDRESS, reply_code_in
from postroom.dsn.view import MessageView

_DELIVERY_STATUS = ("message/delivery-status", "message/global-delivery-status")
_DAEMON_SENDER = re.compile(
    r"mailer-daemon|postmaster|mail delivery|mail ?administrator|mdaemon"
    r"|bounce|returned|daemon|nobody@|delivery",
    re.IGNORECASE,
)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|undelivered|delivery (status|failure|notification|report|problem)"
    r"|failure notice|returned mail|mail delivery failed|delivery failed"
    r"|could not be delivered|non.?delivery|not delivered|failed delivery"
    r"|mail system error|delivery error|bounce|rejected|warning: could not"
    r"|mail failure|permanent error|unable to deliver|message not deliverable",
    re.IGNORECASE,
)


def looks_like_bounce(view: MessageView) -> bool:
    """True when the sender, subject or headers say this is a bounce."""
    if view.top.get("X-Failed-Recipients"):
        return True
    return bool(
        _DAEMON_SENDER.search(view.sender) or _BOUNCE_SUBJECT.search(view.subject)
    )


def _detect(view: MessageView) -> bool:
    # A delivery-status part whose groups named no one still makes the
    # message a report, whatever its sender and subject say.
    return looks_like_bounce(view) or view.has_part(*_DELIVERY_STATUS) is not None


def _read(view: MessageView) -> list[Finding]:
    findings = scan(view, view.text)
    if findings:
        return findings
    # A delivery-status part that lists no recipient (Postfix's "Delivery
    # report unavailable") is still a report on the returned copy.
    empty_report = view.has_part(*_DELIVERY_STATUS) is not None
    if reply_code_in(view.text) is None and not empty_report:
        return findings
    # No address in the prose: the returned copy's To is the recipient.
    for name, value in view.original_headers:
        if name.lower() == "to":
            return scan(view, view.text, _addresses(value))
    return []


def _addresses(value: str) -> list[str]:
    return ADDRESS.findall(value)[:1]


DIALECT = Dialect("generic", _detect, _read)
