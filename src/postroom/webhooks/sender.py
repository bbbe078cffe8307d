"""Posting the webhook outbox, in the background.

How this works: delivery workers and the report handlers only write outbox
rows (the store keeps them with the state change they announce). This
task takes due rows from the store, posts each to its endpoint with
aiohttp's client, drops the row on a 2xx answer and otherwise makes it due
again after an exponentially growing wait. Mail delivery never waits on
an endpoint; an endpoint that is down only lets rows pile up. Every wait
reads the injectable clock, so tests move time instead of sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

import aiohttp
import structlog

from postroom import metrics
from postroom.clock import Clock
from postroom.config import Config
from postroom.errors import StorageError
from postroom.queue.models import OutboxEvent
from postroom.queue.store import Store
from postroom.webhooks.events import EVENT_ID_HEADER, SIGNATURE_HEADER, sign

log = structlog.get_logger()

BATCH = 100
CONCURRENCY = 10
POST_TIMEOUT = timedelta(seconds=10)
# Longer than a post may take, so a row is not posted twice at once.
LEASE = timedelta(minutes=1)
FIRST_RETRY = timedelta(seconds=10)
LONGEST_WAIT = timedelta(hours=1)
# An endpoint gone this long gets no more of the events it missed.
GIVE_UP_AFTER = timedelta(days=3)


def backoff(failures: int) -> timedelta:
    """The wait after the ``failures``-th failed post: 10 s, doubling, at
    most an hour."""
    wait: timedelta = FIRST_RETRY * 2 ** min(max(failures - 1, 0), 20)
    return min(wait, LONGEST_WAIT)


class WebhookSender:
    """Posts outbox rows to the configured endpoints until stopped."""

    def __init__(self, config: Config, store: Store, clock: Clock) -> None:
        self._secrets = {hook.url: hook.secret for hook in config.webhooks}
        self._store = store
        self._clock = clock
        # The outbox is polled like the queue: a change written by another
        # process (or node) wakes nobody here.
        self._poll = config.delivery.poll_interval.total_seconds()
        self._limit = asyncio.Semaphore(CONCURRENCY)
        self._woken = asyncio.Event()
        self._stopping = False
        self._session: aiohttp.ClientSession | None = None

    async def run_once(self) -> int:
        """Post every event due now (up to one batch); how many were taken."""
        events = await self._store.due_events(self._clock.now(), BATCH, LEASE)
        if events:
            await asyncio.gather(*(self._guarded(event) for event in events))
        return len(events)

    async def run(self) -> None:
        """Post until `stop` is called or the task is cancelled."""
        try:
            while not self._stopping:
                self._woken.clear()
                try:
                    taken = await self.run_once()
                except StorageError as exc:
                    log.warning("webhook.store_unavailable", error=str(exc))
                    taken = 0
                if taken >= BATCH:
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._woken.wait(), self._poll)
        finally:
            await self.close()

    def wake(self) -> None:
        """Look at the outbox now rather than at the next poll."""
        self._woken.set()

    async def stop(self) -> None:
        """End `run` after its current round."""
        self._stopping = True
        self._woken.set()

    async def close(self) -> None:
        """Close the connections to the endpoints."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _guarded(self, event: OutboxEvent) -> None:
        try:
            async with self._limit:
                await self._post(event)
        except Exception:
            log.exception("webhook.failed", event_id=event.event_id)

    async def _post(self, event: OutboxEvent) -> None:
        assert event.id is not None  # rows from the store have ids
        secret = self._secrets.get(event.endpoint)
        if secret is None:
            # The endpoint left the configuration; nobody is waiting.
            await self._store.event_posted(event.id)
            metrics.WEBHOOK_POSTS.labels("dropped").inc()
            log.warning(
                "webhook.dropped", endpoint=event.endpoint, reason="unconfigured"
            )
            return

        error = await self._send(event, secret)
        if error is None:
            await self._store.event_posted(event.id)
            metrics.WEBHOOK_POSTS.labels("ok").inc()
            log.debug("webhook.posted", endpoint=event.endpoint, id=event.event_id)
            return

        now = self._clock.now()
        failures = event.attempts + 1
        metrics.WEBHOOK_POSTS.labels("failed").inc()
        if now - event.created_at >= GIVE_UP_AFTER:
            await self._store.event_posted(event.id)
            metrics.WEBHOOK_POSTS.labels("dropped").inc()
            log.warning(
                "webhook.dropped",
                endpoint=event.endpoint,
                id=event.event_id,
                attempts=failures,
                error=error,
            )
            return
        retry_at = now + backoff(failures)
        await self._store.event_failed(event.id, retry_at, error)
        log.info(
            "webhook.deferred",
            endpoint=event.endpoint,
            id=event.event_id,
            attempts=failures,
            next_attempt_at=retry_at.isoformat(),
            error=error,
        )

    async def _send(self, event: OutboxEvent, secret: str) -> str | None:
        """Post once; None on a 2xx answer, else what went wrong."""
        body = event.body.encode("utf-8")
        timestamp = int(self._clock.now().timestamp())
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(secret, timestamp, body),
            EVENT_ID_HEADER: event.event_id,
        }
        try:
            async with self._client().post(
                event.endpoint, data=body, headers=headers, allow_redirects=False
            ) as response:
                await response.read()
                if 200 <= response.status < 300:
                    return None
                return f"HTTP {response.status}"
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return f"{type(exc).__name__}: {exc}"

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            timeout = aiohttp.ClientTimeout(total=POST_TIMEOUT.total_seconds())
            self._session = aiohttp.ClientSession(timeout=timeout)
        return self._session
