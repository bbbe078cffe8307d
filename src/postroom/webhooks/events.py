"""The events posted to webhook endpoints, and their signature.

An event is one JSON object::

    {"id": "...", "type": "bounced", "time": "2026-01-05T09:00:00Z",
     "recipient": "nora@example.net", "campaign": "spring", "queue_id": "...",
     "code": 550, "status": "5.1.1", "text": "...", ...}

``id`` is unique per event and the same in every retry, so a receiver can
drop duplicates: delivery is at least once. Each post carries

    X-Postroom-Signature: t=<unix seconds>,v1=<hex>

where ``<hex>`` is HMAC-SHA256, keyed with the endpoint's secret, of the
ASCII timestamp, a full stop and the raw body. The timestamp is the time
of the post, so a receiver can refuse old replays. Nothing here does I/O.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from postroom.clock import Clock
from postroom.config.schema import WebhookConfig, WebhookEvent
from postroom.queue.models import AttemptResult, OutboxEvent, Recipient, State

SIGNATURE_HEADER = "X-Postroom-Signature"
EVENT_ID_HEADER = "X-Postroom-Event-Id"

# What each final or waiting state is announced as; invalid and expired
# recipients are bounces to whoever reads the events.
_STATE_EVENTS: dict[State, WebhookEvent] = {
    State.DELIVERED: "delivered",
    State.DEFERRED: "deferred",
    State.BOUNCED: "bounced",
    State.EXPIRED: "bounced",
    State.INVALID: "bounced",
}


class EventOutbox:
    """Builds the outbox rows for an event: one per endpoint that asked
    for its type, none when no endpoint did."""

    def __init__(self, hooks: Sequence[WebhookConfig], clock: Clock) -> None:
        self._hooks = tuple(hooks)
        self._clock = clock

    @property
    def enabled(self) -> bool:
        return bool(self._hooks)

    def events(
        self, kind: WebhookEvent, recipient: Recipient, **details: Any
    ) -> list[OutboxEvent]:
        """The rows announcing ``kind`` for ``recipient``; ``details`` join
        the body (codes, reply text) when they are not None."""
        endpoints = [hook.url for hook in self._hooks if kind in hook.events]
        if not endpoints:
            return []
        now = self._clock.now()
        event_id = uuid.uuid4().hex
        payload = {
            "id": event_id,
            "type": kind,
            "time": _iso(now),
            "recipient": recipient.address,
            "campaign": recipient.campaign,
            "queue_id": recipient.queue_id,
            **{key: value for key, value in details.items() if value is not None},
        }
        body = json.dumps(payload, separators=(",", ":"), sort_keys=True)
        return [OutboxEvent(url, event_id, body, now) for url in endpoints]

    def attach(self, recipient: Recipient, result: AttemptResult) -> AttemptResult:
        """``result`` with the events its new state announces, so that the
        store writes them with the state change."""
        kind = _STATE_EVENTS.get(result.state)
        if kind is None or not self._hooks:
            return result
        attempt = result.attempt
        bounce = result.bounce
        events = self.events(
            kind,
            recipient,
            state=str(result.state),
            attempt=recipient.attempts + 1,
            mx_host=attempt.mx_host,
            code=attempt.code,
            status=attempt.status,
            text=attempt.text,
            category=bounce.category if bounce else None,
            next_attempt_at=_iso(result.next_attempt_at)
            if result.next_attempt_at
            else None,
        )
        return replace(result, events=(*result.events, *events))


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The value of `SIGNATURE_HEADER` for ``body`` posted at ``timestamp``."""
    digest = hmac.new(
        secret.encode("utf-8"),
        str(timestamp).encode("ascii") + b"." + body,
        hashlib.sha256,
    ).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: str, header: str, body: bytes) -> int | None:
    """The timestamp of a valid signature ``header`` over ``body``, else None.

    What a receiver does; checking that the timestamp is recent is left to
    the caller.
    """
    fields = dict(part.partition("=")[::2] for part in header.split(","))
    timestamp, given = fields.get("t", ""), fields.get("v1", "")
    if not timestamp.isdigit() or not given:
        return None
    expected = sign(secret, int(timestamp), body).rpartition("v1=")[2]
    return int(timestamp) if hmac.compare_digest(expected, given) else None


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
