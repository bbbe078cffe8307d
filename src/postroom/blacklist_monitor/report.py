"""The daily report: what was blocked and what is listed, as a mail with a
plain-text part, an HTML part and a CSV of the blocked messages, and as
one JSON-ready object.

Pure: built with the standard library's ``email`` package from values;
nothing here sends or logs.
"""

from __future__ import annotations

import csv
import html
import io
from dataclasses import dataclass
from datetime import UTC, date, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any

from postroom.blacklist_monitor.dnsbl import Listing, ListingState, ZoneHealth
from postroom.blacklist_monitor.evidence import BlockedMessage, BlockGroup

CSV_HEADER = (
    "Email address",
    "Campaign",
    "Timestamp",
    "MX",
    "SMTP code",
    "Class code",
    "Subject code",
    "Detail code",
    "Block",
    "Blocklist",
    "Message subject",
    "Reply text",
)


@dataclass(frozen=True, slots=True)
class DayScan:
    """Everything one scan found for one day."""

    day: date
    timezone: str
    blocked: tuple[BlockedMessage, ...]
    groups: tuple[BlockGroup, ...]
    listings: tuple[Listing, ...]
    zones: tuple[ZoneHealth, ...]

    @property
    def listed(self) -> tuple[Listing, ...]:
        return tuple(x for x in self.listings if x.state is ListingState.LISTED)

    @property
    def unknown(self) -> tuple[Listing, ...]:
        return tuple(x for x in self.listings if x.state is ListingState.UNKNOWN)

    @property
    def broken_zones(self) -> tuple[ZoneHealth, ...]:
        return tuple(zone for zone in self.zones if not zone.healthy)

    @property
    def quiet(self) -> bool:
        """Nothing blocked and nothing listed: an all-clear day."""
        return not self.blocked and not self.listed


def subject_line(scan: DayScan) -> str:
    """The report's Subject: the day and the totals."""
    head = f"postroom blacklist report {scan.day.isoformat()}"
    if scan.quiet and not scan.unknown:
        return f"{head}: all clear"
    parts = [f"{len(scan.blocked)} blocked", f"{len(scan.listed)} listed"]
    if scan.unknown:
        parts.append(f"{len(scan.unknown)} unknown")
    if scan.broken_zones:
        parts.append(f"{len(scan.broken_zones)} zone(s) broken")
    return f"{head}: " + ", ".join(parts)


def compose(
    scan: DayScan, *, sender: str, recipients: tuple[str, ...], now: datetime
) -> EmailMessage:
    """The report mail: text and HTML alternatives, and the CSV attached
    when anything was blocked."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Subject"] = subject_line(scan)
    message["Date"] = format_datetime(now.astimezone(UTC))
    message["Message-ID"] = make_msgid("blacklist", sender.rpartition("@")[2] or None)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834 section 5
    message.set_content(plain_text(scan))
    message.add_alternative(html_text(scan), subtype="html")
    if scan.blocked:
        message.add_attachment(
            csv_text(scan).encode(),
            maintype="text",
            subtype="csv",
            filename=f"blocked-{scan.day.isoformat()}.csv",
        )
    return message


def plain_text(scan: DayScan) -> str:
    """The report as plain text."""
    lines = [subject_line(scan), f"Day: {scan.day.isoformat()} ({scan.timezone})", ""]
    if scan.quiet and not scan.unknown:
        lines += ["Nothing was blocked and no sending IP or domain is listed.", ""]

    lines.append(f"Blocked deliveries: {len(scan.blocked)}")
    for group in scan.groups:
        codes = ", ".join(f"{code} x{n}" for code, n in group.codes)
        lines += [
            f"  {group.key}: {group.count} refusal(s), {group.recipients} "
            f"recipient(s); {codes}",
            f"    {_clock(group.first)} to {_clock(group.last)}; campaigns: "
            + ", ".join(group.campaigns),
        ]
        if group.blocklists:
            lines.append("    blocklists named: " + ", ".join(group.blocklists))
        lines.append(f"    sample: {group.sample}")
    lines.append("")

    lines.append("Blocklist lookups:")
    for listing in scan.listings:
        if listing.state is not ListingState.NOT_LISTED:
            lines.append(
                f"  {listing.state.value.upper()}: {listing.target} on {listing.zone}"
                f" {listing.code or ''} {listing.reason}".rstrip()
            )
    clean = sum(1 for x in scan.listings if x.state is ListingState.NOT_LISTED)
    lines.append(f"  not listed: {clean} lookup(s)")
    for zone in scan.broken_zones:
        lines.append(f"  BROKEN ZONE: {zone.zone}: {zone.reason}")
    return "\n".join(lines) + "\n"


def html_text(scan: DayScan) -> str:
    """The report as a small HTML page."""
    e = html.escape
    rows = "".join(
        f"<tr><td>{e(g.key)}</td><td>{g.count}</td><td>{g.recipients}</td>"
        f"<td>{e(', '.join(f'{c} x{n}' for c, n in g.codes))}</td>"
        f"<td>{e(', '.join(g.blocklists))}</td><td>{e(', '.join(g.campaigns))}</td>"
        f"<td>{_clock(g.first)} to {_clock(g.last)}</td><td>{e(g.sample)}</td></tr>"
        for g in scan.groups
    )
    listings = "".join(
        f"<tr><td>{e(x.target)}</td><td>{e(x.zone)}</td><td>{x.state.value}</td>"
        f"<td>{e(x.code or '')}</td><td>{e(x.reason)}</td></tr>"
        for x in scan.listings
        if x.state is not ListingState.NOT_LISTED
    )
    zones = "".join(
        f"<li>{e(z.zone)}: {'ok' if z.healthy else 'BROKEN: ' + e(z.reason)}</li>"
        for z in scan.zones
    )
    return (
        f"<html><body><h1>{e(subject_line(scan))}</h1>"
        f"<p>Day {scan.day.isoformat()} ({e(scan.timezone)})</p>"
        f"<h2>Blocked deliveries: {len(scan.blocked)}</h2>"
        "<table border=1><tr><th>Provider / MX</th><th>Refusals</th>"
        "<th>Recipients</th><th>Codes</th><th>Blocklists</th><th>Campaigns</th>"
        f"<th>Time</th><th>Sample reply</th></tr>{rows}</table>"
        "<h2>Listed or unknown</h2><table border=1><tr><th>Target</th>"
        "<th>Zone</th><th>State</th><th>Code</th><th>Reason</th></tr>"
        f"{listings}</table><h2>Zones</h2><ul>{zones}</ul></body></html>\n"
    )


def csv_text(scan: DayScan) -> str:
    """One CSV line per blocked delivery."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for blocked in scan.blocked:
        failure = blocked.failure
        status = failure.status
        if status is None and failure.code is not None:
            status = f"{failure.code // 100}.0.0"
        klass, subject, detail = status.split(".") if status else ("", "", "")
        writer.writerow(
            (
                failure.address,
                failure.campaign,
                _timestamp(failure.at),
                failure.mx_host or "",
                str(failure.code) if failure.code is not None else "",
                klass,
                subject,
                detail,
                blocked.block.kind.value,
                blocked.block.blocklist or "",
                blocked.subject,
                " ".join(failure.text.split()),
            )
        )
    return out.getvalue()


def as_json(scan: DayScan) -> dict[str, Any]:
    """The scan as one JSON-ready object."""
    return {
        "date": scan.day.isoformat(),
        "timezone": scan.timezone,
        "blocked": [
            {
                "recipient": b.failure.address,
                "campaign": b.failure.campaign,
                "time": _timestamp(b.failure.at),
                "mx": b.failure.mx_host,
                "reply_code": b.failure.code,
                "status": b.failure.status,
                "text": b.failure.text,
                "group": b.group,
                "provider": b.block.provider,
                "block": b.block.kind.value,
                "blocklist": b.block.blocklist,
                "provider_code": b.block.provider_code,
                "source": b.failure.source,
            }
            for b in scan.blocked
        ],
        "groups": [
            {
                "group": g.key,
                "provider": g.provider,
                "count": g.count,
                "recipients": g.recipients,
                "codes": dict(g.codes),
                "blocklists": list(g.blocklists),
                "campaigns": list(g.campaigns),
                "sample": g.sample,
                "first": _timestamp(g.first),
                "last": _timestamp(g.last),
            }
            for g in scan.groups
        ],
        "listings": [
            {
                "target": x.target,
                "zone": x.zone,
                "state": x.state.value,
                "code": x.code,
                "reason": x.reason,
            }
            for x in scan.listings
        ],
        "zones": [
            {"zone": z.zone, "healthy": z.healthy, "reason": z.reason}
            for z in scan.zones
        ],
    }


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _clock(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%H:%M:%SZ")
