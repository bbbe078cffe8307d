"""What a failure means: a category in the domain's words and a verdict.

``hard`` means the address itself is bad (unknown user, unknown or null-MX
domain, mailbox gone) and the address may be suppressed. Every other
category is the sender's or the moment's problem.

The text of a reply is stronger evidence than its code: servers send
``550 5.1.1`` for rate limits and ``550 5.0.0`` for unknown users, so the
category is read from the text first and from the code after.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from postroom.dsn.status import EnhancedStatus


class Category(StrEnum):
    """Why a message was not delivered."""

    UNKNOWN_USER = "unknown_user"
    UNKNOWN_DOMAIN = "unknown_domain"
    MAILBOX_GONE = "mailbox_gone"
    MAILBOX_FULL = "mailbox_full"
    BLOCKED = "blocked"  # the sender's IP, domain or reputation is refused
    POLICY = "policy"  # SPF, DKIM, DMARC, authentication
    SPAM = "spam"  # content judged spam or a virus
    RATE_LIMITED = "rate_limited"
    EXPIRED = "expired"  # retries ran out
    COMPLAINT = "complaint"
    AUTO_REPLY = "auto_reply"
    TRANSIENT = "transient"  # a temporary failure with no better name
    OTHER = "other"


HARD_CATEGORIES = frozenset(
    {Category.UNKNOWN_USER, Category.UNKNOWN_DOMAIN, Category.MAILBOX_GONE}
)


@dataclass(frozen=True, slots=True)
class Verdict:
    category: Category
    hard: bool


_TEXT_RULES: tuple[tuple[re.Pattern[str], Category], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), category)
    for pattern, category in (
        (r"rate limit|too many (messages|connections|recipients)|try again later"
         r"|throttl|slow down", Category.RATE_LIMITED),
        (r"blocklist|blacklist|block ?list|spamhaus|spamcop|barracuda"
         r"|reputation|blocked using|listed (at|on|in)|reverse dns|ptr record",
         Category.BLOCKED),
        (r"\bspf\b|\bdkim\b|\bdmarc\b|authenticat", Category.POLICY),
        (r"spam|virus|malware|content (was )?rejected", Category.SPAM),
        (r"mailbox (is )?full|over ?quota|quota exceeded|insufficient storage",
         Category.MAILBOX_FULL),
        (r"user unknown|unknown user|no such (user|mailbox|recipient)"
         r"|does not exist|recipient (address )?rejected|mailbox unavailable"
         r"|invalid recipient|address rejected|unrouteable address",
         Category.UNKNOWN_USER),
        (r"host (or domain name )?not found|domain (not found|does not exist)"
         r"|no mx|null mx|nxdomain", Category.UNKNOWN_DOMAIN),
        (r"mailbox (has been )?(disabled|deleted|closed|removed)|account (is )?"
         r"(disabled|closed|deleted)|no longer (available|active)",
         Category.MAILBOX_GONE),
    )
)

_STATUS_RULES: dict[tuple[int, int], Category] = {
    (1, 1): Category.UNKNOWN_USER,
    (1, 2): Category.UNKNOWN_DOMAIN,
    (1, 6): Category.MAILBOX_GONE,
    (1, 10): Category.UNKNOWN_USER,
    (2, 2): Category.MAILBOX_FULL,
    (4, 4): Category.UNKNOWN_DOMAIN,
    (4, 7): Category.EXPIRED,
    (7, 1): Category.BLOCKED,
    (7, 23): Category.POLICY,
    (7, 25): Category.BLOCKED,
    (7, 26): Category.POLICY,
    (7, 27): Category.UNKNOWN_DOMAIN,
}


def classify(code: int | None, status: EnhancedStatus | None, text: str) -> Verdict:
    """Name the cause of a failure from its reply code, status and text."""
    category = _category_from_text(text)
    if category is None and status is not None:
        category = _STATUS_RULES.get((status.subject, status.detail))
    if category is None:
        transient = (code is not None and 400 <= code < 500) or (
            status is not None and status.klass == 4
        )
        category = Category.TRANSIENT if transient else Category.OTHER

    permanent = (code is not None and code >= 500) or (
        status is not None and status.klass == 5
    )
    return Verdict(category, category in HARD_CATEGORIES and permanent)


def _category_from_text(text: str) -> Category | None:
    for pattern, category in _TEXT_RULES:
        if pattern.search(text):
            return category
    return None
