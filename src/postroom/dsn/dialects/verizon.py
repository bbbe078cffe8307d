"""Verizon Wireless's MMS gateway (MMSC): a message to a phone refused.

The notice comes from an "MMSC NDR Administrator", says "Message could
not be delivered to mobile.", gives the reason on an ``Error:`` line,
and quotes the refused message's From, To and Subject under "Original
Message:"; the quoted To is the recipient.
"""

from __future__ import annotations

import re

from postroom.dsn.dialects.base import Dialect, Finding
from postroom.dsn.evidence import ADDRESS, squeeze
from postroom.dsn.view import MessageView

_ERROR = re.compile(r"^Error:[ \t]*([^\n]+)", re.M)
_QUOTED_TO = re.compile(r"^To:[ \t]*([^\n]+)", re.M)


def _detect(view: MessageView) -> bool:
    return view.full_text.find("could not be delivered to mobile", 0, 2000) >= 0


def _read(view: MessageView) -> list[Finding]:
    text = view.full_text
    original = text.find("Original Message:")
    quoted = _QUOTED_TO.search(text, original) if original >= 0 else None
    if quoted is None:
        return []
    error = _ERROR.search(text, 0, original)
    reason = squeeze(error[1]) if error else ""
    return [
        Finding(recipient=address, diagnostic=reason)
        for address in ADDRESS.findall(quoted[1])
    ]


DIALECT = Dialect("verizon", _detect, _read)
