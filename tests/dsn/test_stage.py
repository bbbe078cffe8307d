"""An "unknown user" refusal is the address's fault only when it answered
RCPT TO; after DATA it is a filter's verdict on the message."""

from postroom.dsn import Category, classify, parse
from postroom.dsn.evidence import answered_data
from postroom.dsn.status import EnhancedStatus

SENDMAIL_HEAD = b"""\
From: Mail Delivery Subsystem <MAILER-DAEMON@mx.example.org>
To: sender@example.org
Subject: Returned mail: see transcript for details
Content-Type: multipart/report; report-type=delivery-status; boundary="b"

--b
Content-Type: text/plain

   ----- Transcript of session follows -----
... while talking to mx.example.net.:
"""
SENDMAIL_TAIL = b"""
--b
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.org

Final-Recipient: RFC822; who@example.net
Action: failed
Status: 5.0.0
Diagnostic-Code: SMTP; 550 Unknown user who@example.net

--b--
"""


def test_unknown_user_in_reply_to_end_of_data_is_policy_and_not_hard() -> None:
    text = "550 Unknown user who@example.net (in reply to end of DATA command)"

    verdict = classify(550, EnhancedStatus(5, 0, 0), text)

    assert verdict.category is Category.POLICY
    assert verdict.hard is False


def test_unknown_user_in_reply_to_rcpt_stays_a_bad_address() -> None:
    text = "550 5.1.1 Unknown user who@example.net (in reply to RCPT TO command)"

    verdict = classify(550, EnhancedStatus(5, 1, 1), text)

    assert verdict.category is Category.UNKNOWN_USER
    assert verdict.hard is True


def test_caller_that_knows_the_stage_overrides_the_text() -> None:
    verdict = classify(550, None, "User unknown", after_data=True)

    assert verdict.category is Category.POLICY
    assert verdict.hard is False


def test_postfix_recipient_wording_names_rcpt_whatever_stage_is_reported() -> None:
    text = "550 5.1.1 <a@example.net>: Recipient address rejected: User unknown"

    assert classify(550, None, text, after_data=True).hard is True


def test_transcript_with_a_single_reply_to_data_places_the_refusal_after_data() -> None:
    raw = SENDMAIL_HEAD + b">>> DATA\n<<< 550 Unknown user who@example.net\n"

    record = parse(raw + SENDMAIL_TAIL).failed[0]

    assert record.category is Category.POLICY
    assert record.hard is False


def test_pipelined_transcript_reply_before_the_last_answers_rcpt() -> None:
    transcript = (
        b">>> DATA\n<<< 550 5.1.1 <who@example.net>... User unknown\n"
        b"<<< 503 5.0.0 Need RCPT (recipient)\n"
    )

    record = parse(SENDMAIL_HEAD + transcript + SENDMAIL_TAIL).failed[0]

    assert record.category is Category.UNKNOWN_USER
    assert record.hard is True


def test_stage_wording_in_another_recipients_paragraph_does_not_count() -> None:
    text = (
        "<a@example.net>: host mx said: 550 User unknown (in reply to RCPT TO"
        " command)\n\n<b@example.net>: host mx said: 550 User unknown (in reply"
        " to end of DATA command)\n"
    )

    assert answered_data("a@example.net", text, sole=False) is False
    assert answered_data("b@example.net", text, sole=False) is True


def test_unknown_user_under_a_status_naming_another_cause_is_not_hard() -> None:
    text = "550 5.2.1 <who@example.net>... User Unknown"

    verdict = classify(550, EnhancedStatus(5, 2, 1), text)

    assert verdict.category is Category.POLICY
    assert verdict.hard is False


def test_unknown_user_under_a_generic_status_stays_a_bad_address() -> None:
    verdict = classify(550, EnhancedStatus(5, 0, 0), "550 User unknown")

    assert verdict.category is Category.UNKNOWN_USER
    assert verdict.hard is True


def test_imails_rcpt_wording_confirms_unknown_user_under_a_system_status() -> None:
    text = (
        "RCPT TO generated following response:\n"
        "553 5.3.0 <who@example.net>... Addressee unknown"
    )

    verdict = classify(553, EnhancedStatus(5, 3, 0), text)

    assert verdict.category is Category.UNKNOWN_USER
    assert verdict.hard is True


def test_rcpt_stage_confirms_unknown_user_whatever_the_status() -> None:
    text = "550 5.2.1 <who@example.net>... User Unknown (in reply to RCPT TO command)"

    verdict = classify(550, EnhancedStatus(5, 2, 1), text)

    assert verdict.category is Category.UNKNOWN_USER
    assert verdict.hard is True


GATEWAY_BOUNCE = b"""\
From: <MAILER-DAEMON@gw.example.org>
To: <sender@example.org>
Subject: Delivery Status
X-NAI-Header: Modified by McAfee Email Gateway
Content-Type: text/plain

    --- The following addresses had delivery problems ---
<who@example.net>   (who@example.net... No such user)
"""


def test_filtering_gateways_own_unknown_user_refusal_is_not_hard() -> None:
    report = parse(GATEWAY_BOUNCE)

    (record,) = report.failed
    assert record.category is Category.POLICY
    assert record.hard is False


def test_filtering_gateway_relaying_an_address_status_keeps_it_hard() -> None:
    raw = GATEWAY_BOUNCE.replace(b"(who@", b"(5.1.1 who@")

    (record,) = parse(raw).failed

    assert record.status == "5.1.1"
    assert record.hard is True


def test_user_unknown_with_an_empty_recipient_slot_answered_data() -> None:
    verdict = classify(550, EnhancedStatus(5, 0, 0), "550 : User unknown")

    assert verdict.category is Category.POLICY
    assert verdict.hard is False


def test_user_unknown_naming_the_address_in_its_slot_stays_a_bad_address() -> None:
    verdict = classify(
        550, EnhancedStatus(5, 0, 0), "550 <who@example.net>: User unknown"
    )

    assert verdict.category is Category.UNKNOWN_USER
    assert verdict.hard is True


def test_provider_without_such_an_account_is_a_bad_address_even_after_data() -> None:
    text = (
        "554 delivery error: dd This user doesn't have a example.net account"
        " (who@example.net) [0] (in reply to end of DATA command)"
    )

    verdict = classify(554, EnhancedStatus(5, 0, 0), text)

    assert verdict.category is Category.UNKNOWN_USER
    assert verdict.hard is True
