"""The delivery engine: lease due recipients, deliver them, record results.

How this works: each round leases what is due from the store, groups it
by destination domain and delivers concurrently, within an overall limit
and a limit per domain. Every attempt ends in exactly one `AttemptResult`
written back to the store: delivered, deferred until the retry policy's
next time, expired once the policy gives up, bounced on a 5xx, or invalid
when the domain cannot receive mail at all. Between rounds the engine
sleeps until woken (a new message was accepted), until the next recipient
is due, or for the poll interval, whichever comes first.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

import structlog

from postroom import metrics
from postroom.clock import Clock
from postroom.config import Config
from postroom.dsn.classify import Category, classify
from postroom.dsn.status import EnhancedStatus
from postroom.errors import NoSuchDomain, NotFound, RouteError, StorageError
from postroom.queue.models import (
    Attempt,
    AttemptResult,
    BounceRecord,
    Delivery,
    Outcome,
    State,
)
from postroom.queue.retry import RetryPolicy
from postroom.queue.store import Store
from postroom.queue.suppression import SuppressionPolicy, apply_policy
from postroom.relay.mx import MxResolver
from postroom.relay.outbound import Courier, SmtpResult
from postroom.relay.stamp import Stamper
from postroom.webhooks.events import EventOutbox

log = structlog.get_logger()

STOP_GRACE_SECONDS = 5.0
# Longest pause between tries while the store is unavailable, in seconds.
STORE_BACKOFF_MAX = 30.0

_EVENTS = {
    State.DELIVERED: "delivery.delivered",
    State.DEFERRED: "delivery.deferred",
    State.BOUNCED: "delivery.bounced",
    State.EXPIRED: "delivery.expired",
    State.INVALID: "delivery.invalid",
}


@dataclass
class _Body:
    """A message body shared by its recipients while they are in flight."""

    load: asyncio.Task[bytes]
    users: int


class DeliveryEngine:
    """Delivers due recipients and records every attempt in the store."""

    def __init__(
        self,
        config: Config,
        store: Store,
        clock: Clock,
        resolver: MxResolver | None = None,
        stamper: Stamper | None = None,
    ) -> None:
        delivery = config.delivery
        self._store = store
        self._clock = clock
        self._resolver = resolver or MxResolver(delivery, clock)
        self._courier = Courier(config, self._resolver)
        self._stamper = stamper or Stamper()
        self._policy = RetryPolicy(config.queue.retry_schedule, config.queue.max_age)
        self._suppression = SuppressionPolicy(config.suppression)
        self._events = EventOutbox(config.webhooks, clock)
        self._batch = delivery.concurrency
        self._lease = delivery.lease
        self._poll = delivery.poll_interval.total_seconds()
        self._overall = asyncio.Semaphore(delivery.concurrency)
        self._per_domain = delivery.per_domain_concurrency
        self._bodies: dict[str, _Body] = {}
        self._in_flight: set[asyncio.Task[None]] = set()
        self._woken = asyncio.Event()
        self._stopping = False

    # -- the loop ---------------------------------------------------------

    async def run_once(self) -> int:
        """Attempt every recipient due now (up to one batch); wait for all.

        Returns how many attempts were made.
        """
        deliveries = await self._store.lease_due(
            self._clock.now(), self._batch, self._lease
        )
        if not deliveries:
            return 0

        by_domain: dict[str, list[Delivery]] = defaultdict(list)
        for delivery in deliveries:
            by_domain[delivery.recipient.domain].append(delivery)
            self._hold_body(delivery.recipient.queue_id)

        tasks = []
        for domain, group in by_domain.items():
            limit = asyncio.Semaphore(self._per_domain)
            for delivery in group:
                task = asyncio.create_task(self._guarded(delivery, limit))
                self._in_flight.add(task)
                task.add_done_callback(self._in_flight.discard)
                tasks.append(task)
            log.debug("delivery.domain", domain=domain, recipients=len(group))
        await asyncio.gather(*tasks, return_exceptions=True)
        return len(deliveries)

    async def run(self) -> None:
        """Deliver until `stop` is called.

        While the store cannot be read or written, delivery pauses and tries
        again after a wait that doubles up to `STORE_BACKOFF_MAX` seconds, so
        a full disk or a lost database does not turn into a busy loop.
        """
        failures = 0
        while not self._stopping:
            self._woken.clear()
            try:
                made = await self.run_once()
            except StorageError as exc:
                failures += 1
                pause = min(STORE_BACKOFF_MAX, 2 ** (failures - 1))
                log.warning(
                    "delivery.store_unavailable",
                    error=str(exc),
                    failures=failures,
                    retry_in=pause,
                )
                await self._wait(pause)
                continue
            if failures:
                log.info("delivery.store_available", failures=failures)
                failures = 0
            if self._stopping:
                break
            if made >= self._batch:
                continue  # more may be due already
            await self._sleep()

    def wake(self) -> None:
        """Start the next round now: a message was accepted."""
        self._woken.set()

    async def stop(self) -> None:
        """Stop after in-flight attempts finish, or abandon them after a
        few seconds (their leases run out and they are retried), then close
        idle connections."""
        self._stopping = True
        self._woken.set()
        if self._in_flight:
            _, late = await asyncio.wait(
                set(self._in_flight), timeout=STOP_GRACE_SECONDS
            )
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late, timeout=1)
        await self._courier.close()

    async def _sleep(self) -> None:
        timeout = self._poll
        with contextlib.suppress(StorageError):
            due = await self._store.next_due_at()
            if due is not None:
                until_due = (due - self._clock.now()).total_seconds()
                timeout = max(0.0, min(timeout, until_due))
        await self._wait(timeout)

    async def _wait(self, seconds: float) -> None:
        """Sleep up to ``seconds``, or until `wake` or `stop` is called."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._woken.wait(), seconds)

    # -- one attempt ------------------------------------------------------

    async def _guarded(
        self, delivery: Delivery, domain_limit: asyncio.Semaphore
    ) -> None:
        queue_id = delivery.recipient.queue_id
        try:
            async with domain_limit, self._overall:
                await self._attempt(delivery)
        except Exception:
            log.exception(
                "delivery.failed",
                queue_id=queue_id,
                recipient=delivery.recipient.address,
            )
        finally:
            self._drop_body(queue_id)

    async def _attempt(self, delivery: Delivery) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        recipient = delivery.recipient

        try:
            raw = await self._body(recipient.queue_id)
            hops = await self._resolver.resolve(recipient.domain)
        except NotFound:
            outcome = SmtpResult(
                Outcome.DEFERRED, None, None, None, "the message body is gone"
            )
        except RouteError as exc:
            if exc.permanent:
                result = self._invalid(delivery, exc)
                await self._record(delivery, result)
                self._log(delivery, result, loop.time() - started)
                await self._suppress(result)
                return
            outcome = SmtpResult(Outcome.DEFERRED, None, None, None, exc.reason)
        else:
            stamped = self._stamper.stamp(delivery, raw)
            outcome = await self._courier.deliver(
                hops, stamped.mail_from, recipient.address, stamped.raw
            )

        result = self._result(delivery, outcome)
        await self._record(delivery, result)
        self._log(delivery, result, loop.time() - started)
        await self._suppress(result)

    async def _record(self, delivery: Delivery, result: AttemptResult) -> None:
        """Store the attempt with its webhook events in one transaction,
        then count it."""
        result = self._events.attach(delivery.recipient, result)
        await self._store.record(result)
        metrics.observe_attempt(delivery.recipient, result, self._clock.now())

    async def _suppress(self, result: AttemptResult) -> None:
        """Put the address on its suppression list when the policy says so."""
        bounce = result.bounce
        if bounce is None:
            return
        scope = await apply_policy(
            self._store, self._suppression, bounce, self._clock.now()
        )
        if scope is not None:
            log.info(
                "suppression.added",
                address=bounce.address,
                scope=scope,
                reason=bounce.category,
                source=bounce.source,
            )

    def _result(self, delivery: Delivery, outcome: SmtpResult) -> AttemptResult:
        recipient = delivery.recipient
        now = self._clock.now()
        attempt = Attempt(
            recipient.id,
            now,
            outcome.outcome,
            outcome.mx_host,
            outcome.code,
            outcome.status,
            outcome.text,
        )
        if outcome.outcome is Outcome.DELIVERED:
            return AttemptResult(attempt, State.DELIVERED)
        if outcome.outcome is Outcome.BOUNCED:
            return AttemptResult(
                attempt, State.BOUNCED, bounce=self._bounce(delivery, outcome, now)
            )

        retry_at = self._policy.next_attempt(
            recipient.attempts + 1, recipient.accepted_at, now
        )
        if retry_at is not None:
            return AttemptResult(attempt, State.DEFERRED, next_attempt_at=retry_at)
        expired = BounceRecord(
            recipient_id=recipient.id,
            address=recipient.address,
            campaign=recipient.campaign,
            at=now,
            action="failed",
            code=outcome.code,
            status=outcome.status,
            category=Category.EXPIRED,
            hard=False,
            diagnostic=outcome.text,
            remote_mta=outcome.mx_host,
            source="expiry",
        )
        return AttemptResult(attempt, State.EXPIRED, bounce=expired)

    def _bounce(
        self, delivery: Delivery, outcome: SmtpResult, now: datetime
    ) -> BounceRecord:
        status = EnhancedStatus.parse(outcome.status or "")
        verdict = classify(outcome.code, status, outcome.text)
        return BounceRecord(
            recipient_id=delivery.recipient.id,
            address=delivery.recipient.address,
            campaign=delivery.recipient.campaign,
            at=now,
            action="failed",
            code=outcome.code,
            status=outcome.status,
            category=verdict.category,
            hard=verdict.hard,
            diagnostic=outcome.text,
            remote_mta=outcome.mx_host,
            source="smtp",
        )

    def _invalid(self, delivery: Delivery, error: RouteError) -> AttemptResult:
        recipient = delivery.recipient
        now = self._clock.now()
        status = error.status or NoSuchDomain.status
        text = str(error)
        attempt = Attempt(recipient.id, now, Outcome.INVALID, None, None, status, text)
        bounce = BounceRecord(
            recipient_id=recipient.id,
            address=recipient.address,
            campaign=recipient.campaign,
            at=now,
            action="failed",
            code=None,
            status=status,
            category=Category.UNKNOWN_DOMAIN,
            hard=True,
            diagnostic=text,
            source="smtp",
        )
        return AttemptResult(attempt, State.INVALID, bounce=bounce)

    def _log(self, delivery: Delivery, result: AttemptResult, duration: float) -> None:
        recipient = delivery.recipient
        attempt = result.attempt
        log.info(
            _EVENTS[result.state],
            queue_id=recipient.queue_id,
            recipient=recipient.address,
            campaign=recipient.campaign,
            mx=attempt.mx_host,
            code=attempt.code,
            status=attempt.status,
            attempt=recipient.attempts + 1,
            duration=round(duration, 3),
            next_attempt_at=(
                result.next_attempt_at.isoformat() if result.next_attempt_at else None
            ),
            reply=attempt.text if result.state is not State.DELIVERED else None,
        )

    # -- bodies, loaded once per message in flight -------------------------

    def _hold_body(self, queue_id: str) -> None:
        body = self._bodies.get(queue_id)
        if body is None:
            load = asyncio.get_running_loop().create_task(
                self._store.load_raw(queue_id)
            )
            # A load nobody awaits (every holder cancelled) must not warn.
            load.add_done_callback(_consume_error)
            self._bodies[queue_id] = _Body(load, 1)
        else:
            body.users += 1

    async def _body(self, queue_id: str) -> bytes:
        return await asyncio.shield(self._bodies[queue_id].load)

    def _drop_body(self, queue_id: str) -> None:
        body = self._bodies.get(queue_id)
        if body is None:
            return
        body.users -= 1
        if body.users <= 0:
            del self._bodies[queue_id]
            body.load.cancel()


def _consume_error(task: asyncio.Task[bytes]) -> None:
    if not task.cancelled():
        task.exception()
