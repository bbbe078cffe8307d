"""Vendor formats read by their own dialect modules, one case per format."""

from __future__ import annotations

from postroom.dsn import Action, Category, parse


def test_au_one_net_notice_names_the_recipient_after_could_not_be_delivered() -> None:
    raw = b"""\
From: no-reply@mx.dion.ne.jp
To: <sender@example.org>
Reply-To: no-reply@app.auone-net.jp
Subject: Mail
Content-Type: text/plain; charset=us-ascii

Your mail sent on: Thu, 29 Apr 2013 00:00:00 +0900
     Could not be delivered to: <full@ezweb.ne.jp>
     As their mailbox is full.
"""

    report = parse(raw)

    assert report.dialect == "au"
    (record,) = report.failed
    assert record.recipient == "full@ezweb.ne.jp"
    assert record.category is Category.MAILBOX_FULL


def test_fml_refusal_of_a_non_member_names_the_list_and_refuses_the_sender() -> None:
    raw = b"""\
From: list-admin@example.org
To: poster@example.net
Subject: You poster@example.net are not member (list ML)
X-MLServer: fml [fml 4.0.3 release]

You are not a member of this mailing list <list@example.org>.

If you know the general guide of this list, please send mail to
list-ctl@example.org.
"""

    report = parse(raw)

    assert report.dialect == "fml"
    (record,) = report.failed
    assert record.recipient == "list@example.org"
    assert record.category is Category.SENDER_REJECTED


def test_apache_james_error_reads_rcpt_to_under_message_details() -> None:
    raw = b"""\
From: post_master@vtext.example.com
To: sender@example.org
Subject: Re: Hello
Content-Type: multipart/mixed; boundary="outer"

--outer
Content-Type: multipart/alternative;
boundary="inner"

--inner
Content-Type: text/plain; charset=us-ascii

Error: Invalid user address

Error message below:
550 - Requested action not taken: no such user here

Message details:
  Subject: Hello
  MAIL FROM: sender@example.org
  RCPT TO: 5550100@vtext.example.com
  From: sender@example.org

--inner--

--outer--
"""

    report = parse(raw)

    assert report.dialect == "apachejames"
    (record,) = report.failed
    assert record.recipient == "5550100@vtext.example.com"
    assert record.reply_code == "550"
    assert record.hard is True


def test_verizon_mms_gateway_notice_names_the_quoted_to() -> None:
    raw = b"""\
From: MMSC NDR Administrator <sysadmin@m01.vzwpix.com>
To: sender@example.org
Subject: Undeliverable Message

Message could not be delivered to mobile.
Error: No valid recipients for this MM


Original Message:
From: Sender <sender@example.org>
To: 5550100@vzwpix.com
Subject: test
"""

    report = parse(raw)

    assert report.dialect == "verizon"
    (record,) = report.failed
    assert record.recipient == "5550100@vzwpix.com"
    assert record.category is Category.UNKNOWN_USER


SES_BOUNCE = (
    b"From: SES <no-reply@sns.amazonaws.com>\n"
    b"To: ops@example.org\n"
    b"Subject: AWS Notification Message\n\n"
    b'{"notificationType":"Bounce","bounce":{"bounceType":"Permanent",'
    b'"bouncedRecipients":[{"emailAddress":"gone@example.net","action":"failed",'
    b'"status":"5.1.1","diagnosticCode":"smtp; 550 5.1.1 user unknown"}],'
    b'"timestamp":"2016-10-21T00:06:40.502Z"},"mail":{"source":"a@example.org"!\n'
    b' ,"destination":["gone@example.net"]}}\n'
)


def test_ses_notification_bounce_is_read_from_its_json() -> None:
    report = parse(SES_BOUNCE)

    assert report.dialect == "ses-notification"
    (record,) = report.failed
    assert record.recipient == "gone@example.net"
    assert record.status == "5.1.1"
    assert record.reply_code == "550"
    assert record.hard is True


def test_ses_notification_inside_an_sns_envelope_is_read_from_the_escaped_json() -> (
    None
):
    inner = SES_BOUNCE.split(b"\n\n", 1)[1].replace(b"!\n ", b"").strip()
    envelope = b'{\n  "Type" : "Notification",\n  "Message" : "%s"\n}\n' % (
        inner.replace(b'"', b'\\"')
    )
    raw = SES_BOUNCE.split(b"\n\n", 1)[0] + b"\n\n" + envelope

    (record,) = parse(raw).failed

    assert record.recipient == "gone@example.net"


def test_ses_notification_of_a_delivery_reports_delivered_recipients() -> None:
    raw = (
        b"From: SES <no-reply@sns.amazonaws.com>\nTo: ops@example.org\n"
        b"Subject: AWS Notification Message\n\n"
        b'{"notificationType":"Delivery","delivery":{"recipients":'
        b'["ok@example.net"],"smtpResponse":"250 2.6.0 Message received"}}\n'
    )

    report = parse(raw)

    assert [(r.recipient, r.action) for r in report.records] == [
        ("ok@example.net", Action.DELIVERED)
    ]
    assert report.failed == ()


def test_a_listed_recipient_that_is_also_the_sender_is_still_reported() -> None:
    raw = b"""\
From: MAILER-DAEMON@example.net
To: self@example.net
Subject: failure notice

Hi. This is the qmail-send program at example.net.
I'm afraid I wasn't able to deliver your message to the following addresses.

<self@example.net>:
192.0.2.1 does not like recipient.
Remote host said: 552 Error: disk quota exceeded
"""

    (record,) = parse(raw).failed

    assert record.recipient == "self@example.net"
    assert record.category is Category.MAILBOX_FULL


def test_a_quoted_local_part_in_final_recipient_keeps_its_quotes() -> None:
    raw = b"""\
From: MAILER-DAEMON@mx.example.org
To: sender@example.org
Subject: Undelivered Mail Returned to Sender
Content-Type: multipart/report; report-type=delivery-status; boundary="b"

--b
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.org

Final-Recipient: rfc822; "a b"@example.net
Action: failed
Status: 5.1.1

--b--
"""

    (record,) = parse(raw).failed

    assert record.recipient == '"a b"@example.net'


def test_a_delivery_report_attached_as_the_returned_copy_is_read() -> None:
    raw = b"""\
From: Mail Delivery Subsystem <MAILER-DAEMON@gw.example.org>
To: sender@example.org
Subject: Returned mail: User unknown
Content-Type: multipart/mixed; boundary="outer"

--outer
Content-Type: text/plain

----- The following addresses had permanent delivery errors -----

--outer
Content-Type: message/rfc822

From: Mail Delivery Subsystem <MAILER-DAEMON@mx.example.org>
To: sender@example.org
Subject: Returned mail: User unknown
Content-Type: multipart/report; report-type=delivery-status; boundary="inner"

--inner
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.org

Final-Recipient: rfc822; gone@example.net
Action: failed
Status: 5.1.1

--inner--

--outer--
"""

    (record,) = parse(raw).failed

    assert record.recipient == "gone@example.net"
    assert record.hard is True
