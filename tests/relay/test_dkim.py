"""DKIM signing, checked by dkimpy's verifier against a real DNS server."""

from __future__ import annotations

import re
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

import dkim
import pytest

from postroom.clock import ManualClock
from postroom.config.schema import DkimKeyConfig
from postroom.errors import ConfigError
from postroom.relay import dkim as postroom_dkim
from postroom.relay.dkim import DkimSigner
from postroom.relay.dkim_keys import (
    Algorithm,
    SigningKey,
    generate,
    load_keys,
    record_name,
    txt_record,
    write_private_key,
)
from postroom.relay.stamp import Stamped
from postroom.relay.unsubscribe import UnsubscribeHeaders
from postroom.tokens import TokenSigner
from tests.peers.dkimdns import txt_lookup
from tests.peers.dnsserver import DnsServer
from tests.relay.test_unsubscribe import delivery_for

Verify = Callable[[bytes], bool]


def published(dns_server: DnsServer, domain: str, algorithm: Algorithm) -> SigningKey:
    """A new key for ``domain``, its public half served by ``dns_server``."""
    private = generate(algorithm)
    dns_server.add(record_name("s1", domain), "TXT", txt_record(private))
    return SigningKey(domain, "s1", algorithm, private)


@pytest.fixture
def verify(dns_server: DnsServer) -> Verify:
    lookup = txt_lookup(dns_server.port)
    return lambda raw: bool(dkim.verify(raw, dnsfunc=lookup))


def invitation(sender: str = "surveys@example.org") -> bytes:
    message = EmailMessage()
    message["From"] = f"Survey Team <{sender}>"
    message["To"] = "Ada Lovelace <ada@example.net>"
    message["Cc"] = "Bob <bob@example.net>"
    message["Reply-To"] = "help@example.org"
    message["Subject"] = "Your invitation"
    message["Date"] = "Mon, 05 Jan 2026 09:00:00 +0000"
    message["Message-ID"] = "<inv-1@example.org>"
    message["X-Mailer"] = "survey-app"
    message.set_content("Please take our survey.\n\n\n")
    return message.as_bytes().replace(b"\n", b"\r\n")


def stamped(raw: bytes) -> bytes:
    """``raw`` with one-click unsubscribe headers, as the stamper adds them."""
    step = UnsubscribeHeaders(
        TokenSigner(b"k" * 32, "unsubscribe"),
        "https://mail.example.org/unsubscribe",
        mailto_domain="bounces.example.org",
    )
    return step(delivery_for(7), Stamped("surveys@example.org", raw)).raw


def signed_names(raw: bytes) -> list[bytes]:
    field = raw.split(b"DKIM-Signature:", 1)[1].split(b"\r\nContent-Type", 1)[0]
    tags = dkim.util.parse_tag_value(re.sub(rb"\s+", b"", field.split(b"\r\n ", 1)[0]))
    tags.update(dkim.util.parse_tag_value(re.sub(rb"\s+", b"", field)))
    return tags[b"h"].split(b":")


@pytest.mark.parametrize("algorithm", ["rsa-sha256", "ed25519-sha256"])
def test_a_signed_message_verifies_with_either_algorithm(
    dns_server: DnsServer, verify: Verify, algorithm: Algorithm
) -> None:
    key = published(dns_server, "example.org", algorithm)
    signer = DkimSigner([key], ManualClock())

    signed = signer.sign(stamped(invitation()))

    assert signed.startswith(b"DKIM-Signature: v=1; a=" + algorithm.encode())
    assert verify(signed)


def test_h_lists_the_present_fields_and_both_unsubscribe_headers(
    dns_server: DnsServer,
) -> None:
    key = published(dns_server, "example.org", "rsa-sha256")

    names = signed_names(DkimSigner([key], ManualClock()).sign(stamped(invitation())))

    assert names == [
        b"from", b"from", b"to", b"cc", b"subject", b"date", b"message-id",
        b"mime-version", b"content-type", b"content-transfer-encoding",
        b"reply-to", b"list-unsubscribe", b"list-unsubscribe-post",
    ]  # fmt: skip
    assert b"x-mailer" not in names


@pytest.mark.parametrize(
    ("field", "forged"),
    [
        (b"From", b"From: Mallory <surveys@example.org>"),
        (b"To", b"To: eve@example.net"),
        (b"Cc", b"Cc: eve@example.net"),
        (b"Subject", b"Subject: Win a prize"),
        (b"Date", b"Date: Tue, 06 Jan 2026 09:00:00 +0000"),
        (b"Message-ID", b"Message-ID: <other@example.org>"),
        (b"Reply-To", b"Reply-To: eve@example.net"),
        (b"Content-Type", b"Content-Type: text/html"),
        (b"List-Unsubscribe", b"List-Unsubscribe: <https://evil.example/x>"),
        (b"List-Unsubscribe-Post", b"List-Unsubscribe-Post: nothing"),
    ],
)
def test_changing_any_signed_header_breaks_the_signature(
    dns_server: DnsServer, verify: Verify, field: bytes, forged: bytes
) -> None:
    key = published(dns_server, "example.org", "rsa-sha256")
    signed = DkimSigner([key], ManualClock()).sign(stamped(invitation()))
    original = re.search(rb"\r\n" + field + rb":.*?\r\n(?! )", signed, re.S)
    assert original is not None

    tampered = signed.replace(original.group(), b"\r\n" + forged + b"\r\n", 1)

    assert verify(signed)
    assert not verify(tampered)


def test_a_second_from_added_after_signing_breaks_the_signature(
    dns_server: DnsServer, verify: Verify
) -> None:
    key = published(dns_server, "example.org", "rsa-sha256")
    signed = DkimSigner([key], ManualClock()).sign(invitation())

    added = signed.replace(b"\r\n\r\n", b"\r\nFrom: eve@example.org\r\n\r\n", 1)

    assert not verify(added)


def test_a_changed_body_breaks_the_signature(
    dns_server: DnsServer, verify: Verify
) -> None:
    key = published(dns_server, "example.org", "ed25519-sha256")
    signed = DkimSigner([key], ManualClock()).sign(invitation())

    assert not verify(signed.replace(b"our survey", b"our prize"))


def test_a_subdomain_sender_is_signed_with_the_parent_domain_key(
    dns_server: DnsServer, verify: Verify
) -> None:
    parent = published(dns_server, "example.org", "rsa-sha256")
    other = published(dns_server, "example.com", "rsa-sha256")
    signer = DkimSigner([other, parent], ManualClock())

    signed = signer.sign(invitation("surveys@news.example.org"))

    assert b"d=example.org;" in signed
    assert verify(signed)


def test_the_exact_domain_key_wins_over_a_parent(dns_server: DnsServer) -> None:
    parent = published(dns_server, "example.org", "rsa-sha256")
    exact = published(dns_server, "news.example.org", "ed25519-sha256")
    signer = DkimSigner([parent, exact], ManualClock())

    assert signer.key_for("news.example.org") is exact
    assert signer.key_for("a.news.example.org") is exact
    assert signer.key_for("example.org") is parent
    assert signer.key_for("notexample.org") is None


def test_mail_from_a_domain_without_a_key_goes_out_unsigned(
    dns_server: DnsServer,
) -> None:
    key = published(dns_server, "example.org", "rsa-sha256")
    raw = invitation("someone@example.com")

    assert DkimSigner([key], ManualClock()).sign(raw) == raw


def test_the_body_is_hashed_once_per_message(
    dns_server: DnsServer, verify: Verify, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = published(dns_server, "example.org", "rsa-sha256")
    signer = DkimSigner([key], ManualClock())
    calls: list[bytes] = []
    canonicalize = postroom_dkim.relaxed_body

    def counting(body: bytes) -> bytes:
        calls.append(body)
        return canonicalize(body)

    monkeypatch.setattr(postroom_dkim, "relaxed_body", counting)
    raw = invitation()

    copies = [signer.sign(stamped(raw), body_key="q1") for _ in range(3)]

    assert len(calls) == 1
    assert all(verify(copy) for copy in copies)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"\r\n",
        b"line\r\n",
        b"line\r\n\r\n\r\n",
        b"two words\r\nand more\r\n",
        b"two  spaces\r\n",
        b"trailing \r\n",
        b"a\ttab\r\n",
        b"no line end",
        b"line\r\n \r\n\r\n",
        b"bare\nfeed\r\n",
        b"bare\rreturn\r\n",
        b"last line \r\n\r\n",
    ],
)
def test_relaxed_body_matches_dkimpy(body: bytes) -> None:
    expected = postroom_dkim._POLICY.canonicalize_body(body)

    assert postroom_dkim.relaxed_body(body) == expected


def test_the_signature_time_comes_from_the_clock(dns_server: DnsServer) -> None:
    key = published(dns_server, "example.org", "rsa-sha256")
    clock = ManualClock()

    signed = DkimSigner([key], clock).sign(invitation())

    assert f"t={int(clock.now().timestamp())};".encode() in signed


def test_load_keys_reads_the_configured_files(tmp_path: Path) -> None:
    write_private_key(generate("ed25519-sha256"), tmp_path / "ed.key")
    entry = DkimKeyConfig(
        domain="Example.org.",
        selector="s2",
        key=tmp_path / "ed.key",
        algorithm="ed25519-sha256",
    )

    [key] = load_keys([entry])

    assert (key.domain, key.selector, key.algorithm) == (
        "example.org",
        "s2",
        "ed25519-sha256",
    )


def test_a_missing_or_mismatched_key_file_is_a_config_error_naming_the_key(
    tmp_path: Path,
) -> None:
    write_private_key(generate("ed25519-sha256"), tmp_path / "ed.key")
    (tmp_path / "junk.key").write_text("not a key")
    entries = [
        DkimKeyConfig(domain="a.org", selector="s", key=tmp_path / "missing.key"),
        DkimKeyConfig(domain="b.org", selector="s", key=tmp_path / "ed.key"),
        DkimKeyConfig(domain="c.org", selector="s", key=tmp_path / "junk.key"),
    ]

    with pytest.raises(ConfigError) as caught:
        load_keys(entries)

    problems = caught.value.problems
    assert problems[0].startswith("dkim.0.key: ")
    assert "missing.key: cannot read the key file" in problems[0]
    assert problems[1].startswith("dkim.1.key: ")
    assert "needs an RSA key" in problems[1]
    assert "not an unencrypted PEM private key" in problems[2]


def test_a_second_key_for_one_domain_is_a_config_error(tmp_path: Path) -> None:
    write_private_key(generate("rsa-sha256"), tmp_path / "a.key")
    entries = [
        DkimKeyConfig(domain="example.org", selector="s1", key=tmp_path / "a.key"),
        DkimKeyConfig(domain="example.org", selector="s2", key=tmp_path / "a.key"),
    ]

    with pytest.raises(ConfigError) as caught:
        load_keys(entries)

    assert caught.value.problems == ["dkim.1.domain: example.org has a key already"]
