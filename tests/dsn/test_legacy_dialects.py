"""Older prose formats read by their own dialect modules: Gmail before it
wrote DSNs, Exchange 2000/2003, Lotus Domino and Notes, Sendmail without a
delivery-status part, and the DragonFly Mail Agent."""

from __future__ import annotations

import pytest

from postroom.dsn import Action, Category, parse
from postroom.dsn.dialects import REGISTRY
from postroom.dsn.mime import split_message
from postroom.dsn.view import make_view

Row = tuple[str, str | None, str | None, Category]


def _rows(raw: bytes) -> list[Row]:
    """Recipient, reply code, status and category of each failure."""
    return [
        (r.recipient, r.reply_code, r.status, r.category) for r in parse(raw).failed
    ]


GMAIL_FAILURE = b"""\
From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>
To: sender@example.org
Subject: Delivery Status Notification (Failure)
Content-Type: text/plain; charset=ISO-8859-1

Delivery to the following recipient failed permanently:

     gone@example.net

Technical details of permanent failure:
Google tried to deliver your message, but it was rejected by the recipient
domain. We recommend contacting the other email provider for further
information about the cause of this error. The error that the other server
returned was: 550 550 5.1.1 <gone@example.net>... User unknown (state 14).

----- Original message -----

From: sender@example.org
To: gone@example.net
Subject: Invitation
"""


GMAIL_DELAY = b"""\
From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>
To: sender@example.org
Subject: Delivery Status Notification (Delay)

This is an automatically generated Delivery Status Notification

THIS IS A WARNING MESSAGE ONLY.

YOU DO NOT NEED TO RESEND YOUR MESSAGE.

Delivery to the following recipient has been delayed:

     full@example.net

Message will be retried for 2 more day(s)

Technical details of temporary failure:
Google tried to deliver your message, but it was rejected by the recipient
domain. The error that the other server returned was:
452 4.2.2 The email account that you tried to reach is over quota (state 14).

----- Original message -----

From: sender@example.org
To: full@example.net
"""


def test_gmail_report_reads_the_listed_recipient_and_the_other_servers_reply() -> None:
    report = parse(GMAIL_FAILURE)

    assert report.dialect == "gmail"
    assert _rows(GMAIL_FAILURE) == [
        ("gone@example.net", "550", "5.1.1", Category.UNKNOWN_USER)
    ]
    assert report.records[0].hard is True


def test_gmail_delay_warning_is_a_delay_with_the_cause_of_the_reply() -> None:
    report = parse(GMAIL_DELAY)

    assert report.dialect == "gmail"
    (record,) = report.records
    assert record.recipient == "full@example.net"
    assert record.action is Action.DELAYED
    assert (record.reply_code, record.status) == ("452", "4.2.2")
    assert record.category is Category.MAILBOX_FULL


EXCHANGE = b"""\
From: System Administrator <postmaster@example.net>
To: sender@example.org
Subject: Undeliverable: Invitation
Content-Type: text/plain; charset="iso-8859-1"

Your message

  To:      someone@example.net; gone@example.net; full@example.net
  Subject: Invitation
  Sent:    Thu, 29 Apr 2010 23:34:45 +0900

did not reach the following recipient(s):

gone@example.net on Thu, 29 Apr 2010 23:34:50 +0900
    The recipient name is not recognized
    The MTS-ID of the original message is: c=us;a= ;p=example;l=MX0100429
    MSEXCH:IMS:Example:Site:MX01 0 (000C05A6) Unknown Recipient

full@example.net on Thu, 29 Apr 2010 23:34:50 +0900
    The recipient's mailbox is full and can't accept messages now.
    <mx.example.net #5.2.2>
"""


def test_exchange_report_reads_each_recipient_and_not_the_summarys_to_line() -> None:
    report = parse(EXCHANGE)

    assert report.dialect == "exchange2003"
    assert _rows(EXCHANGE) == [
        ("gone@example.net", None, None, Category.UNKNOWN_USER),
        ("full@example.net", None, "5.2.2", Category.MAILBOX_FULL),
    ]


def test_exchange_diagnostic_leaves_out_the_date_of_the_attempt() -> None:
    (record, _) = parse(EXCHANGE).records

    assert record.diagnostic.startswith("The recipient name is not recognized")


DOMINO = b"""\
From: Postmaster@example.net
To: sender@example.org
Subject: DELIVERY FAILURE: User gone (gone@example.net) not listed in Domino
 Directory

Your message

  Subject: Invitation

was not delivered to:

  gone@example.net

because:

  User gone (gone@example.net) not listed in Domino Directory
"""


def test_domino_report_reads_the_recipient_and_the_reason_after_because() -> None:
    report = parse(DOMINO)

    assert report.dialect == "domino"
    assert _rows(DOMINO) == [("gone@example.net", None, None, Category.UNKNOWN_USER)]
    assert report.records[0].hard is True


NOTES = b"""\
From: Mail Router <postmaster@example.net>
To: sender@example.org
Subject: Undeliverable Message

------- Failure Reasons  --------

User not listed in public Name & Address Book
gone@example.net
550 5.2.2 Mailbox full
full@example.net


------- Returned Message --------
From: sender@example.org
To: gone@example.net, full@example.net
Subject: Invitation
"""


def test_notes_report_gives_each_address_the_reason_above_it() -> None:
    report = parse(NOTES)

    assert report.dialect == "notes"
    assert _rows(NOTES) == [
        ("gone@example.net", None, None, Category.UNKNOWN_USER),
        ("full@example.net", "550", "5.2.2", Category.MAILBOX_FULL),
    ]


SENDMAIL_V8 = b"""\
From: Mail Delivery Subsystem <MAILER-DAEMON@mx.example.net>
To: sender@example.org
Subject: Returned mail: see transcript for details

The original message was received at Thu, 29 Apr 2010 23:34:45 +0900
from localhost [127.0.0.1]

   ----- The following addresses had permanent fatal errors -----
<gone@example.net>
    (reason: 550 5.1.1 <gone@example.net>... User unknown)
    (expanded from: <team@example.net>)
<full@example.net>
    (reason: 552 5.2.2 Mailbox full)

   ----- Transcript of session follows -----
... while talking to mail.example.net.:
>>> RCPT To:<gone@example.net>
<<< 550 5.1.1 <gone@example.net>... User unknown
550 5.1.1 <gone@example.net>... User unknown
>>> RCPT To:<full@example.net>
<<< 552 5.2.2 Mailbox full
552 5.2.2 <full@example.net>... Mailbox full

   ----- Original message follows -----
From: sender@example.org
To: team@example.net
"""


SENDMAIL_V5 = b"""\
From: Mail Delivery Subsystem <MAILER-DAEMON@mx.example.net>
To: sender@example.org
Subject: Returned mail: Host unknown (Name server: example.com: host not found)

   ----- Transcript of session follows -----
While talking to mail.example.net:
>>> MAIL From:<sender@example.org>
<<< 550 5.7.1 Relaying denied
554 <someone@example.net>... Remote protocol error
550 <nowhere@nohost.example.com>... Host unknown (Name server: host not found)

   ----- Unsent message follows -----
Received: by mx.example.net (5.65/1.0)
From: sender@example.org
"""


def test_sendmail_list_names_the_recipients_and_not_the_alias_expanded_from() -> None:
    report = parse(SENDMAIL_V8)

    assert report.dialect == "sendmail"
    assert _rows(SENDMAIL_V8) == [
        ("gone@example.net", "550", "5.1.1", Category.UNKNOWN_USER),
        ("full@example.net", "552", "5.2.2", Category.MAILBOX_FULL),
    ]


def test_sendmail_transient_list_is_a_delay() -> None:
    raw = SENDMAIL_V8.replace(
        b"permanent fatal errors", b"transient non-fatal errors"
    ).replace(b"550 5.1.1", b"450 4.2.1")

    records = parse(raw).records

    assert {r.action for r in records} == {Action.DELAYED}


def test_sendmail_v5_transcript_gives_each_result_line_the_reply_above_it() -> None:
    report = parse(SENDMAIL_V5)

    assert report.dialect == "sendmail"
    assert _rows(SENDMAIL_V5) == [
        ("someone@example.net", "550", "5.7.1", Category.RELAY_DENIED),
        ("nowhere@nohost.example.com", "550", None, Category.UNKNOWN_DOMAIN),
    ]


DMA = b"""\
Received: from MAILER-DAEMON
\tid 1a2b3c
\tby mx.example.org (DragonFly Mail Agent v0.11);
\tThu, 29 Apr 2010 23:34:45 +0900
X-Original-To: <sender@example.org>
From: MAILER-DAEMON <>
To: sender@example.org
Subject: Mail delivery failed
Date: Thu, 29 Apr 2010 23:34:45 +0900

This is the DragonFly Mail Agent v0.11 at mx.example.org.

There was an error delivering your mail to <gone@example.net>.

mail.example.net [192.0.2.25] did not like our RCPT TO:
550 5.1.1 <gone@example.net>: Recipient address rejected: User unknown

Original message follows.

From: sender@example.org
To: gone@example.net
"""


def test_dma_report_reads_the_one_recipient_and_the_reply_to_rcpt_to() -> None:
    report = parse(DMA)

    assert report.dialect == "dma"
    assert _rows(DMA) == [("gone@example.net", "550", "5.1.1", Category.UNKNOWN_USER)]
    assert report.records[0].hard is True


NOT_IN_FORMAT = {
    # The heading, but no indented list of recipients before the details.
    "gmail": b"Delivery to the following recipient failed permanently: see below\n",
    # The heading, but no "<address> on <date>" line.
    "exchange2003": b"Your message did not reach the following recipient(s):\n\n"
    b"Someone Else\n    The recipient name is not recognized\n",
    # The phrase, but no "because:" with the reason.
    "domino": b"Your message was not delivered to: gone@example.net.\n",
    # The rule, but no address line under it.
    "notes": b"------- Failure Reasons  --------\n\nUser not listed\n",
    # A transcript that names local users only.
    "sendmail": b"   ----- Transcript of session follows -----\n"
    b"550 5.1.1 gone... User unknown\n",
    # The greeting, but not the sentence that names the recipient.
    "dma": b"This is the DragonFly Mail Agent v0.11 at mx.example.org.\n\n"
    b"Something else went wrong.\n",
}


@pytest.mark.parametrize("name", sorted(NOT_IN_FORMAT))
def test_dialect_detects_its_phrase_but_reads_nothing_outside_its_format(
    name: str,
) -> None:
    raw = b"From: MAILER-DAEMON@mx.example.net\nSubject: failure\n\n"
    view = make_view(split_message(raw + NOT_IN_FORMAT[name]))
    (dialect,) = [d for d in REGISTRY if d.name == name]

    assert dialect.detect(view) is True
    assert dialect.read(view) == []
