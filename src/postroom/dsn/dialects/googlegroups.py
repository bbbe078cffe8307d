"""Google Groups: a post the group refused, in any of many languages.

Google Groups answers a post it will not distribute with a bounce whose
prose is translated into the poster's language, and names the group in
``X-Failed-Recipients``. The prose always says the same two things: the
group may not exist, or the sender may not post to it. Google answers
the same way for both, so the refusal is read as one of the sender.
"""

from __future__ import annotations

from postroom.dsn.dialects.base import Dialect, Finding
from postroom.dsn.dialects.scan import failed_recipients_header
from postroom.dsn.report import Action
from postroom.dsn.view import MessageView

_GROUPS_DOMAIN = "@googlegroups.com"
_WORDING = "the sender is not permitted to post to the group, or it does not exist"


def _detect(view: MessageView) -> bool:
    failed = view.top.get("X-Failed-Recipients") or ""
    return _GROUPS_DOMAIN in failed.lower()


def _read(view: MessageView) -> list[Finding]:
    return [
        Finding(recipient=group, action=Action.FAILED, diagnostic=_WORDING)
        for group in failed_recipients_header(view)
        if group.lower().endswith(_GROUPS_DOMAIN)
    ]


DIALECT = Dialect("googlegroups", _detect, _read)
