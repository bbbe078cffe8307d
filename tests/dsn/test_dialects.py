from postroom.dsn import Action, Category, parse
from postroom.dsn.evidence import best_status

GROUPS_BOUNCE = b"""\
From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>
To: poster@example.org
Subject: Delivery Status Notification (Failure)
X-Failed-Recipients: team@googlegroups.com
Content-Type: text/plain; charset=UTF-8

Hallo poster@example.org, die Gruppe (team) ist moeglicherweise nicht
vorhanden, oder Sie haben keine Berechtigung.
"""


def test_google_groups_refusal_is_read_in_any_language_as_a_sender_refusal() -> None:
    report = parse(GROUPS_BOUNCE)

    assert report.dialect == "googlegroups"
    assert [r.recipient for r in report.records] == ["team@googlegroups.com"]
    record = report.records[0]
    assert record.action is Action.FAILED
    assert record.category is Category.SENDER_REJECTED
    assert record.hard is False


def test_message_id_of_a_quoted_header_block_is_not_a_recipient() -> None:
    raw = b"""\
From: MAILER-DAEMON@mx.example.net
To: sender@example.org
Subject: Undelivered Mail Returned to Sender

<gone@example.com>: 550 5.1.1 user unknown
Received: from a.example.org by mx.example.net
Message-ID: <20240101.abc123@a.example.org>
"""

    report = parse(raw)

    assert [r.recipient for r in report.failed] == ["gone@example.com"]


def test_delivery_status_fields_in_a_multipart_without_delimiters_are_read() -> None:
    raw = b"""\
From: Mail Delivery Subsystem <MAILER-DAEMON@mx.example.net>
To: sender@example.org
Subject: Returned mail: Service unavailable
Content-Type: multipart/report; report-type=delivery-status; boundary="lost"

The original message was received at Thu, 29 Apr 2000 23:34:45 +0900

Reporting-MTA: dns; mx.example.net

Final-Recipient: RFC822; <gone@example.net>
Action: failed
Status: 5.1.1
"""

    report = parse(raw)

    assert [(r.recipient, r.status) for r in report.failed] == [
        ("gone@example.net", "5.1.1")
    ]


def test_a_bounce_forwarded_inline_is_read_from_the_pasted_message() -> None:
    raw = b"""\
From: admin@example.org
To: helpdesk@example.org
Subject: Undelivered Mail Returned to Sender

Please look at this one.
support@example.org

From MAILER-DAEMON  Thu Apr 29 23:34:45 2015
Return-Path: <>
From: MAILER-DAEMON@relay.example.org (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: admin@example.org

<lost@example.net>: host mx.example.net said: 550 5.1.1 User unknown
    (in reply to RCPT TO command)
"""

    report = parse(raw)

    assert [r.recipient for r in report.failed] == ["lost@example.net"]


def test_postmaster_is_a_recipient_when_the_returned_message_was_sent_to_it() -> None:
    raw = b"""\
From: postmaster@example.net
To: sender@example.org
Subject: Returned mail: Service unavailable
Content-Type: multipart/mixed; boundary="b"

--b
Content-Type: text/plain

postmaster@mx.example.net

The number of messages in recipient's mailbox exceeded the local limit.

--b
Content-Type: message/rfc822

To: <postmaster@mx.example.net>
From: sender@example.org
Subject: hello

hi
--b--
"""

    report = parse(raw)

    assert [r.recipient for r in report.failed] == ["postmaster@mx.example.net"]


OPENSMTPD_BOUNCE = b"""\
From: Mailer Daemon <MAILER-DAEMON@mx.example.org>
To: sender@example.org
Subject: Delivery status notification: error
Content-Type: multipart/report; report-type=delivery-status; boundary="b"

--b
Content-Type: text/plain

An error has occurred while attempting to deliver a message for
the following list of recipients:

gone@example.net: 550 5.1.1 <gone@example.net>: Recipient address rejected: User unknown
full@example.net: 552 5.2.2 <full@example.net>: Recipient address rejected: Mailbox full

--b
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.org

Final-Recipient: rfc822; gone@example.net
Action: failed
Status: 5.0.0

Final-Recipient: rfc822; full@example.net
Action: failed
Status: 5.0.0

--b--
"""


def test_prose_listing_several_recipients_gives_each_its_own_reply() -> None:
    report = parse(OPENSMTPD_BOUNCE)

    gone, full = report.failed
    assert (gone.status, gone.category, gone.hard) == ("5.1.1", "unknown_user", True)
    assert (full.status, full.category, full.hard) == ("5.2.2", "mailbox_full", False)


def test_a_recipient_listed_twice_does_not_take_the_next_ones_reply() -> None:
    raw = b"""\
From: Mail Delivery System <Mailer-Daemon@mx.example.org>
To: sender@example.org
Subject: Mail delivery failed

  full@example.net
    host mx.example.net: 550 5.2.2 <full@example.net>... Mailbox Full
  gone@example.net
    host mx.example.net: 550 5.1.1 <gone@example.net>... User Unknown
The following address(es) failed:
  full@example.net
    host mx.example.net: 550 5.2.2 <full@example.net>... Mailbox Full
"""

    report = parse(raw)

    categories = {r.recipient: r.category for r in report.failed}
    assert categories == {
        "full@example.net": "mailbox_full",
        "gone@example.net": "unknown_user",
    }


def test_amazon_ses_status_is_the_quoted_remote_replys_own() -> None:
    raw = b"""\
From: MAILER-DAEMON@amazonses.com
To: sender@example.org
Subject: Delivery Status Notification (Failure)
Content-Type: multipart/report; report-type=delivery-status; boundary="b"

--b
Content-Type: message/delivery-status

Reporting-MTA: dns; a8-1.smtp-out.amazonses.com

Final-Recipient: rfc822; who@example.net
Action: failed
Status: 5.1.0
Diagnostic-Code: smtp; 5.1.0 - Unknown address error
 550-'5.2.2 <who@example.net>... Mailbox Full' (delivery attempts: 0)

--b--
"""

    (record,) = parse(raw).failed

    assert record.status == "5.2.2"
    assert record.category == "mailbox_full"


def test_a_summary_expiry_status_yields_to_the_last_replys_own_code() -> None:
    status = best_status("4.4.7", "Message expired: <421 4.4.2 Connection timed out>")

    assert str(status) == "4.4.2"


def test_a_sendmail_result_line_does_not_take_the_next_recipients_reply() -> None:
    raw = b"""\
From: Mail Delivery Subsystem <MAILER-DAEMON@mx.example.net>
To: sender@example.org
Subject: Returned mail: User unknown

   ----- Transcript of session follows -----
554 <first@example.edu>... Remote protocol error
550 example.com (smtp)... 550 Host unknown
554 <second@example.com>... 550 Host unknown (Authoritative answer)
"""

    first, second = parse(raw).records

    assert first.recipient == "first@example.edu"
    assert first.category is not Category.UNKNOWN_DOMAIN
    assert first.hard is False
    assert second.category is Category.UNKNOWN_DOMAIN
    assert second.hard is True


def test_message_ids_in_a_quoted_bounce_are_not_recipients() -> None:
    raw = b"""\
From: MAILER-DAEMON@mx.example.net
To: sender@example.org
Subject: Returned mail: see transcript for details
References: <20240101.0000@mx.example.net>

> The original message was received at Mon, 1 Jan 2024 10:00:00
> Message-Id: <20240101.0000@mx.example.net>
>
> <gone@example.com>
>     (reason: 550 5.1.1 <gone@example.com>... User unknown)
> Message-Id: <6D736808-04A1-47D3@example.org>
"""

    assert [r.recipient for r in parse(raw).failed] == ["gone@example.com"]


def test_a_contact_address_repeated_in_another_language_is_not_a_recipient() -> None:
    raw = """\
From: MAILER-DAEMON@mx.example.net
To: sender@example.org
Subject: Undelivered Mail Returned to Sender
Content-Type: text/plain; charset=utf-8

For further assistance, please contact <support@isp.example.net>
ご不明な点は<support@isp.example.net>までご連絡ください。

<gone@example.com>: host mx.example.com[192.0.2.1] said: 550 5.1.1
    <gone@example.com>: User unknown (in reply to RCPT TO command)
""".encode()

    assert [r.recipient for r in parse(raw).failed] == ["gone@example.com"]


def test_undeclared_8bit_text_that_is_not_utf8_is_read_as_windows_latin1() -> None:
    raw = (
        b"From: MAILER-DAEMON@mx.example.net\n"
        b"To: sender@example.org\n"
        b"Subject: Undelivered Mail Returned to Sender\n\n"
        b"<gone@example.de>: 550 5.1.1 Empf\xe4nger unbekannt\n"
    )

    (record,) = parse(raw).failed

    assert "Empfänger unbekannt" in record.diagnostic


def test_undeclared_8bit_text_that_is_utf8_stays_utf8() -> None:
    raw = (
        "From: MAILER-DAEMON@mx.example.net\n"
        "To: sender@example.org\n"
        "Subject: Undelivered Mail Returned to Sender\n\n"
        "<gone@example.de>: 550 5.1.1 Empfänger unbekannt\n"
    ).encode()

    (record,) = parse(raw).failed

    assert "Empfänger unbekannt" in record.diagnostic


def test_a_latin1_line_does_not_garble_the_utf8_lines_around_it() -> None:
    raw = (
        "From: MAILER-DAEMON@mx.example.net\n"
        "To: sender@example.org\n"
        "Subject: Undelivered Mail Returned to Sender\n\n"
        "<jürgen@example.de>: 550 5.1.1 Empfänger unbekannt\n\n"
    ).encode() + b"Subject: Gr\xfc\xdfe\n"

    (record,) = parse(raw).failed

    assert record.recipient == "jürgen@example.de"
    assert "Empfänger unbekannt" in record.diagnostic


def test_every_message_id_of_a_references_line_is_passed_over() -> None:
    raw = b"""\
From: MAILER-DAEMON@mx.example.net
To: sender@example.org
Subject: Returned mail: see transcript for details

> References: <a1.b2@mx.example.net> <c3.d4@mx.example.net>
> <gone@example.com>
>     (reason: 550 5.1.1 <gone@example.com>... User unknown)
"""

    assert [r.recipient for r in parse(raw).failed] == ["gone@example.com"]


def test_a_word_ending_in_by_does_not_hide_the_address_after_it() -> None:
    raw = b"""\
From: MAILER-DAEMON@mx.example.net
To: sender@example.org
Subject: Undelivered Mail Returned to Sender

Delivery to the standby <gone@example.com> failed:
550 5.1.1 <gone@example.com>: User unknown
"""

    assert [r.recipient for r in parse(raw).failed] == ["gone@example.com"]


def test_an_address_quoted_in_prose_or_behind_an_x400_field_is_read_bare() -> None:
    raw = b"""\
From: MAILER-DAEMON@mx.example.net
To: sender@example.org
Subject: Undeliverable: Hello

Your message addressed to 'ann@example.net', could not be delivered:
550 5.1.1 User unknown

c=US;a= ;p=Example;o=Mail;dda:SMTP=bob@example.net; on Fri, 1 Mar 2024
550 5.1.1 User unknown
"""

    assert [r.recipient for r in parse(raw).failed] == [
        "ann@example.net",
        "bob@example.net",
    ]


def test_a_report_that_only_its_delivery_status_part_shows_is_read_as_prose() -> None:
    raw = b"""\
From: <>
To: sender@example.org
Subject: Resultat de votre envoi
Content-Type: multipart/report; report-type=delivery-status; boundary="b"

--b
Content-Type: text/plain

A message could not be delivered to:
ann@example.fr
550 5.1.1 User unknown

--b
Content-Type: message/delivery-status

Message removed

--b--
"""

    (record,) = parse(raw).failed

    assert (record.recipient, record.status) == ("ann@example.fr", "5.1.1")
