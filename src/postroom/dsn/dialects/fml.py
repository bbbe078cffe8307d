"""fml, a mailing-list manager: the list refuses a post and tells the poster.

fml stamps ``X-MLServer: fml`` on everything it sends. Its refusals name
the list in angle brackets in their first sentence ("You are not a member
of this mailing list <list@example.org>", "Duplicated Message-ID in
<list@example.org>"); the list is the recipient that was not reached, and
the subject carries the reason too ("Loop Alert: ...").
"""

from __future__ import annotations

import re

from postroom.dsn.dialects.base import Dialect, Finding
from postroom.dsn.evidence import squeeze
from postroom.dsn.view import MessageView

_BRACKETED = re.compile(r"<([^<>@\s]+@[\w-]+(?:\.[\w-]+)+)>")


def _detect(view: MessageView) -> bool:
    return "fml" in (view.top.get("X-MLServer") or "").lower()


def _read(view: MessageView) -> list[Finding]:
    paragraph = view.text.strip().split("\n\n", 1)[0]
    listed = _BRACKETED.search(paragraph)
    if listed is None:
        return []
    return [
        Finding(
            recipient=listed[1],
            diagnostic=squeeze(f"{view.subject} {paragraph}"),
        )
    ]


DIALECT = Dialect("fml", _detect, _read)
