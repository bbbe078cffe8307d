"""qmail, and its descendants (netqmail, notqmail, vpopmail and
provider builds): "Hi. This is the qmail-send program at ...".

qmail-send opens its bounce with that greeting, says "I'm afraid I
wasn't able to deliver your message to the following addresses.", and
gives each recipient a paragraph: the address in angle brackets and a
colon on a line of its own, then what went wrong, in qmail's words
("Sorry, no mailbox here by that name. (#5.1.1)") or the remote
server's, after "Remote host said:" when qmail-remote was refused. The
copy of the message follows "--- Below this line is a copy of the
message.", a separator that builds which reword the greeting keep.

qmail bounces only when it gives up, so every recipient has failed.
"""

from __future__ import annotations

import re

from postroom.dsn.dialects.base import Dialect, Finding
from postroom.dsn.dialects.scan import scan_listed
from postroom.dsn.evidence import ADDRESS_PATTERN
from postroom.dsn.report import Action
from postroom.dsn.view import MessageView

_OPENINGS = (
    "This is the qmail-send program",
    "wasn't able to deliver your message to the following addresses",
)
SEPARATOR = "--- Below this line is a copy of the message"
# A recipient's own line: the address in angle brackets, then a colon.
LISTED = re.compile(r"^<(" + ADDRESS_PATTERN + r")>:", re.MULTILINE)


def _detect(view: MessageView) -> bool:
    head = view.text[:600]
    if any(opening in head for opening in _OPENINGS):
        return True
    # The view cuts the text where the copy starts: is that line qmail's?
    return view.full_text.startswith(SEPARATOR, len(view.text))


def _read(view: MessageView) -> list[Finding]:
    return scan_listed(view, view.text, LISTED, action=Action.FAILED)


DIALECT = Dialect("qmail", _detect, _read)
