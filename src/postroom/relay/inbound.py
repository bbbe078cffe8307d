"""The inbound listener: the mail exchanger of the bounce domain.

It takes mail for a handful of addresses and nothing else:
``bounce_local+TOKEN@bounce_domain`` (DSNs to VERP return paths),
``feedback_local@bounce_domain`` (RFC 5965 complaints),
``unsubscribe_local+TOKEN@bounce_domain`` (mailto unsubscribes) and
``postmaster@`` any of our domains, the bounce domain and ``hostname``,
and ``postmaster`` with no domain (RFC 5321 section 4.5.1 requires both).
Every other address is refused with ``550 5.1.1`` at RCPT, so this
listener never relays.

Whether a token is genuine is not checked at RCPT: a forged report is
accepted, kept and recorded as forged, which shows an operator that
someone tries. A message is kept durably (`Store.add_inbound`) before it
is acted on and answered 250; if keeping it fails, the answer is 451 and
the sender tries again. A failure while acting on a kept message is
logged and leaves the message ``pending``; it is still answered 250,
since the sender can do nothing better than we can with it.

Kept messages left ``pending`` by a crash between the 250 and the end of
acting on them are acted on again when the listener next starts, so a
bounce answered 250 is never lost; a report can therefore be acted on
twice (at least once, like delivery).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterable
from typing import Any

import structlog
from aiosmtpd.smtp import SMTP, Envelope, Session

from postroom.clock import Clock
from postroom.config import Config, split_hostport
from postroom.errors import ConfigError
from postroom.queue.models import NewInboundReport
from postroom.queue.store import Store
from postroom.relay import message as msg
from postroom.relay.reports import ReportHandler, Route
from postroom.relay.unsubscribe import unsubscribe_signer
from postroom.relay.verp import bounce_signer

_log = structlog.get_logger()

_REPLY_OK_MAIL = "250 2.1.0 Ok"
_REPLY_OK_RCPT = "250 2.1.5 Ok"
_REPLY_NO_SUCH_USER = "550 5.1.1 No such user here"
_REPLY_TOO_MANY = "452 4.5.3 Too many recipients"
_REPLY_STORAGE = "451 4.3.0 Temporary storage failure, try again later"
_REPLY_LOCAL_ERROR = "451 4.3.0 Local error in processing"

# A report comes to one address; a few allow for a postmaster copy.
_MAX_RECIPIENTS = 10
_VERP_TOKEN = r"[a-z2-7]{1,64}"  # noqa: S105 -- a pattern, not a secret


class InboundServer:
    """The listener on ``inbound.listen``, in the running event loop."""

    def __init__(
        self,
        config: Config,
        store: Store,
        clock: Clock,
        on_enqueue: Callable[[], None] | None = None,
    ) -> None:
        if config.inbound.bounce_domain is None:
            raise ConfigError(["inbound.bounce_domain: needed for the listener"])
        self._config = config
        self._store = store
        self._clock = clock
        self._on_enqueue = on_enqueue
        self._server: asyncio.Server | None = None
        self._sessions: set[SMTP] = set()
        self._handler: _Handler | None = None

    @property
    def port(self) -> int:
        """The TCP port the listener is bound to (after `start`)."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("the inbound listener is not running")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def start(self) -> None:
        """Bind and serve; `ConfigError` names ``inbound.listen`` when the
        address cannot be bound."""
        handler = ReportHandler(
            self._config,
            self._store,
            self._clock,
            bounces=await bounce_signer(self._config, self._store),
            unsubscribes=await unsubscribe_signer(self._store),
            on_enqueue=self._on_enqueue,
        )
        self._handler = _Handler(self._config, self._store, self._clock, handler)
        await self._handle_pending()
        host, port = split_hostport(self._config.inbound.listen)
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(self._new_session, host, port)
        except OSError as exc:
            problem = f"inbound.listen: cannot listen on {host}:{port}: {exc}"
            raise ConfigError([problem]) from exc
        _log.info(
            "inbound.listening",
            host=host,
            port=self.port,
            bounce_domain=self._config.inbound.bounce_domain,
        )

    async def _handle_pending(self) -> None:
        """Act on the reports a crash left kept but not acted on."""
        assert self._handler is not None
        for report in await self._store.inbound_reports(outcome="pending"):
            try:
                raw = await self._store.load_inbound_raw(report.id)
                await self._handler.act(report.id, report.peer, report.rcpts, raw)
            except Exception:
                _log.exception("inbound.handle_failed", report_id=report.id)
            else:
                _log.info("inbound.pending_handled", report_id=report.id)

    async def stop(self) -> None:
        """Stop listening and close every session."""
        if self._server is None:
            return
        self._server.close()
        for session in list(self._sessions):
            if session.transport is not None:
                session.transport.close()
        await self._server.wait_closed()
        self._server = None
        _log.info("inbound.stopped")

    def _new_session(self) -> SMTP:
        inbound = self._config.inbound
        return _Protocol(
            self._handler,
            self._sessions,
            data_size_limit=inbound.max_message_size,
            enable_SMTPUTF8=True,
            hostname=self._config.hostname,
            ident="ESMTP postroom",
            timeout=inbound.timeout.total_seconds(),
            auth_exclude_mechanism=("PLAIN", "LOGIN"),
        )


class _Protocol(SMTP):
    def __init__(self, handler: Any, sessions: set[SMTP], **options: Any) -> None:
        super().__init__(handler, **options)
        self._sessions = sessions

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._sessions.add(self)
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        self._sessions.discard(self)
        super().connection_lost(error)


class _Handler:
    """aiosmtpd hooks: which addresses exist, keep, act, answer."""

    def __init__(
        self, config: Config, store: Store, clock: Clock, reports: ReportHandler
    ) -> None:
        inbound = config.inbound
        domain = re.escape(inbound.bounce_domain or "")
        ours = {inbound.bounce_domain or "", config.hostname.lower()}
        self._store = store
        self._clock = clock
        self._reports = reports
        self._our_domains = ours
        # Case-insensitive: some servers upper-case the return path; tokens
        # are lowercase base32, so lowering them loses nothing.
        self._bounce = re.compile(
            rf"{re.escape(inbound.bounce_local)}\+({_VERP_TOKEN})@{domain}"
        )
        self._unsubscribe = re.compile(
            rf"{re.escape(inbound.unsubscribe_local)}\+({_VERP_TOKEN})@{domain}"
        )
        self._feedback = f"{inbound.feedback_local}@{inbound.bounce_domain}"

    def route(self, address: str) -> Route | None:
        """What ``address`` is for, or None when it does not exist here."""
        lowered = address.lower()
        if found := self._bounce.fullmatch(lowered):
            return Route("bounce", address, found.group(1))
        if found := self._unsubscribe.fullmatch(lowered):
            return Route("unsubscribe", address, found.group(1))
        if lowered == self._feedback:
            return Route("feedback", address)
        local, _, domain = lowered.rpartition("@")
        # RFC 5321 section 4.5.1: "postmaster" is case-insensitive, and
        # must be taken without a domain as well.
        if lowered == "postmaster" or (
            local == "postmaster" and domain in self._our_domains
        ):
            return Route("postmaster", address)
        return None

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        options: list[str],
    ) -> str:
        # DSNs and complaints come with the null sender (RFC 3464 section
        # 2, RFC 5321 section 4.5.5); anything else is taken as well, made
        # fit to store: a broken return path must not lose the report.
        envelope.mail_from = msg.printable(address)
        envelope.mail_options.extend(options)
        return _REPLY_OK_MAIL

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        options: list[str],
    ) -> str:
        route = self.route(address)
        if route is None:
            _log.info("inbound.rcpt_refused", peer=_peer(session), rcpt=address)
            return _REPLY_NO_SUCH_USER
        if len(envelope.rcpt_tos) >= _MAX_RECIPIENTS:
            return _REPLY_TOO_MANY
        envelope.rcpt_tos.append(address)
        return _REPLY_OK_RCPT

    async def handle_DATA(
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        raw = msg.normalize_line_endings(envelope.original_content or b"")
        peer = _peer(session)
        kept = NewInboundReport(
            peer=peer,
            mail_from=envelope.mail_from or "",
            rcpts=tuple(envelope.rcpt_tos),
            raw=raw,
        )
        try:
            report_id = await asyncio.shield(
                self._store.add_inbound(kept, self._clock.now())
            )
        except Exception:
            _log.exception("inbound.store_failed", peer=peer)
            return _REPLY_STORAGE

        try:
            await self.act(report_id, peer, envelope.rcpt_tos, raw)
        except Exception:
            _log.exception("inbound.handle_failed", report_id=report_id)
        return f"250 2.0.0 Ok: kept as report {report_id}"

    async def act(
        self, report_id: int, peer: str, rcpts: Iterable[str], raw: bytes
    ) -> None:
        """Act on a kept report sent to ``rcpts``."""
        routes = [r for r in map(self.route, rcpts) if r is not None]
        await self._reports.handle(report_id, peer, routes, raw)

    async def handle_exception(self, error: Exception) -> str:
        _log.exception("inbound.error", error=type(error).__name__)
        return _REPLY_LOCAL_ERROR


def _peer(session: Session) -> str:
    peer = session.peer
    return str(peer[0]) if isinstance(peer, tuple) and peer else "unknown"
