"""The bounce parser's entry point: bytes of one inbound message in, a
`Report` out.

How a message is read, in order:

1. Split the top-level header fields and walk the MIME parts (never the
   returned copy's own parts).
2. A ``message/feedback-report`` part makes it an RFC 5965 complaint.
3. A ``message/delivery-status`` or ``message/global-delivery-status``
   part makes it an RFC 3464 / RFC 6533 DSN, read field by field.
4. Otherwise each non-standard dialect is tried, the generic one last.
5. A message that is none of these but says it was sent automatically
   in reply (RFC 3834) is an auto-reply; anything else is not a bounce.

Reading never raises: input that defeats it gives a report of kind
``unknown``.
"""

from __future__ import annotations

import re

from postroom.dsn.arf import read_feedback
from postroom.dsn.autoreply import is_auto_reply
from postroom.dsn.classify import Category, classify
from postroom.dsn.dialects import REGISTRY, Finding
from postroom.dsn.dialects.amazonses import remote_reply
from postroom.dsn.dialects.gateway import filtering_gateway
from postroom.dsn.dialects.generic import looks_like_bounce
from postroom.dsn.evidence import (
    ADDRESS,
    ADDRESS_PATTERN,
    answered_data,
    answered_rcpt,
    best_status,
    lenient_date,
    reply_code_in,
    reply_status,
    squeeze,
)
from postroom.dsn.mime import split_message
from postroom.dsn.report import Action, Record, Report, ReportKind
from postroom.dsn.rfc3464 import RecipientFields, parse_delivery_status
from postroom.dsn.status import EnhancedStatus
from postroom.dsn.view import MessageView, make_view

_DELIVERY_STATUS = ("message/delivery-status", "message/global-delivery-status")
# A recipient field may hold a quoted local part (RFC 5321 section 4.1.2,
# ``"a b"@example.net``); the quotes are part of the address.
_FIELD_ADDRESS = re.compile(
    r"(?:\"[^\"\n]{1,64}\"|[\w.!#$%&'*+/=?^`{|}~-]+)@[\w-]+(?:\.[\w-]+)+"
)
_ENVELOPE_FIELDS = ("Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To")
_ACTIONS = {action.value: action for action in Action}
_ACTION_CLASS = {Action.FAILED: 5, Action.DELAYED: 4}
# Delivery-status fields written into the text itself, by servers that
# build the report by hand or whose MIME structure was lost on the way.
_INLINE_STATUS = re.compile(
    r"^(?:Reporting-MTA|Final-Recipient|Original-Recipient):", re.M | re.I
)
# A recipient named at the start of a line or after white space and followed
# by a colon: how OpenSMTPD lists several recipients, each with its own
# reply, in one Diagnostic-Code.
_LISTED_RECIPIENT = re.compile(r"(?<!\S)" + ADDRESS_PATTERN + r":\s")
_INLINE_BOUNCE_STARTS = ("\nFrom MAILER-DAEMON", "\nReturn-Path: <>\n")


def parse(raw: bytes) -> Report:
    """Read one inbound message and say what it reports, never raising."""
    try:
        return _parse(raw)
    except Exception:  # a pure parser fed hostile bytes: say "unknown", not crash
        return Report(ReportKind.UNKNOWN)


def _parse(raw: bytes, *, nested: bool = True) -> Report:
    top = split_message(raw)
    if not top.headers:
        return Report(ReportKind.UNKNOWN)
    view = make_view(top)

    if view.has_part("message/feedback-report"):
        return _report(ReportKind.ARF, view, read_feedback(view), "arf")

    gateway = filtering_gateway(view) is not None
    status_part = view.has_part(*_DELIVERY_STATUS)
    if status_part is not None:
        records = _from_delivery_status(view, status_part.text(), gateway)
        if records:
            return _report(ReportKind.DSN, view, records, "rfc3464")

    if status_part is None:
        inline = _INLINE_STATUS.search(view.full_text)
        records = (
            _from_delivery_status(view, view.full_text[inline.start() :], gateway)
            if inline
            else ()
        )
        if records:
            return _report(ReportKind.DSN, view, records, "rfc3464-inline")

    bounce = looks_like_bounce(view) or status_part is not None
    if not bounce and is_auto_reply(view):
        return _report(ReportKind.AUTO_REPLY, view)
    if nested:
        inner = _inline_bounce(view.full_text)
        if inner is not None:
            return inner
    for dialect in REGISTRY:
        if not dialect.detect(view):
            continue
        findings = dialect.read(view)
        if findings:
            sole = len(findings) == 1
            records = tuple(
                _from_finding(f, view.text, sole, gateway) for f in findings
            )
            return _report(ReportKind.DSN, view, records, dialect.name)

    if nested and bounce:
        attached = _attached_bounce(view)
        if attached is not None:
            return attached
    kind = ReportKind.UNKNOWN if bounce else ReportKind.NOT_BOUNCE
    return _report(kind, view)


def _inline_bounce(text: str) -> Report | None:
    """A whole bounce pasted into a text part, read as a message of its own.

    Administrators forward bounces inline: an mbox ``From MAILER-DAEMON``
    line or a null ``Return-Path`` starts the pasted message's header block.
    """
    at = -1
    for marker in _INLINE_BOUNCE_STARTS:
        at = text.find(marker)
        if at >= 0:
            break
    if at < 0:
        return None
    inner = _parse(text[at + 1 :].encode("utf-8", "replace"), nested=False)
    return inner if inner.records else None


def _attached_bounce(view: MessageView) -> Report | None:
    """A delivery report returned as the attached copy, read on its own.

    A relay that bounces a bounce, or a filter that wraps one, attaches
    the report it could not pass on (RFC 6522) and says nothing of its
    own about the recipients: the attached report is the only account.
    """
    for part in view.parts:
        if part.content_type not in ("message/rfc822", "message/global"):
            continue
        body = part.body.lstrip(b"\n")
        head = body[:2000].partition(b"\n\n")[0].lower()
        if b"multipart/report" not in head:
            return None
        inner = _parse(body, nested=False)
        return inner if inner.records else None
    return None


def _report(
    kind: ReportKind,
    view: MessageView,
    records: tuple[Record, ...] = (),
    dialect: str | None = None,
) -> Report:
    message_id = None
    for name, value in view.original_headers:
        if name.lower() == "message-id":
            message_id = value.strip() or None
            break
    return Report(
        kind,
        records,
        original_message_id=message_id,
        original_headers=view.original_headers,
        envelope_to=_envelope_to(view),
        dialect=dialect,
    )


def _envelope_to(view: MessageView) -> str | None:
    for name in (*_ENVELOPE_FIELDS, "To"):
        value = view.top.get(name)
        match = ADDRESS.search(value) if value else None
        if match is not None:
            return match[0]
    return None


def _from_delivery_status(
    view: MessageView, body: str, gateway: bool
) -> tuple[Record, ...]:
    status = parse_delivery_status(body)
    records = []
    sole = len(status.recipients) == 1
    # A local delivery (a file, a program) is reported under its own name;
    # with one group, X-Failed-Recipients names the address it was for.
    seen: set[Record] = set()
    failed = ADDRESS.findall(view.top.get("X-Failed-Recipients") or "")
    stand_in = failed[0] if sole and len(failed) == 1 else None
    for fields in status.recipients:
        record = _from_fields(
            fields, status.arrival_date, view.text, sole, gateway, stand_in
        )
        # A report may repeat one group (one per attempt, say): once is enough.
        if record is not None and record not in seen:
            seen.add(record)
            records.append(record)
    return tuple(records)


def _from_fields(
    fields: RecipientFields,
    arrival: str | None,
    text: str,
    sole: bool,
    gateway: bool,
    stand_in: str | None,
) -> Record | None:
    found = _FIELD_ADDRESS.search(fields.final_recipient or "")
    if found is None and fields.original_recipient:
        found = _FIELD_ADDRESS.search(fields.original_recipient)
    address = found[0] if found is not None else _as_written(fields.final_recipient)
    address = address or stand_in
    if address is None:
        return None
    # Without a Diagnostic-Code the reply is read from the prose that names
    # the recipient, cut to its own part when the prose lists several.
    wording = _own_part(fields.diagnostic or _prose_for(address, text), address)
    code = reply_code_in(wording)
    action = _ACTIONS.get(fields.action or "")
    status = _status_for(fields, action, wording, code, address, text, sole=sole)
    if action is None:
        action = _action_from_status(status)
    # Without a Diagnostic-Code or a reply quoted in the prose, the prose is
    # the report's own text (banners, advice, footers), not the remote's
    # words: a Status field that names a cause says more than any phrase in
    # it. Not a routing status (X.4.X: what retries that ran out carry, the
    # prose telling which trouble it was), nor an "other" (X.Y.0).
    specific = status is not None and status.detail != 0 and status.subject != 4
    from_prose = fields.diagnostic is None and code is None and specific
    return _record(
        address,
        action,
        code,
        status,
        wording,
        evidence="" if from_prose else None,
        remote_mta=fields.remote_mta,
        date=fields.last_attempt or arrival,
        after_data=answered_data(address, text, sole=sole),
        after_rcpt=answered_rcpt(address, text, sole=sole),
        gateway=gateway,
    )


def _status_for(
    fields: RecipientFields,
    action: Action | None,
    wording: str,
    code: str | None,
    address: str,
    text: str,
    *,
    sole: bool,
) -> EnhancedStatus | None:
    """The status of one recipient group, strongest evidence last:

    1. the Status field, or a specific code of its class in the diagnostic
       when the field only summarises (`best_status`);
    2. when the diagnostic has no reply of its own (a program's exit
       status) and the field is generic, a specific code in the transcript
       of the prose that names ``address``;
    3. the code the remote server put next to its own reply code, when it
       differs and its class is the one the Action implies (5 for failed,
       4 for delayed: RFC 3464 section 2.3.3; without an Action, the
       field's class): the remote's word on the
       cause, where the Status field is the reporting server's rendering;
    4. the code of a remote reply quoted inside a wrapper (Amazon SES).
    """
    status = best_status(fields.status, wording, code)
    generic = status is not None and (status.subject, status.detail) == (0, 0)
    if sole and fields.diagnostic and code is None and generic:
        status = best_status(fields.status, _prose_for(address, text)) or status
    own = reply_status(wording)
    if own is not None:
        # Without an Action, the Status field's class stands in for it.
        wanted = _ACTION_CLASS.get(action) if action is not None else None
        if own.klass == (wanted or (status.klass if status else own.klass)):
            status = own
    remote = remote_reply(wording)
    if remote is not None:
        status = best_status(None, remote, code) or status
    return status


def _as_written(value: str | None) -> str | None:
    """A Final-Recipient that names an address no pattern accepts (a
    domain with a typo in it), kept as written: the report is about it."""
    value = (value or "").strip().strip("<>")
    local, _, domain = value.rpartition("@")
    if not local or not domain or len(value) > 254:
        return None
    return None if any(c.isspace() for c in value) else value


def _own_part(diagnostic: str, recipient: str) -> str:
    """The part of a diagnostic that lists several recipients about one.

    Without such a list, or when the recipient is not in it, it is whole.
    """
    at = diagnostic.lower().find(recipient.lower() + ":")
    if at < 0 or (at > 0 and not diagnostic[at - 1].isspace()):
        return diagnostic
    following = _LISTED_RECIPIENT.search(diagnostic, at + len(recipient) + 1)
    return diagnostic[at : following.start() if following else len(diagnostic)]


def _from_finding(finding: Finding, text: str, sole: bool, gateway: bool) -> Record:
    status = EnhancedStatus.parse(finding.status) if finding.status else None
    return _record(
        finding.recipient,
        finding.action,
        finding.reply_code,
        status,
        finding.diagnostic,
        remote_mta=finding.remote_mta,
        after_data=answered_data(finding.recipient, text, sole=sole),
        after_rcpt=answered_rcpt(finding.recipient, text, sole=sole),
        gateway=gateway,
    )


def _record(
    recipient: str,
    action: Action,
    code: str | None,
    status: EnhancedStatus | None,
    diagnostic: str,
    *,
    remote_mta: str | None = None,
    date: str | None = None,
    after_data: bool = False,
    after_rcpt: bool = False,
    gateway: bool = False,
    evidence: str | None = None,
) -> Record:
    """The record of one recipient; ``evidence`` is the text classified
    when it is not the ``diagnostic`` kept."""
    if gateway and (status is None or status.subject != 1):
        # A filtering gateway's own refusal judges the message; only an
        # address status relayed from the server behind it names the address.
        after_data = True
    if action in (Action.FAILED, Action.DELAYED):
        verdict = classify(
            int(code) if code else None,
            status,
            diagnostic if evidence is None else evidence,
            permanent=action is Action.FAILED,
            # Evidence from the rest of the message; the diagnostic alone
            # is still read when there is none.
            after_data=True if after_data else None,
            after_rcpt=True if after_rcpt else None,
        )
        category, hard = verdict.category, verdict.hard
    else:
        category, hard = Category.OTHER, False
    return Record(
        recipient=recipient,
        action=action,
        reply_code=code,
        status=str(status) if status else None,
        category=category,
        hard=hard,
        diagnostic=squeeze(diagnostic),
        remote_mta=remote_mta,
        date=lenient_date(date),
    )


def _action_from_status(status: EnhancedStatus | None) -> Action:
    if status is None or status.klass == 5:
        return Action.FAILED
    return Action.DELAYED if status.klass == 4 else Action.DELIVERED


def _prose_for(recipient: str, text: str) -> str:
    """The human-readable text near a recipient, when the DSN gives no code."""
    at = text.lower().find(recipient.lower())
    if at < 0:
        return text[:2000]
    # The line above the recipient is the report's own heading for it
    # ("The user(s) account is disabled."), more specific than the reply
    # it quotes.
    above = text[: text.rfind("\n", 0, at) + 1].rstrip()
    heading = above[above.rfind("\n") + 1 :]
    return f"{heading}\n{text[at : at + 600]}" if heading else text[at : at + 600]
