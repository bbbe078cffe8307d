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
    # From seconds to the 4.5 days a deferred recipient may wait.
    buckets=(1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 12 * 3600, 86400, 2 * 86400,
             4.5 * 86400),  # fmt: skip
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
