"""A receiving SMTP server on loopback whose answers are scripted, for tests.

Built on aiosmtpd and run in the test's event loop. The answer to each
recipient is chosen by its local part (see `SCRIPT`): ``ok@`` is taken,
``later@`` is deferred with 451, ``nouser@`` refused with a multi-line 550,
and so on. Every delivered message and every connection is recorded, so
tests can see what arrived and whether connections were reused.

One `Sink` may listen on several ports (two MX hosts, say) and stop any of
them, to show fallback from one host to the next.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

# The reply to RCPT TO by local part; None accepts. A recipient named in
# DATA_SCRIPT is accepted at RCPT and answered at the end of DATA instead.
SCRIPT: dict[str, str | None] = {
    "ok": None,
    "slow": None,
    "later": "451 4.7.1 Greylisted, please come back in a few minutes",
    "nouser": (
        "550-5.1.1 The email account that you tried to reach does not exist.\r\n"
        "550 5.1.1 Please double-check the recipient's address."
    ),
    "full": "552 Mailbox over quota",
    "closing": "421 4.3.2 Service shutting down",
    # Refusals of the sender, as blocklists and the large providers word them.
    "listed": (
        "554 5.7.1 Service unavailable; Client host [192.0.2.99] blocked using "
        "zen.spamhaus.org; https://www.spamhaus.org/query/ip/192.0.2.99"
    ),
    "msblock": (
        "550 5.7.1 Unfortunately, messages from [192.0.2.99] weren't sent. Please "
        "contact your Internet service provider since part of their network is "
        "on our block list (S3150)."
    ),
    "yahooblock": (
        "421 4.7.0 [TSS04] Messages from 192.0.2.99 temporarily deferred due to "
        "unexpected volume or user complaints - 4.16.55.1"
    ),
    "gmailblock": (
        "421-4.7.28 Our system has detected an unusual rate of unsolicited mail\r\n"
        "421 4.7.28 originating from your IP address. gsmtp"
    ),
}
DATA_SCRIPT: dict[str, str] = {
    "spam": "554 5.7.1 Message rejected as spam",
    "datalater": "451 4.3.0 Local error in processing",
}
SLOW_SECONDS = 0.15


@dataclass
class Connection:
    port: int
    peer: tuple[str, int]
    open: bool = True
    tls: bool = False
    transactions: int = 0
    resets: int = 0


@dataclass
class Received:
    port: int
    connection: Connection
    mail_from: str
    rcpt: str
    data: bytes
    tls: bool
    mail_options: list[str] = field(default_factory=list)


@dataclass
class _Listener:
    server: asyncio.AbstractServer
    open_now: int = 0
    most_open: int = 0


@dataclass
class Sink:
    tls_context: ssl.SSLContext | None = None
    refuse_starttls: bool = False
    smtputf8: bool = True
    eightbitmime: bool = True
    messages: list[Received] = field(default_factory=list)
    connections: list[Connection] = field(default_factory=list)
    _listeners: dict[int, _Listener] = field(default_factory=dict)
    _sessions: list[SMTP] = field(default_factory=list)

    async def listen(self, *, greeting: str | None = None) -> int:
        """Open one more listening port and return its number.

        With ``greeting`` the port answers every connection with that line
        (``"421 4.3.2 busy"``) and hangs up, like a host that is not taking
        mail now.
        """
        loop = asyncio.get_running_loop()
        if greeting is not None:
            server = await asyncio.start_server(
                _greeter(greeting.encode() + b"\r\n"), "127.0.0.1", 0
            )
        else:
            server = await loop.create_server(lambda: _SinkSMTP(self), "127.0.0.1", 0)
        port: int = server.sockets[0].getsockname()[1]
        self._listeners[port] = _Listener(server)
        return port

    async def stop(self, port: int) -> None:
        """Stop listening on ``port``; later connections are refused."""
        listener = self._listeners.pop(port)
        listener.server.close()
        await listener.server.wait_closed()

    async def close(self) -> None:
        for port in list(self._listeners):
            listener = self._listeners.pop(port)
            listener.server.close()
            # A client may keep idle connections open; do not wait for them.

    async def hang_up(self) -> None:
        """Close every open connection from the server side."""
        for session in self._sessions:
            if session.transport is not None:
                session.transport.close()
        for _ in range(5):
            await asyncio.sleep(0.01)

    def most_open(self, port: int) -> int:
        """The most connections that were open at once on ``port``."""
        return self._listeners[port].most_open

    def to(self, rcpt: str) -> list[Received]:
        return [message for message in self.messages if message.rcpt == rcpt]

    def _opened(self, port: int, peer: tuple[str, int]) -> Connection:
        connection = Connection(port, peer)
        self.connections.append(connection)
        listener = self._listeners.get(port)
        if listener is not None:
            listener.open_now += 1
            listener.most_open = max(listener.most_open, listener.open_now)
        return connection

    def _closed(self, connection: Connection) -> None:
        connection.open = False
        listener = self._listeners.get(connection.port)
        if listener is not None:
            listener.open_now -= 1


class _Handler:
    def __init__(self, sink: Sink, connection: Connection) -> None:
        self.sink = sink
        self.connection = connection

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        if self.sink.eightbitmime:
            return responses
        return [line for line in responses if line != "250-8BITMIME"]

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        local = _script_key(address)
        if local == "slow":
            await asyncio.sleep(SLOW_SECONDS)
        reply = SCRIPT.get(local)
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_RSET(
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        self.connection.resets += 1
        return "250 2.0.0 Ok"

    async def handle_DATA(
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        self.connection.transactions += 1
        rcpt = envelope.rcpt_tos[0]
        scripted = DATA_SCRIPT.get(_script_key(rcpt))
        if scripted is not None:
            return scripted
        tls = session.ssl is not None
        self.connection.tls = self.connection.tls or tls
        data = envelope.original_content or b""
        self.sink.messages.append(
            Received(
                self.connection.port,
                self.connection,
                envelope.mail_from or "",
                rcpt,
                data,
                tls,
                list(envelope.mail_options),
            )
        )
        return "250 2.0.0 Ok: queued"


class _SinkSMTP(SMTP):  # type: ignore[misc]
    def __init__(self, sink: Sink) -> None:
        self._sink = sink
        self._connection: Connection | None = None
        super().__init__(
            _Handler(sink, Connection(0, ("", 0))),
            hostname="sink.test",
            tls_context=sink.tls_context,
            decode_data=False,
            enable_SMTPUTF8=sink.smtputf8,
        )

    def connection_made(self, transport: Any) -> None:
        if self._connection is None:
            sockname = transport.get_extra_info("sockname")
            peer = transport.get_extra_info("peername")
            self._connection = self._sink._opened(sockname[1], peer)
            self.event_handler.connection = self._connection
            self._sink._sessions.append(self)
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        super().connection_lost(error)
        if self._connection is not None and self._connection.open:
            self._sink._closed(self._connection)

    async def smtp_STARTTLS(self, arg: str) -> None:
        if self._sink.refuse_starttls:
            await self.push("454 4.7.0 TLS not available due to temporary reason")
            return
        await super().smtp_STARTTLS(arg)


def _script_key(address: str) -> str:
    return address.partition("@")[0].partition("+")[0].lower()


def _greeter(line: bytes) -> Any:
    async def greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(line)
        await writer.drain()
        writer.close()

    return greet
