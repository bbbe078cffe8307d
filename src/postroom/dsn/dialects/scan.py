"""The reading shared by text bounces: find the recipients, then the
reply that follows each of them.

Most non-standard bounces are a paragraph of prose, a list of addresses,
and for each address the remote server's reply. So a dialect mostly
needs to say where that text is and how an address line looks; this
module does the rest: it cuts the text into one block per recipient and
reads the reply code, enhanced status and wording of each block.
"""

from __future__ import annotations

import re

from postroom.dsn.dialects.base import Finding
from postroom.dsn.evidence import ADDRESS, best_status, reply_code_in, squeeze
from postroom.dsn.report import Action
from postroom.dsn.view import MessageView

# An address named as the envelope sender, a header or a contact, not a
# recipient; and a Message-ID, which only looks like an address.
_NOT_RECIPIENT = re.compile(
    r"(?<![\w-])(?:mail from:?|from:|sender:|envelope-from|return-path:|reply-to:"
    r"|by|contact|message-id:|references:|in-reply-to:)\s*<?\s*$",
    re.IGNORECASE,
)
# An X.400 originator/recipient field name glued to the address, as
# Exchange 5.5 writes "dda:SMTP=who@example.org".
_X400_FIELD = re.compile(r"^(?:dda:)?(?:smtp|rfc-?822)=", re.IGNORECASE)
# Header fields that hold only Message-IDs, as many as they like.
_ID_FIELDS = ("message-id:", "references:", "in-reply-to:")
_DAEMON = re.compile(r"^(?:mailer-daemon|postmaster|double-bounce)@", re.IGNORECASE)
# Lower case, matched against lowered text: IGNORECASE would stop the
# search from skipping to the first letters of the alternatives.
_DELAYED = re.compile(
    r"will (?:continue|keep) (?:trying|to try|attempting)|will (?:be )?retr(?:y|ied)"
    r"|still trying|not yet been delivered|has not been delivered yet"
    r"|delivery (?:is |has been )?delayed|this is (?:only )?a warning"
    r"|delivery attempts will continue",
)
_MAX_RECIPIENTS = 50
# The opening of a Sendmail result line: a reply code and the recipient in
# angle brackets, then "... " and the reason.
_RESULT_HEAD = re.compile(r"[45]\d\d <")


def failed_recipients_header(view: MessageView) -> list[str]:
    """Addresses named by ``X-Failed-Recipients`` (Exim and others)."""
    found: list[str] = []
    for value in view.top.get_all("X-Failed-Recipients"):
        found.extend(a for a in ADDRESS.findall(value) if a not in found)
    return found


def recipients_in(view: MessageView, text: str) -> list[str]:
    """Addresses in ``text`` that can be failed recipients, in order."""
    own = view.own_addresses
    addressed = _returned_to(view)
    found: list[str] = []
    # An address once named as a sender or a contact is the reporting side's
    # wherever the text repeats it later (a second language, a signature).
    others: set[str] = set()
    for match in ADDRESS.finditer(text):
        address = _bare(match[0])
        listed = _listed(text, match.start(), match.end())
        if (address.lower() in own or address.lower() in others) and not listed:
            continue
        # A postmaster address is the reporting system's own, unless the
        # returned message was sent to it.
        if _DAEMON.match(address) and address.lower() not in addressed:
            continue
        before = text[max(0, match.start() - 20) : match.start()]
        if _NOT_RECIPIENT.search(before) or _in_id_field(text, match.start()):
            others.add(address.lower())
            continue
        if address.lower() not in (a.lower() for a in found):
            found.append(address)
        if len(found) >= _MAX_RECIPIENTS:
            break
    return found


def _bare(found: str) -> str:
    """An address as prose quotes it, without the quotes ('who@example.org')
    or the X.400 field name (``SMTP=who@example.org``) around it."""
    return _X400_FIELD.sub("", found.strip(".").lstrip("'`"))


def _in_id_field(text: str, start: int) -> bool:
    """Whether the address at ``start`` is on a line of Message-IDs (quoted
    with ``>`` or not)."""
    line_start = text.rfind("\n", 0, start) + 1
    head = text[line_start : min(start, line_start + 40)].lstrip("> \t").lower()
    return head.startswith(_ID_FIELDS)


def _listed(text: str, start: int, end: int) -> bool:
    """Whether the address at ``start:end`` opens a line and is followed by a
    colon: how Postfix, qmail and Exim list each failed recipient before
    its reply. So listed, it is a recipient even when it is also the
    sender's (people mail themselves, and mailing lists mail their own
    members).
    """
    line_start = text.rfind("\n", 0, start) + 1
    if text[line_start:start].strip(" \t<"):
        return False
    return text.startswith((":", ">:"), end)


def _returned_to(view: MessageView) -> set[str]:
    return {
        address.lower()
        for name, value in view.original_headers
        if name.lower() == "to"
        for address in ADDRESS.findall(value)
    }


def scan(
    view: MessageView,
    text: str,
    recipients: list[str] | None = None,
    *,
    action: Action | None = None,
) -> list[Finding]:
    """One finding per recipient, each read from the text that follows it.

    Without ``recipients`` they come from ``X-Failed-Recipients`` or,
    failing that, from the addresses in ``text``. A recipient whose own
    block names no reply shares the reply of the whole text.
    """
    if recipients is None:
        recipients = failed_recipients_header(view) or recipients_in(view, text)
    if not recipients:
        return []
    if action is None:
        delayed = _DELAYED.search(text.lower()) or "delay" in view.subject.lower()
        action = Action.DELAYED if delayed else Action.FAILED

    lowered = text.lower()
    starts = _first_positions(lowered, recipients)
    findings = []
    for recipient in recipients:
        start = starts[recipient]
        if start < 0:
            block = text
        elif _result_line(lowered, start):
            # Sendmail's "554 <who@example.net>... reason" line is the
            # recipient's result; the lines after it are the next
            # recipient's transcript and result. A remote reply ("<<<")
            # right above it is what the result sums up ("Remote protocol
            # error" after a refused MAIL FROM), so it belongs to it.
            end = lowered.find("\n", start)
            block = text[_reply_above(lowered, start - 5) : end if end >= 0 else None]
        else:
            # The block ends where another recipient is named: reports that
            # list the recipients twice (a summary, then the details, or
            # one section per language) must not lend one the other's reply.
            block = text[start : _next_other(lowered, recipients, recipient, start)]
        findings.append(_finding(recipient, block, text, action))
    return findings


def scan_listed(
    view: MessageView,
    text: str,
    listed: re.Pattern[str],
    recipients: list[str] | None = None,
    *,
    action: Action | None = None,
) -> list[Finding]:
    """One finding per recipient on a line that ``listed`` matches (its first
    group is the address), each read only from the lines up to the next
    such line.

    Reports that give every failed recipient a line of its own with its
    reply indented under it (Exim, qmail) give each a reply of its own; a
    recipient whose lines name no code must not borrow its neighbour's. A
    recipient listed again (a report in two languages) keeps its first
    block. Given ``recipients``, those are read instead, in their order;
    one that no line lists is read from the whole text.
    """
    matches = list(listed.finditer(text))
    ends = [m.start() for m in matches[1:]] + [len(text)] if matches else []
    # Lower-cased address: the address as first listed, and its block.
    blocks: dict[str, tuple[str, str]] = {}
    for match, end in zip(matches, ends, strict=True):
        blocks.setdefault(match[1].lower(), (match[1], text[match.start() : end]))
    if recipients is None:
        recipients = [address for address, _block in blocks.values()]

    findings: list[Finding] = []
    for recipient in recipients[:_MAX_RECIPIENTS]:
        _listed, block = blocks.get(recipient.lower(), (recipient, text))
        findings.extend(scan(view, block, [recipient], action=action))
    return findings


def _finding(recipient: str, block: str, text: str, action: Action) -> Finding:
    own = block.replace(recipient, " ")
    code = reply_code_in(own)
    status = best_status(None, own, code)
    if code is None and status is None:
        code = reply_code_in(text)
        status = best_status(None, text, code)
        wording = text if len(squeeze(own)) < 40 else own
    else:
        wording = own
    return Finding(
        recipient=recipient,
        action=action,
        reply_code=code,
        status=str(status) if status else None,
        diagnostic=squeeze(wording),
    )


def _result_line(lowered: str, start: int) -> bool:
    """Whether the address at ``start`` is named on a Sendmail result line."""
    line_start = lowered.rfind("\n", 0, start) + 1
    head = lowered[line_start:start]
    if len(head) != 5 or not _RESULT_HEAD.match(head):
        return False
    return lowered.startswith(">... ", lowered.find(">", start))


def _reply_above(lowered: str, line_start: int) -> int:
    """Where the remote reply on the line above ``line_start`` starts, or
    ``line_start`` when that line is not one."""
    above = lowered.rfind("\n", 0, max(line_start - 1, 0)) + 1
    return above if lowered.startswith("<<< ", above) else line_start


def _first_positions(lowered: str, recipients: list[str]) -> dict[str, int]:
    return {r: lowered.find(r.lower()) for r in recipients}


def _next_other(lowered: str, recipients: list[str], own: str, start: int) -> int:
    """Where the next recipient other than ``own`` is named after ``start``."""
    ends = (lowered.find(r.lower(), start + 1) for r in recipients if r != own)
    return min((at for at in ends if at > start), default=len(lowered))
