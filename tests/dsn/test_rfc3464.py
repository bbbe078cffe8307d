from datetime import UTC, datetime

from postroom.dsn import Action, Category, ReportKind, parse

DSN = b"""\
From: Mail Delivery System <MAILER-DAEMON@mx.example.net>
To: bounces+abc@relay.example.com
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="BOUNDARY"

--BOUNDARY
Content-Type: text/plain

Your message could not be delivered.

--BOUNDARY
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net
Arrival-Date: Mon, 3 Jun 2024 10:00:00 +0000

Original-Recipient: rfc822;alice@example.org
Final-Recipient: rfc822; alice@example.org
Action: failed
Status: 5.0.0
Remote-MTA: dns; in.example.org
Diagnostic-Code: smtp; 550 5.1.1 <alice@example.org>: Recipient address
    rejected: User unknown in local recipient table
Last-Attempt-Date: Mon, 3 Jun 2024 10:05:00 +0000

Final-Recipient: rfc822; bob@example.org
Action: delayed
Status: 4.2.2
Diagnostic-Code: smtp; 452 4.2.2 Mailbox full

Final-Recipient: rfc822; carol@example.org
Action: delivered
Status: 2.0.0

--BOUNDARY
Content-Type: text/rfc822-headers

Message-ID: <m1@relay.example.com>
X-Postroom-Rcpt: r42
From: app@example.com

--BOUNDARY--
"""


def test_every_recipient_group_becomes_a_record() -> None:
    report = parse(DSN)

    assert report.kind is ReportKind.DSN
    assert [r.recipient for r in report.records] == [
        "alice@example.org",
        "bob@example.org",
        "carol@example.org",
    ]
    assert [r.action for r in report.records] == [
        Action.FAILED,
        Action.DELAYED,
        Action.DELIVERED,
    ]


def test_folded_diagnostic_is_read_whole_with_its_type_stripped() -> None:
    alice = parse(DSN).records[0]

    assert alice.diagnostic.startswith("550 5.1.1 <alice@example.org>")
    assert alice.diagnostic.endswith("in local recipient table")
    assert alice.reply_code == "550"
    assert alice.remote_mta == "in.example.org"


def test_generic_status_gives_way_to_specific_code_in_diagnostic() -> None:
    alice = parse(DSN).records[0]

    assert alice.status == "5.1.1"
    assert alice.category is Category.UNKNOWN_USER
    assert alice.hard is True


def test_delayed_action_is_a_deferral_not_a_hard_bounce() -> None:
    bob = parse(DSN).records[1]

    assert bob.action is Action.DELAYED
    assert bob.is_failure is False
    assert bob.category is Category.MAILBOX_FULL
    assert bob.hard is False


def test_last_attempt_date_is_read() -> None:
    alice = parse(DSN).records[0]

    assert alice.date == datetime(2024, 6, 3, 10, 5, tzinfo=UTC)


def test_returned_headers_and_envelope_address_are_exposed() -> None:
    report = parse(DSN)

    assert report.original_message_id == "<m1@relay.example.com>"
    assert ("X-Postroom-Rcpt", "r42") in report.original_headers
    assert report.envelope_to == "bounces+abc@relay.example.com"


def test_crlf_line_endings_read_the_same() -> None:
    assert parse(DSN.replace(b"\n", b"\r\n")) == parse(DSN)


def test_global_delivery_status_is_read_as_utf8() -> None:
    raw = DSN.replace(b"message/delivery-status", b"message/global-delivery-status")
    raw = raw.replace(b"alice@example.org", "jos\u00e9@ex\u00e4mple.org".encode())

    report = parse(raw)

    assert report.records[0].recipient == "jos\u00e9@ex\u00e4mple.org"


def test_unreadable_date_becomes_none() -> None:
    raw = DSN.replace(b"Mon, 3 Jun 2024 10:05:00 +0000", b"yesterday-ish")

    assert parse(raw).records[0].date is None


def test_ordinary_message_is_not_a_bounce() -> None:
    raw = b"From: a@example.com\nTo: b@example.org\nSubject: Hello\n\nSee you.\n"

    report = parse(raw)

    assert report.kind is ReportKind.NOT_BOUNCE
    assert report.records == ()


def test_auto_reply_is_recognised_and_carries_no_records() -> None:
    raw = (
        b"From: b@example.org\nTo: a@example.com\nSubject: Out of Office\n"
        b"Auto-Submitted: auto-replied\n\nI am away until Monday.\n"
    )

    report = parse(raw)

    assert report.kind is ReportKind.AUTO_REPLY
    assert report.records == ()


def test_exim_prose_bounce_is_read() -> None:
    raw = b"""\
From: Mail Delivery System <Mailer-Daemon@mx.example.net>
To: app@example.com
Subject: Mail delivery failed: returning message to sender
X-Failed-Recipients: dave@example.org
Auto-Submitted: auto-replied

This message was created automatically by mail delivery software.

A message that you sent could not be delivered to one or more of its
recipients. This is a permanent error. The following address(es) failed:

  dave@example.org
    SMTP error from remote mail server after RCPT TO:<dave@example.org>:
    host in.example.org [192.0.2.20]: 550 5.1.1 No such user here

------ This is a copy of the message, including all the headers. ------

Message-ID: <m2@example.com>
From: app@example.com
"""

    report = parse(raw)

    assert report.kind is ReportKind.DSN
    assert [(r.recipient, r.reply_code, r.status) for r in report.records] == [
        ("dave@example.org", "550", "5.1.1")
    ]
    assert report.records[0].hard is True
    assert report.original_message_id == "<m2@example.com>"


def test_recipient_fields_written_before_final_recipient_belong_to_it() -> None:
    raw = b"""\
From: Mailer <mailer-daemon@mx.example.net>
To: sender@example.org
Subject: Sorry, your message could not be delivered
Content-Type: multipart/report; report-type=delivery-status; boundary="b"

--b
Content-Type: text/plain

Your message could not be delivered.

--b
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net

Diagnostic-Code: smtp; 550 5.1.1 Recipient address does not exist
Status: 5.1.1
Final-Recipient: rfc822; gone@example.net
Action: failed

--b--
"""

    (record,) = parse(raw).records

    assert record.status == "5.1.1"
    assert record.diagnostic == "550 5.1.1 Recipient address does not exist"
    assert record.hard is True


def test_without_a_diagnostic_the_reports_heading_for_the_recipient_counts() -> None:
    raw = b"""\
From: Mail Administrator <postmaster@mx.example.net>
To: sender@example.org
Subject: Mail System Error - Returned Mail
Content-Type: multipart/report; report-type=delivery-status; boundary="b"

--b
Content-Type: text/plain

The user(s) account is disabled.

<held@example.net>: 550 user unknown (in reply to RCPT TO command)

--b
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net

Final-Recipient: rfc822; held@example.net
Action: failed
Status: 5.0.0

--b--
"""

    (record,) = parse(raw).records

    assert record.category is Category.MAILBOX_DISABLED
    assert record.hard is False


def _one_group(fields: str, *, prose: str = "", top: str = "") -> bytes:
    return (
        "From: Mail Delivery System <mailer-daemon@mx.example.net>\n"
        "To: sender@example.org\n"
        f"{top}"
        "Subject: Undelivered Mail Returned to Sender\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\n'
        "\n--b\nContent-Type: text/plain\n\n"
        f"Your message could not be delivered.\n{prose}\n"
        "--b\nContent-Type: message/delivery-status\n\n"
        "Reporting-MTA: dns; mx.example.net\n\n"
        f"{fields}\n--b--\n"
    ).encode()


def test_the_remote_replys_own_code_beats_a_status_field_that_differs() -> None:
    raw = _one_group(
        "Final-Recipient: rfc822; ann@example.net\nAction: failed\n"
        "Status: 5.1.1\nDiagnostic-Code: smtp; 550 5.7.1 IP address blacklisted\n"
    )

    (record,) = parse(raw).records

    assert record.status == "5.7.1"
    assert record.category is Category.BLOCKED
    assert record.hard is False


def test_a_status_field_of_the_wrong_class_gives_way_to_the_reply() -> None:
    raw = _one_group(
        "Final-Recipient: rfc822; ann@example.net\nAction: failed\n"
        "Status: 4.5.0\nDiagnostic-Code: smtp; 550 5.5.0 Service refused\n"
    )

    (record,) = parse(raw).records

    assert (record.reply_code, record.status) == ("550", "5.5.0")


def test_a_generic_code_in_the_reply_leaves_a_specific_status_field() -> None:
    raw = _one_group(
        "Final-Recipient: rfc822; ann@example.net\nAction: failed\n"
        "Status: 5.1.1\nDiagnostic-Code: smtp; 550 5.0.0 User unknown\n"
    )

    (record,) = parse(raw).records

    assert record.status == "5.1.1"
    assert record.hard is True


def test_a_program_exit_status_gives_way_to_the_transcripts_code() -> None:
    transcript = (
        "\n----- The following addresses had permanent fatal errors -----\n"
        '"|/usr/local/bin/deliver"\n    (expanded from: <ann@example.net>)\n\n'
        "----- Transcript of session follows -----\n"
        "554 5.3.0 unknown mailer error 255\n"
    )
    raw = _one_group(
        "Final-Recipient: rfc822; ann@example.net\nAction: failed\n"
        "Status: 5.0.0\nDiagnostic-Code: X-Unix; 255\n",
        prose=transcript,
    )

    (record,) = parse(raw).records

    assert record.status == "5.3.0"
    assert record.category is Category.SYSTEM


def test_a_local_delivery_is_reported_for_the_x_failed_recipients_address() -> None:
    raw = _one_group(
        "Action: failed\nFinal-Recipient: rfc822;/var/mail/spool/a/ann\n"
        "Status: 5.0.0\n",
        prose="  save to /var/mail/spool/a/ann\n    mailbox is full\n",
        top="X-Failed-Recipients: ann@example.net\n",
    )

    (record,) = parse(raw).records

    assert (record.recipient, record.action) == ("ann@example.net", Action.FAILED)
    assert record.status == "5.0.0"


def test_a_local_delivery_among_several_groups_is_not_guessed() -> None:
    raw = _one_group(
        "Action: failed\nFinal-Recipient: rfc822;/var/mail/spool/a/ann\n"
        "Status: 5.0.0\n\n"
        "Action: failed\nFinal-Recipient: rfc822; bob@example.net\nStatus: 5.1.1\n",
        top="X-Failed-Recipients: ann@example.net\n",
    )

    assert [r.recipient for r in parse(raw).records] == ["bob@example.net"]


def test_a_temporary_reply_code_does_not_replace_a_failed_reports_status() -> None:
    raw = _one_group(
        "Final-Recipient: rfc822; ann@example.net\nAction: failed\n"
        "Status: 5.0.0\nDiagnostic-Code: smtp; 451 4.7.1 Greylisted, try later\n"
    )

    (record,) = parse(raw).records

    assert record.status == "5.0.0"
    assert record.action is Action.FAILED


def test_a_permanent_reply_code_does_not_replace_a_delay_notices_status() -> None:
    raw = _one_group(
        "Final-Recipient: rfc822; ann@example.net\nAction: delayed\n"
        "Status: 4.4.7\nDiagnostic-Code: smtp; 550 5.1.1 User unknown\n"
    )

    (record,) = parse(raw).records

    assert record.status == "4.4.7"
    assert (record.action, record.hard) == (Action.DELAYED, False)


def test_a_final_recipient_with_a_malformed_domain_is_kept_as_written() -> None:
    raw = _one_group(
        "Final-Recipient: RFC822; ann@#example.net\nAction: failed\nStatus: 5.1.2\n"
    )

    (record,) = parse(raw).records

    assert (record.recipient, record.category) == (
        "ann@#example.net",
        Category.UNKNOWN_DOMAIN,
    )


def test_a_group_repeated_in_one_report_gives_one_record() -> None:
    group = (
        "Final-Recipient: rfc822; ann@example.net\nAction: failed\n"
        "Status: 5.1.1\nDiagnostic-Code: smtp; 550 5.1.1 User unknown\n"
    )

    records = parse(_one_group("\n".join([group] * 5))).records

    assert [r.recipient for r in records] == ["ann@example.net"]


def test_a_footer_in_the_prose_does_not_outweigh_a_specific_status() -> None:
    raw = _one_group(
        "Final-Recipient: rfc822; ann@example.net\nAction: failed\nStatus: 5.1.1\n",
        prose=(
            "Delivery to the following recipients failed.\n\n    ann@example.net\n\n"
            "This email has been scanned for viruses and spam. Please report"
            " unwanted spam email to abuse@example.org\n"
        ),
    )

    (record,) = parse(raw).records

    assert (record.category, record.hard) == (Category.UNKNOWN_USER, True)
