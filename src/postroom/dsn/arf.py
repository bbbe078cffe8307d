"""Complaint reports: the Abuse Reporting Format of RFC 5965.

A ``multipart/report; report-type=feedback-report`` holds a
``message/feedback-report`` part whose fields say what kind of feedback
it is (Feedback-Type, section 3.1) and, optionally, which recipient
complained (Original-Rcpt-To, section 3.2). Many providers redact that
field; the To of the returned message is then the best evidence left.
"""

from __future__ import annotations

from postroom.dsn.classify import Category
from postroom.dsn.evidence import ADDRESS, lenient_date
from postroom.dsn.mime import parse_headers
from postroom.dsn.report import Action, Record
from postroom.dsn.view import MessageView


def read_feedback(view: MessageView) -> tuple[Record, ...]:
    """One complaint record per reported recipient."""
    part = view.has_part("message/feedback-report")
    fields = parse_headers(part.text()) if part is not None else ()
    values: dict[str, list[str]] = {}
    for name, value in fields:
        values.setdefault(name.lower(), []).append(value)

    feedback_type = (values.get("feedback-type") or ["abuse"])[0].strip().lower()
    recipients = _addresses(values.get("original-rcpt-to", []))
    if not recipients:
        recipients = _addresses(
            [v for n, v in view.original_headers if n.lower() == "to"]
        )
    date = lenient_date(next(iter(values.get("arrival-date", [])), None))
    return tuple(
        Record(
            recipient=address,
            # The message was delivered; the complaint is the category.
            action=Action.DELIVERED,
            reply_code=None,
            status=None,
            category=Category.COMPLAINT,
            hard=False,
            diagnostic=f"feedback report: {feedback_type}",
            date=date,
            feedback_type=feedback_type,
        )
        for address in recipients
    )


def _addresses(values: list[str]) -> list[str]:
    found: list[str] = []
    for value in values:
        for address in ADDRESS.findall(value):
            if address not in found:
                found.append(address)
    return found
