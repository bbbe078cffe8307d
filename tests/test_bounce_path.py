"""Bounces that arrive later, end to end, in one process.

The relay delivers to a receiving server on loopback that accepts; that
server's reports (a DSN to the VERP return path, a complaint, a mailto
unsubscribe) are sent over SMTP to the relay's inbound listener, and the
store shows what came of them.
"""

from __future__ import annotations

import asyncio
import csv
import io
import smtplib
from collections.abc import AsyncIterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from click.testing import CliRunner

from postroom.app import Relay
from postroom.cli import main
from postroom.clock import ManualClock
from postroom.config import parse_config
from postroom.queue.models import NewInboundReport, State
from postroom.relay.inbound import InboundServer
from postroom.relay.verp import RCPT_HEADER
from postroom.tokens import TokenSigner
from tests.peers.inprocess import (
    loopback_settings,
    recipient,
    start_with_file,
    submit,
    until,
)
from tests.peers.sink import Received, Sink

BOUNCE_DOMAIN = "bounces.test"


@pytest.fixture
async def relay(
    tmp_path: Path, sink: Sink, clock: ManualClock
) -> AsyncIterator[tuple[Relay, Path]]:
    settings = loopback_settings(
        tmp_path,
        await sink.listen(),
        inbound={
            "listen": "127.0.0.1:0",
            "bounce_domain": BOUNCE_DOMAIN,
            "postmaster_forward": ["ops@example.net"],
        },
    )
    running, config_file = await start_with_file(tmp_path, settings, clock)
    yield running, config_file
    await running.stop()


def inbound(running: Relay) -> InboundServer:
    assert running.inbound is not None
    return running.inbound


def invitation(to: str, campaign: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Survey Team <surveys@example.org>"
    message["To"] = f"Ada Lovelace <{to}>"
    message["Subject"] = "Your invitation"
    message["Message-ID"] = f"<{campaign}.{to}@example.org>"
    message["X-Campaign-ID"] = campaign
    message.set_content("Please take our survey.")
    return message


def send_report(port: int, rcpt: str, raw: bytes, mail_from: str = "") -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.sendmail(mail_from, [rcpt], raw)


async def delivered_copy(
    running: Relay, sink: Sink, to: str, campaign: str
) -> Received:
    """Submit an invitation and wait until it is delivered and recorded."""
    before = len(sink.to(to))
    await asyncio.to_thread(submit, running.submission.port, invitation(to, campaign))

    async def arrived() -> bool:
        rows = await running.store.recipients(campaign=campaign)
        recorded = any(r.state is State.DELIVERED for r in rows)
        return recorded and len(sink.to(to)) > before

    await until(arrived)
    return sink.to(to)[-1]


def returned_headers(copy: Received) -> str:
    return copy.data.split(b"\r\n\r\n", 1)[0].decode()


def dsn(
    verp: str, copy: Received, *, action: str = "failed", status: str = "5.1.1"
) -> bytes:
    """An RFC 3464 report as Postfix writes it, about the copy ``copy``."""
    code = "550" if status.startswith("5") else "450"
    return (
        "From: MAILER-DAEMON@mx.example.net (Mail Delivery System)\r\n"
        f"To: {verp}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "Date: Mon, 05 Jan 2026 09:10:00 +0000\r\n"
        "Message-ID: <20260105091000.ABC123@mx.example.net>\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: multipart/report; report-type=delivery-status;\r\n"
        '\tboundary="BOUNDARY"\r\n'
        "\r\n"
        "--BOUNDARY\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n"
        "\r\n"
        "This is the mail system at host mx.example.net.\r\n"
        "\r\n"
        "I'm sorry to have to inform you that your message could not\r\n"
        "be delivered to one or more recipients.\r\n"
        "\r\n"
        f"<{copy.rcpt}>: host store.example.net[192.0.2.7] said: {code} {status}\r\n"
        "    <ok@example.net>: Recipient address rejected: User unknown in\r\n"
        "    virtual mailbox table\r\n"
        "\r\n"
        "--BOUNDARY\r\n"
        "Content-Type: message/delivery-status\r\n"
        "\r\n"
        "Reporting-MTA: dns; mx.example.net\r\n"
        "X-Postfix-Queue-ID: ABC123\r\n"
        "Arrival-Date: Mon, 05 Jan 2026 09:00:01 +0000\r\n"
        "\r\n"
        f"Final-Recipient: rfc822; {copy.rcpt}\r\n"
        f"Original-Recipient: rfc822; {copy.rcpt}\r\n"
        f"Action: {action}\r\n"
        f"Status: {status}\r\n"
        "Remote-MTA: dns; store.example.net\r\n"
        f"Diagnostic-Code: smtp; {code} {status} <{copy.rcpt}>: Recipient address\r\n"
        "    rejected: User unknown in virtual mailbox table\r\n"
        "\r\n"
        "--BOUNDARY\r\n"
        "Content-Type: text/rfc822-headers\r\n"
        "\r\n"
        f"{returned_headers(copy)}\r\n"
        "\r\n"
        "--BOUNDARY--\r\n"
    ).encode()


def arf(copy: Received) -> bytes:
    """An RFC 5965 complaint whose returned headers have the address redacted."""
    headers = returned_headers(copy).replace(copy.rcpt, "redacted@example.net")
    return (
        "From: Complaints <fbl@isp.example.net>\r\n"
        f"To: fbl@{BOUNCE_DOMAIN}\r\n"
        "Subject: Abuse report\r\n"
        "Date: Mon, 05 Jan 2026 10:00:00 +0000\r\n"
        "Message-ID: <fbl-1@isp.example.net>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: multipart/report; report-type=feedback-report;\r\n"
        '\tboundary="PART"\r\n'
        "\r\n"
        "--PART\r\n"
        "Content-Type: text/plain\r\n"
        "\r\n"
        "This is an email abuse report for an email message received from IP\r\n"
        "192.0.2.1 on Mon, 05 Jan 2026 09:00:00 +0000.\r\n"
        "\r\n"
        "--PART\r\n"
        "Content-Type: message/feedback-report\r\n"
        "\r\n"
        "Feedback-Type: abuse\r\n"
        "User-Agent: ISP-FBL/1.0\r\n"
        "Version: 1\r\n"
        "Original-Mail-From: <bounces@bounces.test>\r\n"
        "Original-Rcpt-To: <redacted@example.net>\r\n"
        "Arrival-Date: Mon, 05 Jan 2026 09:00:00 +0000\r\n"
        "Source-IP: 192.0.2.1\r\n"
        "\r\n"
        "--PART\r\n"
        "Content-Type: text/rfc822-headers\r\n"
        "\r\n"
        f"{headers}\r\n"
        "\r\n"
        "--PART--\r\n"
    ).encode()


async def test_a_dsn_after_acceptance_bounces_and_suppresses_for_the_campaign(
    relay: tuple[Relay, Path], sink: Sink
) -> None:
    running, config_file = relay
    copy = await delivered_copy(running, sink, "ok@example.net", "spring")
    row = await recipient(running, "ok@example.net")
    assert row.state is State.DELIVERED

    await asyncio.to_thread(
        send_report, inbound(running).port, copy.mail_from, dsn(copy.mail_from, copy)
    )

    row = await running.store.get_recipient(row.id)
    assert copy.mail_from.startswith("bounces+")
    assert copy.mail_from.endswith(f"@{BOUNCE_DOMAIN}")
    assert f"{RCPT_HEADER}: ".encode() in copy.data
    assert row.state is State.BOUNCED
    assert (row.last_code, row.last_status) == (550, "5.1.1")
    export = await asyncio.to_thread(
        CliRunner().invoke, main, ["export", "bounces", "--config", str(config_file)]
    )
    rows = list(csv.reader(io.StringIO(export.output)))
    assert [r[:7] for r in rows[1:]] == [
        ["ok@example.net", "Lovelace", "Ada", "550", "5", "1", "1"]
    ]
    assert await running.store.is_suppressed("spring", "ok@example.net")
    [report] = await running.store.inbound_reports()
    assert (report.kind, report.outcome, report.recipient_id) == (
        "dsn",
        "bounced",
        row.id,
    )


async def test_a_dsn_sent_again_is_kept_as_a_duplicate_and_counted_once(
    relay: tuple[Relay, Path], sink: Sink
) -> None:
    running, _ = relay
    copy = await delivered_copy(running, sink, "ok@example.net", "spring")
    report = dsn(copy.mail_from, copy)
    port = inbound(running).port

    await asyncio.gather(
        *(
            asyncio.to_thread(send_report, port, copy.mail_from, report)
            for _ in range(5)
        )
    )

    rows = await running.store.export_bounces(None, None, None)
    assert [r.address for r in rows] == ["ok@example.net"]
    kept = await running.store.inbound_reports()
    assert sorted(r.outcome for r in kept) == ["bounced"] + ["duplicate"] * 4


async def test_a_suppressed_address_is_not_attempted_again_in_its_campaign_only(
    relay: tuple[Relay, Path], sink: Sink
) -> None:
    running, _ = relay
    copy = await delivered_copy(running, sink, "ok@example.net", "spring")
    await asyncio.to_thread(
        send_report, inbound(running).port, copy.mail_from, dsn(copy.mail_from, copy)
    )

    await asyncio.to_thread(
        submit, running.submission.port, invitation("ok@example.net", "spring")
    )
    await delivered_copy(running, sink, "ok@example.net", "autumn")

    rows = await running.store.recipients()
    states = [(r.campaign, r.state) for r in rows]
    assert states == [
        ("spring", State.BOUNCED),
        ("spring", State.SUPPRESSED),
        ("autumn", State.DELIVERED),
    ]
    assert len(sink.to("ok@example.net")) == 2


async def test_a_forged_dsn_with_a_bad_token_changes_nothing(
    relay: tuple[Relay, Path], sink: Sink
) -> None:
    running, _ = relay
    copy = await delivered_copy(running, sink, "ok@example.net", "spring")
    forged_to = f"bounces+{'a' * 31}@{BOUNCE_DOMAIN}"
    # The forger knows the address but not our key: no returned header.
    forged_copy = Received(
        copy.port, copy.connection, forged_to, copy.rcpt, b"Subject: hi\r\n\r\n", False
    )

    await asyncio.to_thread(
        send_report, inbound(running).port, forged_to, dsn(forged_to, forged_copy)
    )

    row = await recipient(running, "ok@example.net")
    assert row.state is State.DELIVERED
    assert await running.store.export_bounces(None, None, None) == []
    assert not await running.store.is_suppressed("spring", "ok@example.net")
    [report] = await running.store.inbound_reports()
    assert (report.outcome, report.recipient_id) == ("forged", None)


async def test_a_delayed_dsn_is_noted_and_changes_no_state(
    relay: tuple[Relay, Path], sink: Sink
) -> None:
    running, _ = relay
    copy = await delivered_copy(running, sink, "ok@example.net", "spring")
    report = dsn(copy.mail_from, copy, action="delayed", status="4.2.2")

    await asyncio.to_thread(send_report, inbound(running).port, copy.mail_from, report)

    row = await recipient(running, "ok@example.net")
    assert row.state is State.DELIVERED
    assert await running.store.export_bounces(None, None, None) == []
    [kept] = await running.store.inbound_reports()
    assert kept.outcome == "delayed"
    # The diagnostic starts with the codes: each is written once.
    assert kept.detail.startswith("ok@example.net: delayed 450 4.2.2 <ok@")
    assert kept.detail.count("4.2.2") == 1


async def test_inbound_list_and_show_write_the_null_sender_as_empty_brackets(
    relay: tuple[Relay, Path], sink: Sink
) -> None:
    running, config_file = relay
    copy = await delivered_copy(running, sink, "ok@example.net", "spring")
    await asyncio.to_thread(
        send_report, inbound(running).port, copy.mail_from, dsn(copy.mail_from, copy)
    )
    [kept] = await running.store.inbound_reports()
    cfg = ["--config", str(config_file)]

    listing = await asyncio.to_thread(
        CliRunner().invoke, main, ["inbound", "list", *cfg]
    )
    shown = await asyncio.to_thread(
        CliRunner().invoke, main, ["inbound", "show", str(kept.id), *cfg]
    )

    assert "<<>>" not in listing.output + shown.output
    assert f" <> {' ' * 28}{copy.mail_from}" in listing.output
    assert "from:      <>\n" in shown.output


async def test_a_complaint_with_the_address_redacted_unsubscribes_by_our_header(
    relay: tuple[Relay, Path], sink: Sink
) -> None:
    running, _ = relay
    copy = await delivered_copy(running, sink, "ok@example.net", "spring")

    await asyncio.to_thread(
        send_report, inbound(running).port, f"fbl@{BOUNCE_DOMAIN}", arf(copy)
    )

    stats = await running.store.stats("spring")
    row = await recipient(running, "ok@example.net")
    assert b"ok@example.net" not in arf(copy)
    assert await running.store.is_suppressed("spring", "ok@example.net")
    assert (stats.complaints, stats.unsubscribed) == (1, 1)
    assert row.state is State.DELIVERED  # a complaint is not a bounce
    [report] = await running.store.inbound_reports()
    assert (report.kind, report.outcome) == ("arf", "complaint")


async def test_a_complaint_sent_again_is_a_duplicate(
    relay: tuple[Relay, Path], sink: Sink
) -> None:
    running, _ = relay
    copy = await delivered_copy(running, sink, "ok@example.net", "spring")
    report = arf(copy)
    port = inbound(running).port

    await asyncio.gather(
        *(
            asyncio.to_thread(send_report, port, f"fbl@{BOUNCE_DOMAIN}", report)
            for _ in range(4)
        )
    )

    kept = await running.store.inbound_reports()
    assert sorted(r.outcome for r in kept) == ["complaint"] + ["duplicate"] * 3
    assert (await running.store.stats("spring")).complaints == 1


async def test_mail_to_an_unsubscribe_address_unsubscribes_its_recipient(
    relay: tuple[Relay, Path], sink: Sink
) -> None:
    running, _ = relay
    await delivered_copy(running, sink, "ok@example.net", "spring")
    row = await recipient(running, "ok@example.net")
    signer = TokenSigner(await running.store.secret("unsubscribe"), "unsubscribe")
    address = f"unsubscribe+{signer.mint(row.id)}@{BOUNCE_DOMAIN}"
    message = b"From: ok@example.net\r\nSubject: unsubscribe\r\n\r\nplease\r\n"

    await asyncio.to_thread(
        send_report, inbound(running).port, address, message, "ok@example.net"
    )

    stats = await running.store.stats("spring")
    assert await running.store.is_suppressed("spring", "ok@example.net")
    assert not await running.store.is_suppressed("autumn", "ok@example.net")
    assert (stats.unsubscribed, stats.complaints) == (1, 0)
    [entry] = await running.store.suppressions("spring")
    assert entry.reason == "unsubscribe"


@pytest.mark.parametrize(
    "address",
    [
        f"someone@{BOUNCE_DOMAIN}",
        f"bounces@{BOUNCE_DOMAIN}",  # the bounce address needs a token
        "ok@example.net",  # never relays
        "postmaster@example.net",  # not one of our domains
    ],
)
async def test_mail_to_any_other_address_is_refused_with_5_1_1(
    relay: tuple[Relay, Path], address: str
) -> None:
    running, _ = relay

    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        await asyncio.to_thread(
            send_report, inbound(running).port, address, b"Subject: x\r\n\r\nx\r\n"
        )

    code, text = refused.value.recipients[address]
    assert code == 550
    assert text.startswith(b"5.1.1")
    assert await running.store.inbound_reports() == []


@pytest.mark.parametrize(
    "address",
    [
        f"PostMaster@{BOUNCE_DOMAIN}",
        "PostMaster@relay.test",
        "Postmaster",  # RFC 5321 section 4.5.1: with no domain too
        "postmaster",
    ],
)
async def test_mail_to_postmaster_is_kept_and_forwarded(
    relay: tuple[Relay, Path], sink: Sink, address: str
) -> None:
    running, _ = relay
    message = b"From: someone@example.com\r\nSubject: your relay\r\n\r\nhello\r\n"

    await asyncio.to_thread(
        send_report,
        inbound(running).port,
        address,
        message,
        "someone@example.com",
    )

    async def forwarded() -> bool:
        return bool(sink.to("ops@example.net"))

    await until(forwarded)
    [copy] = sink.to("ops@example.net")
    [report] = await running.store.inbound_reports()
    assert copy.mail_from in ("", "<>")  # a forward's failure must not come back here
    assert b"Subject: your relay" in copy.data
    assert report.outcome == "forwarded"


def without_our_header(copy: Received) -> Received:
    kept = b"\r\n".join(
        line
        for line in copy.data.split(b"\r\n")
        if not line.startswith(RCPT_HEADER.encode())
    )
    return Received(copy.port, copy.connection, copy.mail_from, copy.rcpt, kept, False)


async def test_a_tokenless_report_matches_by_message_id_only_for_a_lone_recipient(
    relay: tuple[Relay, Path], sink: Sink
) -> None:
    running, _ = relay
    copy = without_our_header(
        await delivered_copy(running, sink, "ok@example.net", "spring")
    )
    feedback = f"fbl@{BOUNCE_DOMAIN}"

    await asyncio.to_thread(
        send_report, inbound(running).port, feedback, dsn(feedback, copy)
    )

    row = await recipient(running, "ok@example.net")
    [report] = await running.store.inbound_reports()
    assert RCPT_HEADER.encode() not in copy.data
    assert row.state is State.BOUNCED
    assert (report.outcome, report.recipient_id) == ("bounced", row.id)
    assert "via message_id" in report.detail


async def test_a_tokenless_report_about_a_shared_message_id_matches_nobody(
    relay: tuple[Relay, Path], sink: Sink
) -> None:
    running, _ = relay
    message = invitation("ok@example.net", "spring")
    message.replace_header("To", "ok@example.net, other@example.net")
    await asyncio.to_thread(submit, running.submission.port, message)

    async def both_delivered() -> bool:
        rows = await running.store.recipients()
        return len(sink.messages) == 2 and all(r.state is State.DELIVERED for r in rows)

    await until(both_delivered)
    copy = without_our_header(sink.to("ok@example.net")[0])
    feedback = f"fbl@{BOUNCE_DOMAIN}"

    await asyncio.to_thread(
        send_report, inbound(running).port, feedback, dsn(feedback, copy)
    )

    # Every recipient of the message knows its Message-ID: it proves nothing.
    states = {r.address: r.state for r in await running.store.recipients()}
    [report] = await running.store.inbound_reports()
    assert set(states.values()) == {State.DELIVERED}
    assert report.outcome == "unmatched"


async def test_a_report_whose_return_path_is_not_utf8_is_still_kept(
    relay: tuple[Relay, Path],
) -> None:
    running, _ = relay
    reader, writer = await asyncio.open_connection("127.0.0.1", inbound(running).port)
    session = [
        b"EHLO mx.example.com\r\n",
        b"MAIL FROM:<\xe9@example.com> SMTPUTF8\r\n",
        f"RCPT TO:<postmaster@{BOUNCE_DOMAIN}>\r\n".encode(),
        b"DATA\r\n",
        b"Subject: hello\r\n\r\nbody\r\n.\r\n",
        b"QUIT\r\n",
    ]

    for line in session:
        writer.write(line)
    await writer.drain()
    replies = (await asyncio.wait_for(reader.read(), 10)).decode("ascii", "replace")
    writer.close()

    codes = [line[:3] for line in replies.splitlines() if line[3:4] == " "]
    assert codes[-3:] == ["354", "250", "221"]
    [report] = await running.store.inbound_reports()
    assert report.mail_from == "\ufffd@example.com"


async def test_a_report_kept_before_a_crash_is_acted_on_at_the_next_start(
    relay: tuple[Relay, Path], sink: Sink, clock: ManualClock
) -> None:
    running, config_file = relay
    copy = await delivered_copy(running, sink, "ok@example.net", "spring")
    # As if the daemon died between keeping the report (and answering 250)
    # and acting on it: the report is stored, still pending.
    await running.store.add_inbound(
        NewInboundReport("192.0.2.7", "", (copy.mail_from,), dsn(copy.mail_from, copy)),
        clock.now(),
    )
    await running.stop()

    restarted = Relay(parse_config(config_file.read_text()), clock=clock)
    await restarted.start()
    try:
        row = await recipient(restarted, "ok@example.net")
        [report] = await restarted.store.inbound_reports()
    finally:
        await restarted.stop()
    await running.start()  # for the fixture to stop

    assert row.state is State.BOUNCED
    assert (report.outcome, report.recipient_id) == ("bounced", row.id)
