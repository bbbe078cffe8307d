"""The daily scan: read a day's refusals from the store, ask the
blocklists about the sending IPs and domains, and enqueue the report.

How this works: the day runs from midnight to midnight in the configured
time zone (so a day may be 23 or 25 hours long). The report goes out
through postroom's own queue (`Store.accept`): the running relay delivers
it like any other message. Each day's report is sent once: a runner
claims the day in the store, enqueues, and records the day as sent; a
second runner, or a second run, finds the day claimed or sent and sends
nothing, unless forced.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import uuid
import zoneinfo
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.policy import SMTP
from email.policy import default as default_policy

import structlog

from postroom.blacklist_monitor import report
from postroom.blacklist_monitor.dnsbl import BlocklistChecker
from postroom.blacklist_monitor.evidence import (
    BlockedMessage,
    blocked_message,
    group_blocks,
)
from postroom.clock import Clock
from postroom.config import Config
from postroom.errors import NotFound
from postroom.queue.models import Failure, NewMessage, NewRecipient
from postroom.queue.store import Store

log = structlog.get_logger()

REPORT_CAMPAIGN = "postroom-blacklist-report"
# Longer than a scan takes (lookups are bounded by the DNS timeout), so a
# runner that died mid-scan blocks the next one for this long at most.
CLAIM_HOLD = timedelta(minutes=30)


@dataclass(frozen=True, slots=True)
class ScanOutcome:
    """A finished scan: what it found, the mail, and whether it was sent.

    ``note`` says why no report was enqueued, when none was.
    """

    scan: report.DayScan
    message: EmailMessage | None
    sent: bool
    queue_id: str | None = None
    note: str = ""


def report_day(now: datetime, timezone: str) -> date:
    """Yesterday, in ``timezone``."""
    return (now.astimezone(zoneinfo.ZoneInfo(timezone)) - timedelta(days=1)).date()


def day_window(day: date, timezone: str) -> tuple[datetime, datetime]:
    """[since, until) of ``day`` in ``timezone``, in UTC."""
    zone = zoneinfo.ZoneInfo(timezone)
    since = datetime.combine(day, time(), tzinfo=zone)
    until = datetime.combine(day + timedelta(days=1), time(), tzinfo=zone)
    # In UTC, so that the length of a day with a DST change comes out right
    # in arithmetic too (aware datetimes of one zone subtract as wall time).
    return since.astimezone(UTC), until.astimezone(UTC)


def sending_ips(config: Config) -> list[str]:
    """The configured sending IPs and the address delivery binds to."""
    ips = list(config.blacklist_monitor.sending_ips)
    if config.delivery.source_ip:
        ips.append(config.delivery.source_ip)
    unique = {str(ipaddress.ip_address(ip)): None for ip in ips}
    return list(unique)


async def run_scan(
    config: Config,
    store: Store,
    clock: Clock,
    *,
    day: date | None = None,
    dry_run: bool = False,
    force: bool = False,
    checker: BlocklistChecker | None = None,
) -> ScanOutcome:
    """Scan ``day`` (default: yesterday) and, unless ``dry_run``, enqueue
    its report to ``blacklist_monitor.report_to``, once per day unless
    ``force``."""
    settings = config.blacklist_monitor
    day = day or report_day(clock.now(), settings.timezone)
    since, until = day_window(day, settings.timezone)

    blocked = await _blocked(store, since, until)
    checker = checker or BlocklistChecker(settings.dns)
    listings, zones = await checker.check(
        sending_ips(config),
        [d.lower() for d in settings.sending_domains],
        settings.ip_zones,
        settings.domain_zones,
    )
    scan = report.DayScan(
        day=day,
        timezone=settings.timezone,
        blocked=tuple(blocked),
        groups=tuple(group_blocks(blocked)),
        listings=tuple(listings),
        zones=tuple(zones),
    )
    for zone in scan.broken_zones:
        log.warning("blacklist.zone_broken", zone=zone.zone, reason=zone.reason)
    log.info(
        "blacklist.scanned",
        day=day.isoformat(),
        blocked=len(scan.blocked),
        listed=len(scan.listed),
        unknown=len(scan.unknown),
        broken_zones=len(scan.broken_zones),
    )

    sender = settings.report_from or f"postroom@{config.hostname}"
    message = None
    if settings.report_to:
        message = report.compose(
            scan, sender=sender, recipients=settings.report_to, now=clock.now()
        )
    if dry_run:
        return ScanOutcome(scan, message, sent=False, note="dry run")
    if message is None:
        return ScanOutcome(scan, None, sent=False, note="no report_to configured")
    return await _send_once(
        store, clock, scan, message, settings.report_to, settings.all_clear, force
    )


async def _blocked(
    store: Store, since: datetime, until: datetime
) -> list[BlockedMessage]:
    found: list[BlockedMessage] = []
    subjects: dict[str, str] = {}
    for failure in await store.failures(since, until):
        blocked = blocked_message(failure)
        if blocked is None:
            continue
        subject = await _subject(store, failure, subjects)
        found.append(
            BlockedMessage(blocked.failure, blocked.block, blocked.group, subject)
        )
    return found


async def _subject(store: Store, failure: Failure, cache: dict[str, str]) -> str:
    if failure.queue_id is None:
        return ""
    if failure.queue_id not in cache:
        try:
            raw = await store.load_raw(failure.queue_id)
        except NotFound:
            raw = b""  # the body was purged; the subject went with it
        headers = BytesHeaderParser(policy=default_policy).parsebytes(raw)
        cache[failure.queue_id] = " ".join(str(headers.get("Subject", "")).split())
    return cache[failure.queue_id]


async def _send_once(
    store: Store,
    clock: Clock,
    scan: report.DayScan,
    message: EmailMessage,
    recipients: tuple[str, ...],
    all_clear: bool,
    force: bool,
) -> ScanOutcome:
    day = scan.day.isoformat()
    holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    if not await store.claim_report(day, holder, clock.now(), CLAIM_HOLD, force=force):
        log.info("blacklist.report_skipped", day=day, reason="already sent or claimed")
        return ScanOutcome(scan, message, sent=False, note="already sent or claimed")

    summary = report.subject_line(scan)
    if scan.quiet and not scan.unknown and not all_clear:
        await store.finish_report(
            day, holder, clock.now(), sent=True, queue_id=None, summary=summary
        )
        return ScanOutcome(scan, message, sent=False, note="all clear, not mailed")

    try:
        accepted = await store.accept(
            NewMessage(
                mail_from=str(message["From"]),
                recipients=tuple(NewRecipient(to) for to in recipients),
                raw=message.as_bytes(policy=SMTP),
                campaign=REPORT_CAMPAIGN,
                submitted_by=None,
                client_address="127.0.0.1",
                message_id=str(message["Message-ID"]),
            ),
            clock.now(),
        )
    except BaseException:
        await store.finish_report(
            day, holder, clock.now(), sent=False, queue_id=None, summary=""
        )
        raise
    await store.finish_report(
        day, holder, clock.now(), sent=True, queue_id=accepted.queue_id, summary=summary
    )
    log.info("blacklist.report_enqueued", day=day, queue_id=accepted.queue_id)
    return ScanOutcome(scan, message, sent=True, queue_id=accepted.queue_id)
