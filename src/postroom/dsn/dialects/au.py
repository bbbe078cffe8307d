"""KDDI's au one net (ezweb.ne.jp, dion.ne.jp): a Japanese notice, then the
error in English.

The notice comes from a no-reply address with an ``auone-net.jp``
Reply-To or Message-ID, under a subject that says nothing of a bounce
("Mail", or a Japanese phrase). The English part names the recipient in
angle brackets after "Could not be delivered to:" and gives the reason
on the lines after it ("As their mailbox is full."). The returned copy's
To is not evidence: a forward inside au can send it to another address.
"""

from __future__ import annotations

import re

from postroom.dsn.dialects.base import Dialect, Finding
from postroom.dsn.evidence import squeeze
from postroom.dsn.view import MessageView

_DOMAIN = "auone-net.jp"
_NOT_DELIVERED = re.compile(
    r"could not be delivered to:\s*<([^<>@\s]+@[\w.-]+)>[ \t]*"
    r"((?:\n[ \t]*\S[^\n]*){0,3})",
    re.IGNORECASE,
)


def _detect(view: MessageView) -> bool:
    top = view.top
    stamps = (top.get("Reply-To") or "", top.get("Message-ID") or "")
    return any(_DOMAIN in value.lower() for value in stamps)


def _read(view: MessageView) -> list[Finding]:
    return [
        Finding(recipient=match[1], diagnostic=squeeze(match[2]))
        for match in _NOT_DELIVERED.finditer(view.text)
    ]


DIALECT = Dialect("au", _detect, _read)
