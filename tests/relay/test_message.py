"""The header-only message helpers of the submission listener."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from postroom.relay import message as msg


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        (b"a\r\nb\r\n", b"a\r\nb\r\n"),
        (b"a\nb\n", b"a\r\nb\r\n"),
        (b"a\rb\r", b"a\r\nb\r\n"),
        (b"a\r\n\nb\r\r\n", b"a\r\n\r\nb\r\n\r\n"),
        (b"no ending", b"no ending"),
    ],
)
def test_every_line_ending_becomes_crlf(raw: bytes, normalized: bytes) -> None:
    assert msg.normalize_line_endings(raw) == normalized


def test_split_header_keeps_folded_fields_whole_and_the_body_untouched() -> None:
    raw = b"To: a@example.com,\r\n\tb@example.com\r\nSubject: hi\r\n\r\nbody\r\n"

    fields, rest = msg.split_header(raw)

    assert [f.name for f in fields] == ["To", "Subject"]
    assert fields[0].value == "a@example.com,\tb@example.com"
    assert rest == b"\r\nbody\r\n"
    assert msg.join_header(fields, rest) == raw


def test_split_header_stops_at_the_first_line_that_is_not_a_field() -> None:
    raw = b"Subject: hi\r\nthis is not a header\r\nX-Late: no\r\n"

    fields, rest = msg.split_header(raw)

    assert [f.name for f in fields] == ["Subject"]
    assert rest == b"this is not a header\r\nX-Late: no\r\n"


def test_a_message_without_header_fields_is_all_rest() -> None:
    fields, rest = msg.split_header(b"\r\njust a body\r\n")

    assert fields == []
    assert rest == b"\r\njust a body\r\n"


def test_header_values_survive_bytes_that_are_not_utf8() -> None:
    fields, _ = msg.split_header(b"Subject: caf\xe9\r\n\r\n")

    assert fields[0].value == "caf\ufffd"


def test_without_drops_every_copy_of_a_field_whatever_its_case() -> None:
    fields, rest = msg.split_header(
        b"X-Campaign-ID: one\r\nTo: a@example.com\r\nx-campaign-id: two\r\n\r\n"
    )

    kept = msg.without(fields, "X-Campaign-ID")

    assert msg.first_value(fields, "x-CAMPAIGN-id") == "one"
    assert msg.join_header(kept, rest) == b"To: a@example.com\r\n\r\n"


@pytest.mark.parametrize(
    ("value", "campaign"),
    [
        ("survey-42", "survey-42"),
        ("  spring.2026/wave:1  ", "spring.2026/wave:1"),
        ("", None),
        ("two words", None),
        ("-leading-hyphen", None),
        ("<script>", None),
        ("x" * 129, None),
        ("ümlaut", None),
    ],
)
def test_clean_campaign_accepts_only_a_safe_name(
    value: str, campaign: str | None
) -> None:
    assert msg.clean_campaign(value) == campaign


def test_display_names_come_from_to_and_cc_by_address() -> None:
    fields, _ = msg.split_header(
        b'To: "Example, Ann" <Ann@Example.com>, bob@example.org\r\n'
        b"Cc: =?utf-8?b?Wm/DqyBSb2U=?= <zoe@example.net>\r\n"
        b"Bcc: Hidden <hidden@example.com>\r\n\r\n"
    )

    names = msg.display_names(
        fields,
        ["ann@example.com", "bob@example.org", "zoe@example.net", "hidden@example.com"],
    )

    assert names == ["Example, Ann", "", "Zoë Roe", ""]


@pytest.mark.parametrize(
    ("address", "plausible"),
    [
        ("ann@example.com", True),
        ("a.b+tag@sub.example.co.uk", True),
        ("ann@xn--bcher-kva.example", True),
        ("ann@bücher.example", True),
        ("ann@[192.0.2.1]", True),
        ("ann@[IPv6:2001:db8::1]", True),
        ("ann", False),
        ("@example.com", False),
        ("ann@", False),
        ("ann@localhost", False),
        ("ann@example.123", False),
        ("ann@-example.com", False),
        ("ann@exa_mple.com", False),
        ("ann@example..com", False),
        ("ann@[999.0.0.1]", False),
        ("ann@[2001:db8::1]", False),
        ("a b@example.com", False),
        ("x" * 65 + "@example.com", False),
    ],
)
def test_is_plausible_address(address: str, plausible: bool) -> None:
    assert msg.is_plausible_address(address) is plausible


def test_received_header_for_one_recipient_names_it() -> None:
    header = msg.received_header(
        helo="client.test",
        peer_ip="192.0.2.7",
        peer_name="mail.client.test",
        hostname="relay.test",
        protocol="ESMTPSA",
        transaction_id="abc123",
        recipient="ann@example.com",
        when=datetime(2026, 1, 5, 9, 0, tzinfo=UTC),
    )

    assert header == (
        b"Received: from client.test (mail.client.test [192.0.2.7])\r\n"
        b"\tby relay.test with ESMTPSA id abc123\r\n"
        b"\tfor <ann@example.com>;\r\n"
        b"\tMon, 05 Jan 2026 09:00:00 +0000\r\n"
    )


def test_received_header_for_many_recipients_names_none_and_tames_the_helo() -> None:
    header = msg.received_header(
        helo="evil (comment) name",
        peer_ip="2001:db8::7",
        peer_name=None,
        hostname="relay.test",
        protocol="ESMTP",
        transaction_id="abc123",
        recipient=None,
        when=datetime(2026, 1, 5, 9, 0, tzinfo=UTC),
    )

    assert header.startswith(
        b"Received: from evil__comment__name ([IPv6:2001:db8::7])\r\n"
        b"\tby relay.test with ESMTP id abc123;\r\n"
    )
    assert b"for <" not in header


@pytest.mark.parametrize(
    ("address", "mailbox"),
    [
        ("root@vm", True),
        ("ann@example.com", True),
        ('"quoted local"@example.net', True),
        ('"a\\"b"@example.net', True),
        ("zoë@bücher.example", True),
        ("a..b@example.jp", True),
        ("ann@[192.0.2.1]", True),
        ('"unclosed@example.net', False),
        ('"a"b"@example.net', False),
        ("a b@example.com", False),
        ("a<b@example.com", False),
        ("\udce9@example.net", False),
        ("ann@ex\udce9mple.net", False),
        ("ann@exa_mple.com", False),
        ("ann@", False),
        ("ü" * 33 + "@example.com", False),  # 66 octets of local part
    ],
)
def test_is_mailbox_is_rfc_5321_syntax_without_routability(
    address: str, mailbox: bool
) -> None:
    assert msg.is_mailbox(address) is mailbox


def test_dotless_domains_are_told_apart_from_dotted_ones_and_literals() -> None:
    assert msg.has_dotless_domain("root@vm")
    assert msg.has_dotless_domain("root@localhost.")
    assert not msg.has_dotless_domain("ann@example.com")
    assert not msg.has_dotless_domain("ann@[192.0.2.1]")


def test_is_utf8_finds_the_surrogates_left_by_undecodable_bytes() -> None:
    decoded = b"caf\xe9".decode("utf-8", "surrogateescape")

    assert not msg.is_utf8(decoded)
    assert msg.is_utf8("café")


def test_printable_replaces_surrogates_and_drops_controls() -> None:
    assert msg.printable("Zo\udce9\x00 Roe\r\n") == "Zo\ufffd Roe"
    assert msg.printable("Zoë").encode("utf-8") == "Zoë".encode()


def test_date_field_and_message_id_are_well_formed() -> None:
    when = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

    field = msg.date_field(when)
    message_id = msg.new_message_id("relay.test")

    assert field.raw == b"Date: Mon, 05 Jan 2026 09:00:00 +0000\r\n"
    assert field.value == "Mon, 05 Jan 2026 09:00:00 +0000"
    assert re.fullmatch(r"<[0-9a-f]{32}@relay\.test>", message_id)
    assert message_id != msg.new_message_id("relay.test")
