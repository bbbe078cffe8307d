"""The SMTP submission listener: where applications hand mail to postroom.

aiosmtpd speaks the protocol; this module decides. A client may relay when
it connects from a trusted network or has authenticated (AUTH PLAIN or
LOGIN, offered only after STARTTLS, RFC 4954 section 4); nobody else gets
past RCPT, so postroom is never an open relay. A message is answered 250
only after the store has committed it durably (RFC 5321 section 6.1:
the 250 is a promise of delivery or of a bounce); a store failure is a 451
and the client tries again.

The listener runs in the caller's event loop. Nothing here blocks it: the
scrypt check of a password runs in a worker thread, and the message is
parsed no further than its header section.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import inspect
import ipaddress
import random
import secrets
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from email._header_value_parser import get_addr_spec, get_angle_addr
from email.errors import HeaderParseError
from typing import Any, AnyStr

import structlog
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session, TLSSetupException

from postroom.clock import Clock
from postroom.config import Config, split_hostport
from postroom.config.schema import TlsConfig
from postroom.errors import ConfigError
from postroom.queue.models import NewMessage, NewRecipient
from postroom.queue.store import Store
from postroom.relay import message as msg
from postroom.relay.passwords import hash_password, verify_password
from postroom.relay.peernames import PeerNames

_log = structlog.get_logger()

NULL_SENDER = "<>"
DEFAULT_CAMPAIGN = "default"

_REPLY_OK_MAIL = "250 2.1.0 Ok"
_REPLY_OK_RCPT = "250 2.1.5 Ok"
_REPLY_AUTH_REQUIRED = "530 5.7.0 Authentication required"
_REPLY_RELAY_DENIED = "554 5.7.1 Relay access denied"
_REPLY_BAD_SENDER = "501 5.1.7 Bad sender address syntax"
_REPLY_BAD_RECIPIENT = "501 5.1.3 Bad recipient address syntax"
# Bytes that are not UTF-8 could never be stored or sent on; refused here
# rather than found out at DATA, where a 4xx would be retried forever.
_REPLY_SENDER_NOT_UTF8 = "501 5.1.7 Sender address is not valid UTF-8"
_REPLY_RECIPIENT_NOT_UTF8 = "501 5.1.3 Recipient address is not valid UTF-8"
_REPLY_DOTLESS_RECIPIENT = (
    "553 5.1.2 Recipient domain is not fully qualified, so it cannot be routed"
)
_REPLY_AUTH_FAILURES = "421 4.7.0 Too many failed authentication attempts"
# RFC 6531 section 3.5: a non-ASCII address only in a SMTPUTF8 transaction.
_REPLY_NEEDS_SMTPUTF8 = "553 5.6.7 Non-ASCII address needs MAIL FROM with SMTPUTF8"
_REPLY_TOO_MANY = "452 4.5.3 Too many recipients"
_REPLY_STORAGE = "451 4.3.0 Temporary storage failure, try again later"
_REPLY_LOCAL_ERROR = "451 4.3.0 Local error in processing"

# aiosmtpd's own replies carry no enhanced status code (RFC 3463); these are
# the ones it sends, with one. Two also change their basic code: a malformed
# address is a 501 like every other address syntax error here, and an
# over-long line refuses the message (554), not a command.
_STOCK_REPLIES = {
    "552 Error: message size exceeds fixed maximum message size": (
        "552 5.3.4 Message size exceeds fixed maximum message size"
    ),
    "552 Error: Too much mail data": "552 5.3.4 Message too big for system",
    # RFC 5321 section 4.5.3.1.6: a line is at most 1000 octets with its
    # CRLF; `_Protocol.line_length_limit` holds aiosmtpd to that.
    "500 Line too long (see RFC5321 4.5.3.1.6)": (
        "554 5.6.0 Message has a line longer than 1000 octets with CRLF"
    ),
    "553 5.1.3 Error: malformed address": "501 5.1.3 Bad address syntax",
    "503 Error: need MAIL command": "503 5.5.1 Need MAIL command first",
    "503 Error: need RCPT command": "503 5.5.1 Need RCPT command first",
    "503 Error: nested MAIL command": "503 5.5.1 Nested MAIL command",
    "503 Error: send HELO first": "503 5.5.1 Send HELO first",
    "503 Error: send EHLO first": "503 5.5.1 Send EHLO first",
    "500 Error: bad syntax": "500 5.5.2 Bad syntax",
    "500 Command line too long": "500 5.5.2 Command line too long",
    "500 Error: strict ASCII mode": "500 5.5.2 Non-ASCII data not allowed here",
    "555 MAIL FROM parameters not recognized or not implemented": (
        "555 5.5.4 MAIL FROM parameters not recognized or not implemented"
    ),
    "555 RCPT TO parameters not recognized or not implemented": (
        "555 5.5.4 RCPT TO parameters not recognized or not implemented"
    ),
    "501 Error: BODY can only be one of 7BIT, 8BITMIME": (
        "501 5.5.4 BODY can only be one of 7BIT, 8BITMIME"
    ),
    "501 Error: SMTPUTF8 takes no arguments": "501 5.5.4 SMTPUTF8 takes no arguments",
    "501 Not enough value": "501 5.5.4 AUTH needs a mechanism",
    "501 Too many values": "501 5.5.4 Too many AUTH arguments",
    "503 Already authenticated": "503 5.5.1 Already authenticated",
    "250 OK": "250 2.0.0 Ok",
    "221 Bye": "221 2.0.0 Bye",
    "220 Ready to start TLS": "220 2.0.0 Ready to start TLS",
    # RFC 3207 section 4 and RFC 2034 section 3.
    "454 TLS not available": "454 4.7.0 TLS not available",
    "554 Command refused due to lack of security": (
        "554 5.7.0 Command refused due to lack of security"
    ),
    "530 Must issue a STARTTLS command first": (
        "530 5.7.0 Must issue a STARTTLS command first"
    ),
    "252 Cannot VRFY user, but will accept message and attempt delivery": (
        "252 2.0.0 Cannot VRFY user, but will accept message and attempt delivery"
    ),
    "502 EXPN not implemented": "502 5.5.1 EXPN not implemented",
    "501 Error: SMTPUTF8 disabled": "501 5.5.4 SMTPUTF8 disabled",
    "500 Error: command 'AUTH' not recognized": "500 5.5.2 Command not recognized",
}
_STOCK_PREFIXES = (
    ('500 Error: command "', "500 5.5.2 Command not recognized"),
    ("501 Syntax: ", "501 5.5.4 Syntax: "),
    ("250 Syntax: ", "250 2.0.0 Syntax: "),
    ("250 Supported commands: ", "250 2.0.0 Supported commands: "),
    ("501 Supported commands: ", "501 5.5.4 Supported commands: "),
    # The argument is not echoed: it may hold bytes that are not UTF-8.
    ("502 Could not VRFY ", "501 5.1.3 Bad address syntax"),
)

# Up to this long, stop() lets transactions in DATA finish, so a client is
# not cut off between a durable commit and its 250; and as long again for
# commits whose client was cut off.
_DRAIN_TIMEOUT = 10.0
# Wrong credentials per connection: enough for a typo or two, too few to
# guess with. A credential is counted once however many mechanisms it is
# tried with: smtplib, for one, retries a refused PLAIN as LOGIN.
_AUTH_FAILURES = 3
# AUTH commands per connection, whatever their outcome: a backstop for
# clients that send AUTH without ever getting to a credential.
_AUTH_COMMANDS = 10
_HOOK_PREFIXES = ("smtp_", "auth_", "handle_")


class SubmissionServer:
    """The listener on ``submission.listen``, in the running event loop."""

    def __init__(
        self,
        config: Config,
        store: Store,
        clock: Clock,
        on_accept: Callable[[], None] | None = None,
    ) -> None:
        """Prepare the listener; `ConfigError` when TLS files are unusable."""
        self._config = config
        self._tls = tls_context(config.submission.tls)
        self._handler = _Handler(config, store, clock, on_accept)
        self._server: asyncio.Server | None = None
        self._sessions: set[_Protocol] = set()

    @property
    def port(self) -> int:
        """The TCP port the listener is bound to (after `start`)."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("the submission listener is not running")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def start(self) -> None:
        """Bind the listening socket and start serving clients.

        `ConfigError` names ``submission.listen`` when the address cannot be
        bound (in use, not local, no permission).
        """
        host, port = split_hostport(self._config.submission.listen)
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(
                lambda: self._new_session(loop),
                host,
                port,
                # Acceptor processes share the port (see relay.acceptors).
                reuse_port=self._config.submission.processes > 1 or None,
            )
        except OSError as exc:
            problem = f"submission.listen: cannot listen on {host}:{port}: {exc}"
            raise ConfigError([problem]) from exc
        _log.info(
            "submission.listening",
            host=host,
            port=self.port,
            starttls=self._tls is not None,
            auth=self._tls is not None and bool(self._config.submission.users),
        )

    async def stop(self) -> None:
        """Stop listening, let transactions in DATA finish, close every session."""
        if self._server is None:
            return
        self._server.close()
        await self._finish_transactions()
        for session in list(self._sessions):
            session.close()
        # A client cut off above leaves its commit running; let it end
        # before the caller closes the store.
        await self._handler.drain()
        await self._server.wait_closed()
        self._server = None
        _log.info("submission.stopped")

    async def _finish_transactions(self) -> None:
        waiters = [
            asyncio.ensure_future(session.idle.wait())
            for session in self._sessions
            if not session.idle.is_set()
        ]
        if not waiters:
            return
        _, unfinished = await asyncio.wait(waiters, timeout=_DRAIN_TIMEOUT)
        for waiter in unfinished:
            waiter.cancel()

    def _new_session(self, loop: asyncio.AbstractEventLoop) -> _Protocol:
        submission = self._config.submission
        excluded = () if submission.users else ("PLAIN", "LOGIN")
        return _Protocol(
            self._handler,
            self._sessions,
            data_size_limit=submission.max_message_size,
            enable_SMTPUTF8=True,
            hostname=self._config.hostname,
            ident="ESMTP postroom",
            tls_context=self._tls,
            timeout=submission.timeout.total_seconds(),
            auth_require_tls=True,
            auth_exclude_mechanism=excluded,
            command_call_limit={"AUTH": _AUTH_COMMANDS, "*": 2**31},
            loop=loop,
        )


class _Session(Session):
    """aiosmtpd's session with what postroom learns about the client."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop)
        self.user: str | None = None
        self.peer_name: str | None = None
        self.peer_name_known = False
        # Digests of the credentials refused on this connection, never the
        # credentials themselves.
        self.failed_credentials: set[bytes] = set()

    # aiosmtpd writes this deprecated attribute on every AUTH and warns each
    # time; the user is kept in `user` instead.
    @property
    def login_data(self) -> Any:
        return self._login_data

    @login_data.setter
    def login_data(self, value: Any) -> None:
        self._login_data = value

    @property
    def peer_ip(self) -> str:
        peer = self.peer
        return str(peer[0]) if isinstance(peer, tuple) and peer else "unknown"


class _Protocol(SMTP):
    """One SMTP connection: aiosmtpd's state machine, postroom's AUTH."""

    # aiosmtpd lets a line of 1001 octets with CRLF through; RFC 5321
    # section 4.5.3.1.6 sets the limit at 1000.
    line_length_limit = 1000

    def __init__(
        self, handler: _Handler, sessions: set[_Protocol], **options: Any
    ) -> None:
        super().__init__(handler, **options)
        self._postroom = handler
        self._sessions = sessions
        self.idle = asyncio.Event()
        self.idle.set()

    def __dir__(self) -> list[str]:
        return _hook_names(type(self))

    def _create_session(self) -> Session:
        return _Session(self.loop)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._sessions.add(self)
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        self._sessions.discard(self)
        super().connection_lost(error)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        # The address of MAIL FROM or RCPT TO and what follows it; None for
        # both when it does not parse. aiosmtpd's own declares a class on
        # every call; this reads the address with the same parser.
        if not arg:
            return "", ""
        read = get_angle_addr if arg.lstrip().startswith("<") else get_addr_spec
        try:
            token, rest = read(arg)
        except HeaderParseError:
            return None, None
        address: str = token.addr_spec
        limit = self.local_part_limit
        if limit and len(address.rpartition("@")[0]) > limit:
            return None, None
        return address, rest

    async def smtp_DATA(self, arg: str) -> None:
        # Between DATA and its final reply a transaction is in progress;
        # stop() waits for `idle` so the reply to a stored message is sent.
        self.idle.clear()
        try:
            await super().smtp_DATA(arg)
        finally:
            self.idle.set()

    async def push(self, status: AnyStr) -> None:
        if isinstance(status, str):
            status = msg.printable(_enhanced(status))
        await super().push(status)

    def _syntax_available(self, method: Any) -> bool:
        # HELP names AUTH and STARTTLS only where EHLO offers them.
        name = getattr(method, "__name__", "")
        secured = self.session is not None and self.session.ssl is not None
        if name == "smtp_AUTH":
            return self._postroom.auth_offered and secured
        if name == "smtp_STARTTLS" and secured:
            return False
        return bool(super()._syntax_available(method))

    # RFC 4616. aiosmtpd's own PLAIN and LOGIN check the password inside the
    # event loop; these read the exchange the same way and check in a thread.
    async def auth_PLAIN(self, _: object, args: list[str]) -> AuthResult:
        response = await self._initial_response(args)
        if response is None:
            return AuthResult(success=False)
        parts = response.split(b"\x00")
        if len(parts) != 3:
            await self.push("501 5.5.2 Cannot split the PLAIN response")
            return AuthResult(success=False)
        authzid, login, password = parts
        if authzid and authzid != login:
            # Acting as another identity is not offered.
            return AuthResult(success=False, handled=False)
        return await self._check(login, password)

    async def auth_LOGIN(self, _: object, args: list[str]) -> AuthResult:
        login = await self._initial_response(args, self.AuthLoginUsernameChallenge)
        if login is None:
            return AuthResult(success=False)
        password = await self._challenge(self.AuthLoginPasswordChallenge)
        if password is None:
            return AuthResult(success=False)
        return await self._check(login, password)

    async def _initial_response(
        self, args: list[str], challenge: str = ""
    ) -> bytes | None:
        # RFC 4954 section 4: the first response comes with the command or
        # after an empty challenge. None means a reply was already sent.
        if len(args) == 1:
            return await self._challenge(challenge)
        return await self._decoded(args[1].encode("ascii", "replace"))

    async def _challenge(self, challenge: str) -> bytes | None:
        # aiosmtpd's challenge_auth would log an undecodable answer, which
        # may well be a password typed in clear, at debug level.
        await self.push(b"334 " + base64.b64encode(challenge.encode()))
        answer = (await self._reader.readline()).strip()
        if answer == b"*":
            await self.push("501 5.7.0 Authentication cancelled")
            return None
        return await self._decoded(answer)

    async def _decoded(self, text: bytes) -> bytes | None:
        try:
            return base64.b64decode(text, validate=True)
        except binascii.Error:
            await self.push("501 5.5.2 Cannot decode base64")
            return None

    async def _check(self, login: bytes, password: bytes) -> AuthResult:
        session = self.session
        assert isinstance(session, _Session)
        credential = hashlib.sha256(login + b"\x00" + password).digest()
        failed = session.failed_credentials
        if credential not in failed and len(failed) >= _AUTH_FAILURES:
            _log.warning("submission.auth_cut_off", peer=session.peer_ip)
            await self.push(_REPLY_AUTH_FAILURES)
            self.close()
            return AuthResult(success=False)

        user = await self._postroom.authenticate(login, password)
        if user is None:
            failed.add(credential)
            _log.warning("submission.auth_failed", peer=session.peer_ip)
            return AuthResult(success=False, handled=False)
        session.user = user
        _log.info("submission.authenticated", peer=session.peer_ip, user=user)
        return AuthResult(success=True, auth_data=user)


@dataclass(frozen=True, slots=True)
class _Prepared:
    message: NewMessage
    transaction_id: str


class _Handler:
    """aiosmtpd hooks: who may relay, what is stored, what is answered."""

    def __dir__(self) -> list[str]:
        return _hook_names(type(self))

    def __init__(
        self,
        config: Config,
        store: Store,
        clock: Clock,
        on_accept: Callable[[], None] | None,
    ) -> None:
        self._config = config
        self._store = store
        self._clock = clock
        self._on_accept = on_accept
        # AUTH is only ever offered inside TLS (RFC 4954 section 4).
        self.auth_offered = config.submission.tls.enabled and bool(
            config.submission.users
        )
        self._trusted = [
            ipaddress.ip_network(network, strict=False)
            for network in config.submission.trusted_networks
        ]
        # Checked against unknown user names, so a failure takes as long
        # whether or not the name exists.
        self._decoy_hash = hash_password(secrets.token_hex(16))
        self._committing: set[asyncio.Task[Any]] = set()
        self._peer_names = PeerNames()

    # -- aiosmtpd hooks ----------------------------------------------------

    async def handle_EHLO(
        self,
        server: _Protocol,
        session: _Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        lines = [line for line in responses if line != "250-AUTH "]
        # aiosmtpd reads commands one by one from a buffer and answers in
        # order, which is all RFC 2920 asks of a server.
        lines.insert(-1, "250-PIPELINING")
        return lines

    async def handle_MAIL(
        self,
        server: _Protocol,
        session: _Session,
        envelope: Envelope,
        address: str,
        options: list[str],
    ) -> str:
        if address != NULL_SENDER:
            if not msg.is_utf8(address):
                return _REPLY_SENDER_NOT_UTF8
            # Any well-formed return path will do, ``root@vm`` included: it
            # is not routed through here, and VERP replaces it when set.
            if not msg.is_mailbox(address):
                return _REPLY_BAD_SENDER
        if not address.isascii() and "SMTPUTF8" not in options:
            return _REPLY_NEEDS_SMTPUTF8
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return _REPLY_OK_MAIL

    async def handle_RCPT(
        self,
        server: _Protocol,
        session: _Session,
        envelope: Envelope,
        address: str,
        options: list[str],
    ) -> str:
        if not (session.authenticated or self._is_trusted(session.peer_ip)):
            _log.warning("submission.relay_denied", peer=session.peer_ip, rcpt=address)
            return _REPLY_AUTH_REQUIRED if self.auth_offered else _REPLY_RELAY_DENIED
        if not msg.is_utf8(address):
            return _REPLY_RECIPIENT_NOT_UTF8
        if msg.is_mailbox(address) and msg.has_dotless_domain(address):
            return _REPLY_DOTLESS_RECIPIENT
        if not msg.is_plausible_address(address):
            return _REPLY_BAD_RECIPIENT
        if not address.isascii() and not envelope.smtp_utf8:
            return _REPLY_NEEDS_SMTPUTF8
        known = {rcpt.casefold() for rcpt in envelope.rcpt_tos}
        if address.casefold() in known:
            # RFC 5321 section 3.3 lets a repeated recipient be accepted
            # once; a second row would mean a second copy.
            return _REPLY_OK_RCPT
        if len(envelope.rcpt_tos) >= self._config.submission.max_recipients:
            return _REPLY_TOO_MANY
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return _REPLY_OK_RCPT

    async def handle_DATA(
        self, server: _Protocol, session: _Session, envelope: Envelope
    ) -> str:
        prepared = await self._prepare(session, envelope)
        message = prepared.message

        commit = asyncio.ensure_future(self._store.accept(message, self._clock.now()))
        self._committing.add(commit)
        commit.add_done_callback(self._committing.discard)
        try:
            # Shielded: a client that hangs up now does not cut a commit in
            # half; it gets no 250 and will send again (at least once).
            accepted = await asyncio.shield(commit)
        except Exception:
            _log.exception(
                "submission.store_failed",
                peer=session.peer_ip,
                transaction_id=prepared.transaction_id,
            )
            return _REPLY_STORAGE

        _log.info(
            "submission.accepted",
            queue_id=accepted.queue_id,
            transaction_id=prepared.transaction_id,
            campaign=message.campaign,
            mail_from=message.mail_from,
            recipients=len(message.recipients),
            size=len(message.raw),
            peer=session.peer_ip,
            user=session.user,
        )
        if accepted.suppressed:
            _log.info(
                "submission.suppressed",
                queue_id=accepted.queue_id,
                campaign=message.campaign,
                recipients=list(accepted.suppressed),
            )
        self._wake_workers()
        return f"250 2.0.0 Ok: queued as {accepted.queue_id}"

    async def handle_exception(self, error: Exception) -> str:
        if isinstance(error, TLSSetupException):
            # A client that cannot complete the handshake; the connection
            # is closed and nothing is answered.
            _log.warning("submission.tls_failed", reason=str(error.__cause__))
        else:
            _log.exception("submission.error", error=type(error).__name__)
        return _REPLY_LOCAL_ERROR

    # -- what the protocol asks of the handler -----------------------------

    async def authenticate(self, login: bytes, password: bytes) -> str | None:
        """The user name when ``login`` and ``password`` match the config."""
        try:
            user = login.decode("utf-8")
            secret = password.decode("utf-8")
        except UnicodeDecodeError:
            return None
        hashed = self._config.submission.users.get(user)
        matched = await asyncio.to_thread(
            verify_password, secret, hashed or self._decoy_hash
        )
        return user if matched and hashed is not None else None

    async def drain(self) -> None:
        """Wait a bounded time for the commits in progress to finish."""
        if self._committing:
            await asyncio.wait(set(self._committing), timeout=_DRAIN_TIMEOUT)

    # -- steps ---------------------------------------------------------------

    async def _prepare(self, session: _Session, envelope: Envelope) -> _Prepared:
        raw = msg.normalize_line_endings(envelope.original_content or b"")
        fields, rest = msg.split_header(raw)
        header = self._config.campaigns.header
        campaign = self._campaign(msg.first_value(fields, header), session)
        fields = msg.without(fields, header)

        fields, added, message_id = self._complete(fields)
        if rest and not fields and not rest.startswith(b"\r\n"):
            # No header section at all: the fields added here need the
            # empty line that separates them from the body (RFC 5322
            # section 2.1).
            rest = b"\r\n" + rest

        recipients = tuple(envelope.rcpt_tos)
        names = msg.display_names(fields, recipients)
        # Only tells transactions apart in the trace field; no secret, so no
        # system call (which gives other threads the interpreter lock).
        transaction_id = f"{random.getrandbits(64):016x}"
        received = msg.received_header(
            helo=session.host_name or "",
            peer_ip=session.peer_ip,
            peer_name=await self._peer_name(session),
            hostname=self._config.hostname,
            protocol=_protocol_name(session),
            transaction_id=transaction_id,
            recipient=recipients[0] if len(recipients) == 1 else None,
            when=self._clock.now(),
        )

        mail_from = envelope.mail_from or ""
        message = NewMessage(
            mail_from="" if mail_from == NULL_SENDER else mail_from,
            recipients=tuple(
                NewRecipient(address, name)
                for address, name in zip(recipients, names, strict=True)
            ),
            raw=received + msg.join_header(added + fields, rest),
            campaign=campaign,
            submitted_by=session.user,
            client_address=session.peer_ip,
            message_id=message_id,
        )
        return _Prepared(message, transaction_id)

    def _complete(
        self, fields: list[msg.HeaderField]
    ) -> tuple[list[msg.HeaderField], list[msg.HeaderField], str]:
        """``fields`` without empty Date and Message-ID fields, the fields to
        add in front of them, and the message's Message-ID."""
        added: list[msg.HeaderField] = []
        # RFC 5322 section 3.6: Date is required, and large receivers
        # refuse mail without a Message-ID. An empty field is none at all.
        if not msg.first_value(fields, "Date"):
            fields = msg.without(fields, "Date")
            added.append(msg.date_field(self._clock.now()))
        message_id = msg.first_value(fields, "Message-ID")
        if not message_id:
            fields = msg.without(fields, "Message-ID")
            message_id = msg.new_message_id(self._config.hostname)
            added.append(msg.new_field("Message-ID", message_id))
        return fields, added, msg.printable(message_id)

    def _campaign(self, header_value: str | None, session: _Session) -> str:
        if header_value is not None:
            campaign = msg.clean_campaign(header_value)
            if campaign is not None:
                return campaign
            _log.warning(
                "submission.campaign_invalid",
                peer=session.peer_ip,
                header=self._config.campaigns.header,
                value=header_value[:200],
            )
        if session.user is not None:
            return msg.clean_campaign(session.user) or DEFAULT_CAMPAIGN
        return DEFAULT_CAMPAIGN

    async def _peer_name(self, session: _Session) -> str | None:
        if session.peer_name_known:
            return session.peer_name
        name = await self._peer_names.name(session.peer_ip)
        session.peer_name = name
        session.peer_name_known = True
        return name

    def _is_trusted(self, peer_ip: str) -> bool:
        try:
            address = ipaddress.ip_address(peer_ip)
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        return any(address in network for network in self._trusted)

    def _wake_workers(self) -> None:
        if self._on_accept is None:
            return
        try:
            self._on_accept()
        except Exception:
            # The message is stored and answered; a worker that was not
            # woken finds it on its next poll.
            _log.exception("submission.wake_failed")


# aiosmtpd reads the EHLO hook's signature for every connection, to tell
# its two forms apart; a signature given to the function is read instead of
# being worked out each time.
setattr(  # noqa: B010 -- mypy knows no __signature__ on functions
    _Handler.handle_EHLO, "__signature__", inspect.signature(_Handler.handle_EHLO)
)


def _hook_names(cls: type) -> list[str]:
    """The names aiosmtpd looks for on a protocol and its handler.

    aiosmtpd finds commands, AUTH mechanisms and hooks by walking ``dir()``
    of both objects for every new connection, fetching every attribute on
    the way; answering with only these names, worked out once per class,
    spares each connection most of that work.
    """
    names = _HOOK_NAMES.get(cls)
    if names is None:
        names = [name for name in dir(cls) if name.startswith(_HOOK_PREFIXES)]
        _HOOK_NAMES[cls] = names
    return list(names)


_HOOK_NAMES: dict[type, list[str]] = {}


def _protocol_name(session: _Session) -> str:
    """The ``with`` keyword of the Received field (RFC 3848)."""
    if not session.extended_smtp:
        return "SMTP"
    name = "ESMTP"
    if session.ssl is not None:
        name += "S"
    if session.authenticated:
        name += "A"
    return name


def _enhanced(reply: str) -> str:
    if reply in _STOCK_REPLIES:
        return _STOCK_REPLIES[reply]
    for prefix, replacement in _STOCK_PREFIXES:
        if reply.startswith(prefix):
            if replacement.endswith(" "):
                return replacement + reply.removeprefix(prefix)
            return replacement
    return reply


def tls_context(tls: TlsConfig) -> ssl.SSLContext | None:
    """A server context from the configured files; None when TLS is off."""
    if tls.cert is None or tls.key is None:
        return None
    for key, path in (
        ("submission.tls.cert", tls.cert),
        ("submission.tls.key", tls.key),
    ):
        try:
            with path.open("rb"):
                pass
        except OSError as exc:
            raise ConfigError([f"{key}: cannot read {path}: {exc.strerror}"]) from exc

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(tls.cert, tls.key)
    except ssl.SSLError as exc:
        raise ConfigError(
            [
                "submission.tls.cert, submission.tls.key: not a PEM certificate "
                f"and its private key: {exc.reason or exc}"
            ]
        ) from exc
    return context
