"""Automatic replies (RFC 3834): out-of-office and vacation notices.

They are answers, not failures, and are ignored. RFC 3834 section 5 asks
for ``Auto-Submitted: auto-replied``; older responders say so with
``X-Autoreply``, ``X-Autorespond``, ``Precedence: auto_reply`` or only
with a subject such as "Out of Office".
"""

from __future__ import annotations

import re

from postroom.dsn.view import MessageView

_SUBJECT = re.compile(
    r"out of (the )?office|auto(matic)?[ -]?(reply|response|antwort)|vacation"
    r"|away from|abwesen|absence|r[ée]ponse automatique|on leave|\bOOO\b",
    re.IGNORECASE,
)
_FLAG_FIELDS = ("X-Autoreply", "X-Autorespond", "X-Auto-Response-Suppress-Not")


def is_auto_reply(view: MessageView) -> bool:
    """True when the headers or subject mark an automatic reply."""
    submitted = (view.top.get("Auto-Submitted") or "").lower()
    if submitted.startswith("auto-replied"):
        return True
    if any(view.top.get(name) for name in _FLAG_FIELDS):
        return True
    precedence = (view.top.get("Precedence") or "").lower()
    if precedence.strip() == "auto_reply":
        return True
    return bool(_SUBJECT.search(view.subject))
