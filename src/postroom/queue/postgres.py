"""The many-node store: one PostgreSQL database shared by every node.

How it works: an asyncpg connection pool; every method borrows a
connection and runs its statements in one transaction. Every node runs
the same code against the same rows, so anything that must happen once
is decided by the database: due recipients are leased with ``FOR UPDATE
SKIP LOCKED`` and stamped with this node's id, migrations and the daily
report's claim take advisory locks.

Durability: each connection runs with ``synchronous_commit = on``, so
`accept` returns only once the commit is flushed. Concurrent accepts on
different pool connections share WAL flushes (PostgreSQL's own group
commit), so no batching is done here.

Failure of the database: every driver or socket error leaves as
`StorageError`, and an error that means the connections are gone makes
the pool replace all of them on their next use, so the store comes back
by itself once the server does.

Counters: recipient counts per campaign and state are deltas that
triggers insert (see `postroom.queue.postgres_results`); every
`FOLD_EVERY` writes, and after every purge, a node folds them into one row
per campaign and state, so reading them stays a matter of a few rows.

Leases: a node that dies keeps its leases until they run out; another
node then takes the recipients. `release_leases` therefore frees nothing
(a node cannot tell a dead peer's lease from a live one's), and `record`
writes only while this node still holds the lease it took: when the lease
ran out and another node took the recipient, that node's attempt counts
and this one is logged and dropped.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, TypeVar

import asyncpg
import structlog

from postroom.errors import StorageError
from postroom.queue import postgres_reports as reports
from postroom.queue import postgres_results as results
from postroom.queue import postgres_sql as sql
from postroom.queue.models import (
    Accepted,
    Attempt,
    AttemptResult,
    BounceRecord,
    CampaignSummary,
    DailyReport,
    Delivery,
    ExportRow,
    Failure,
    InboundReport,
    Message,
    NewInboundReport,
    NewMessage,
    OutboxEvent,
    Recipient,
    State,
    Stats,
    StoreGauges,
    Suppression,
)
from postroom.queue.postgres_schema import migrate
from postroom.queue.store import PurgeCounts, Store

if TYPE_CHECKING:
    from postroom.queue.postgres_sql import Conn

log = structlog.get_logger()

T = TypeVar("T")

# Rows of each kind one purge transaction removes.
PURGE_BATCH = 500

# Writes (accepts and attempts) of one node between two foldings of the
# campaign counters: each leaves at most two delta rows, so a read sums at
# most a few thousand rows per node.
FOLD_EVERY = 1000

# Seconds to wait for a connection to the server; a submission waiting on
# a server that is down answers 451 after this, well within SMTP timeouts.
CONNECT_TIMEOUT = 5.0

# Errors that mean a connection (or every connection) to the server is gone.
_LOST = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.AdminShutdownError,
    asyncpg.CannotConnectNowError,
)


def node_id() -> str:
    """A name for this process that no other node shares: host, pid, random."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def redact(url: str) -> str:
    """``url`` without its password, for logs and messages."""
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at:
        return url
    user = credentials.partition(":")[0]
    return f"{scheme}{sep}{user}@{host}"


class PostgresStore(Store):
    """The store in a PostgreSQL database named by ``url``.

    ``holder`` is this node's id as written on the recipients it leases;
    ``pool_size`` the most connections it keeps open.
    """

    def __init__(
        self, url: str, *, holder: str | None = None, pool_size: int = 10
    ) -> None:
        self.url = url
        self.holder = holder or node_id()
        self._where = redact(url)
        self._pool_size = pool_size
        self._pool: asyncpg.Pool | None = None
        self._secrets: dict[str, bytes] = {}
        # The lease each recipient this node is delivering was taken with.
        self._leases: dict[int, datetime] = {}
        self._writes_unfolded = 0

    # -- lifecycle --------------------------------------------------------

    async def open(self) -> None:
        if self._pool is not None:
            return
        try:
            pool = await asyncpg.create_pool(
                self.url,
                min_size=1,
                max_size=self._pool_size,
                timeout=CONNECT_TIMEOUT,
                # The 250 after accept is a promise that the message is on
                # disk; a server configured otherwise must not weaken it.
                server_settings={
                    "synchronous_commit": "on",
                    "application_name": "postroom",
                },
            )
        except (asyncpg.PostgresError, *_LOST) as exc:
            raise StorageError(f"cannot open {self._where}: {exc}") from exc
        try:
            async with pool.acquire() as conn:
                version = await migrate(conn, self._where)
        except BaseException as exc:
            await pool.close()
            if isinstance(exc, asyncpg.PostgresError | OSError):
                raise StorageError(f"cannot migrate {self._where}: {exc}") from exc
            raise
        self._pool = pool
        log.info(
            "store.opened",
            database=self._where,
            schema_version=version,
            node=self.holder,
        )

    async def close(self) -> None:
        if self._pool is None:
            return
        pool, self._pool = self._pool, None
        try:
            await pool.close()
        except (asyncpg.PostgresError, *_LOST):
            pool.terminate()
        log.info("store.closed", database=self._where)

    # -- running statements -----------------------------------------------

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[Conn]:
        """A pooled connection inside one transaction; driver errors out
        as `StorageError`."""
        pool = self._pool
        if pool is None:
            raise StorageError("the store is not open")
        try:
            # READ COMMITTED whatever the server's default: leases (SKIP
            # LOCKED) and the checks made after a row lock rely on each
            # statement seeing what committed before it.
            async with (
                pool.acquire() as conn,
                conn.transaction(isolation="read_committed"),
            ):
                yield conn
        except asyncpg.PostgresError as exc:
            if isinstance(exc, _LOST):
                await pool.expire_connections()
            raise StorageError(f"database error: {exc}") from exc
        except _LOST as exc:
            # The server went away (or restarted): every pooled connection
            # is suspect, so each is replaced on its next use.
            await pool.expire_connections()
            raise StorageError(f"database unreachable: {exc!r}") from exc

    async def _run(self, step: Callable[[Conn], Awaitable[T]]) -> T:
        async with self._connection() as conn:
            return await step(conn)

    async def _wrote(self) -> None:
        """Count one write that left counter deltas; fold them every
        `FOLD_EVERY` writes."""
        self._writes_unfolded += 1
        if self._writes_unfolded >= FOLD_EVERY:
            self._writes_unfolded = 0
            await self._fold()

    async def _fold(self) -> None:
        # The write that came before has committed: a failure to fold must
        # not make it look failed. The next turn folds what is left.
        try:
            removed = await self._run(results.fold_counts)
        except StorageError as exc:
            log.warning("store.fold_failed", database=self._where, error=str(exc))
            return
        log.debug("store.counts_folded", database=self._where, rows=removed)

    # -- accepting --------------------------------------------------------

    async def accept(self, message: NewMessage, now: datetime) -> Accepted:
        accepted = await self._run(partial(sql.accept, message=message, now=now))
        await self._wrote()
        log.info(
            "queue.accepted",
            queue_id=accepted.queue_id,
            campaign=message.campaign,
            recipients=len(message.recipients),
            suppressed=len(accepted.suppressed),
            size=len(message.raw),
        )
        return accepted

    # -- delivering -------------------------------------------------------

    async def lease_due(
        self, now: datetime, limit: int, lease: timedelta
    ) -> list[Delivery]:
        if limit <= 0:
            return []
        deliveries = await self._run(
            partial(
                sql.lease_due, now=now, limit=limit, lease=lease, holder=self.holder
            )
        )
        # Forget leases that ran out without a record (an attempt that
        # crashed): they can no longer be written anyway.
        for recipient_id, until in list(self._leases.items()):
            if until <= now:
                del self._leases[recipient_id]
        for delivery in deliveries:
            self._leases[delivery.recipient.id] = delivery.lease_until
        return deliveries

    async def load_raw(self, queue_id: str) -> bytes:
        return await self._run(partial(sql.load_raw, queue_id=queue_id))

    async def record(self, result: AttemptResult) -> None:
        """Write one finished attempt, unless this node lost its lease.

        When the lease this node took ran out and the recipient was leased
        again (by another node, or by this one), nothing is written and
        the loss is logged: the newer lease's attempt is the one that
        counts. The recipient may have been delivered twice then: delivery
        is at least once.
        """
        recipient_id = result.attempt.recipient_id
        lease_until = self._leases.get(recipient_id)
        written = await self._run(
            partial(
                sql.record, result=result, holder=self.holder, lease_until=lease_until
            )
        )
        self._leases.pop(recipient_id, None)
        if not written:
            log.warning(
                "delivery.lease_lost",
                recipient_id=recipient_id,
                state=str(result.state),
                lease_until=lease_until.isoformat() if lease_until else None,
            )
            return
        await self._wrote()

    async def next_due_at(self) -> datetime | None:
        return await self._run(sql.next_due_at)

    async def release_leases(self) -> int:
        """Free nothing and return 0.

        Other nodes may be delivering right now, and their leases look
        exactly like the ones a crashed node left behind; so leases here
        are only ever freed by running out (``delivery.lease``).
        """
        return 0

    async def add_bounce(self, bounce: BounceRecord) -> bool:
        return await self._run(partial(sql.add_bounce, bounce=bounce))

    # -- suppression ------------------------------------------------------

    async def is_suppressed(self, campaign: str, address: str) -> bool:
        return await self._run(
            partial(sql.is_suppressed, campaign=campaign, address=address)
        )

    async def suppress(
        self, scope: str, address: str, reason: str, now: datetime
    ) -> bool:
        return await self._run(
            partial(sql.suppress, scope=scope, address=address, reason=reason, now=now)
        )

    async def suppressions(
        self, scope: str | None = None, limit: int | None = None
    ) -> list[Suppression]:
        return await self._run(partial(reports.suppressions, scope=scope, limit=limit))

    async def unsuppress(self, scope: str, address: str) -> bool:
        return await self._run(
            partial(reports.unsuppress, scope=scope, address=address)
        )

    async def suppress_many(self, entries: list[Suppression]) -> int:
        return await self._run(partial(reports.suppress_many, entries=entries))

    # -- inbound reports --------------------------------------------------

    async def add_inbound(self, report: NewInboundReport, now: datetime) -> int:
        return await self._run(partial(reports.add_inbound, report=report, now=now))

    async def mark_complaint(self, recipient_id: int, now: datetime) -> bool:
        return await self._run(
            partial(reports.mark_complaint, recipient_id=recipient_id, now=now)
        )

    async def settle_inbound(
        self,
        report_id: int,
        kind: str | None,
        outcome: str,
        recipient_id: int | None,
        detail: str,
    ) -> None:
        await self._run(
            partial(
                reports.settle_inbound,
                report_id=report_id,
                kind=kind,
                outcome=outcome,
                recipient_id=recipient_id,
                detail=detail,
            )
        )

    async def inbound_reports(
        self,
        outcome: str | None = None,
        limit: int = 1000,
        report_id: int | None = None,
        *,
        newest_first: bool = False,
    ) -> list[InboundReport]:
        return await self._run(
            partial(
                reports.inbound_reports,
                outcome=outcome,
                limit=limit,
                report_id=report_id,
                newest_first=newest_first,
            )
        )

    async def load_inbound_raw(self, report_id: int) -> bytes:
        return await self._run(partial(reports.load_inbound_raw, report_id=report_id))

    async def find_by_message_id(self, message_id: str) -> list[Recipient]:
        return await self._run(
            partial(reports.find_by_message_id, message_id=message_id)
        )

    # -- inspecting and repairing ----------------------------------------

    async def get_message(self, queue_id: str) -> Message:
        return await self._run(partial(sql.get_message, queue_id=queue_id))

    async def get_recipient(self, recipient_id: int) -> Recipient:
        return await self._run(partial(sql.get_recipient, recipient_id=recipient_id))

    async def recipients(
        self,
        *,
        queue_id: str | None = None,
        state: State | None = None,
        campaign: str | None = None,
        limit: int = 1000,
    ) -> list[Recipient]:
        return await self._run(
            partial(
                sql.recipients,
                queue_id=queue_id,
                state=state,
                campaign=campaign,
                limit=limit,
            )
        )

    async def attempts(self, recipient_id: int) -> list[Attempt]:
        return await self._run(partial(sql.attempts, recipient_id=recipient_id))

    async def retry_now(self, queue_id: str | None, now: datetime) -> int:
        return await self._run(partial(sql.retry_now, queue_id=queue_id, now=now))

    async def delete(self, queue_id: str) -> int:
        return await self._run(partial(sql.delete, queue_id=queue_id))

    # -- reporting --------------------------------------------------------

    async def stats(self, campaign: str | None = None) -> Stats:
        return await self._run(partial(reports.stats, campaign=campaign))

    async def campaigns(self) -> list[str]:
        return await self._run(reports.campaigns)

    async def export_bounces(
        self,
        campaign: str | None,
        since: datetime | None,
        until: datetime | None,
    ) -> list[ExportRow]:
        return await self._run(
            partial(reports.export_bounces, campaign=campaign, since=since, until=until)
        )

    async def export_deferrals(
        self,
        campaign: str | None,
        since: datetime | None,
        until: datetime | None,
    ) -> list[ExportRow]:
        return await self._run(
            partial(
                reports.export_deferrals, campaign=campaign, since=since, until=until
            )
        )

    # -- the daily blacklist scan -----------------------------------------

    async def failures(self, since: datetime, until: datetime) -> list[Failure]:
        return await self._run(partial(reports.failures, since=since, until=until))

    async def claim_report(
        self, day: str, holder: str, now: datetime, hold: timedelta, *, force: bool
    ) -> bool:
        return await self._run(
            partial(
                reports.claim_report,
                day=day,
                holder=holder,
                now=now,
                hold=hold,
                force=force,
            )
        )

    async def finish_report(
        self,
        day: str,
        holder: str,
        now: datetime,
        *,
        sent: bool,
        queue_id: str | None,
        summary: str,
    ) -> None:
        await self._run(
            partial(
                reports.finish_report,
                day=day,
                holder=holder,
                now=now,
                sent=sent,
                queue_id=queue_id,
                summary=summary,
            )
        )

    async def daily_report(self, day: str) -> DailyReport | None:
        return await self._run(partial(reports.daily_report, day=day))

    # -- results pages, metrics and the webhook outbox -------------------

    async def campaign_summaries(self) -> list[CampaignSummary]:
        return await self._run(results.campaign_summaries)

    async def gauges(self) -> StoreGauges:
        return await self._run(results.gauges)

    async def add_events(self, events: list[OutboxEvent]) -> None:
        if events:
            await self._run(partial(results.add_events, events=events))

    async def due_events(
        self, now: datetime, limit: int, lease: timedelta
    ) -> list[OutboxEvent]:
        if limit <= 0:
            return []
        return await self._run(
            partial(results.due_events, now=now, limit=limit, lease=lease)
        )

    async def event_posted(self, outbox_id: int) -> None:
        await self._run(partial(results.event_posted, outbox_id=outbox_id))

    async def event_failed(
        self, outbox_id: int, next_attempt_at: datetime, error: str
    ) -> None:
        await self._run(
            partial(
                results.event_failed,
                outbox_id=outbox_id,
                next_attempt_at=next_attempt_at,
                error=error,
            )
        )

    # -- housekeeping -----------------------------------------------------

    async def purge(
        self, now: datetime, keep_bodies: timedelta, keep_records: timedelta
    ) -> PurgeCounts:
        step = partial(
            sql.purge_step,
            now=now,
            keep_bodies=keep_bodies,
            keep_records=keep_records,
            batch=PURGE_BATCH,
        )
        total = PurgeCounts(0, 0, 0, 0)
        while True:
            done = await self._run(step)
            if done == PurgeCounts(0, 0, 0, 0):
                break
            total = PurgeCounts(
                total.bodies + done.bodies,
                total.messages + done.messages,
                total.attempts + done.attempts,
                total.bounces + done.bounces,
            )
        # Purged recipients left negative deltas behind.
        await self._fold()
        return total

    async def secret(self, name: str) -> bytes:
        value = self._secrets.get(name)
        if value is None:
            value = await self._run(partial(sql.create_secret, name=name))
        self._secrets[name] = value
        return value
