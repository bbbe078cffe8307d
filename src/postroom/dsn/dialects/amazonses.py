"""Amazon SES: its Diagnostic-Code wraps the remote reply in its own words.

SES writes its own classification first, a status code, a dash and a
description ("5.1.0 - Unknown address error"), then the remote server's
reply in single quotes after the basic code and a hyphen, then the number
of attempts. The leading code is SES's summary; the quoted reply's own
code, when it has one, is the receiving server's verdict.
"""

from __future__ import annotations

import re

_WRAPPED = re.compile(r"^[245]\.\d{1,3}\.\d{1,3} - [^'\n]{0,80}?[245]\d\d-'([^']*)'")


def remote_reply(diagnostic: str) -> str | None:
    """The remote reply quoted in an SES diagnostic, or None."""
    match = _WRAPPED.match(diagnostic)
    return match[1] if match else None
