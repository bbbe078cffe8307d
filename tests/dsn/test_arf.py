from postroom.dsn import Category, ReportKind, parse

ARF = b"""\
From: fbl@isp.example.net
To: fbl@relay.example.com
Subject: Abuse report
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="B"

--B
Content-Type: text/plain

This is an abuse report.

--B
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: ExampleFBL/1.0
Version: 1
Original-Rcpt-To: <erin@example.org>
Arrival-Date: Tue, 4 Jun 2024 08:00:00 +0000

--B
Content-Type: message/rfc822

Message-ID: <m3@relay.example.com>
From: app@example.com
To: someone-else@example.org
Subject: Your invitation

Hello.
--B--
"""


def test_feedback_report_gives_one_complaint_per_reported_recipient() -> None:
    report = parse(ARF)

    assert report.kind is ReportKind.ARF
    assert [r.recipient for r in report.records] == ["erin@example.org"]
    assert report.records[0].category is Category.COMPLAINT
    assert report.records[0].hard is False


def test_feedback_type_is_kept() -> None:
    raw = ARF.replace(b"Feedback-Type: abuse", b"Feedback-Type: opt-out")

    assert parse(raw).records[0].feedback_type == "opt-out"


def test_redacted_recipient_falls_back_to_the_returned_to() -> None:
    raw = ARF.replace(b"Original-Rcpt-To: <erin@example.org>\n", b"")

    assert [r.recipient for r in parse(raw).records] == ["someone-else@example.org"]


def test_complaint_carries_the_returned_message_id() -> None:
    assert parse(ARF).original_message_id == "<m3@relay.example.com>"
