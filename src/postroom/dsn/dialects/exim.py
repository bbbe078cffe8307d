"""Exim, and the providers that run it (Mail.ru, GMX): "The following
address(es) failed:", then one block per recipient.

An Exim bounce says "This message was created automatically by mail
delivery software." (or by whatever the administrator put there) under
the subject "Mail delivery failed: returning message to sender", names
the failed addresses in an X-Failed-Recipients field, and lists them
after "The following address(es) failed:". Each recipient has a line of
its own, indented by two spaces (older releases add a colon; GMX writes
the address at the margin, quoted or in angle brackets), and the reasons
follow on more deeply indented lines: the host, "SMTP error from remote
mail server after RCPT TO:", and the remote reply. The copy of the
message follows a "------ This is a copy of the message" line.

A deferral warning ("Warning: message ... delayed 24 hours") has the
same skeleton, with "The address(es) to which the message has not yet
been delivered is/are:" before the list and a "Delay reason:" in each
block. Mail.ru puts a Russian version of the report, with the same list,
before the English one.
"""

from __future__ import annotations

import re

from postroom.dsn.dialects.base import Dialect, Finding
from postroom.dsn.dialects.scan import failed_recipients_header, scan_listed
from postroom.dsn.evidence import ADDRESS_PATTERN
from postroom.dsn.report import Action
from postroom.dsn.view import MessageView

_OPENING = "This message was created automatically by"
_FAILED = re.compile(r"following\s+address(?:\(es\)|es)?\s+failed:")
_DELAYED = re.compile(r"has\s+not\s+yet\s+been\s+delivered\s+(?:is|are):")
# A recipient's own line: two spaces and the bare address (a colon after
# it in old releases, or in angle brackets with the reason after the
# colon), or GMX's address at the margin, quoted and with a colon or in
# angle brackets. An indented address in angle brackets and nothing else
# is the sender's, in "A message sent by <...> could not be delivered".
_LISTED = re.compile(
    r"^(?!  <[^\n>]*>[ \t]*$)(?:  <?|[\"<])"
    r"(" + ADDRESS_PATTERN + r")"
    r"(?:>:.*|[\">]?:?[ \t]*$)",
    re.MULTILINE,
)


def _detect(view: MessageView) -> bool:
    if view.text.find(_OPENING, 0, 600) >= 0 or "Mail delivery failed" in view.subject:
        return True
    # A provider's translation can push the opening further down; Exim
    # stamps X-Failed-Recipients on its bounces (Gmail does too, so the
    # reading checks for Exim's introduction).
    return view.subject.startswith("Warning: message ") or bool(
        view.top.get("X-Failed-Recipients")
    )


def _read(view: MessageView) -> list[Finding]:
    text = view.text
    if _FAILED.search(text):
        action = Action.FAILED
    elif _DELAYED.search(text):
        action = Action.DELAYED
    else:
        return []

    # The list is read wherever it is, which is before the English
    # introduction where a provider puts a translation first. The
    # X-Failed-Recipients field, written for machines, says who failed.
    recipients = failed_recipients_header(view) or None
    return scan_listed(view, text, _LISTED, recipients, action=action)


DIALECT = Dialect("exim", _detect, _read)
