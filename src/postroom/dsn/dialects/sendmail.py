"""Sendmail (V5 and V8) reports written as prose, with no delivery-status
part: from old versions, or from a Sendmail told not to send MIME errors.

After a line on when and from where the message was received, V8 lists
the recipients under a rule, "----- The following addresses had
permanent fatal errors -----" ("transient non-fatal" in a warning), one
address a line, each with an indented "(reason: ...)" and perhaps an
"(expanded from: ...)" that names the alias, not a recipient. Then
"----- Transcript of session follows -----": the commands sent (">>>"),
the replies received ("<<<"), and Sendmail's result line for each
recipient ("550 5.1.1 <who@example.net>... User unknown"). V5 has only
the transcript. "----- Unsent message follows -----" (or "Original
message follows") starts the copy.
"""

from __future__ import annotations

import re

from postroom.dsn.dialects.base import Dialect, Finding
from postroom.dsn.dialects.scan import scan
from postroom.dsn.evidence import ADDRESS_PATTERN
from postroom.dsn.report import Action
from postroom.dsn.view import MessageView

_TRANSCRIPT = "----- Transcript of session follows -----"
_LISTED = re.compile(
    r"^[ \t]*-----[ \t]*The following addresses had (permanent fatal|transient"
    r" non-fatal) errors[ \t]*-----[ \t]*\n((?:[ \t]*\S[^\n]*\n?)*)",
    re.M,
)
# A line of the list that names a recipient: not indented, not a comment.
_LISTED_ADDRESS = re.compile(rf"^<?({ADDRESS_PATTERN})", re.M)
# A result line ("550 5.1.1 <who@...>... User unknown", V5 without the
# code) or the RCPT TO command of the transcript.
_TRANSCRIBED = re.compile(
    r"^(?:(?:[45]\d\d[ -](?:[45]\.\d{1,3}\.\d{1,3} )?)?<?"
    rf"({ADDRESS_PATTERN})>?\.\.\.\s"
    rf"|>>> RCPT To:[ \t]*<({ADDRESS_PATTERN})>)",
    re.M | re.I,
)
_COPY = "----- Unsent message follows -----"


def _detect(view: MessageView) -> bool:
    head = view.text[:2000]
    return _TRANSCRIPT in head or "----- The following addresses had" in head


def _read(view: MessageView) -> list[Finding]:
    text = view.text
    end = text.find(_COPY)
    text = text[: end if end >= 0 else len(text)]
    listed = _LISTED.search(text)
    action = None
    if listed is not None:
        action = Action.FAILED if listed[1] == "permanent fatal" else Action.DELAYED
        found = [m[1] for m in _LISTED_ADDRESS.finditer(listed[2])]
        start = listed.start()
    else:
        start = text.find(_TRANSCRIPT)
        if start < 0:
            return []
        found = [m[1] or m[2] for m in _TRANSCRIBED.finditer(text, start)]
    recipients = list(dict.fromkeys(found))
    if not recipients:
        return []
    return scan(view, text[start:], recipients, action=action)


DIALECT = Dialect("sendmail", _detect, _read)
