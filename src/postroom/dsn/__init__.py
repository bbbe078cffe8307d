"""Pure parsing of what mail servers answer: reply lines, enhanced status
codes (RFC 3463), delivery status notifications (RFC 3464), non-standard
bounces and complaint reports (RFC 5965).

Nothing in this package does I/O, touches asyncio or logs: bytes or strings
in, frozen dataclasses out.
"""

from postroom.dsn.classify import Category, Verdict, classify
from postroom.dsn.status import EnhancedStatus, Reply, parse_reply

__all__ = [
    "Category",
    "EnhancedStatus",
    "Reply",
    "Verdict",
    "classify",
    "parse_reply",
]
