"""Counters and histograms of what this process did, for ``/metrics``.

They live in one registry per process, as Prometheus client libraries
intend: a counter counts from the start of the process and a scraper
handles the reset on restart. What the store holds (recipients by state,
suppressions, the webhook outbox) is not counted here but read from the
store at scrape time (`postroom.web.metrics`), so every node reports the
same truth.
"""

from __future__ import annotations

import platform
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Histogram, Info

from postroom import __version__
from postroom.dsn.classify import classify
from postroom.dsn.status import EnhancedStatus
from postroom.queue.models import AttemptResult, Recipient, State

REGISTRY = CollectorRegistry(auto_describe=True)

_HOUR = 3600.0
_DAY = 24 * _HOUR
# From seconds to the 4.5 days a deferred recipient may wait.
_LATENCY_BUCKETS: tuple[float, ...] = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, _HOUR)
_LATENCY_BUCKETS += (4 * _HOUR, 12 * _HOUR, _DAY, 2 * _DAY, 4.5 * _DAY)

DELIVERIES = Counter(
    "postroom_deliveries",
    "Delivery attempts by result (delivered, deferred, bounced, expired, "
    "invalid) and failure category.",
    ["result", "category"],
    registry=REGISTRY,
)
DELIVERY_LATENCY = Histogram(
    "postroom_delivery_latency_seconds",
    "From acceptance to a final result, by result.",
    ["result"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
BOUNCE_RECORDS = Counter(
    "postroom_bounce_records",
    "Bounce records kept, by category and source (smtp, expiry, dsn).",
    ["category", "source"],
    registry=REGISTRY,
)
WEBHOOK_POSTS = Counter(
    "postroom_webhook_posts",
    "Webhook posts by result (ok, failed, dropped).",
    ["result"],
    registry=REGISTRY,
)
BUILD = Info("postroom_build", "The running build.", registry=REGISTRY)
BUILD.info({"version": __version__, "python": platform.python_version()})


def observe_attempt(recipient: Recipient, result: AttemptResult, now: datetime) -> None:
    """Count one recorded attempt, its bounce record and, once final, the
    time since acceptance."""
    DELIVERIES.labels(str(result.state), _category(result)).inc()
    if result.bounce is not None:
        observe_bounce(result.bounce.category, result.bounce.source)
    if result.state.is_final:
        seconds = max((now - recipient.accepted_at).total_seconds(), 0.0)
        DELIVERY_LATENCY.labels(str(result.state)).observe(seconds)


def observe_bounce(category: str, source: str) -> None:
    """Count one bounce record."""
    BOUNCE_RECORDS.labels(category, source).inc()


def _category(result: AttemptResult) -> str:
    if result.bounce is not None:
        return result.bounce.category
    if result.state is State.DELIVERED:
        return "none"
    attempt = result.attempt
    status = EnhancedStatus.parse(attempt.status or "")
    return str(classify(attempt.code, status, attempt.text).category)
