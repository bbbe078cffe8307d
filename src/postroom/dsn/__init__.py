"""Pure parsing of what mail servers answer: reply lines, enhanced status
codes (RFC 3463), delivery status notifications (RFC 3464), non-standard
bounces and complaint reports (RFC 5965).

Nothing in this package does I/O, touches asyncio or logs: bytes or strings
in, frozen dataclasses out. `parse` is the entry point for inbound mail.
"""

from postroom.dsn.classify import Category, Verdict, classify
from postroom.dsn.parse import parse
from postroom.dsn.report import Action, Record, Report, ReportKind
from postroom.dsn.status import EnhancedStatus, Reply, parse_reply

__all__ = [
    "Action",
    "Category",
    "EnhancedStatus",
    "Record",
    "Reply",
    "Report",
    "ReportKind",
    "Verdict",
    "classify",
    "parse",
    "parse_reply",
]
