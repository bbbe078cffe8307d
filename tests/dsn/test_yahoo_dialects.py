"""Yahoo Mail's failure notices, in qmail's layout."""

from __future__ import annotations

from postroom.dsn import Category, parse

NOTICE = b"""\
From: MAILER-DAEMON@yahoo.example.com
To: sender@example.org
Subject: Failure Notice

Sorry, we were unable to deliver your message to the following address.

<nowhere@example.net>:
No MX or A records for example.net

<gone@example.org>:
Remote host said: 550 5.1.1 <gone@example.org>... User Unknown [RCPT_TO]

--- Below this line is a copy of the message.

Received: from [192.0.2.9] by smtp.yahoo.example.com
From: sender@example.org
To: nowhere@example.net, gone@example.org
Subject: hello

hi
"""


def test_each_recipient_is_read_from_its_own_paragraph() -> None:
    report = parse(NOTICE)

    assert report.dialect == "yahoo"
    found = [(r.recipient, r.reply_code, r.status, r.category) for r in report.failed]
    assert found == [
        # Yahoo's own reason, with no code: the next paragraph's is not borrowed.
        ("nowhere@example.net", None, None, Category.UNKNOWN_DOMAIN),
        ("gone@example.org", "550", "5.1.1", Category.UNKNOWN_USER),
    ]
    assert all(r.hard for r in report.failed)


def test_a_refusal_of_the_message_body_is_not_a_bad_address() -> None:
    raw = b"""\
From: MAILER-DAEMON@yahoo.example.com
To: sender@example.org
Subject: Failure Notice

Sorry, we were unable to deliver your message to the following address.

<reader@example.net>:
Remote host said: 554 5.7.1 Message rejected as spam by content filter [BODY]

--- Below this line is a copy of the message.
"""

    report = parse(raw)

    assert report.dialect == "yahoo"
    (record,) = report.failed
    assert (record.recipient, record.reply_code, record.status) == (
        "reader@example.net",
        "554",
        "5.7.1",
    )
    assert record.category is Category.SPAM
    assert record.hard is False
