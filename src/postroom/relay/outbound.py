"""One SMTP delivery attempt for one recipient, over pooled connections.

How this works: `Courier.deliver` walks the next hops in preference order
and, for each, the host's addresses. A host that does not take mail now
(connection refused or timed out, a 4xx or 5xx greeting, a dropped
session before MAIL) sends the attempt on to the next host; the first
host that answers MAIL, RCPT or DATA decides the outcome (RFC 5321
section 5.1). One envelope carries one recipient, so every recipient gets
its own reply.

Sessions use STARTTLS whenever the server offers it, without checking the
certificate: RFC 7435 (opportunistic security) prefers unauthenticated
encryption to plain text. When the STARTTLS step itself fails, the host
is tried once more in plain text.

A finished session is kept open and idle for a while per (host, port) and
reused for the next recipient there, after RSET (RFC 5321 section 4.1.1.5)
when the transaction before was refused.
A kept session that turns out to be dead is discarded and the attempt
made once more on a fresh one.

MAIL FROM says what the message needs: ``BODY=8BITMIME`` when it holds
8-bit bytes (RFC 6152), ``SMTPUTF8`` when an address or a header field is
UTF-8 (RFC 6531), each when the server offers it.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from dataclasses import dataclass

import aiosmtplib
import structlog

from postroom.config import Config
from postroom.dsn.status import parse_reply
from postroom.errors import RouteError
from postroom.queue.models import Outcome
from postroom.relay.mx import Hop, MxResolver

_log = structlog.get_logger()

_END_OF_HEADER = re.compile(rb"\r?\n\r?\n")
# Hosts already reported for taking 8-bit data without 8BITMIME are
# remembered up to this many, then forgotten all at once.
_WARNED_HOSTS = 10_000


@dataclass(frozen=True, slots=True)
class SmtpResult:
    """How one attempt ended, with the reply that decided it.

    ``code`` and ``status`` are None when no server replied (refused
    connection, timeout); ``text`` then says what happened.
    """

    outcome: Outcome
    mx_host: str | None
    code: int | None
    status: str | None
    text: str


class _Unreachable(Exception):
    """This host is not taking mail now; the next one may be."""

    def __init__(self, host: str, text: str, code: int | None = None) -> None:
        self.host = host
        self.text = text
        self.code = code
        super().__init__(text)


class _StartTlsFailed(Exception):
    """The server offered STARTTLS but the upgrade did not succeed."""


class _Dead(Exception):
    """A reused session failed before the server answered the transaction."""


class _Session:
    """One open SMTP session to one host, idle or in use."""

    def __init__(self, key: tuple[str, int], smtp: aiosmtplib.SMTP) -> None:
        self.key = key
        self.smtp = smtp
        self.transactions = 0
        # Whether the server holds no transaction state: true after the
        # greeting and after a message was answered at the end of its data.
        self.clean = True
        self.expiry: asyncio.TimerHandle | None = None


class Courier:
    """Makes delivery attempts and keeps idle sessions for reuse."""

    def __init__(self, config: Config, resolver: MxResolver) -> None:
        delivery = config.delivery
        self._hostname = config.hostname
        self._resolver = resolver
        self._source = (delivery.source_ip, 0) if delivery.source_ip else None
        self._starttls = delivery.starttls == "opportunistic"
        self._connect_timeout = delivery.connect_timeout.total_seconds()
        self._command_timeout = delivery.command_timeout.total_seconds()
        self._idle_timeout = delivery.idle_connection_timeout.total_seconds()
        self._idle: dict[tuple[str, int], list[_Session]] = {}
        self._closing: set[asyncio.Task[None]] = set()
        self._tls = _opportunistic_context()
        self._warned_8bit: set[str] = set()

    async def deliver(
        self, hops: list[Hop], mail_from: str, rcpt: str, raw: bytes
    ) -> SmtpResult:
        """Try ``hops`` in order until one host answers the transaction.

        Never raises for what a remote server does: every ending is an
        `SmtpResult` (delivered, deferred or bounced).
        """
        last = SmtpResult(
            Outcome.DEFERRED, None, None, None, "no mail exchanger could be reached"
        )
        for hop in hops:
            try:
                addresses = await self._resolver.addresses(hop.host)
            except RouteError as exc:
                last = SmtpResult(Outcome.DEFERRED, hop.host, None, None, exc.reason)
                continue
            if not addresses:
                last = SmtpResult(
                    Outcome.DEFERRED, hop.host, None, None, "the host has no address"
                )
                continue
            for address in addresses:
                try:
                    return await self._deliver_to(hop, address, mail_from, rcpt, raw)
                except _Unreachable as exc:
                    last = _deferred(exc.host, exc.code, exc.text)
        return last

    async def close(self) -> None:
        """Say QUIT on every idle session and wait for them to close."""
        for sessions in self._idle.values():
            for session in sessions:
                self._retire(session)
        self._idle.clear()
        if self._closing:
            await asyncio.wait(set(self._closing), timeout=5)

    # -- one host ---------------------------------------------------------

    async def _deliver_to(
        self, hop: Hop, address: str, mail_from: str, rcpt: str, raw: bytes
    ) -> SmtpResult:
        session = self._take_idle((hop.host, hop.port))
        if session is not None:
            try:
                return await self._transaction(session, hop.host, mail_from, rcpt, raw)
            except _Dead:
                # The server closed the idle session meanwhile; one fresh try.
                pass

        session = await self._open(hop, address)
        return await self._transaction(session, hop.host, mail_from, rcpt, raw)

    async def _open(self, hop: Hop, address: str) -> _Session:
        key = (hop.host, hop.port)
        if not self._starttls:
            return _Session(key, await self._connect(hop, address, tls=False))
        try:
            return _Session(key, await self._connect(hop, address, tls=True))
        except _StartTlsFailed:
            return _Session(key, await self._connect(hop, address, tls=False))

    async def _connect(self, hop: Hop, address: str, *, tls: bool) -> aiosmtplib.SMTP:
        smtp = aiosmtplib.SMTP(
            hostname=address,
            port=hop.port,
            local_hostname=self._hostname,
            source_address=self._source,
            timeout=self._command_timeout,
            start_tls=False,
            validate_certs=False,
            tls_context=self._tls,
        )
        try:
            await smtp.connect(timeout=self._connect_timeout)
            await _greet(smtp)
        except aiosmtplib.SMTPResponseException as exc:
            smtp.close()
            raise _Unreachable(hop.host, exc.message, exc.code) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            smtp.close()
            raise _Unreachable(hop.host, str(exc)) from exc

        if tls and smtp.supports_extension("starttls"):
            await self._upgrade(smtp, hop)
        return smtp

    async def _upgrade(self, smtp: aiosmtplib.SMTP, hop: Hop) -> None:
        try:
            await smtp.starttls(server_hostname=hop.host)
            # RFC 3207 section 4.2: forget what the server said before TLS.
            await _greet(smtp)
        except (aiosmtplib.SMTPException, ssl.SSLError, OSError) as exc:
            smtp.close()
            raise _StartTlsFailed(str(exc)) from exc

    # -- one transaction --------------------------------------------------

    async def _transaction(
        self, session: _Session, host: str, mail_from: str, rcpt: str, raw: bytes
    ) -> SmtpResult:
        smtp = session.smtp
        reused = session.transactions > 0
        opening = True
        international = not (mail_from.isascii() and rcpt.isascii())
        if international and not smtp.supports_extension("smtputf8"):
            # RFC 6531 section 3.2: non-ASCII addresses need SMTPUTF8.
            self._release(session)
            return SmtpResult(
                Outcome.BOUNCED,
                host,
                None,
                "5.6.7",
                "the address is not ASCII and the server does not offer SMTPUTF8",
            )
        options = self._mail_options(smtp, host, raw, international=international)
        try:
            # RFC 5321 section 4.1.1.4: the reply to the end of the data
            # ends the transaction, so MAIL may follow at once; RSET only
            # after a transaction that was refused or cut short.
            if not session.clean:
                await smtp.rset()
            session.clean = False
            await smtp.mail(mail_from, options=options, encoding="utf-8")
            opening = False
            await smtp.rcpt(rcpt, encoding="utf-8")
            # aiosmtplib turns bare CR and LF into CRLF, ends the data with
            # CRLF and doubles leading dots (RFC 5321 section 4.5.2).
            response = await smtp.data(raw)
            session.clean = True
        except aiosmtplib.SMTPResponseException as exc:
            if reused and opening and (exc.code == 421 or not smtp.is_connected):
                smtp.close()
                raise _Dead(exc.message) from exc
            if exc.code == 421:
                # RFC 5321 section 3.8: 421 means the server closes the session.
                smtp.close()
            else:
                self._release(session)
            return _judge(host, exc.code, exc.message)
        except (aiosmtplib.SMTPException, OSError) as exc:
            smtp.close()
            if reused and opening:
                raise _Dead(str(exc)) from exc
            return _deferred(host, None, f"connection lost: {exc}")
        except ValueError as exc:
            # aiosmtplib refuses an address that would break the command
            # line; no server will ever be asked about it. The next
            # transaction on this session begins with RSET.
            self._release(session)
            return SmtpResult(Outcome.BOUNCED, host, None, "5.1.3", str(exc))

        self._release(session)
        return _judge(host, response.code, response.message)

    def _mail_options(
        self, smtp: aiosmtplib.SMTP, host: str, raw: bytes, *, international: bool
    ) -> list[str]:
        options = []
        if not raw.isascii():
            if smtp.supports_extension("8bitmime"):
                options.append("BODY=8BITMIME")
            else:
                # RFC 6152 section 3 wants 8-bit data converted to 7 bits, or
                # the message returned, for a server without 8BITMIME. It is
                # sent as is instead, as most MTAs do: converting would break
                # the DKIM signature and means parsing the MIME body, and
                # servers that do not offer 8BITMIME nearly all take 8-bit
                # data anyway. A refusal comes back as an ordinary reply.
                self._warn_8bit(host)
        if smtp.supports_extension("smtputf8") and (
            international or _has_utf8_header(raw)
        ):
            # RFC 6531 section 3.4; without the extension a UTF-8 header
            # field is sent as 8-bit data, like the body.
            options.append("SMTPUTF8")
        return options

    def _warn_8bit(self, host: str) -> None:
        if host in self._warned_8bit:
            return
        if len(self._warned_8bit) >= _WARNED_HOSTS:
            self._warned_8bit.clear()
        self._warned_8bit.add(host)
        _log.warning("delivery.8bit_without_8bitmime", mx_host=host)

    # -- the idle pool ----------------------------------------------------

    def _take_idle(self, key: tuple[str, int]) -> _Session | None:
        sessions = self._idle.get(key)
        while sessions:
            session = sessions.pop()
            if session.expiry is not None:
                session.expiry.cancel()
            if session.smtp.is_connected:
                return session
        return None

    def _release(self, session: _Session) -> None:
        if not session.smtp.is_connected:
            return
        # Counted for refused transactions too.
        session.transactions += 1
        loop = asyncio.get_running_loop()
        session.expiry = loop.call_later(self._idle_timeout, self._expire, session)
        self._idle.setdefault(session.key, []).append(session)

    def _expire(self, session: _Session) -> None:
        sessions = self._idle.get(session.key, [])
        if session in sessions:
            sessions.remove(session)
        self._retire(session)

    def _retire(self, session: _Session) -> None:
        if session.expiry is not None:
            session.expiry.cancel()
        task = asyncio.get_running_loop().create_task(_quit(session.smtp))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)


async def _greet(smtp: aiosmtplib.SMTP) -> None:
    try:
        await smtp.ehlo()
    except aiosmtplib.SMTPHeloError:
        # RFC 5321 section 4.1.4: a server that refuses EHLO may take HELO.
        if not smtp.is_connected:
            raise
        await smtp.helo()


async def _quit(smtp: aiosmtplib.SMTP) -> None:
    try:
        await asyncio.wait_for(smtp.quit(), timeout=2)
    except (aiosmtplib.SMTPException, OSError, TimeoutError):
        pass
    finally:
        smtp.close()


def _has_utf8_header(raw: bytes) -> bool:
    """Whether the header section of ``raw`` holds UTF-8 beyond ASCII."""
    end = _END_OF_HEADER.search(raw)
    header = raw if end is None else raw[: end.start()]
    if header.isascii():
        return False
    try:
        header.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _judge(host: str, code: int, message: str) -> SmtpResult:
    reply = parse_reply(code, message)
    if reply.is_success:
        outcome = Outcome.DELIVERED
    elif reply.is_permanent:
        outcome = Outcome.BOUNCED
    else:
        outcome = Outcome.DEFERRED
    return SmtpResult(outcome, host, code, str(reply.status), reply.text)


def _deferred(host: str | None, code: int | None, text: str) -> SmtpResult:
    if code is None or not 200 <= code < 600:
        return SmtpResult(Outcome.DEFERRED, host, None, None, text)
    reply = parse_reply(code, text)
    # A host that would not take mail now defers the attempt, whatever the
    # class of its greeting; only MAIL, RCPT and DATA replies bounce.
    return SmtpResult(Outcome.DEFERRED, host, code, str(reply.status), reply.text)


def _opportunistic_context() -> ssl.SSLContext:
    # RFC 7435 section 1: encrypt without authenticating rather than not
    # encrypting at all. Certificates are therefore not checked.
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context
