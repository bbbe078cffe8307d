"""The DragonFly Mail Agent (dma), the small MTA of DragonFly BSD and
others.

dma writes one report per failed recipient: "This is the DragonFly Mail
Agent <version> at <host>.", then "There was an error delivering your
mail to <who@example.net>.", then the reason, often the remote server's
reply after dma's account of the step that failed ("mx.example.net
[192.0.2.1] did not like our RCPT TO:"), and "Original message follows."
or "Message headers follow." before the copy.
"""

from __future__ import annotations

import re

from postroom.dsn.dialects.base import Dialect, Finding
from postroom.dsn.dialects.scan import scan
from postroom.dsn.view import MessageView

_AGENT = "This is the DragonFly Mail Agent"
_RECIPIENT = re.compile(
    r"There was an error delivering your mail to <([^<>@\s]+@[\w.-]+)>\.?"
)


def _detect(view: MessageView) -> bool:
    return view.text.find(_AGENT, 0, 500) >= 0


def _read(view: MessageView) -> list[Finding]:
    named = _RECIPIENT.search(view.text)
    if named is None:
        return []
    return scan(view, view.text[named.end() :], [named[1]])


DIALECT = Dialect("dma", _detect, _read)
