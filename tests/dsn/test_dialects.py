from postroom.dsn import Action, Category, parse

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
