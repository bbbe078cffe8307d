"""Microsoft Exchange 2000 and 2003 non-delivery reports.

The report opens with a summary of the returned message, "Your message"
and its To, Subject and Sent lines; that To is the message's own header,
not a list of failures. Then "did not reach the following recipient(s):"
(Exchange 5.5 and Outlook: "The following recipient(s) could not be
reached:") and, for each failed recipient, a line "<address> on <date>"
followed by indented lines with the reason: a sentence, then the server
and status in angle brackets ("<mx.example.net #5.1.1>") or an MSEXCH
line with Exchange's own error number ("MSEXCH:IMS:... 0 (000C05A6)
Unknown Recipient").
"""

from __future__ import annotations

import re

from postroom.dsn.dialects.base import Dialect, Finding
from postroom.dsn.dialects.scan import scan
from postroom.dsn.evidence import ADDRESS_PATTERN
from postroom.dsn.view import MessageView

_HEADINGS = (
    "did not reach the following recipient",
    "following recipient(s) could not be reached",
)
# "<address> on <date>"; the date is the attempt's, not part of the reason.
_RECIPIENT_LINE = re.compile(
    r"^[ \t]*<?(" + ADDRESS_PATTERN + r")>?[ \t]+on[ \t][^\n]*",
    re.M,
)


def _heading(text: str, limit: int) -> int:
    """Where the text after the recipients heading starts, or -1."""
    for heading in _HEADINGS:
        at = text.find(heading, 0, limit)
        if at >= 0:
            return text.find("\n", at) + 1 or len(text)
    return -1


def _detect(view: MessageView) -> bool:
    # The summary of the returned message comes first; its To line can be long.
    return _heading(view.text, 3000) >= 0


def _read(view: MessageView) -> list[Finding]:
    start = _heading(view.text, len(view.text))
    if start < 0:
        return []
    failures = view.text[start:]
    lines = list(_RECIPIENT_LINE.finditer(failures))
    if not lines:
        return []
    ends = [line.start() for line in lines[1:]] + [len(failures)]
    findings: list[Finding] = []
    seen: set[str] = set()
    # Each recipient has its own reason: one that gives no code must not
    # borrow the next one's.
    for line, end in zip(lines, ends, strict=True):
        if line[1].lower() not in seen:
            seen.add(line[1].lower())
            reason = f"{line[1]}\n{failures[line.end() : end]}"
            findings.extend(scan(view, reason, [line[1]]))
    return findings


DIALECT = Dialect("exchange2003", _detect, _read)
