"""Exim's bounces and delay warnings, and the providers that run Exim."""

from __future__ import annotations

from postroom.dsn import Action, Category, parse

BOUNCE = b"""\
From: Mail Delivery System <Mailer-Daemon@mx.example.org>
To: sender@example.org
Subject: Mail delivery failed: returning message to sender
X-Failed-Recipients: gone@example.net, nowhere@example.net
Auto-Submitted: auto-replied

This message was created automatically by mail delivery software.

A message that you sent could not be delivered to one or more of its
recipients. This is a permanent error. The following address(es) failed:

  gone@example.net
    host mx.example.net [192.0.2.1]
    SMTP error from remote mail server after RCPT TO:<gone@example.net>:
    550 5.1.1 <gone@example.net>: Recipient address rejected: User unknown
  nowhere@example.net
    Unrouteable address

------ This is a copy of the message, including all the headers. ------

Return-path: <sender@example.org>
From: sender@example.org
To: gone@example.net, nowhere@example.net
Subject: hello

hi
"""


def test_each_listed_recipient_is_read_from_its_own_block() -> None:
    report = parse(BOUNCE)

    assert report.dialect == "exim"
    gone, nowhere = report.failed
    assert gone.recipient == "gone@example.net"
    assert (gone.reply_code, gone.status) == ("550", "5.1.1")
    assert (gone.category, gone.hard) == (Category.UNKNOWN_USER, True)
    # Exim's own reason, with no code: the neighbour's 550 is not borrowed.
    assert nowhere.recipient == "nowhere@example.net"
    assert (nowhere.reply_code, nowhere.status) == (None, None)
    assert nowhere.category is Category.UNKNOWN_DOMAIN


def test_delay_warning_reports_the_recipient_as_delayed() -> None:
    raw = b"""\
From: Mail Delivery System <Mailer-Daemon@mx.example.org>
To: sender@example.org
Subject: Warning: message 1rAbCd-000123-Ef delayed 24 hours

This message was created automatically by mail delivery software.

A message that you sent has not yet been delivered to one or more of its
recipients after more than 24 hours on the queue on mx.example.org.

The message identifier is:     1rAbCd-000123-Ef
The subject of the message is: hello

The address to which the message has not yet been delivered is:

  slow@example.net
    Delay reason: SMTP error from remote mail server after RCPT TO:<slow@example.net>:
    452 4.2.2 <slow@example.net>: Mailbox full, try again later

No action is required on your part. Delivery attempts will continue for
some time, and this warning may be repeated at intervals if the message
remains undelivered. Eventually the mail delivery software will give up,
and when that happens, the message will be returned to you.
"""

    report = parse(raw)

    assert report.dialect == "exim"
    (record,) = report.records
    assert record.recipient == "slow@example.net"
    assert record.action is Action.DELAYED
    assert (record.reply_code, record.status) == ("452", "4.2.2")
    assert record.category is Category.MAILBOX_FULL


def test_gmx_quoted_address_at_the_margin_is_a_listed_recipient() -> None:
    raw = b"""\
From: "Mail Delivery System" <mailer-daemon@gmx.example.net>
To: sender@example.org
Subject: Mail delivery failed: returning message to sender

This message was created automatically by mail delivery software.

A message that you sent could not be delivered to one or more of
its recipients. This is a permanent error. The following address
failed:

"full@example.net":
SMTP error from remote server after RCPT command:
host: mx.example.net
552 5.2.2 <full@example.net>: Mailbox full

--- The header of the original message is following. ---

From: sender@example.org
To: full@example.net
"""

    report = parse(raw)

    assert report.dialect == "exim"
    (record,) = report.failed
    assert record.recipient == "full@example.net"
    assert (record.reply_code, record.status) == ("552", "5.2.2")
    assert record.category is Category.MAILBOX_FULL


def test_mailru_translation_before_the_english_report_lists_each_recipient_once() -> (
    None
):
    raw = """\
From: mailer-daemon@mail.example.net
To: sender@example.org
Subject: =?UTF-8?B?0J/QuNGB0YzQvNC+INC90LUg0LTQvtGB0YLQsNCy0LvQtdC90L4=?=
X-Failed-Recipients: gone@example.net, full@example.net
Content-Type: text/plain; charset=utf-8

Это письмо создано автоматически, отвечать на него не нужно.

Ваше письмо не может быть доставлено получателям:

  gone@example.net
    SMTP error from remote mail server after RCPT TO:<gone@example.net>:
    host mx.example.net [192.0.2.1]: 550 5.1.1 <gone@example.net>... User unknown
  full@example.net
    SMTP error from remote mail server after RCPT TO:<full@example.net>:
    host mx.example.net [192.0.2.1]: 552 5.2.2 <full@example.net>... Mailbox full

**********************

This message was created automatically by mail delivery software.

A message that you sent could not be delivered to one or more of its
recipients. This is a permanent error. The following address(es) failed:

  gone@example.net
    SMTP error from remote mail server after RCPT TO:<gone@example.net>:
    host mx.example.net [192.0.2.1]: 550 5.1.1 <gone@example.net>... User unknown
  full@example.net
    SMTP error from remote mail server after RCPT TO:<full@example.net>:
    host mx.example.net [192.0.2.1]: 552 5.2.2 <full@example.net>... Mailbox full
""".encode()

    report = parse(raw)

    assert report.dialect == "exim"
    found = [(r.recipient, r.reply_code, r.status, r.category) for r in report.failed]
    assert found == [
        ("gone@example.net", "550", "5.1.1", Category.UNKNOWN_USER),
        ("full@example.net", "552", "5.2.2", Category.MAILBOX_FULL),
    ]


def test_sender_named_in_angle_brackets_above_the_list_is_not_a_recipient() -> None:
    raw = b"""\
From: Mail Delivery System <Mailer-Daemon@mx.example.org>
To: postmaster@example.org
Subject: Mail delivery failed

This message was created automatically by mail delivery software.

A message sent by

  <sender@example.net>

could not be delivered to one or more of its recipients. The following
address(es) failed:

  gone@example.net
    SMTP error from remote mail server after RCPT TO:<gone@example.net>:
    host mx.example.net [192.0.2.1]: 550 5.1.1 No such user
"""

    report = parse(raw)

    assert report.dialect == "exim"
    (record,) = report.failed
    assert record.recipient == "gone@example.net"
    assert (record.reply_code, record.status) == ("550", "5.1.1")
    assert record.category is Category.UNKNOWN_USER


def test_exim_subject_over_another_format_is_left_to_the_generic_reader() -> None:
    raw = b"""\
From: MAILER-DAEMON@mx.example.org
To: sender@example.org
Subject: Mail delivery failed

<gone@example.net>: host mx.example.net[192.0.2.1] said: 550 5.1.1
    <gone@example.net>: User unknown (in reply to RCPT TO command)
"""

    report = parse(raw)

    assert report.dialect == "generic"
    (record,) = report.failed
    assert (record.recipient, record.status) == ("gone@example.net", "5.1.1")
