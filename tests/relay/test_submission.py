"""The submission listener, over real SMTP sessions on loopback.

Clients are Python's smtplib run in a thread, or a raw socket where the
exact bytes on the wire are the point. Messages land in the real SQLite
store in a temporary directory.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
import smtplib
import socket
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

import pytest
import structlog
import structlog.testing
import trustme

from postroom.clock import ManualClock
from postroom.config import Config
from postroom.errors import ConfigError, StorageError
from postroom.queue.models import Accepted, Message, NewMessage, Recipient
from postroom.queue.open import open_store
from postroom.queue.store import Store
from postroom.relay.passwords import hash_password
from postroom.relay.submission import SubmissionServer

APP_PASSWORD = "correct horse battery staple"
APP_HASH = hash_password(APP_PASSWORD)

P = ParamSpec("P")
T = TypeVar("T")


# -- arranging --------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def make_config(tmp_path: Path, **submission: Any) -> Config:
    settings: dict[str, Any] = {"listen": f"127.0.0.1:{free_port()}"}
    settings.update(submission)
    return Config.model_validate(
        {
            "hostname": "relay.test",
            "data_dir": str(tmp_path / "var"),
            "submission": settings,
        }
    )


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[trustme.CA, dict[str, str]]:
    authority = trustme.CA()
    issued = authority.issue_cert("127.0.0.1", "relay.test")
    cert = tmp_path / "cert.pem"
    key = tmp_path / "key.pem"
    issued.cert_chain_pems[0].write_to_path(str(cert))
    issued.private_key_pem.write_to_path(str(key))
    return authority, {"cert": str(cert), "key": str(key)}


@pytest.fixture
def login_required(
    tmp_path: Path, tls_files: tuple[trustme.CA, dict[str, str]]
) -> tuple[Config, ssl.SSLContext]:
    """A listener that trusts no network and offers AUTH to user ``app`` after
    STARTTLS; with a client TLS context that trusts its certificate."""
    authority, tls = tls_files
    config = make_config(
        tmp_path, trusted_networks=[], users={"app": APP_HASH}, tls=tls
    )
    return config, _client_context(authority)


@asynccontextmanager
async def opened(config: Config) -> AsyncIterator[Store]:
    store = open_store(config)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


@asynccontextmanager
async def serving(
    config: Config,
    store: Any,
    clock: ManualClock,
    on_accept: Callable[[], None] | None = None,
) -> AsyncIterator[SubmissionServer]:
    server = SubmissionServer(config, store, clock, on_accept)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def message(
    *,
    to: str = '"Ann Example" <ann@example.com>',
    extra: str = "",
    body: str = "Hello.\r\n",
) -> bytes:
    return (
        f"From: Survey <survey@app.test>\r\nTo: {to}\r\n{extra}"
        "Subject: Your invitation\r\nMessage-ID: <m1@app.test>\r\n\r\n"
        f"{body}"
    ).encode()


def send(
    port: int, mail_from: str, rcpts: list[str], data: bytes
) -> dict[str, tuple[int, bytes]]:
    """One smtplib transaction; raises smtplib's errors on refusal."""
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.ehlo("client.test")
        client.mail(mail_from)
        refused = {}
        for rcpt in rcpts:
            code, text = client.rcpt(rcpt)
            if code != 250:
                refused[rcpt] = (code, text)
        if refused:
            return refused
        code, text = client.data(data)
        return {"DATA": (code, text)}


async def converse(port: int, lines: list[bytes]) -> list[str]:
    """Send raw bytes line by line, each after the previous reply; the replies."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    replies = [await read_reply(reader)]
    try:
        for line in lines:
            writer.write(line)
            await writer.drain()
            if line.endswith(b"\r\n"):
                replies.append(await read_reply(reader))
    finally:
        writer.close()
    return replies


async def read_reply(reader: asyncio.StreamReader) -> str:
    lines = []
    while True:
        line = await asyncio.wait_for(reader.readline(), 5)
        lines.append(line.decode().rstrip("\r\n"))
        if len(line) < 4 or line[3:4] != b"-":
            return "\n".join(lines)


async def submit_one(
    config: Config,
    clock: ManualClock,
    data: bytes,
    mail_from: str = "bounces@app.test",
) -> tuple[Message, bytes]:
    """Submit ``data`` to ann@example.com; the stored message and its bytes."""
    async with opened(config) as store, serving(config, store, clock) as server:
        result = await asyncio.to_thread(
            send, server.port, mail_from, ["ann@example.com"], data
        )
        queue_id = queue_id_of(result["DATA"][1])
        return await store.get_message(queue_id), await store.load_raw(queue_id)


async def stored_recipients(
    config: Config, clock: ManualClock, rcpts: list[str], data: bytes
) -> list[Recipient]:
    """Submit ``data`` to ``rcpts``; the recipient rows stored for it."""
    async with opened(config) as store, serving(config, store, clock) as server:
        result = await asyncio.to_thread(
            send, server.port, "bounces@app.test", rcpts, data
        )
        return await store.recipients(queue_id=queue_id_of(result["DATA"][1]))


async def session_replies(
    config: Config, clock: ManualClock, lines: list[bytes]
) -> list[str]:
    """One raw session (see `converse`) with a listener on a fresh store."""
    async with opened(config) as store, serving(config, store, clock) as server:
        return await converse(server.port, lines)


async def run_client(
    config: Config,
    clock: ManualClock,
    client: Callable[Concatenate[int, P], T],
    *args: P.args,
    **kwargs: P.kwargs,
) -> T:
    """Run the blocking ``client(port, ...)`` in a thread against a listener on
    a fresh store; what it returns, or what it raises."""
    async with opened(config) as store, serving(config, store, clock) as server:
        return await asyncio.to_thread(client, server.port, *args, **kwargs)


def queue_id_of(reply: bytes | str) -> str:
    text = reply.decode() if isinstance(reply, bytes) else reply
    match = re.search(r"queued as (\S+)", text)
    assert match is not None, text
    return match.group(1)


# -- relaying and what is stored --------------------------------------------


async def test_trusted_client_relays_and_the_store_holds_the_stamped_message(
    tmp_path: Path, clock: ManualClock
) -> None:
    config = make_config(tmp_path)
    data = message(
        to='"Ann Example" <ann@example.com>, bob@example.org',
        extra="Cc: =?utf-8?q?Zo=C3=AB_Roe?= <zoe@example.net>\r\n"
        "X-Campaign-ID:  survey-42 \r\n",
        body="line one\nline two\rline three\r\n",
    )

    async with opened(config) as store, serving(config, store, clock) as server:
        result = await asyncio.to_thread(
            send,
            server.port,
            "bounces@app.test",
            ["ann@example.com", "bob@example.org", "ZOE@example.net"],
            data,
        )
        code, text = result["DATA"]
        queue_id = queue_id_of(text)
        stored = await store.get_message(queue_id)
        raw = await store.load_raw(queue_id)
        recipients = await store.recipients(queue_id=queue_id)

    assert code == 250
    assert text.startswith(b"2.0.0 Ok: queued as ")
    assert stored.campaign == "survey-42"
    assert stored.mail_from == "bounces@app.test"
    assert stored.message_id == "<m1@app.test>"
    assert stored.client_address == "127.0.0.1"
    assert re.match(
        rb"Received: from client\.test \((\S+ )?\[127\.0\.0\.1\]\)\r\n"
        rb"\tby relay\.test with ESMTP id [0-9a-f]+;\r\n"
        rb"\tMon, 05 Jan 2026 09:00:00 \+0000\r\n"
        rb"Date: Mon, 05 Jan 2026 09:00:00 \+0000\r\n"
        rb"From: Survey",
        raw,
    ), raw[:300]
    assert b"X-Campaign-ID" not in raw
    assert b"line one\r\nline two\r\nline three\r\n" in raw
    assert raw.count(b"\n") == raw.count(b"\r\n")
    assert {(r.address, r.display_name) for r in recipients} == {
        ("ann@example.com", "Ann Example"),
        ("bob@example.org", ""),
        ("ZOE@example.net", "Zoë Roe"),
    }


async def test_single_recipient_is_named_in_the_received_field(
    tmp_path: Path, clock: ManualClock
) -> None:
    config = make_config(tmp_path)

    stored, raw = await submit_one(config, clock, message())

    header = raw.split(b"From: ", 1)[0]
    assert b"\tfor <ann@example.com>;\r\n" in header
    assert stored.campaign == "default"


async def test_an_unusable_campaign_header_falls_back_to_default_and_is_removed(
    tmp_path: Path, clock: ManualClock
) -> None:
    config = make_config(tmp_path)
    data = message(extra="X-Campaign-ID: <script>alert(1)</script>\r\n")

    stored, raw = await submit_one(config, clock, data)

    assert stored.campaign == "default"
    assert b"script" not in raw


async def test_null_sender_is_accepted_and_stored_as_empty(
    tmp_path: Path, clock: ManualClock
) -> None:
    config = make_config(tmp_path)

    stored, _ = await submit_one(config, clock, message(), mail_from="<>")

    assert stored.mail_from == ""


async def test_eight_bit_garbage_and_broken_mime_are_stored_as_sent(
    tmp_path: Path, clock: ManualClock
) -> None:
    config = make_config(tmp_path)
    body = (
        b"Content-Type: multipart/mixed; boundary=never-closed\r\n\r\n"
        b"--never-closed\r\n\xff\xfe\x80 caf\xe9 \x00\r\n"
    )
    data = message() + body

    _, raw = await submit_one(config, clock, data)

    assert raw.endswith(data)


async def test_on_accept_is_called_once_per_stored_message(
    tmp_path: Path, clock: ManualClock
) -> None:
    config = make_config(tmp_path)
    calls: list[None] = []

    async with (
        opened(config) as store,
        serving(config, store, clock, lambda: calls.append(None)) as server,
    ):
        await asyncio.to_thread(
            send, server.port, "bounces@app.test", ["ann@example.com"], message()
        )

    assert calls == [None]


# -- who may relay ----------------------------------------------------------


async def test_untrusted_client_cannot_relay_where_auth_is_not_offered(
    tmp_path: Path, clock: ManualClock
) -> None:
    config = make_config(tmp_path, trusted_networks=["10.0.0.0/8"])

    async with opened(config) as store, serving(config, store, clock) as server:
        refused = await asyncio.to_thread(
            send, server.port, "bounces@app.test", ["ann@example.com"], message()
        )
        stats = await store.stats()

    code, text = refused["ann@example.com"]
    assert code == 554
    assert text.startswith(b"5.7.1")
    assert stats.queued == 0


async def test_untrusted_client_is_told_to_authenticate_where_auth_is_offered(
    tmp_path: Path, clock: ManualClock, tls_files: tuple[trustme.CA, dict[str, str]]
) -> None:
    authority, tls = tls_files
    config = make_config(
        tmp_path, trusted_networks=["10.0.0.0/8"], users={"app": APP_HASH}, tls=tls
    )

    def relay_without_login(port: int) -> tuple[int, bytes]:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            client.starttls(context=_client_context(authority))
            client.ehlo("client.test")
            client.mail("bounces@app.test")
            return client.rcpt("ann@example.com")

    code, text = await run_client(config, clock, relay_without_login)

    assert code == 530
    assert text.startswith(b"5.7.0")


async def test_auth_is_neither_offered_nor_accepted_before_starttls(
    clock: ManualClock, login_required: tuple[Config, ssl.SSLContext]
) -> None:
    config, _ = login_required

    def try_auth(port: int) -> tuple[bool, bool, tuple[int, bytes]]:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            client.ehlo("client.test")
            offered = client.has_extn("auth")
            starttls = client.has_extn("starttls")
            return offered, starttls, client.docmd("AUTH", "PLAIN AGFwcABzZWNyZXQ=")

    offered, starttls, (code, text) = await run_client(config, clock, try_auth)

    assert starttls
    assert not offered
    assert code == 538
    assert text.startswith(b"5.7.11")


def _client_context(authority: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    authority.configure_trust(context)
    return context


def _send_authenticated(
    port: int, context: ssl.SSLContext, user: str, password: str, data: bytes
) -> tuple[int, bytes]:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.ehlo("client.test")
        client.starttls(context=context)
        client.ehlo("client.test")
        client.login(user, password)
        client.mail("bounces@app.test")
        client.rcpt("ann@example.com")
        return client.data(data)


async def test_good_auth_over_starttls_relays_from_an_untrusted_address(
    clock: ManualClock, login_required: tuple[Config, ssl.SSLContext]
) -> None:
    config, context = login_required

    async with opened(config) as store, serving(config, store, clock) as server:
        code, text = await asyncio.to_thread(
            _send_authenticated, server.port, context, "app", APP_PASSWORD, message()
        )
        queue_id = queue_id_of(text)
        stored = await store.get_message(queue_id)
        raw = await store.load_raw(queue_id)

    assert code == 250
    assert stored.submitted_by == "app"
    assert stored.campaign == "app"
    assert b" with ESMTPSA id " in raw


async def test_wrong_password_is_refused_with_535(
    clock: ManualClock, login_required: tuple[Config, ssl.SSLContext]
) -> None:
    config, context = login_required

    with pytest.raises(smtplib.SMTPAuthenticationError) as refused:
        await run_client(
            config, clock, _send_authenticated, context, "app", "wrong", message()
        )

    assert refused.value.smtp_code == 535
    assert refused.value.smtp_error.startswith(b"5.7.8")


async def test_auth_login_with_unknown_user_is_refused_with_535(
    clock: ManualClock, login_required: tuple[Config, ssl.SSLContext]
) -> None:
    config, context = login_required

    def login(port: int) -> tuple[int, bytes]:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            client.starttls(context=context)
            client.ehlo("client.test")
            client.user, client.password = "nobody", APP_PASSWORD
            return client.auth("LOGIN", client.auth_login, initial_response_ok=False)

    with pytest.raises(smtplib.SMTPAuthenticationError) as refused:
        await run_client(config, clock, login)

    assert refused.value.smtp_code == 535


def test_unreadable_tls_key_is_a_config_error_naming_the_key(
    tmp_path: Path, clock: ManualClock, tls_files: tuple[trustme.CA, dict[str, str]]
) -> None:
    _, tls = tls_files
    config = make_config(
        tmp_path, tls={"cert": tls["cert"], "key": str(tmp_path / "missing.pem")}
    )

    with pytest.raises(ConfigError) as error:
        SubmissionServer(config, object(), clock)  # type: ignore[arg-type]

    assert "submission.tls.key" in str(error.value)


async def test_auth_secrets_never_reach_a_log_line(
    clock: ManualClock,
    login_required: tuple[Config, ssl.SSLContext],
    caplog: pytest.LogCaptureFixture,
) -> None:
    config, context = login_required
    wrong = "hunter2-not-the-password"
    plain = base64.b64encode(f"\0app\0{wrong}".encode()).decode()
    login = base64.b64encode(wrong.encode()).decode()

    def try_both(port: int) -> list[int]:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            client.starttls(context=context)
            client.ehlo("client.test")
            codes = [client.docmd("AUTH", f"PLAIN {plain}")[0]]
            codes.append(client.docmd("AUTH", "LOGIN YXBw")[0])
            codes.append(client.docmd(login)[0])
            codes.append(client.docmd("AUTH", "LOGIN YXBw")[0])
            codes.append(client.docmd(f"{wrong} typed in clear")[0])
            return codes

    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="mail.log")
    with structlog.testing.capture_logs() as events:
        codes = await run_client(config, clock, try_both)

    assert codes == [535, 334, 535, 334, 501]
    for secret in (wrong, plain, login):
        assert secret not in caplog.text
        assert secret not in repr(events)
    assert [e["event"] for e in events].count("submission.auth_failed") == 2
    assert "AUTH" in caplog.text  # aiosmtpd's debug lines were captured


async def test_an_idle_session_is_closed_after_the_configured_timeout(
    tmp_path: Path, clock: ManualClock
) -> None:
    config = make_config(tmp_path, timeout="0.3s")

    async with opened(config) as store, serving(config, store, clock) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        greeting = await read_reply(reader)
        rest = await asyncio.wait_for(reader.read(), 5)
        writer.close()

    assert greeting.startswith("220 relay.test")
    assert rest == b""


# -- limits and syntax ------------------------------------------------------


async def test_oversize_message_gets_552_after_data_and_nothing_is_stored(
    tmp_path: Path, clock: ManualClock
) -> None:
    config = make_config(tmp_path, max_message_size=2000)
    data = message(body="x" * 70 + "\r\n") * 50

    def send_without_size(port: int) -> tuple[int, bytes]:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            client.ehlo("client.test")
            client.mail("bounces@app.test")
            client.rcpt("ann@example.com")
            try:
                return client.data(data)
            except smtplib.SMTPDataError as error:
                return error.smtp_code, error.smtp_error

    async with opened(config) as store, serving(config, store, clock) as server:
        code, text = await asyncio.to_thread(send_without_size, server.port)
        stats = await store.stats()

    assert code == 552
    assert text.startswith(b"5.3.4")
    assert stats.queued == 0


async def test_size_parameter_over_the_limit_is_refused_at_mail(
    tmp_path: Path, clock: ManualClock
) -> None:
    config = make_config(tmp_path, max_message_size=2000)

    def mail_with_size(port: int) -> tuple[str, tuple[int, bytes]]:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            client.ehlo("client.test")
            advertised = client.esmtp_features["size"]
            return advertised, client.mail("bounces@app.test", ["SIZE=2001"])

    advertised, (code, text) = await run_client(config, clock, mail_with_size)

    assert advertised == "2000"
    assert code == 552
    assert text.startswith(b"5.3.4")


@pytest.mark.parametrize(
    "rcpt",
    ["<nobody>", "<a@-bad-.example>", "<a@example.123>", '<"a"b"@example.com>'],
)
async def test_implausible_recipient_address_gets_501_5_1_3(
    tmp_path: Path, clock: ManualClock, rcpt: str
) -> None:
    config = make_config(tmp_path)

    replies = await session_replies(
        config,
        clock,
        [
            b"EHLO client.test\r\n",
            b"MAIL FROM:<bounces@app.test>\r\n",
            f"RCPT TO:{rcpt}\r\n".encode(),
        ],
    )

    assert replies[-1].startswith("501 5.1.3"), replies[-1]


async def test_recipients_beyond_the_limit_get_452_4_5_3(
    tmp_path: Path, clock: ManualClock
) -> None:
    config = make_config(tmp_path, max_recipients=2)

    replies = await session_replies(
        config,
        clock,
        [
            b"EHLO client.test\r\n",
            b"MAIL FROM:<bounces@app.test>\r\n",
            b"RCPT TO:<a@example.com>\r\n",
            b"RCPT TO:<b@example.com>\r\n",
            b"RCPT TO:<c@example.com>\r\n",
        ],
    )

    assert replies[3].startswith("250")
    assert replies[4].startswith("250")
    assert replies[5].startswith("452 4.5.3"), replies[5]


async def test_ehlo_advertises_the_promised_extensions(
    tmp_path: Path, clock: ManualClock
) -> None:
    config = make_config(tmp_path, max_message_size=12345)

    replies = await session_replies(config, clock, [b"EHLO client.test\r\n"])

    ehlo = replies[1].splitlines()
    assert "250-SIZE 12345" in ehlo
    assert {"250-8BITMIME", "250-PIPELINING", "250-SMTPUTF8"} <= set(ehlo)
    assert not any("STARTTLS" in line or "AUTH" in line for line in ehlo)


# -- hostile input ----------------------------------------------------------

SMUGGLED = (
    b"MAIL FROM:<evil@attacker.test>{eol}RCPT TO:<victim@example.com>{eol}"
    b"DATA{eol}Subject: smuggled{eol}{eol}smuggled text{eol}"
)


@pytest.mark.parametrize(
    "end",
    [b"\n.\n", b"\r\n.\n", b"\n.\r\n", b"\r.\r\n", b"\r\n.\r"],
    ids=["LF.LF", "CRLF.LF", "LF.CRLF", "CR.CRLF", "CRLF.CR"],
)
async def test_a_false_end_of_data_never_splits_one_message_into_two(
    tmp_path: Path, clock: ManualClock, end: bytes
) -> None:
    config = make_config(tmp_path)
    smuggled = SMUGGLED.replace(b"{eol}", b"\n")
    payload = b"Subject: first\r\n\r\nhello" + end + smuggled + b"\r\n.\r\nQUIT\r\n"

    async with opened(config) as store, serving(config, store, clock) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(
            b"EHLO client.test\r\nMAIL FROM:<bounces@app.test>\r\n"
            b"RCPT TO:<ann@example.com>\r\nDATA\r\n" + payload
        )
        await writer.drain()
        transcript = await asyncio.wait_for(reader.read(), 10)
        writer.close()
        recipients = await store.recipients()
        raw = await store.load_raw(recipients[0].queue_id)

    assert transcript.count(b"queued as") == 1
    assert [r.address for r in recipients] == ["ann@example.com"]
    assert b"smuggled text" in raw
    assert b"MAIL FROM:<evil@attacker.test>" in raw


async def test_garbage_commands_are_answered_and_the_next_session_works(
    tmp_path: Path, clock: ManualClock
) -> None:
    config = make_config(tmp_path)

    async with opened(config) as store, serving(config, store, clock) as server:
        replies = await converse(
            server.port,
            [
                b"\xff\xfe\x00garbage\r\n",
                b"HELLOTHERE\r\n",
                b"MAIL FROM:<bounces@app.test>\r\n",
                b"EHLO client.test\r\n",
                b"MAIL FROM:not an address at all\r\n",
                b"RCPT TO:<ann@example.com>\r\n",
                b"DATA\r\n",
                b"\r\n",
                b"NOOP\r\n",
            ],
        )
        result = await asyncio.to_thread(
            send, server.port, "bounces@app.test", ["ann@example.com"], message()
        )

    codes = [reply[:3] for reply in replies]
    assert codes == [
        "220",
        "500",
        "500",
        "503",
        "250",
        "501",
        "503",
        "503",
        "500",
        "250",
    ]
    assert result["DATA"][0] == 250


# -- storage failure ----------------------------------------------------------


class BrokenOnce:
    """The real store, except that the first accept fails like a full disk."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.failures = 0

    async def accept(self, message: NewMessage, now: datetime) -> Accepted:
        if self.failures == 0:
            self.failures += 1
            raise StorageError("database or disk is full")
        return await self._store.accept(message, now)


async def test_storage_failure_answers_451_and_the_client_can_retry(
    tmp_path: Path, clock: ManualClock
) -> None:
    config = make_config(tmp_path)

    def send_twice(port: int) -> list[tuple[int, bytes]]:
        outcomes = []
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            for _ in range(2):
                client.ehlo("client.test")
                client.mail("bounces@app.test")
                client.rcpt("ann@example.com")
                try:
                    outcomes.append(client.data(message()))
                except smtplib.SMTPDataError as error:
                    outcomes.append((error.smtp_code, error.smtp_error))
        return outcomes

    async with opened(config) as store:
        broken = BrokenOnce(store)
        async with serving(config, broken, clock) as server:
            first, second = await asyncio.to_thread(send_twice, server.port)
        recipients = await store.recipients()

    assert first == (451, b"4.3.0 Temporary storage failure, try again later")
    assert second[0] == 250
    assert len(recipients) == 1
    assert recipients[0].queue_id == queue_id_of(second[1])


# -- lifecycle ----------------------------------------------------------------


class Gated:
    """The real store, whose accept waits until the test opens the gate."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.entered = asyncio.Event()
        self.gate = asyncio.Event()

    async def accept(self, message: NewMessage, now: datetime) -> Accepted:
        self.entered.set()
        await self.gate.wait()
        return await self._store.accept(message, now)


async def test_stop_lets_a_message_being_committed_get_its_250(
    tmp_path: Path, clock: ManualClock
) -> None:
    config = make_config(tmp_path)

    async with opened(config) as store:
        gated = Gated(store)
        server = SubmissionServer(config, gated, clock)  # type: ignore[arg-type]
        await server.start()
        client = asyncio.ensure_future(
            asyncio.to_thread(
                send, server.port, "bounces@app.test", ["ann@example.com"], message()
            )
        )
        await asyncio.wait_for(gated.entered.wait(), 5)
        stopping = asyncio.ensure_future(server.stop())
        await asyncio.sleep(0.05)
        stopped_early = stopping.done()
        gated.gate.set()
        await asyncio.wait_for(stopping, 5)
        result = await asyncio.wait_for(client, 5)
        recipients = await store.recipients()

    assert not stopped_early
    assert result["DATA"][0] == 250
    assert recipients[0].queue_id == queue_id_of(result["DATA"][1])


async def test_a_listen_address_in_use_is_a_config_error_naming_the_key(
    tmp_path: Path, clock: ManualClock
) -> None:
    config = make_config(tmp_path)

    async with opened(config) as store, serving(config, store, clock):
        second = SubmissionServer(config, store, clock)
        with pytest.raises(ConfigError) as error:
            await second.start()

    assert "submission.listen" in str(error.value)


async def test_a_non_ascii_recipient_needs_an_smtputf8_transaction(
    tmp_path: Path, clock: ManualClock
) -> None:
    config = make_config(tmp_path)

    replies = await session_replies(
        config,
        clock,
        [
            b"EHLO client.test\r\n",
            b"MAIL FROM:<bounces@app.test>\r\n",
            "RCPT TO:<zoë@bücher.example>\r\n".encode(),
            b"RSET\r\n",
            b"MAIL FROM:<bounces@app.test> SMTPUTF8\r\n",
            "RCPT TO:<zoë@bücher.example>\r\n".encode(),
        ],
    )

    assert replies[3].startswith("553 5.6.7"), replies[3]
    assert replies[6].startswith("250 2.1.5"), replies[6]


# -- what a first-time client runs into -----------------------------------------


async def test_an_address_that_is_not_utf8_is_refused_before_data(
    tmp_path: Path, clock: ManualClock
) -> None:
    config = make_config(tmp_path)

    async with opened(config) as store, serving(config, store, clock) as server:
        replies = await converse(
            server.port,
            [
                b"EHLO client.test\r\n",
                b"MAIL FROM:<\xe9@example.org> SMTPUTF8\r\n",
                b"MAIL FROM:<a@example.org> SMTPUTF8\r\n",
                b"RCPT TO:<\xe9@example.net>\r\n",
                b"RCPT TO:<ann@ex\xe9mple.net>\r\n",
                b"DATA\r\n",
            ],
        )
        stats = await store.stats()

    assert replies[2].startswith("501 5.1.7"), replies[2]
    assert replies[3].startswith("250 2.1.0"), replies[3]
    assert replies[4].startswith("501 5.1.3"), replies[4]
    assert replies[5].startswith("501 5.1.3"), replies[5]
    assert replies[6].startswith("503 5.5.1"), replies[6]
    assert stats.queued == 0


async def test_display_names_with_invalid_bytes_or_lone_surrogates_are_stored(
    tmp_path: Path, clock: ManualClock
) -> None:
    config = make_config(tmp_path)
    data = (
        b"From: a@example.org\r\n"
        b"To: Caf\xe9 Owner <ann@example.com>,\r\n"
        b" =?utf-7?q?+2D0-?= <bob@example.com>,\r\n"
        b" =?unknown-8bit?q?Zo=E9?= <zoe@example.com>, \x00Nul <nul@example.com>\r\n"
        b"Subject: names\r\n\r\nHello.\r\n"
    )
    rcpts = ["ann@example.com", "bob@example.com", "zoe@example.com", "nul@example.com"]

    recipients = await stored_recipients(config, clock, rcpts, data)

    names = {r.address: r.display_name for r in recipients}
    assert names["ann@example.com"] == "Caf\ufffd Owner"
    assert names["bob@example.com"] == "\ufffd"
    assert names["zoe@example.com"] == "Zo\ufffd"
    assert names["nul@example.com"] == "Nul"


async def test_a_message_without_date_or_message_id_gets_both(
    tmp_path: Path, clock: ManualClock
) -> None:
    config = make_config(tmp_path)
    data = b"From: a@example.org\r\nTo: ann@example.com\r\nSubject: bare\r\n\r\nHi.\r\n"

    stored, raw = await submit_one(config, clock, data)

    match = re.search(rb"\r\nMessage-ID: (<[0-9a-f]{32}@relay\.test>)\r\n", raw)
    assert match is not None, raw
    assert stored.message_id == match.group(1).decode()
    assert b"\r\nDate: Mon, 05 Jan 2026 09:00:00 +0000\r\n" in raw
    assert raw.endswith(data)


async def test_a_message_with_date_and_message_id_keeps_them_alone(
    tmp_path: Path, clock: ManualClock
) -> None:
    config = make_config(tmp_path)
    data = message(extra="date: Sun, 04 Jan 2026 10:00:00 +0100\r\n")

    stored, raw = await submit_one(config, clock, data)

    assert stored.message_id == "<m1@app.test>"
    assert raw.lower().count(b"\r\ndate:") == 1
    assert raw.lower().count(b"\r\nmessage-id:") == 1


async def test_a_message_without_a_header_section_gets_one_before_its_body(
    tmp_path: Path, clock: ManualClock
) -> None:
    config = make_config(tmp_path)
    data = b"Just a line of text, no header.\r\n"

    _, raw = await submit_one(config, clock, data)

    header, _, body = raw.partition(b"\r\n\r\n")
    assert b"\r\nMessage-ID: <" in header
    assert body == data


def _login_twice(port: int, context: ssl.SSLContext, passwords: list[str]) -> list[Any]:
    """smtplib.login with each password in turn on one connection."""
    outcomes: list[Any] = []
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.starttls(context=context)
        client.ehlo("client.test")
        for password in passwords:
            try:
                outcomes.append(client.login("app", password)[0])
            except smtplib.SMTPAuthenticationError as error:
                outcomes.append(error.smtp_code)
            except smtplib.SMTPServerDisconnected:
                outcomes.append("disconnected")
                break
    return outcomes


async def test_smtplib_login_after_two_typos_still_succeeds(
    clock: ManualClock, login_required: tuple[Config, ssl.SSLContext]
) -> None:
    config, context = login_required

    outcomes = await run_client(
        config, clock, _login_twice, context, ["typo", "typo again", APP_PASSWORD]
    )

    assert outcomes == [535, 535, 235]


async def test_a_fourth_wrong_password_on_one_connection_is_cut_off(
    clock: ManualClock, login_required: tuple[Config, ssl.SSLContext]
) -> None:
    config, context = login_required

    with structlog.testing.capture_logs() as events:
        outcomes = await run_client(
            config, clock, _login_twice, context, ["one", "two", "three", APP_PASSWORD]
        )

    # smtplib reads the 421 and then finds the connection closed.
    assert outcomes == [535, 535, 535, "disconnected"]
    assert [e["event"] for e in events].count("submission.auth_cut_off") == 1


async def test_help_lists_only_the_commands_ehlo_offers(
    tmp_path: Path, clock: ManualClock
) -> None:
    config = make_config(tmp_path)

    replies = await session_replies(
        config, clock, [b"EHLO client.test\r\n", b"HELP\r\n", b"HELP AUTH\r\n"]
    )

    assert "AUTH" not in replies[2], replies[2]
    assert "STARTTLS" not in replies[2], replies[2]
    assert "MAIL" in replies[2]
    assert replies[3].startswith("501 5.5."), replies[3]


async def test_help_lists_auth_once_it_is_offered_after_starttls(
    clock: ManualClock, login_required: tuple[Config, ssl.SSLContext]
) -> None:
    config, context = login_required

    def help_before_and_after(port: int) -> tuple[bytes, bytes]:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            client.ehlo("client.test")
            before = client.docmd("HELP")[1]
            client.starttls(context=context)
            client.ehlo("client.test")
            return before, client.docmd("HELP")[1]

    before, after = await run_client(config, clock, help_before_and_after)

    assert b"AUTH" not in before
    assert b"STARTTLS" in before
    assert b"AUTH" in after


async def test_every_reply_but_greeting_and_ehlo_has_an_enhanced_code(
    tmp_path: Path, clock: ManualClock
) -> None:
    config = make_config(tmp_path)

    replies = await session_replies(
        config,
        clock,
        [
            b"EHLO client.test\r\n",
            b"NOOP\r\n",
            b"RSET\r\n",
            b"VRFY <ann@example.com>\r\n",
            b"VRFY <<<\r\n",
            b"EXPN staff\r\n",
            b"STARTTLS\r\n",
            b"HELP\r\n",
            b"HELP MAIL\r\n",
            b"AUTH PLAIN\r\n",
            b"QUIT\r\n",
        ],
    )

    enhanced = re.compile(r"[245]\d\d [245]\.\d{1,3}\.\d{1,3} ")
    for reply in replies[2:]:
        assert enhanced.match(reply), reply
    assert replies[1 + 2].startswith("250 2.0.0")  # RSET
    assert replies[7].startswith("454 4.7.0"), replies[7]


@pytest.mark.parametrize(("length", "accepted"), [(998, True), (999, False)])
async def test_lines_up_to_1000_octets_with_crlf_are_taken_and_longer_refused(
    tmp_path: Path, clock: ManualClock, length: int, accepted: bool
) -> None:
    config = make_config(tmp_path)
    data = message(body="x" * length + "\r\n")

    def send_long(port: int) -> tuple[int, bytes]:
        try:
            return send(port, "bounces@app.test", ["ann@example.com"], data)["DATA"]
        except smtplib.SMTPDataError as error:
            return error.smtp_code, error.smtp_error

    code, text = await run_client(config, clock, send_long)

    if accepted:
        assert code == 250, text
    else:
        assert code == 554
        assert text == b"5.6.0 Message has a line longer than 1000 octets with CRLF"


@pytest.mark.parametrize(
    "sender", ["root@vm", '"quoted local"@example.net', "a@example.123"]
)
async def test_any_well_formed_sender_is_taken_even_with_a_single_label_domain(
    tmp_path: Path, clock: ManualClock, sender: str
) -> None:
    config = make_config(tmp_path)

    stored, _ = await submit_one(config, clock, message(), mail_from=sender)

    assert stored.mail_from == sender


@pytest.mark.parametrize(
    "sender", ["<nobody>", "<a@-bad-.example>", "<a@exa_mple.org>", "<a@[999.1.1.1]>"]
)
async def test_a_malformed_sender_gets_501_5_1_7(
    tmp_path: Path, clock: ManualClock, sender: str
) -> None:
    config = make_config(tmp_path)

    replies = await session_replies(
        config, clock, [b"EHLO client.test\r\n", f"MAIL FROM:{sender}\r\n".encode()]
    )

    assert replies[-1].startswith("501 5.1.7"), replies[-1]


async def test_a_quoted_local_part_recipient_is_taken(
    tmp_path: Path, clock: ManualClock
) -> None:
    config = make_config(tmp_path)
    rcpt = '"quoted local"@example.net'

    recipients = await stored_recipients(config, clock, [rcpt], message())

    assert [r.address for r in recipients] == [rcpt]


@pytest.mark.parametrize("rcpt", ["root@vm", "nobody@localhost"])
async def test_a_recipient_in_a_single_label_domain_is_refused_as_unroutable(
    tmp_path: Path, clock: ManualClock, rcpt: str
) -> None:
    config = make_config(tmp_path)

    replies = await session_replies(
        config,
        clock,
        [
            b"EHLO client.test\r\n",
            b"MAIL FROM:<root@vm>\r\n",
            f"RCPT TO:<{rcpt}>\r\n".encode(),
        ],
    )

    assert replies[2].startswith("250 2.1.0"), replies[2]
    assert replies[3].startswith("553 5.1.2"), replies[3]
    assert "fully qualified" in replies[3]
