"""The single-node store: one SQLite file in WAL mode.

How it works: the event loop never touches SQLite. Every write is a job put
on a queue that one writer thread drains. The thread takes every job that is
waiting, runs them in one transaction (each inside its own SAVEPOINT, so a
job that fails on its own is undone alone) and commits once: messages that
arrive while a commit is being flushed share the next flush (group commit).
A caller's future is resolved only after the transaction holding its job
has committed; if the commit fails, every job in it fails with
`StorageError`. Reads run on a second connection in a reader thread, which
WAL lets proceed while the writer commits.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import queue
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import structlog

from postroom.errors import StorageError
from postroom.queue import sqlite_blacklist as blacklist
from postroom.queue import sqlite_inbound as inbound
from postroom.queue import sqlite_reports as reports
from postroom.queue import sqlite_results as results
from postroom.queue import sqlite_sql as sql
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
from postroom.queue.sqlite_schema import connect, migrate
from postroom.queue.store import PurgeCounts, Store

log = structlog.get_logger()

T = TypeVar("T")

# The most jobs one transaction takes; bounds how long one commit holds the
# writer and how much is lost to a single failing flush.
MAX_BATCH = 500

# Rows of each kind that one purge transaction removes, so that a large purge
# does not hold up accepting for long.
PURGE_BATCH = 500


@dataclass(slots=True)
class _Job:
    run: Callable[[sqlite3.Connection], Any]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]


class _JobFailed(Exception):
    """One job met a database error that may have ended the transaction."""

    def __init__(self, job: _Job, error: StorageError) -> None:
        super().__init__(str(error))
        self.job = job
        self.error = error


def _storage_error(exc: sqlite3.Error) -> StorageError:
    error = StorageError(f"database error: {exc}")
    error.__cause__ = exc
    return error


class SqliteStore(Store):
    """The store in one SQLite file.

    ``commits`` counts the write transactions committed since `open`; many
    concurrent writes share one. ``max_pages`` caps the database file at
    that many pages (``PRAGMA max_page_count``): a write past it fails as on
    a full disk.
    """

    def __init__(self, path: Path, *, max_pages: int | None = None) -> None:
        self.path = path
        self.commits = 0
        self._max_pages = max_pages
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._reader: concurrent.futures.ThreadPoolExecutor | None = None
        self._read_conn: sqlite3.Connection | None = None
        self._open = False
        self._secrets: dict[str, bytes] = {}

    # -- lifecycle --------------------------------------------------------

    async def open(self) -> None:
        if self._open:
            return
        ready: concurrent.futures.Future[int] = concurrent.futures.Future()
        writer = threading.Thread(
            target=self._run_writer,
            args=(ready,),
            name="postroom-sqlite-writer",
            daemon=True,
        )
        writer.start()
        try:
            version = await asyncio.wrap_future(ready)
        except BaseException:
            await asyncio.to_thread(writer.join)
            raise

        reader = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="postroom-sqlite-reader"
        )
        try:
            self._read_conn = await asyncio.wrap_future(
                reader.submit(self._connect_reader)
            )
        except BaseException:
            reader.shutdown()
            self._jobs.put(None)
            await asyncio.to_thread(writer.join)
            raise
        self._writer, self._reader, self._open = writer, reader, True
        log.info("store.opened", path=str(self.path), schema_version=version)

    async def close(self) -> None:
        if not self._open:
            return
        self._open = False
        # The writer drains every job queued before this marker, then stops.
        self._jobs.put(None)
        if self._writer is not None:
            await asyncio.to_thread(self._writer.join)
        if self._reader is not None and self._read_conn is not None:
            await asyncio.wrap_future(self._reader.submit(self._read_conn.close))
            self._reader.shutdown(wait=True)
        self._writer = self._reader = self._read_conn = None
        log.info("store.closed", path=str(self.path), commits=self.commits)

    def _connect_reader(self) -> sqlite3.Connection:
        try:
            conn = connect(self.path)
            conn.execute("PRAGMA query_only = ON")
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open {self.path}: {exc}") from exc
        return conn

    # -- the writer thread ------------------------------------------------

    def _run_writer(self, ready: concurrent.futures.Future[int]) -> None:
        try:
            conn = connect(self.path, max_pages=self._max_pages)
        except sqlite3.Error as exc:
            ready.set_exception(_storage_error(exc))
            return
        except Exception as exc:
            ready.set_exception(exc)
            return
        try:
            version = migrate(conn, self.path)
        except Exception as exc:
            conn.close()
            error = _storage_error(exc) if isinstance(exc, sqlite3.Error) else exc
            ready.set_exception(error)
            return
        ready.set_result(version)

        try:
            stop = False
            while not stop:
                batch, stop = self._next_batch()
                if batch:
                    self._commit_batch_safely(conn, batch)
        finally:
            conn.close()

    def _next_batch(self) -> tuple[list[_Job], bool]:
        """Wait for one job, then take every other one already waiting."""
        first = self._jobs.get()
        if first is None:
            return [], True
        batch = [first]
        while len(batch) < MAX_BATCH:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is None:
                return batch, True
            batch.append(job)
        return batch, False

    def _commit_batch_safely(self, conn: sqlite3.Connection, batch: list[_Job]) -> None:
        # A bug here must not stop the writer thread: every later write
        # would wait forever.
        try:
            self._commit_batch(conn, batch)
        except Exception as exc:
            log.exception("store.writer_failed")
            self._roll_back(conn)
            error = StorageError(f"write failed: {exc!r}")
            error.__cause__ = exc
            for job in batch:
                _answer(job, None, error)

    def _commit_batch(self, conn: sqlite3.Connection, batch: list[_Job]) -> None:
        """Run ``batch`` in one transaction and answer every job in it.

        When one job meets a database error (disk full, I/O error), SQLite
        may have abandoned the whole transaction: that job fails, and the
        others run again, from scratch, in a fresh transaction.
        """
        while batch:
            batch = self._try_batch(conn, batch)

    def _try_batch(self, conn: sqlite3.Connection, batch: list[_Job]) -> list[_Job]:
        """Commit and answer ``batch``; the jobs left to run again, if any."""
        answers: list[tuple[_Job, Any, BaseException | None]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for job in batch:
                answers.append(self._run_job(conn, job))
            conn.execute("COMMIT")
        except _JobFailed as failed:
            self._roll_back(conn)
            log.error("store.write_failed", error=str(failed.__cause__))
            _answer(failed.job, None, failed.error)
            return [job for job in batch if job is not failed.job]
        except Exception as exc:
            self._roll_back(conn)
            log.error("store.commit_failed", jobs=len(batch), error=str(exc))
            if isinstance(exc, sqlite3.Error):
                error: BaseException = _storage_error(exc)
            else:
                error = StorageError(f"write failed: {exc!r}")
                error.__cause__ = exc
            # Nothing of this transaction stays, so no job in it succeeded;
            # a job that failed by itself keeps its own reason.
            own = {id(job): err for job, _, err in answers if err is not None}
            for job in batch:
                _answer(job, None, own.get(id(job), error))
            return []

        self.commits += 1
        for job, value, err in answers:
            _answer(job, value, err)
        return []

    @staticmethod
    def _run_job(
        conn: sqlite3.Connection, job: _Job
    ) -> tuple[_Job, Any, BaseException | None]:
        conn.execute("SAVEPOINT job")
        try:
            value = job.run(conn)
        except sqlite3.IntegrityError as exc:
            error: BaseException = _storage_error(exc)
        except sqlite3.Error as exc:
            raise _JobFailed(job, _storage_error(exc)) from exc
        except Exception as exc:
            error = exc
        else:
            conn.execute("RELEASE job")
            return job, value, None
        conn.execute("ROLLBACK TO job")
        conn.execute("RELEASE job")
        return job, None, error

    @staticmethod
    def _roll_back(conn: sqlite3.Connection) -> None:
        if not conn.in_transaction:
            return
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error as exc:
            log.error("store.rollback_failed", error=str(exc))

    async def _write(self, run: Callable[[sqlite3.Connection], T]) -> T:
        if not self._open:
            raise StorageError("the store is not open")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put(_Job(run, loop, future))
        return await future

    async def _read(self, run: Callable[[sqlite3.Connection], T]) -> T:
        if not self._open or self._reader is None or self._read_conn is None:
            raise StorageError("the store is not open")
        conn = self._read_conn
        return await asyncio.wrap_future(self._reader.submit(_read_in, conn, run))

    # -- accepting --------------------------------------------------------

    async def accept(self, message: NewMessage, now: datetime) -> Accepted:
        accepted = await self._write(partial(sql.accept, message=message, now=now))
        # Debug: the listener that called logs each acceptance at info.
        log.debug(
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
        return await self._write(
            partial(sql.lease_due, now=now, limit=limit, lease=lease)
        )

    async def load_raw(self, queue_id: str) -> bytes:
        return await self._read(partial(sql.load_raw, queue_id=queue_id))

    async def record(self, result: AttemptResult) -> None:
        await self._write(partial(sql.record, result=result))

    async def next_due_at(self) -> datetime | None:
        return await self._read(sql.next_due_at)

    async def release_leases(self) -> int:
        return await self._write(sql.release_leases)

    async def add_bounce(self, bounce: BounceRecord) -> bool:
        return await self._write(partial(sql.add_bounce, bounce=bounce))

    # -- suppression ------------------------------------------------------

    async def is_suppressed(self, campaign: str, address: str) -> bool:
        return await self._read(
            partial(sql.is_suppressed, campaign=campaign, address=address)
        )

    async def suppress(
        self, scope: str, address: str, reason: str, now: datetime
    ) -> bool:
        return await self._write(
            partial(sql.suppress, scope=scope, address=address, reason=reason, now=now)
        )

    async def suppressions(
        self, scope: str | None = None, limit: int | None = None
    ) -> list[Suppression]:
        return await self._read(partial(inbound.suppressions, scope=scope, limit=limit))

    async def unsuppress(self, scope: str, address: str) -> bool:
        return await self._write(
            partial(inbound.unsuppress, scope=scope, address=address)
        )

    async def suppress_many(self, entries: list[Suppression]) -> int:
        return await self._write(partial(inbound.suppress_many, entries=entries))

    # -- inbound reports --------------------------------------------------

    async def add_inbound(self, report: NewInboundReport, now: datetime) -> int:
        return await self._write(partial(inbound.add_inbound, report=report, now=now))

    async def mark_complaint(self, recipient_id: int, now: datetime) -> bool:
        return await self._write(
            partial(inbound.mark_complaint, recipient_id=recipient_id, now=now)
        )

    async def settle_inbound(
        self,
        report_id: int,
        kind: str | None,
        outcome: str,
        recipient_id: int | None,
        detail: str,
    ) -> None:
        await self._write(
            partial(
                inbound.settle_inbound,
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
        return await self._read(
            partial(
                inbound.inbound_reports,
                outcome=outcome,
                limit=limit,
                report_id=report_id,
                newest_first=newest_first,
            )
        )

    async def load_inbound_raw(self, report_id: int) -> bytes:
        return await self._read(partial(inbound.load_inbound_raw, report_id=report_id))

    async def find_by_message_id(self, message_id: str) -> list[Recipient]:
        return await self._read(
            partial(inbound.find_by_message_id, message_id=message_id)
        )

    # -- inspecting and repairing ----------------------------------------

    async def get_message(self, queue_id: str) -> Message:
        return await self._read(partial(sql.get_message, queue_id=queue_id))

    async def get_recipient(self, recipient_id: int) -> Recipient:
        return await self._read(partial(sql.get_recipient, recipient_id=recipient_id))

    async def recipients(
        self,
        *,
        queue_id: str | None = None,
        state: State | None = None,
        campaign: str | None = None,
        limit: int = 1000,
    ) -> list[Recipient]:
        return await self._read(
            partial(
                sql.recipients,
                queue_id=queue_id,
                state=state,
                campaign=campaign,
                limit=limit,
            )
        )

    async def attempts(self, recipient_id: int) -> list[Attempt]:
        return await self._read(partial(sql.attempts, recipient_id=recipient_id))

    async def retry_now(self, queue_id: str | None, now: datetime) -> int:
        return await self._write(partial(sql.retry_now, queue_id=queue_id, now=now))

    async def delete(self, queue_id: str) -> int:
        return await self._write(partial(sql.delete, queue_id=queue_id))

    # -- reporting --------------------------------------------------------

    async def stats(self, campaign: str | None = None) -> Stats:
        return await self._read(partial(reports.stats, campaign=campaign))

    async def campaigns(self) -> list[str]:
        return await self._read(reports.campaigns)

    async def export_bounces(
        self,
        campaign: str | None,
        since: datetime | None,
        until: datetime | None,
    ) -> list[ExportRow]:
        return await self._read(
            partial(reports.export_bounces, campaign=campaign, since=since, until=until)
        )

    async def export_deferrals(
        self,
        campaign: str | None,
        since: datetime | None,
        until: datetime | None,
    ) -> list[ExportRow]:
        return await self._read(
            partial(
                reports.export_deferrals, campaign=campaign, since=since, until=until
            )
        )

    # -- the daily blacklist scan -----------------------------------------

    async def failures(self, since: datetime, until: datetime) -> list[Failure]:
        return await self._read(partial(blacklist.failures, since=since, until=until))

    async def claim_report(
        self, day: str, holder: str, now: datetime, hold: timedelta, *, force: bool
    ) -> bool:
        return await self._write(
            partial(
                blacklist.claim_report,
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
        await self._write(
            partial(
                blacklist.finish_report,
                day=day,
                holder=holder,
                now=now,
                sent=sent,
                queue_id=queue_id,
                summary=summary,
            )
        )

    async def daily_report(self, day: str) -> DailyReport | None:
        return await self._read(partial(blacklist.daily_report, day=day))

    # -- results pages, metrics and the webhook outbox -------------------

    async def campaign_summaries(self) -> list[CampaignSummary]:
        return await self._read(results.campaign_summaries)

    async def gauges(self) -> StoreGauges:
        return await self._read(results.gauges)

    async def add_events(self, events: list[OutboxEvent]) -> None:
        if events:
            await self._write(partial(results.add_events, events=events))

    async def due_events(
        self, now: datetime, limit: int, lease: timedelta
    ) -> list[OutboxEvent]:
        return await self._write(
            partial(results.due_events, now=now, limit=limit, lease=lease)
        )

    async def event_posted(self, outbox_id: int) -> None:
        await self._write(partial(results.event_posted, outbox_id=outbox_id))

    async def event_failed(
        self, outbox_id: int, next_attempt_at: datetime, error: str
    ) -> None:
        await self._write(
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
            done = await self._write(step)
            if done == PurgeCounts(0, 0, 0, 0):
                break
            total = PurgeCounts(
                total.bodies + done.bodies,
                total.messages + done.messages,
                total.attempts + done.attempts,
                total.bounces + done.bounces,
            )
        log.info(
            "queue.purged",
            bodies=total.bodies,
            messages=total.messages,
            attempts=total.attempts,
            bounces=total.bounces,
        )
        return total

    async def secret(self, name: str) -> bytes:
        value = self._secrets.get(name)
        if value is None:
            value = await self._read(partial(sql.get_secret, name=name))
        if value is None:
            value = await self._write(partial(sql.create_secret, name=name))
        self._secrets[name] = value
        return value


def _read_in(conn: sqlite3.Connection, run: Callable[[sqlite3.Connection], T]) -> T:
    """Run ``run`` in one read transaction, so it sees one snapshot."""
    try:
        conn.execute("BEGIN")
        try:
            return run(conn)
        finally:
            conn.execute("COMMIT")
    except sqlite3.Error as exc:
        raise StorageError(f"database error: {exc}") from exc


def _answer(job: _Job, value: Any, error: BaseException | None) -> None:
    """Resolve a caller's future on the caller's event loop."""

    def settle() -> None:
        if job.future.done():  # the caller gave up waiting
            return
        if error is not None:
            job.future.set_exception(error)
        else:
            job.future.set_result(value)

    # RuntimeError: the caller's event loop has closed; nobody is waiting.
    with contextlib.suppress(RuntimeError):
        job.loop.call_soon_threadsafe(settle)
