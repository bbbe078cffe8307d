"""Reading codes out of free text, and choosing the most specific one.

A DSN's Status field is often generic (``5.0.0``) while its diagnostic
text carries the remote server's own words (``550 5.1.1 user unknown``);
the specific code is the better evidence, provided its class agrees.
When both are specific and differ, the code the remote server put next
to its own reply code is its word on the cause, and wins.
"""

from __future__ import annotations

import re
from datetime import datetime
from email.utils import parsedate_to_datetime

from postroom.dsn.status import EnhancedStatus

# An address as reports write it: the dot-atom characters of RFC 5322 in
# the local part, then a dotted domain.
ADDRESS_PATTERN = r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+"
ADDRESS = re.compile(ADDRESS_PATTERN)
# The lookbehinds sit after the first digit so that the search can skip
# to the digits that may open a code.
_REPLY_CODE = re.compile(
    r"([45](?<![\w.:/=#-][45])[0-7]\d)(?=[ -]|$|\.\s|,)", re.MULTILINE
)
_ENHANCED_ALL = re.compile(r"([245])(?<![\d.][245])\.(\d{1,3})\.(\d{1,3})(?![\d.]*\d)")
_REPLY_WITH_STATUS = re.compile(
    r"\s*([45]\d\d)[ -]([45])\.(\d{1,3})\.(\d{1,3})(?![\d.]*\d)"
)
_SPACE = re.compile(r"\s+")
# Status values that say a delivery failed without saying why.
_SUMMARIES = frozenset({(0, 0), (4, 7)})
_MAX_DIAGNOSTIC = 1000


def reply_code_in(text: str) -> str | None:
    """The first basic reply code (4xx or 5xx) that stands as a word."""
    match = _REPLY_CODE.search(text)
    return match[1] if match else None


def reply_status(text: str) -> EnhancedStatus | None:
    """The enhanced code a reply gives right after its basic code.

    ``550 5.7.1 ...`` or ``552-5.2.2 ...`` at the start of ``text``; the
    classes must agree (RFC 3463 section 3), and a summary such as the
    generic ``x.0.0`` does not count.
    """
    match = _REPLY_WITH_STATUS.match(text)
    if match is None or match[1][0] != match[2]:
        return None
    status = EnhancedStatus(int(match[2]), int(match[3]), int(match[4]))
    return None if (status.subject, status.detail) in _SUMMARIES else status


def statuses_in(text: str) -> list[EnhancedStatus]:
    """Every enhanced status code in ``text``, in order."""
    return [
        EnhancedStatus(int(m[1]), int(m[2]), int(m[3]))
        for m in _ENHANCED_ALL.finditer(text)
    ]


def best_status(
    field: str | None, text: str, reply_code: str | None = None
) -> EnhancedStatus | None:
    """The most specific trustworthy status from a field and a text.

    The field wins unless it only summarises: the generic ``x.0.0``, or
    ``4.4.7`` (RFC 3463 "delivery time expired", which says the retries
    ran out but not why); then the first other specific code of the same
    class in the text, the last remote reply's own, is taken. Without
    a field, a code in the text counts when its class agrees with the
    reply code (RFC 3463 section 3) or there is no reply code.
    """
    given = EnhancedStatus.parse(field) if field else None
    klass = given.klass if given else (int(reply_code[0]) if reply_code else None)
    found = [s for s in statuses_in(text) if klass is None or s.klass == klass]
    specific = [s for s in found if (s.subject, s.detail) != (0, 0)]
    if given is not None:
        if (given.subject, given.detail) in _SUMMARIES:
            specific = [s for s in specific if s != given]
            if specific:
                return specific[0]
        return given
    if specific:
        return specific[0]
    return found[0] if found else None


def squeeze(text: str) -> str:
    """Whitespace collapsed to single spaces, bounded in length."""
    return _SPACE.sub(" ", text).strip()[:_MAX_DIAGNOSTIC]


def lenient_date(value: str | None) -> datetime | None:
    """An RFC 5322 date, or None when it cannot be read."""
    if not value:
        return None
    try:
        return parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


# Wording that places a refusal after DATA (RFC 5321 section 3.3), as
# reporting servers write it next to the remote reply they quote.
_DATA_STAGE = re.compile(
    r"end of data\b|after data\b|reply to data\b|smtp command\W{1,20}data\b"
)
# A session transcript (Sendmail, Courier): ">>> DATA", then the replies.
# With pipelining (RFC 2920) the replies to the RCPT commands sent in the
# same batch come first, in order; only the last reply answers DATA.
_TRANSCRIPT_DATA = re.compile(r"^>>> data[ \t]*\n((?:(?!>>>)[^\n]+\n?)*)", re.MULTILINE)
# A refusal of RCPT TO names the stage that matters for the address; a later
# "no valid recipients" answer to DATA only follows from it.
_RCPT_REFUSED = re.compile(
    r"^>>> rcpt to:[^\n]*\n<<< ?[45]|(?:reply to|after) rcpt to", re.MULTILINE
)
# Like every stage pattern here, each alternative opens with a literal so
# that the search skips to its first characters (see dsn/classify.py).
# Wording that places a refusal at RCPT TO, as reporting servers write it
# next to the remote reply: Postfix, Exim, qmail ("does not like
# recipient"), and the stage fields of gateways and web mail.
_RCPT_STAGE = re.compile(
    r"reply\s+to\s+rcpt\b|after\s+rcpt\b|like\s+our\s+rcpt\b|smtp:rcpt\b"
    r"|\[rcpt_to\]|does\s+not\s+like\s+recipient|rcpt\s+to\s+generated"
)
_TRANSCRIPT_RCPT = re.compile(r"^>>> rcpt to:[^\n]*\n<<< ?[45]", re.MULTILINE)
_PARAGRAPH = 600


def answered_data(recipient: str, text: str, *, sole: bool) -> bool:
    """Whether ``text`` shows the refusal for ``recipient`` answered DATA.

    Evidence is a transcript whose reply to DATA names the recipient, or
    DATA-stage wording in the paragraph that names it. With a ``sole``
    recipient, a reply to DATA that names no one, or such wording anywhere
    in the text, is about that recipient.
    """
    lowered = text.lower()
    if "data" not in lowered:
        return False
    address = recipient.lower()
    transcript = ">>> " in lowered
    if sole and (transcript or "rcpt to" in lowered) and _RCPT_REFUSED.search(lowered):
        return False
    for match in _TRANSCRIPT_DATA.finditer(lowered) if transcript else ():
        replies = [line for line in match[1].split("\n") if line.startswith("<<<")]
        if any(address in line for line in replies[:-1]):
            return False  # refused by a pipelined RCPT reply, before DATA
        reply = replies[-1] if replies else ""
        if address in reply or (sole and len(replies) == 1 and "@" not in reply):
            return True
    return _named_near(_DATA_STAGE, address, lowered, sole=sole)


def answered_rcpt(recipient: str, text: str, *, sole: bool) -> bool:
    """Whether ``text`` shows the refusal for ``recipient`` answered RCPT TO.

    Evidence is a transcript whose reply to RCPT TO is a refusal, or
    RCPT-stage wording in the paragraph that names the recipient (anywhere
    in the text for a ``sole`` recipient).
    """
    lowered = text.lower()
    # Every stage wording has "rcpt" but qmail's, which has "like".
    if "rcpt" not in lowered and "like" not in lowered:
        return False
    address = recipient.lower()
    if ">>> " in lowered:
        for match in _TRANSCRIPT_RCPT.finditer(lowered):
            if sole or address in match[0]:
                return True
    return _named_near(_RCPT_STAGE, address, lowered, sole=sole)


def _named_near(
    stage: re.Pattern[str], address: str, lowered: str, *, sole: bool
) -> bool:
    """Whether ``stage`` wording is in the paragraph that names ``address``."""
    if sole:
        return stage.search(lowered) is not None
    at = lowered.find(address)
    while at >= 0:
        end = lowered.find("\n\n", at)
        end = at + _PARAGRAPH if end < 0 else min(end, at + _PARAGRAPH)
        if stage.search(lowered, at, end):
            return True
        at = lowered.find(address, at + 1)
    return False
