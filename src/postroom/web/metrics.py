"""``/metrics`` in the Prometheus text format.

Two sources are joined in one answer: the process's counters and
histograms (`postroom.metrics`), and gauges read from the store at scrape
time: recipients by state, suppression-list entries by reason, the webhook
outbox's length, and the DNSBL listings of the last blacklist scan.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import timedelta
from zoneinfo import ZoneInfo

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from postroom import metrics
from postroom.clock import Clock
from postroom.config import Config
from postroom.queue.models import DailyReport, State
from postroom.queue.store import Store
from postroom.web.auth import BasicAuth

# The blacklist report's one-line summary: "... 2 blocked, 1 listed" or
# "...: all clear".
_LISTED = re.compile(r"(\d+) listed")


class _Snapshot(Collector):
    """Hands out families read beforehand: collect() cannot await."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return self._families


class MetricsPage:
    """Answers ``GET /metrics``, behind `BasicAuth`."""

    def __init__(
        self, config: Config, store: Store, clock: Clock, auth: BasicAuth
    ) -> None:
        self._store = store
        self._clock = clock
        self._zone = ZoneInfo(config.blacklist_monitor.timezone)
        self._auth = auth

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/metrics", self._auth.guard(self.scrape))]

    async def scrape(self, request: web.Request) -> web.Response:
        """The process's metrics and the store's gauges, read now."""
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Snapshot(await self.store_families()))
        text = generate_latest(metrics.REGISTRY) + generate_latest(registry)
        return web.Response(body=text, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def store_families(self) -> list[Metric]:
        """The gauges read from the store."""
        gauges = await self._store.gauges()
        recipients = GaugeMetricFamily(
            "postroom_recipients",
            "Recipients in the store by state (queued and deferred are the queue).",
            labels=["state"],
        )
        for state in State:
            recipients.add_metric(
                [str(state)], gauges.recipients_by_state.get(str(state), 0)
            )
        suppressions = GaugeMetricFamily(
            "postroom_suppressions",
            "Entries on the suppression lists, by reason.",
            labels=["reason"],
        )
        for reason, count in sorted(gauges.suppressions_by_reason.items()):
            suppressions.add_metric([reason], count)
        outbox = GaugeMetricFamily(
            "postroom_webhook_outbox",
            "Webhook events waiting to be posted.",
            value=gauges.webhook_outbox,
        )
        return [recipients, suppressions, outbox, *await self._dnsbl()]

    async def _dnsbl(self) -> list[Metric]:
        report = await self._last_report()
        if report is None or report.sent_at is None:
            return []
        found = _LISTED.search(report.summary)
        listed = GaugeMetricFamily(
            "postroom_dnsbl_listings",
            "DNSBL listings of the sending addresses and domains in the last "
            "daily blacklist scan.",
            value=int(found[1]) if found else 0,
        )
        sent = GaugeMetricFamily(
            "postroom_dnsbl_scan_timestamp_seconds",
            "When the last daily blacklist report was sent.",
            value=report.sent_at.timestamp(),
        )
        return [listed, sent]

    async def _last_report(self) -> DailyReport | None:
        """Today's report, else yesterday's, in the scan's time zone."""
        today = self._clock.now().astimezone(self._zone).date()
        for day in (today, today - timedelta(days=1)):
            report = await self._store.daily_report(day.isoformat())
            if report is not None and report.sent_at is not None:
                return report
        return None
