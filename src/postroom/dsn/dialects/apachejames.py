"""Apache James (and the JavaMail gateways built on it, Verizon's vtext):
the error first, then the refused message's envelope as a list.

The text opens with "Error: <summary>", gives the remote reply after
"Error message below:", and lists the envelope under "Message details:"
with one field a line; the ``RCPT TO:`` lines are the recipients. The
sender address (``post_master@...``) and subject ("Re: ...") are not the
usual bounce ones, so the list is what gives the format away.
"""

from __future__ import annotations

import re

from postroom.dsn.dialects.base import Dialect, Finding
from postroom.dsn.evidence import best_status, reply_code_in, squeeze
from postroom.dsn.view import MessageView

_RCPT_TO = re.compile(r"^[ \t]*RCPT TO:[ \t]*<?([^<>@\s]+@[\w.-]+)>?", re.M | re.I)


def _detect(view: MessageView) -> bool:
    # Both as James writes them; lowering every bounce's text costs more.
    return "Message details:" in view.text and "RCPT TO:" in view.text


def _read(view: MessageView) -> list[Finding]:
    text = view.text
    details = text.find("Message details:")
    reply = squeeze(text[:details])
    code = reply_code_in(reply)
    status = best_status(None, reply, code)
    return [
        Finding(
            recipient=match[1],
            reply_code=code,
            status=str(status) if status else None,
            diagnostic=reply,
        )
        for match in _RCPT_TO.finditer(text, details)
    ]


DIALECT = Dialect("apachejames", _detect, _read)
