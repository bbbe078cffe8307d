"""Amazon SES notifications delivered by e-mail through Amazon SNS.

Instead of a DSN, SES can publish a JSON document that SNS mails on,
either bare or as the string value of ``Message`` in SNS's own envelope.
``notificationType`` is ``Bounce``, ``Delivery`` or ``Complaint``. A
bounce lists ``bouncedRecipients``, each an object with its address,
action, status and diagnostic; a delivery lists the delivered
``recipients`` and the remote server's ``smtpResponse``. Complaints are
not read here.

The document is read with patterns, not a JSON parser: relays fold or
cut its long lines (RFC 5321 section 4.5.3.1.6 limits a line to 998
characters; Sendmail breaks longer ones with ``!``, a line break and a
space), which leaves the whole invalid while each recipient's object,
written on one line near the start, survives.
"""

from __future__ import annotations

import re

from postroom.dsn.dialects.base import Dialect, Finding
from postroom.dsn.evidence import reply_code_in
from postroom.dsn.report import Action
from postroom.dsn.view import MessageView

_MARK = '"notificationType'
_TYPE = re.compile(r'"notificationType":\s*"(\w+)"')
_BOUNCED = re.compile(r'\{"emailAddress":"([^"]+)"((?:,"\w+":"[^"]*")*)\}')
_MEMBER = re.compile(r'"(\w+)":"([^"]*)"')
_DELIVERED_TO = re.compile(r'"recipients":\[([^\]]*)\]')
_RESPONSE = re.compile(r'"smtpResponse":"([^"]*)"')
_ACTIONS = {action.value: action for action in Action}


def _detect(view: MessageView) -> bool:
    return view.full_text.find(_MARK, 0, 1000) >= 0


def _read(view: MessageView) -> list[Finding]:
    text = view.full_text.replace("!\n ", "").replace('\\"', '"')
    kind = _TYPE.search(text)
    if kind is None:
        return []
    if kind[1] == "Bounce":
        return [_bounced(match) for match in _BOUNCED.finditer(text, kind.end())]
    if kind[1] == "Delivery":
        return _delivered(text)
    return []


def _bounced(match: re.Match[str]) -> Finding:
    members = dict(_MEMBER.findall(match[2]))
    diagnostic = members.get("diagnosticCode", "").split(";", 1)[-1].strip()
    return Finding(
        recipient=match[1],
        action=_ACTIONS.get(members.get("action", ""), Action.FAILED),
        reply_code=reply_code_in(diagnostic),
        status=members.get("status") or None,
        diagnostic=diagnostic,
    )


def _delivered(text: str) -> list[Finding]:
    listed = _DELIVERED_TO.search(text)
    if listed is None:
        return []
    response = _RESPONSE.search(text)
    return [
        Finding(
            recipient=address,
            action=Action.DELIVERED,
            diagnostic=response[1] if response else "",
        )
        for address in re.findall(r'"([^"]+@[^"]+)"', listed[1])
    ]


DIALECT = Dialect("ses-notification", _detect, _read)
