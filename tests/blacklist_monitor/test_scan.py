"""The daily scan end to end: deliveries on one day (moved by a manual
clock) to a receiving server on loopback that refuses some recipients
for the sender's sake and others for their own, DNS blocklists served
from loopback, and the report delivered by the relay itself."""

from __future__ import annotations

import asyncio
import csv
import email
import io
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest
import yaml

from postroom.app import Relay
from postroom.blacklist_monitor.scan import run_scan
from postroom.clock import ManualClock
from postroom.config import parse_config
from postroom.queue.models import BounceRecord
from postroom.queue.open import open_store
from tests.peers.dnsserver import DnsServer
from tests.peers.inprocess import loopback_settings, start_with_file, submit, until
from tests.peers.sink import Received, Sink

DAY = date(2026, 1, 5)
BLOCKED = [
    "listed@example.net",
    "listed+2@example.net",
    "msblock@example.com",
    "yahooblock@example.net",
    "gmailblock@example.com",
]
ORDINARY = ["ok@example.net", "nouser@example.net"]


def serve_blocklists(server: DnsServer) -> None:
    server.add("2.0.0.127.zen.spamhaus.org", "A", "127.0.0.2")
    server.add("test.dbl.spamhaus.org", "A", "127.0.1.2")
    server.add("99.2.0.192.zen.spamhaus.org", "A", "127.0.0.2")
    server.add("99.2.0.192.zen.spamhaus.org", "TXT", '"listed in the SBL"')


def settings(tmp_path: Path, sink_port: int, dns_port: int, **monitor: Any) -> dict:
    hop = f"127.0.0.1:{sink_port}"
    return loopback_settings(
        tmp_path,
        sink_port,
        delivery={
            "routes": {"example.net": hop, "example.com": hop, "reports.test": hop},
            "poll_interval": "50ms",
        },
        blacklist_monitor={
            "report_to": ["ops@reports.test"],
            "sending_ips": ["192.0.2.99", "192.0.2.1"],
            "sending_domains": ["example.org"],
            "ip_zones": ["zen.spamhaus.org"],
            "domain_zones": ["dbl.spamhaus.org"],
            "dns": {"nameservers": ["127.0.0.1"], "port": dns_port, "timeout": "1s"},
            "timezone": "Europe/Berlin",
            **monitor,
        },
    )


@pytest.fixture
async def relay(
    tmp_path: Path, sink: Sink, clock: ManualClock, dns_server: DnsServer
) -> AsyncIterator[tuple[Relay, Path]]:
    serve_blocklists(dns_server)
    running, config_file = await start_with_file(
        tmp_path, settings(tmp_path, await sink.listen(), dns_server.port), clock
    )
    yield running, config_file
    await running.stop()


def invitation() -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Survey Team <surveys@example.org>"
    message["To"] = ", ".join(BLOCKED + ORDINARY)
    message["Subject"] = "Your invitation"
    message["X-Campaign-ID"] = "spring-survey"
    message.set_content("Please take our survey.")
    return message


async def deliver_the_day(running: Relay) -> None:
    await asyncio.to_thread(submit, running.submission.port, invitation())

    async def all_tried() -> bool:
        rows = await running.store.recipients()
        return len(rows) == 7 and all(r.attempts == 1 for r in rows)

    await until(all_tried)


async def reports_arrived(running: Relay, sink: Sink, count: int) -> list[Received]:
    running.engine.wake()

    async def arrived() -> bool:
        return len(sink.to("ops@reports.test")) >= count

    await until(arrived)
    return sink.to("ops@reports.test")


async def recipient_id(running: Relay, local: str) -> int:
    rows = await running.store.recipients()
    [row] = [r for r in rows if r.address.startswith(local)]
    return row.id


def later_dsn(recipient_id: int) -> BounceRecord:
    """A DSN, returned after delivery, of a remote host refusing the sender."""
    return BounceRecord(
        recipient_id=recipient_id,
        address="ok@example.net",
        campaign="spring-survey",
        at=datetime(2026, 1, 5, 15, 0, tzinfo=UTC),
        action="failed",
        code=550,
        status="5.7.1",
        category="blocked",
        hard=False,
        diagnostic="550 5.7.1 Blocked - see https://www.spamcop.net/bl.shtml"
        "?192.0.2.99 (listed in bl.spamcop.net)",
        remote_mta="mx.example.net",
        source="dsn",
    )


def postroom(config_file: Path, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "postroom", "blacklist", "scan", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout


async def test_the_scan_lists_exactly_the_blocked_deliveries_grouped_with_codes(
    relay: tuple[Relay, Path], clock: ManualClock
) -> None:
    running, _ = relay
    await deliver_the_day(running)
    await running.store.add_bounce(later_dsn(await recipient_id(running, "ok@")))
    clock.set(datetime(2026, 1, 6, 6, 0, tzinfo=UTC))

    outcome = await run_scan(running.config, running.store, clock, dry_run=True)

    scan = outcome.scan
    assert scan.day == DAY  # yesterday in Europe/Berlin
    from_attempts = [b for b in scan.blocked if b.failure.source == "attempt"]
    [from_dsn] = [b for b in scan.blocked if b.failure.source == "dsn"]
    assert sorted(b.failure.address for b in from_attempts) == sorted(BLOCKED)
    assert from_dsn.failure.address == "ok@example.net"
    assert from_dsn.group == "example.net"
    assert from_dsn.block.blocklist == "bl.spamcop.net"
    groups = {g.key: g for g in scan.groups}
    assert set(groups) == {"example.net", "Microsoft", "Yahoo", "Gmail"}
    assert groups["example.net"].count == 3
    assert groups["example.net"].recipients == 3
    assert groups["example.net"].codes == (("554 5.7.1", 2), ("550 5.7.1", 1))
    assert groups["example.net"].blocklists == ("bl.spamcop.net", "zen.spamhaus.org")
    assert groups["example.net"].campaigns == ("spring-survey",)
    assert groups["Microsoft"].codes == (("550 5.7.1", 1),)
    assert groups["Yahoo"].codes == (("421 4.7.0", 1),)
    assert groups["Gmail"].codes == (("421 4.7.28", 1),)
    assert "S3150" in groups["Microsoft"].sample
    assert groups["Gmail"].first == groups["Gmail"].last
    states = {(x.target, x.zone): x.state.value for x in scan.listings}
    assert states == {
        ("192.0.2.99", "zen.spamhaus.org"): "listed",
        ("192.0.2.1", "zen.spamhaus.org"): "not_listed",
        ("example.org", "dbl.spamhaus.org"): "not_listed",
    }
    assert outcome.sent is False
    assert await running.store.daily_report(DAY.isoformat()) is None


async def test_the_report_is_delivered_by_the_relay_once_a_day_unless_forced(
    relay: tuple[Relay, Path], sink: Sink, clock: ManualClock
) -> None:
    running, _ = relay
    await deliver_the_day(running)

    first = await run_scan(running.config, running.store, clock, day=DAY)
    [report] = await reports_arrived(running, sink, 1)
    second = await run_scan(running.config, running.store, clock, day=DAY)
    forced = await run_scan(running.config, running.store, clock, day=DAY, force=True)
    await reports_arrived(running, sink, 2)

    assert (first.sent, second.sent, forced.sent) == (True, False, True)
    mail = email.message_from_bytes(report.data, policy=default_policy)
    assert isinstance(mail, EmailMessage)
    assert mail["Subject"] == (
        "postroom blacklist report 2026-01-05: 5 blocked, 1 listed"
    )
    assert mail["From"] == "postroom@relay.test"
    assert mail.get_content_type() == "multipart/mixed"
    plain = mail.get_body(("plain",))
    html = mail.get_body(("html",))
    assert plain is not None
    assert html is not None
    assert "zen.spamhaus.org" in plain.get_content()
    assert "<table" in html.get_content()
    [attachment] = list(mail.iter_attachments())
    assert attachment.get_filename() == "blocked-2026-01-05.csv"
    rows = list(csv.reader(io.StringIO(attachment.get_content())))
    assert rows[0][:8] == [
        "Email address", "Campaign", "Timestamp", "MX",
        "SMTP code", "Class code", "Subject code", "Detail code",
    ]  # fmt: skip
    assert sorted(row[0] for row in rows[1:]) == sorted(BLOCKED)
    listed = next(row for row in rows if row[0] == "listed@example.net")
    assert listed[4:8] == ["554", "5", "7", "1"]
    assert listed[9] == "zen.spamhaus.org"
    assert listed[10] == "Your invitation"
    assert "blocked using zen.spamhaus.org" in listed[11]
    recorded = await running.store.daily_report(DAY.isoformat())
    assert recorded is not None
    assert recorded.queue_id == forced.queue_id


@pytest.mark.parametrize("all_clear", [True, False])
async def test_a_quiet_day_sends_a_short_all_clear_unless_turned_off(
    tmp_path: Path, clock: ManualClock, dns_server: DnsServer, all_clear: bool
) -> None:
    serve_blocklists(dns_server)
    monitor = {"sending_ips": ["192.0.2.1"], "all_clear": all_clear}
    config = parse_config(
        yaml.safe_dump(settings(tmp_path, 25, dns_server.port, **monitor))
    )
    store = open_store(config)
    await store.open()
    try:
        outcome = await run_scan(config, store, clock, day=DAY)
        raw = await store.load_raw(outcome.queue_id) if outcome.queue_id else b""
        recorded = await store.daily_report(DAY.isoformat())
    finally:
        await store.close()

    assert outcome.scan.quiet
    assert outcome.sent is all_clear
    assert recorded is not None
    if all_clear:
        mail = email.message_from_bytes(raw, policy=default_policy)
        assert isinstance(mail, EmailMessage)
        assert mail["Subject"] == "postroom blacklist report 2026-01-05: all clear"
        assert list(mail.iter_attachments()) == []
    else:
        assert raw == b""
        assert recorded.queue_id is None


async def test_the_command_line_prints_json_and_sends_once_unless_forced(
    relay: tuple[Relay, Path],
) -> None:
    running, config_file = relay
    await deliver_the_day(running)
    args = ("--date", "2026-01-05", "--json", "--config", str(config_file))

    first = json.loads(await asyncio.to_thread(postroom, config_file, *args))
    second = json.loads(await asyncio.to_thread(postroom, config_file, *args))
    forced = json.loads(
        await asyncio.to_thread(postroom, config_file, *args, "--force")
    )
    dry = await asyncio.to_thread(
        postroom, config_file, "--date", "2026-01-05", "--dry-run",
        "--config", str(config_file),
    )  # fmt: skip

    assert (first["sent"], second["sent"], forced["sent"]) == (True, False, True)
    assert first["date"] == "2026-01-05"
    assert {b["recipient"] for b in first["blocked"]} == set(BLOCKED)
    assert set(first["blocked"][0]) >= {
        "recipient", "campaign", "time", "mx", "reply_code", "status", "text",
    }  # fmt: skip
    assert {"target", "zone", "state", "code", "reason"} <= set(first["listings"][0])
    assert {x["state"] for x in first["listings"]} == {"listed", "not_listed"}
    assert first["zones"] == [
        {"zone": "zen.spamhaus.org", "healthy": True, "reason": ""},
        {"zone": "dbl.spamhaus.org", "healthy": True, "reason": ""},
    ]
    assert "Subject: postroom blacklist report 2026-01-05: 5 blocked" in dry
    reports = await running.store.recipients(campaign="postroom-blacklist-report")
    assert len(reports) == 2
