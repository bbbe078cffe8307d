"""Lotus Notes (R4 and R5 mail routers): reasons first, then addresses.

Under a "------- Failure Reasons --------" rule the report gives, for
each failed recipient, the reason ("User not listed in public Name &
Address Book", or the remote server's reply) and on the next line the
address it applies to. "------- Returned Message --------" starts the
copy of the message.
"""

from __future__ import annotations

from postroom.dsn.dialects.base import Dialect, Finding
from postroom.dsn.evidence import ADDRESS, best_status, reply_code_in, squeeze
from postroom.dsn.view import MessageView

_REASONS = "------- Failure Reasons"
_RETURNED = "------- Returned Message"


def _detect(view: MessageView) -> bool:
    return view.text.find(_REASONS, 0, 1500) >= 0


def _read(view: MessageView) -> list[Finding]:
    text = view.text
    start = text.find(_REASONS)
    if start < 0:
        return []
    start = text.find("\n", start) + 1
    end = text.find(_RETURNED, start)
    findings: list[Finding] = []
    reason: list[str] = []
    said = ""
    for line in text[start : end if end >= 0 else len(text)].splitlines():
        address = ADDRESS.fullmatch(line.strip().strip("<>"))
        if address is None:
            reason.append(line)
            continue
        # Recipients listed one under another share the reason above them.
        said = squeeze("\n".join(reason)) or said
        findings.append(_finding(address[0], said))
        reason = []
    return findings


def _finding(recipient: str, reason: str) -> Finding:
    code = reply_code_in(reason)
    status = best_status(None, reason, code)
    return Finding(
        recipient=recipient,
        reply_code=code,
        status=str(status) if status else None,
        diagnostic=reason,
    )


DIALECT = Dialect("notes", _detect, _read)
