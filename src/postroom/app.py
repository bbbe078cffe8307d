"""The running daemon: the store, the submission listener, the delivery
workers and housekeeping, started and stopped together.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket

import structlog

from postroom.clock import Clock, SystemClock
from postroom.config import Config
from postroom.lockfile import DataDirLock
from postroom.queue.open import open_store
from postroom.queue.store import Store
from postroom.relay.acceptors import AcceptorPool
from postroom.relay.inbound import InboundServer
from postroom.relay.stamp import build_stamper
from postroom.relay.submission import SubmissionServer
from postroom.relay.worker import DeliveryEngine
from postroom.web.server import WebServer, wanted
from postroom.webhooks.sender import WebhookSender

log = structlog.get_logger()


class Relay:
    """postroom as one process: accept, deliver, purge.

    ``engine`` and ``submission`` exist once `start` has run; ``inbound``
    too when ``inbound.bounce_domain`` is set, else it is None.
    """

    engine: DeliveryEngine
    submission: SubmissionServer
    inbound: InboundServer | None = None
    web: WebServer | None = None  # while unsubscribe or the results pages are on
    webhooks: WebhookSender | None = None  # while webhooks are configured
    acceptors: AcceptorPool | None = None  # while submission.processes > 1

    def __init__(self, config: Config, clock: Clock | None = None) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self.store: Store = open_store(config)
        self._lock = DataDirLock(config.data_dir)
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()

    async def start(self) -> None:
        """Lock the data directory, open the store, free leases a crash left
        behind, start listening. On failure everything started is stopped."""
        self._lock.acquire()
        try:
            await self._start()
        except BaseException:
            await self._close_after_failed_start()
            raise

    async def _close_after_failed_start(self) -> None:
        started = (self.acceptors, getattr(self, "submission", None), self.inbound)
        for server in (*started, self.web):
            if server is not None:
                with contextlib.suppress(Exception):
                    await server.stop()
        with contextlib.suppress(Exception):
            await self.store.close()
        self._lock.release()

    async def _start(self) -> None:
        await self.store.open()
        released = await self.store.release_leases()
        if released:
            # Deliveries that were in flight when the last run died: they
            # are tried again, so the receiver may see them twice.
            log.warning("queue.leases_released", recipients=released)

        stamper = await build_stamper(self.config, self.store, self.clock)
        self.engine = DeliveryEngine(
            self.config, self.store, self.clock, stamper=stamper
        )
        self.submission = SubmissionServer(
            self.config, self.store, self.clock, on_accept=self.engine.wake
        )
        await self.submission.start()
        extra = self.config.submission.processes - 1
        if extra:
            self.acceptors = AcceptorPool(self.config, extra, self.engine.wake)
            await self.acceptors.start(self.submission.port)
        if self.config.inbound.bounce_domain is not None:
            self.inbound = InboundServer(
                self.config, self.store, self.clock, on_enqueue=self.engine.wake
            )
            await self.inbound.start()
        if wanted(self.config):
            self.web = WebServer(self.config, self.store, self.clock)
            await self.web.start()
        self._tasks = [
            asyncio.create_task(self.engine.run(), name="delivery"),
            asyncio.create_task(self._purge_loop(), name="purge"),
        ]
        if self.config.webhooks:
            self.webhooks = WebhookSender(self.config, self.store, self.clock)
            self._tasks.append(
                asyncio.create_task(self.webhooks.run(), name="webhooks")
            )
        log.info(
            "relay.started",
            hostname=self.config.hostname,
            submission=self.config.submission.listen,
            store=str(self.config.queue.url or self.config.sqlite_path),
        )

    async def stop(self) -> None:
        """Stop accepting, let in-flight deliveries finish, close the store."""
        if self.acceptors is not None:
            await self.acceptors.stop()
        await self.submission.stop()
        if self.inbound is not None:
            await self.inbound.stop()
        if self.web is not None:
            await self.web.stop()
        await self.engine.stop()
        if self.webhooks is not None:
            await self.webhooks.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.store.close()
        self._lock.release()
        log.info("relay.stopped")

    async def serve_forever(self) -> None:
        """Run until SIGTERM or SIGINT, then stop cleanly."""
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._stopping.set)
        await self.start()
        _notify_systemd(b"READY=1")
        try:
            await self._stopping.wait()
        finally:
            _notify_systemd(b"STOPPING=1")
            await self.stop()

    async def _purge_loop(self) -> None:
        queue = self.config.queue
        while True:
            try:
                counts = await self.store.purge(
                    self.clock.now(), queue.keep_bodies, queue.keep_records
                )
                if any(
                    (counts.bodies, counts.messages, counts.attempts, counts.bounces)
                ):
                    log.info(
                        "queue.purged",
                        bodies=counts.bodies,
                        messages=counts.messages,
                        attempts=counts.attempts,
                        bounces=counts.bounces,
                    )
            except Exception:
                log.exception("queue.purge_failed")
            await asyncio.sleep(queue.purge_interval.total_seconds())


def _notify_systemd(state: bytes) -> None:
    """Tell systemd (Type=notify) how start-up went; a no-op elsewhere."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.connect(address)
        sock.sendall(state)
