"""Yahoo Mail: a report in qmail's layout, under Yahoo's own opening.

Yahoo's mail servers descend from qmail. The report says "Sorry, we were
unable to deliver your message to the following address.", then gives
each recipient qmail's paragraph: the address in angle brackets and a
colon, then "Remote host said:" and the remote reply, which ends with
the stage Yahoo was at in brackets ("[RCPT_TO]", "[BODY]"), or Yahoo's
own reason ("No MX or A records for example.net"). The copy of the
message follows qmail's "--- Below this line is a copy of the message.".
"""

from __future__ import annotations

from postroom.dsn.dialects.base import Dialect, Finding
from postroom.dsn.dialects.qmail import LISTED
from postroom.dsn.dialects.scan import scan_listed
from postroom.dsn.report import Action
from postroom.dsn.view import MessageView

_OPENING = "unable to deliver your message to the following address"


def _detect(view: MessageView) -> bool:
    return view.text.find(_OPENING, 0, 400) >= 0


def _read(view: MessageView) -> list[Finding]:
    return scan_listed(view, view.text, LISTED, action=Action.FAILED)


DIALECT = Dialect("yahoo", _detect, _read)
