"""The bounce corpus, one case per message: the failed recipients are
found, with the status code the message carries and the right verdict on
whether the address itself is bad.

Scoring follows the corpus README: rows flagged uncertain or placeholder
and rows that are not failures (delivered, feedback, vacation) are left
out; status codes are compared only where the message carries a real one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from postroom.dsn import Action, parse

CORPUS = Path(__file__).resolve().parents[2] / ".." / "shared" / "bounce-corpus"
MANIFEST = CORPUS / "manifest.json"
NOT_FAILURES = {"delivered", "feedback", "vacation"}

# Deliberate differences, each with its reason. postroom calls an "unknown
# user" refusal a bad address unless the refusal answered DATA (a stage
# named, or a reply with an empty recipient slot), came from an identified
# filtering gateway, or carries a status naming another cause (see
# dsn/classify.py). The corpus calls "filtered" every such refusal whose
# SMTP command it cannot tell, whoever wrote it.
MAILBOX_SERVER = (
    "deliberate: a mail server's own 'user unknown' reply, with no later stage,"
    " no contradicting status and no filtering gateway identified, is hard"
)
RCPT_STAGE = (
    "deliberate: the transcript shows the refusal answered a pipelined RCPT TO"
    " (the reply names the address; the reply to DATA comes after it)"
)
NO_ACCOUNT = (
    "deliberate: the provider's own 'This user doesn't have a <domain> account'"
    " names a missing account: hard"
)
GATEWAY_RELAYS = (
    "deliberate: the filtering gateway relays the mailbox server's Postfix reply"
    " 'User unknown in local recipient table' to RCPT TO: hard"
)
NULL_MX = (
    "deliberate: a null MX (RFC 7505) is the domain's final word, so a failure"
    " citing it is hard whatever class the reporting server's status has"
)
DELAY_NOTICE = (
    "deliberate: a report that keeps the message queued is a delay notice,"
    " not a final failure, so the address is not judged bad yet"
)
STATUS_AND_WORDING = (
    "deliberate: a 5.1.1 status and 'User Unknown' both name a missing mailbox,"
    " whatever the corpus calls it"
)
NO_PROOF = (
    "deliberate: the report names no cause that makes the address bad (a hedge"
    " 'may not exist, may be blacklisted', a bare 'Rejected', a DNS error, a"
    " gateway notice whose only cause is inside the returned copy): not hard"
)
AUTO_REPLY = (
    "deliberate: an automatic reply (RFC 3834) is not a failure, even one that"
    " says a mailbox is no longer in use"
)
FAILED_HEADER = (
    "deliberate: X-Failed-Recipients, the machine-readable list, is trusted over"
    " an address the prose names differently"
)
EARLIER_ATTEMPT = (
    "deliberate: the report's final code (the last reply, or the Status of a"
    " failed report) is kept over a code an earlier attempt got"
)
OTHER_ADDRESS = (
    "the corpus names an address with one digit fewer than the RCPT TO line,"
    " the only address the refusal gives"
)
DELIBERATE: dict[str, str] = {
    "emails/crlf/lhost-apachejames-01.eml": OTHER_ADDRESS,
    "emails/crlf/lhost-x1-01.eml": MAILBOX_SERVER,
    "emails/crlf/lhost-x2-01.eml": NO_ACCOUNT,
    "emails/lhost-activehunter-02.eml": GATEWAY_RELAYS,
    "emails/lhost-apachejames-01.eml": OTHER_ADDRESS,
    "emails/lhost-exchange2003-04.eml": MAILBOX_SERVER,
    "emails/lhost-exchange2007-05.eml": EARLIER_ATTEMPT,
    "emails/lhost-exim-03.eml": FAILED_HEADER,
    "emails/lhost-exim-31.eml": NO_PROOF,
    "emails/lhost-opensmtpd-12.eml": DELAY_NOTICE,
    "emails/lhost-postfix-07.eml": MAILBOX_SERVER,
    "emails/lhost-sendmail-27.eml": RCPT_STAGE,
    "emails/lhost-sendmail-48.eml": RCPT_STAGE,
    "emails/lhost-sendmail-56.eml": EARLIER_ATTEMPT,
    "emails/lhost-trendmicro-03.eml": NO_PROOF,
    "emails/lhost-x1-01.eml": MAILBOX_SERVER,
    "emails/lhost-x1-02.eml": MAILBOX_SERVER,
    "emails/lhost-x2-01.eml": NO_ACCOUNT,
    "emails/lhost-x2-02.eml": NO_ACCOUNT,
    "emails/lhost-zoho-03.eml": MAILBOX_SERVER,
    "emails/rfc3464-01.eml": STATUS_AND_WORDING,
    "emails/rfc3464-35.eml": MAILBOX_SERVER,
    "emails/rfc3464-42.eml": MAILBOX_SERVER,
    "emails/rfc3834-06.eml": AUTO_REPLY,
    "emails/rhost-aol-06.eml": NO_PROOF,
    "emails/rhost-gsuite-03.eml": NULL_MX,
    "emails/rhost-gsuite-10.eml": NULL_MX,
    "emails/rhost-messagelabs-03.eml": NO_PROOF,
}


def _entries() -> list[Any]:
    if not MANIFEST.exists():
        return []
    entries = json.loads(MANIFEST.read_text())
    return [
        pytest.param(
            entry,
            id=entry["file"],
            marks=_marks(entry["file"]),
        )
        for entry in entries
    ]


def _marks(file: str) -> list[Any]:
    if file in DELIBERATE:
        return [pytest.mark.xfail(reason=DELIBERATE[file], strict=True)]
    return []


def _scored(entry: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        row
        for row in entry["expected"]
        if row["reason"] not in NOT_FAILURES
        and not row.get("recipient_uncertain")
        and not row.get("recipient_is_sisimai_placeholder")
    ]


@pytest.mark.skipif(not MANIFEST.exists(), reason="bounce corpus not present")
@pytest.mark.parametrize("entry", _entries())
def test_failed_recipients_status_and_verdict_match(entry: dict[str, Any]) -> None:
    report = parse((CORPUS / entry["file"]).read_bytes())

    found = {
        r.recipient.lower(): r
        for r in report.records
        if r.action in (Action.FAILED, Action.DELAYED)
    }
    for row in _scored(entry):
        record = found.get(row["recipient"].lower())
        assert record is not None, f"{row['recipient']} not reported"
        if row["status"] and not row["status_is_sisimai_pseudo"]:
            assert record.status == row["status"]
        assert record.hard == row["hard"], f"{record.category} vs {row['reason']}"
