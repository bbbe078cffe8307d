"""Lotus Domino delivery failure reports.

Domino names the returned message first ("Your message" and its Subject),
then says it "was not delivered to:" with the recipients one a line, and
"because:" with one reason for all of them, in Domino's words ("User
kijitora (kijitora@example.net) not listed in Domino Directory") or the
remote server's reply. The subject repeats it ("DELIVERY FAILURE: ...").
"""

from __future__ import annotations

from postroom.dsn.dialects.base import Dialect, Finding
from postroom.dsn.dialects.scan import scan
from postroom.dsn.evidence import ADDRESS
from postroom.dsn.view import MessageView

_NOT_DELIVERED = "was not delivered to:"
_BECAUSE = "because:"


def _detect(view: MessageView) -> bool:
    return view.text.find(_NOT_DELIVERED, 0, 1500) >= 0


def _read(view: MessageView) -> list[Finding]:
    text = view.text
    listed = text.find(_NOT_DELIVERED)
    because = text.find(_BECAUSE, listed) if listed >= 0 else -1
    if because < 0:
        return []
    recipients = list(dict.fromkeys(ADDRESS.findall(text[listed:because])))
    # One reason for all of them, which may name one of them again.
    reason = text[because + len(_BECAUSE) :]
    return scan(view, reason, recipients) if recipients else []


DIALECT = Dialect("domino", _detect, _read)
