"""Gmail's older prose reports, before it wrote RFC 3464 DSNs.

The report says "Delivery to the following recipient failed permanently:"
(or "recipients", or "has been delayed:" in a warning that Gmail will
keep trying), lists the recipients one an indented line, then gives
"Technical details of permanent failure:" (or "temporary failure:"):
Google's own sentence and, after "The error that the other server
returned was:", the receiving server's reply, often with Gmail's "(state
NN)" after it. The returned copy follows "----- Original message -----".
"""

from __future__ import annotations

import re

from postroom.dsn.dialects.base import Dialect, Finding
from postroom.dsn.dialects.scan import scan
from postroom.dsn.evidence import ADDRESS
from postroom.dsn.report import Action
from postroom.dsn.view import MessageView

_HEADING = "Delivery to the following recipient"
_LIST = re.compile(
    r"Delivery to the following recipients? (?:(failed permanently)"
    r"|(?:has|have) been delayed):[ \t]*\n"
)
_DETAILS = "Technical details"


def _detect(view: MessageView) -> bool:
    return view.text.find(_HEADING, 0, 1500) >= 0


def _read(view: MessageView) -> list[Finding]:
    text = view.text
    heading = _LIST.search(text)
    if heading is None:
        return []
    details = text.find(_DETAILS, heading.end())
    listed = text[heading.end() : details if details >= 0 else len(text)]
    recipients = list(dict.fromkeys(ADDRESS.findall(listed)))
    if not recipients:
        return []
    action = Action.FAILED if heading[1] else Action.DELAYED
    # Every recipient shares the one technical section; one that the
    # remote reply names gets the part from its name on.
    reply = text[details:] if details >= 0 else listed
    return scan(view, reply, recipients, action=action)


DIALECT = Dialect("gmail", _detect, _read)
