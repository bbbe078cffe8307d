"""Single delivery attempts against the scripted SMTP sink on loopback."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
import structlog
import structlog.testing

from postroom.clock import ManualClock
from postroom.config import Config
from postroom.config.schema import DeliveryConfig, DnsConfig
from postroom.queue.models import Outcome
from postroom.relay.mx import Hop, MxResolver
from postroom.relay.outbound import Courier, SmtpResult
from tests.peers.dnsserver import DnsServer, free_port
from tests.peers.sink import Sink

RAW = b"From: a@example.org\nTo: b@example.net\nSubject: hi\n\n.leading dot\nbye"


@pytest.fixture
async def courier(
    config: Config, dns_server: DnsServer, clock: ManualClock
) -> AsyncIterator[Courier]:
    delivery = DeliveryConfig(
        dns=DnsConfig(nameservers=("127.0.0.1",), port=dns_server.port),
        connect_timeout=timedelta(seconds=0.5),
        command_timeout=timedelta(seconds=5),
    )
    config = config.model_copy(update={"hostname": "relay.test", "delivery": delivery})
    courier = Courier(config, MxResolver(delivery, clock))
    yield courier
    await courier.close()


def _hop(port: int, host: str = "127.0.0.1", preference: int = 0) -> Hop:
    return Hop(host, port, preference)


async def deliver_to_sink(
    courier: Courier, sink: Sink, mail_from: str, rcpt: str, raw: bytes = RAW
) -> SmtpResult:
    """One delivery whose only hop is a new listener of ``sink``, which takes
    the settings made on it before."""
    port = await sink.listen()
    return await courier.deliver([_hop(port)], mail_from, rcpt, raw)


async def test_accepted_message_arrives_with_crlf_lines_and_dots_intact(
    courier: Courier, sink: Sink
) -> None:
    result = await deliver_to_sink(courier, sink, "a@example.org", "ok@example.net")

    assert result.outcome is Outcome.DELIVERED
    assert result.code == 250
    assert result.status == "2.0.0"
    [received] = sink.messages
    assert received.data.startswith(b"From: a@example.org\r\nTo: b@example.net\r\n")
    assert b"\r\n.leading dot\r\nbye" in received.data
    assert received.mail_from == "a@example.org"


async def test_multi_line_5xx_at_rcpt_bounces_with_every_line(
    courier: Courier, sink: Sink
) -> None:
    result = await deliver_to_sink(courier, sink, "a@x.org", "nouser@example.net")

    assert result.outcome is Outcome.BOUNCED
    assert result.code == 550
    assert result.status == "5.1.1"
    assert "does not exist" in result.text
    assert "double-check the recipient" in result.text
    assert not sink.messages


async def test_4xx_at_rcpt_defers(courier: Courier, sink: Sink) -> None:
    result = await deliver_to_sink(courier, sink, "a@x.org", "later@example.net")

    assert (result.outcome, result.code, result.status) == (
        Outcome.DEFERRED,
        451,
        "4.7.1",
    )


async def test_5xx_at_data_bounces(courier: Courier, sink: Sink) -> None:
    result = await deliver_to_sink(courier, sink, "a@x.org", "spam@example.net")

    assert (result.outcome, result.code, result.status) == (
        Outcome.BOUNCED,
        554,
        "5.7.1",
    )


async def test_non_ascii_address_goes_out_with_smtputf8(
    courier: Courier, sink: Sink
) -> None:
    result = await deliver_to_sink(courier, sink, "a@x.org", "ok+jürgen@example.net")

    assert result.outcome is Outcome.DELIVERED
    assert sink.messages[0].rcpt == "ok+jürgen@example.net"


async def test_non_ascii_address_bounces_without_smtputf8(
    courier: Courier, sink: Sink
) -> None:
    sink.smtputf8 = False
    result = await deliver_to_sink(courier, sink, "a@x.org", "ok+jürgen@example.net")

    assert (result.outcome, result.status) == (Outcome.BOUNCED, "5.6.7")
    assert not sink.messages


async def test_reply_without_enhanced_code_gets_class_zero_zero(
    courier: Courier, sink: Sink
) -> None:
    result = await deliver_to_sink(courier, sink, "a@x.org", "full@example.net")

    assert result.status == "5.0.0"
    assert result.text == "Mailbox over quota"


async def test_refused_connection_falls_back_to_the_next_host(
    courier: Courier, sink: Sink
) -> None:
    first = await sink.listen()
    second = await sink.listen()
    await sink.stop(first)

    result = await courier.deliver(
        [_hop(first, preference=10), _hop(second, preference=20)],
        "a@x.org",
        "ok@example.net",
        RAW,
    )

    assert result.outcome is Outcome.DELIVERED
    assert [message.port for message in sink.messages] == [second]


async def test_4xx_greeting_falls_back_to_the_next_host(
    courier: Courier, sink: Sink
) -> None:
    busy = await sink.listen(greeting="421 4.3.2 Too busy, try later")
    good = await sink.listen()

    result = await courier.deliver(
        [_hop(busy), _hop(good)], "a@x.org", "ok@example.net", RAW
    )

    assert result.outcome is Outcome.DELIVERED
    assert [message.port for message in sink.messages] == [good]


async def test_host_that_never_greets_times_out_to_the_next_host(
    courier: Courier, sink: Sink
) -> None:
    async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    silent = await asyncio.start_server(mute, "127.0.0.1", 0)
    silent_port = silent.sockets[0].getsockname()[1]
    good = await sink.listen()

    async with silent:
        result = await courier.deliver(
            [_hop(silent_port), _hop(good)], "a@x.org", "ok@example.net", RAW
        )

    assert result.outcome is Outcome.DELIVERED
    assert [message.port for message in sink.messages] == [good]


async def test_connections_leave_from_the_source_address(
    config: Config, clock: ManualClock, sink: Sink
) -> None:
    if not _can_bind("127.0.0.2"):
        pytest.skip("this system routes only 127.0.0.1 on loopback")
    delivery = DeliveryConfig(source_ip="127.0.0.2")
    courier = Courier(
        config.model_copy(update={"delivery": delivery}), MxResolver(delivery, clock)
    )
    result = await deliver_to_sink(courier, sink, "a@x.org", "ok@example.net")
    await courier.close()

    assert result.outcome is Outcome.DELIVERED
    assert sink.connections[0].peer[0] == "127.0.0.2"


async def test_5xx_from_first_host_is_final(courier: Courier, sink: Sink) -> None:
    first = await sink.listen()
    second = await sink.listen()

    result = await courier.deliver(
        [_hop(first), _hop(second)], "a@x.org", "nouser@example.net", RAW
    )

    assert result.outcome is Outcome.BOUNCED
    assert {connection.port for connection in sink.connections} == {first}


async def test_no_host_answering_defers_with_the_last_failure(
    courier: Courier, sink: Sink
) -> None:
    busy = await sink.listen(greeting="421 4.3.2 Too busy")
    closed = free_port()

    result = await courier.deliver(
        [_hop(busy), _hop(closed)], "a@x.org", "ok@example.net", RAW
    )

    assert result.outcome is Outcome.DEFERRED
    assert result.code is None
    assert str(closed) in result.text


async def test_mx_host_without_address_is_skipped(
    courier: Courier, sink: Sink, dns_server: DnsServer
) -> None:
    port = await sink.listen()
    dns_server.add("mx2.example.net", "A", "127.0.0.1")

    result = await courier.deliver(
        [Hop("mx1.example.net", port, 10), Hop("mx2.example.net", port, 20)],
        "a@x.org",
        "ok@example.net",
        RAW,
    )

    assert result.outcome is Outcome.DELIVERED
    assert result.mx_host == "mx2.example.net"


async def test_idle_connection_is_reused_for_the_next_recipient(
    courier: Courier, sink: Sink
) -> None:
    port = await sink.listen()

    for rcpt in ("ok@example.net", "nouser@example.net", "ok@example.net"):
        await courier.deliver([_hop(port)], "a@x.org", rcpt, RAW)

    assert len(sink.connections) == 1
    assert len(sink.messages) == 2


async def test_reused_connection_is_reset_only_after_a_refused_transaction(
    courier: Courier, sink: Sink
) -> None:
    port = await sink.listen()

    for rcpt in ("ok@example.net", "ok@example.net", "nouser@example.net"):
        await courier.deliver([_hop(port)], "a@x.org", rcpt, RAW)
    resets_before_refusal_cleared = sink.connections[0].resets
    await courier.deliver([_hop(port)], "a@x.org", "ok@example.net", RAW)

    assert (resets_before_refusal_cleared, sink.connections[0].resets) == (0, 1)


async def test_idle_connection_closed_by_server_is_replaced(
    courier: Courier, sink: Sink
) -> None:
    port = await sink.listen()
    await courier.deliver([_hop(port)], "a@x.org", "ok@example.net", RAW)
    await sink.hang_up()

    result = await courier.deliver([_hop(port)], "a@x.org", "ok@example.net", RAW)

    assert result.outcome is Outcome.DELIVERED
    assert len(sink.connections) == 2


async def test_starttls_is_used_when_offered(
    courier: Courier, sink: Sink, server_tls_context: ssl.SSLContext
) -> None:
    sink.tls_context = server_tls_context
    result = await deliver_to_sink(courier, sink, "a@x.org", "ok@example.net")

    assert result.outcome is Outcome.DELIVERED
    assert sink.messages[0].tls


async def test_failed_starttls_retries_the_host_in_plain_text(
    courier: Courier, sink: Sink, server_tls_context: ssl.SSLContext
) -> None:
    sink.tls_context = server_tls_context
    sink.refuse_starttls = True
    result = await deliver_to_sink(courier, sink, "a@x.org", "ok@example.net")

    assert result.outcome is Outcome.DELIVERED
    assert not sink.messages[0].tls
    assert len(sink.connections) == 2


def _can_bind(address: str) -> bool:
    try:
        with socket.socket() as sock:
            sock.bind((address, 0))
    except OSError:
        return False
    return True


EIGHT_BIT = (
    "From: Zoë <a@example.org>\r\nTo: b@example.net\r\nSubject: Grüße\r\n\r\n"
    "Schöne Grüße\r\n"
).encode()
EIGHT_BIT_BODY = b"From: a@example.org\r\nSubject: hi\r\n\r\ncaf\xc3\xa9\r\n"


async def test_a_7bit_message_goes_out_without_mail_parameters(
    courier: Courier, sink: Sink
) -> None:
    await deliver_to_sink(courier, sink, "a@example.org", "ok@example.net")

    assert sink.messages[0].mail_options == []


async def test_an_8bit_body_goes_out_with_body_8bitmime(
    courier: Courier, sink: Sink
) -> None:
    result = await deliver_to_sink(
        courier, sink, "a@example.org", "ok@example.net", EIGHT_BIT_BODY
    )

    assert result.outcome is Outcome.DELIVERED
    assert sink.messages[0].mail_options == ["BODY=8BITMIME"]


async def test_utf8_header_fields_go_out_with_smtputf8_and_8bitmime(
    courier: Courier, sink: Sink
) -> None:
    result = await deliver_to_sink(
        courier, sink, "a@example.org", "ok@example.net", EIGHT_BIT
    )

    assert result.outcome is Outcome.DELIVERED
    assert sorted(sink.messages[0].mail_options) == ["BODY=8BITMIME", "SMTPUTF8"]
    assert sink.messages[0].data.startswith("From: Zoë".encode())


async def test_a_utf8_address_goes_out_with_smtputf8_even_in_a_7bit_message(
    courier: Courier, sink: Sink
) -> None:
    await deliver_to_sink(courier, sink, "a@example.org", "ok+zoë@example.net")

    assert sink.messages[0].mail_options == ["SMTPUTF8"]


async def test_8bit_without_8bitmime_is_sent_as_is_and_logged_once_per_host(
    courier: Courier, sink: Sink
) -> None:
    sink.smtputf8 = False
    sink.eightbitmime = False
    port = await sink.listen()

    with structlog.testing.capture_logs() as events:
        for rcpt in ("ok@example.net", "ok+2@example.net"):
            result = await courier.deliver(
                [_hop(port)], "a@example.org", rcpt, EIGHT_BIT
            )
            assert result.outcome is Outcome.DELIVERED

    assert [m.mail_options for m in sink.messages] == [[], []]
    assert sink.messages[0].data.startswith(EIGHT_BIT)
    warnings = [e for e in events if e["event"] == "delivery.8bit_without_8bitmime"]
    assert [e["mx_host"] for e in warnings] == ["127.0.0.1"]


async def test_utf8_headers_without_smtputf8_go_out_as_8bit_data(
    courier: Courier, sink: Sink
) -> None:
    sink.smtputf8 = False
    result = await deliver_to_sink(
        courier, sink, "a@example.org", "ok@example.net", EIGHT_BIT
    )

    assert result.outcome is Outcome.DELIVERED
    assert sink.messages[0].mail_options == ["BODY=8BITMIME"]


async def test_a_quoted_local_part_is_delivered_as_quoted(
    courier: Courier, sink: Sink
) -> None:
    result = await deliver_to_sink(
        courier, sink, "a@example.org", '"ok local"@example.net'
    )

    assert result.outcome is Outcome.DELIVERED
    assert sink.messages[0].rcpt == '"ok local"@example.net'


async def test_an_address_that_would_break_the_command_line_bounces_unsent(
    courier: Courier, sink: Sink
) -> None:
    port = await sink.listen()

    result = await courier.deliver(
        [_hop(port)], "a@example.org", "ok local@example.net", RAW
    )
    after = await courier.deliver([_hop(port)], "a@example.org", "ok@example.net", RAW)

    assert (result.outcome, result.status) == (Outcome.BOUNCED, "5.1.3")
    assert after.outcome is Outcome.DELIVERED
    assert [m.rcpt for m in sink.messages] == ["ok@example.net"]
