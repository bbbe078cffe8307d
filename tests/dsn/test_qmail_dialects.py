"""qmail-send's bounces, and the builds that reword its greeting."""

from __future__ import annotations

from postroom.dsn import Category, parse

BOUNCE = b"""\
From: MAILER-DAEMON@mx.example.org
To: sender@example.org
Subject: failure notice

Hi. This is the qmail-send program at mx.example.org.
I'm afraid I wasn't able to deliver your message to the following addresses.
This is a permanent error; I've given up. Sorry it didn't work out.

<gone@example.net>:
192.0.2.1 does not like recipient.
Remote host said: 550 5.1.1 <gone@example.net>: Recipient address rejected: User unknown
Giving up on 192.0.2.1.

<slow@example.org>:
I'm not going to try again; this message has been in the queue too long.

<full@example.org>:
user is over quota. (#5.2.2)

--- Below this line is a copy of the message.

Return-Path: <sender@example.org>
From: sender@example.org
To: gone@example.net, slow@example.org, full@example.org
Subject: hello

hi
"""


def test_each_recipient_paragraph_gives_its_own_reply() -> None:
    report = parse(BOUNCE)

    assert report.dialect == "qmail"
    found = [(r.recipient, r.reply_code, r.status, r.category) for r in report.failed]
    assert found == [
        ("gone@example.net", "550", "5.1.1", Category.UNKNOWN_USER),
        # qmail's own words, with no code: the neighbours' are not borrowed.
        ("slow@example.org", None, None, Category.EXPIRED),
        ("full@example.org", None, "5.2.2", Category.MAILBOX_FULL),
    ]


def test_a_reworded_greeting_is_recognised_by_the_copy_separator() -> None:
    raw = b"""\
From: MAILER-DAEMON@mail.example.org
To: sender@example.org
Subject: failure notice

Your mail message to the following address(es) could not be delivered.
Please verify the addresses and try again.

<full@example.net>:
child status 100...The e-mail message could not be delivered because the
user's mailfolder is full.

--- Below this line is a copy of the message.

From: sender@example.org
To: full@example.net
"""

    report = parse(raw)

    assert report.dialect == "qmail"
    (record,) = report.failed
    assert (record.recipient, record.reply_code, record.status) == (
        "full@example.net",
        None,
        None,
    )
    assert record.category is Category.MAILBOX_FULL


def test_a_greeting_without_recipient_paragraphs_is_left_to_the_next_reader() -> None:
    raw = b"""\
From: MAILER-DAEMON@mx.example.org
To: sender@example.org
Subject: failure notice

Hi. This is the qmail-send program at mx.example.org.
I'm afraid I wasn't able to deliver your message to the following addresses.

gone@example.net said: 550 5.1.1 User unknown
"""

    report = parse(raw)

    assert report.dialect == "generic"
    (record,) = report.failed
    assert (record.recipient, record.status) == ("gone@example.net", "5.1.1")
