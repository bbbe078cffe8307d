"""The results pages: campaigns, their delivery and subscription charts,
and the bounce and deferral CSV downloads.

``/campaigns`` lists every campaign with its first and last send and its
totals. ``/campaigns/NAME`` shows two pie charts drawn here as SVG, each
with its numbers in a table beside it:

- delivery: each recipient in exactly one slice by state (Sent OK,
  Bounced (expired included), Invalid, Deferred, Suppressed, and Queued
  while it has not been tried);
- subscription: the campaign's recipients split into still subscribed,
  unsubscribed by link or mail, and unsubscribed by complaint (from the
  campaign's suppression list; an address holds one entry there, so
  nobody is in two slices).

``/campaigns/NAME/bounces.csv`` and ``deferrals.csv`` are byte for byte
what ``postroom export bounces|deferrals --campaign NAME`` writes.

Every figure comes from counters the store keeps up to date, so a page
costs the same for ten recipients as for millions.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from html import escape
from urllib.parse import quote

from aiohttp import web

from postroom.cli import EXPORT_HEADER, export_fields
from postroom.queue.models import CampaignSummary, ExportRow, Stats
from postroom.queue.store import Store
from postroom.web.auth import BasicAuth
from postroom.web.charts import Slice, percent, pie_svg

# Okabe-Ito colours: told apart with the common colour-vision deficiencies.
_GREEN, _VERMILION, _PURPLE = "#009E73", "#D55E00", "#CC79A7"
_ORANGE, _SKY, _GREY, _BLUE = "#E69F00", "#56B4E9", "#999999", "#0072B2"

_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
}

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body{{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em}}
table{{border-collapse:collapse}} td,th{{padding:.3em .8em;text-align:right}}
td:first-child,th:first-child{{text-align:left}}
thead th{{border-bottom:1px solid #999}}
.chart{{display:flex;gap:2em;align-items:center;margin:1.5em 0;flex-wrap:wrap}}
.key{{display:inline-block;width:.9em;height:.9em;margin-right:.4em}}
</style></head>
<body>{body}</body></html>
"""


def delivery_slices(stats: Stats) -> list[Slice]:
    """Every recipient of ``stats`` in one slice by its state."""
    return [
        Slice("Sent OK", stats.sent_ok, _GREEN),
        Slice("Bounced", stats.bounced, _VERMILION),
        Slice("Invalid", stats.invalid, _PURPLE),
        Slice("Deferred", stats.deferred, _ORANGE),
        Slice("Suppressed", stats.suppressed, _SKY),
        Slice("Queued", stats.queued, _GREY),
    ]


def subscription_slices(stats: Stats) -> list[Slice]:
    """The recipients split by whether they opted out, and how."""
    total = sum(stats.by_state.values())
    by_link = max(stats.unsubscribed - stats.complaints, 0)
    # An address on the list may have been mailed more than once, or
    # imported: the opt-outs never make the first slice negative.
    subscribed = max(total - by_link - stats.complaints, 0)
    return [
        Slice("Still subscribed", subscribed, _BLUE),
        Slice("Unsubscribed by link or mail", by_link, _ORANGE),
        Slice("Unsubscribed by complaint", stats.complaints, _VERMILION),
    ]


def csv_bytes(rows: list[ExportRow]) -> bytes:
    """The export file, as ``postroom export`` writes it."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\r\n")
    writer.writerow(EXPORT_HEADER)
    for row in rows:
        writer.writerow(export_fields(row))
    return text.getvalue().encode("utf-8")


class ResultsPages:
    """Answers ``/campaigns`` and below; every route behind `BasicAuth`."""

    def __init__(self, store: Store, auth: BasicAuth) -> None:
        self._store = store
        self._auth = auth

    def routes(self) -> list[web.RouteDef]:
        """The routes to add to an application."""
        guard = self._auth.guard
        return [
            web.get("/", guard(self.index)),
            web.get("/campaigns", guard(self.campaigns)),
            web.get("/campaigns/{campaign}", guard(self.campaign)),
            web.get("/campaigns/{campaign}/bounces.csv", guard(self.bounces)),
            web.get("/campaigns/{campaign}/deferrals.csv", guard(self.deferrals)),
        ]

    async def index(self, request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound("/campaigns")

    async def campaigns(self, request: web.Request) -> web.Response:
        """Every campaign: first and last send, recipients and results."""
        rows = []
        for summary in await self._store.campaign_summaries():
            stats = await self._store.stats(summary.campaign)
            rows.append(_campaign_row(summary, stats))
        table = (
            "<table><thead><tr><th>Campaign</th><th>First send</th>"
            "<th>Last send</th><th>Recipients</th><th>Sent OK</th>"
            "<th>Bounced</th><th>Invalid</th><th>Deferred</th>"
            "<th>Unsubscribed</th></tr></thead><tbody>"
            + "".join(rows)
            + "</tbody></table>"
            if rows
            else "<p>No campaigns yet.</p>"
        )
        return _html("Campaigns", f"<h1>Campaigns</h1>{table}")

    async def campaign(self, request: web.Request) -> web.Response:
        """One campaign's two charts, their numbers and the downloads."""
        name = request.match_info["campaign"]
        summary = await self._summary(name)
        stats = await self._store.stats(name)
        link = f"/campaigns/{quote(name, safe='')}"
        body = (
            f'<p><a href="/campaigns">All campaigns</a></p>'
            f"<h1>Campaign {escape(name)}</h1>"
            f"<p>First send {_when(summary.first_at)}, last send "
            f"{_when(summary.last_at)}; {summary.recipients:,} recipients.</p>"
            + _chart("delivery", "Delivery", delivery_slices(stats))
            + _chart("subscription", "Subscription", subscription_slices(stats))
            + "<h2>Downloads</h2><ul>"
            f'<li><a href="{link}/bounces.csv">Bounces (CSV)</a></li>'
            f'<li><a href="{link}/deferrals.csv">Deferrals (CSV)</a></li></ul>'
        )
        return _html(f"Campaign {name}", body)

    async def bounces(self, request: web.Request) -> web.Response:
        """The campaign's bounce records as CSV."""
        name = request.match_info["campaign"]
        await self._summary(name)
        rows = await self._store.export_bounces(name, None, None)
        return _csv(rows, f"{name}-bounces.csv")

    async def deferrals(self, request: web.Request) -> web.Response:
        """The campaign's deferred attempts as CSV."""
        name = request.match_info["campaign"]
        await self._summary(name)
        rows = await self._store.export_deferrals(name, None, None)
        return _csv(rows, f"{name}-deferrals.csv")

    async def _summary(self, name: str) -> CampaignSummary:
        for summary in await self._store.campaign_summaries():
            if summary.campaign == name:
                return summary
        raise web.HTTPNotFound(
            text=_PAGE.format(title="Not found", body="<p>No such campaign.</p>"),
            content_type="text/html",
        )


def _chart(element_id: str, title: str, slices: list[Slice]) -> str:
    total = sum(s.count for s in slices)
    rows = "".join(
        f'<tr><td><span class="key" style="background:{s.colour}"></span>'
        f"{escape(s.label)}</td><td>{s.count:,}</td>"
        f"<td>{escape(percent(s.count, total))}</td></tr>"
        for s in slices
    )
    return (
        f'<section aria-labelledby="{element_id}-heading">'
        f'<h2 id="{element_id}-heading">{escape(title)}</h2><div class="chart">'
        + pie_svg(title, slices, element_id=f"{element_id}-chart")
        + f'<table id="{element_id}-table"><caption>{escape(title)}, '
        f"{total:,} in all</caption><thead><tr><th>Result</th><th>Recipients</th>"
        f"<th>Share</th></tr></thead><tbody>{rows}</tbody></table></div></section>"
    )


def _campaign_row(summary: CampaignSummary, stats: Stats) -> str:
    link = f"/campaigns/{quote(summary.campaign, safe='')}"
    figures = (
        summary.recipients,
        stats.sent_ok,
        stats.bounced,
        stats.invalid,
        stats.deferred,
        stats.unsubscribed,
    )
    return (
        f'<tr><td><a href="{link}">{escape(summary.campaign)}</a></td>'
        f"<td>{_when(summary.first_at)}</td><td>{_when(summary.last_at)}</td>"
        + "".join(f"<td>{n:,}</td>" for n in figures)
        + "</tr>"
    )


def _when(moment: datetime) -> str:
    text = moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f'<time datetime="{moment.astimezone(UTC).isoformat()}">{text}</time>'


def _html(title: str, body: str) -> web.Response:
    return web.Response(
        text=_PAGE.format(title=escape(title), body=body),
        content_type="text/html",
        headers=_HEADERS,
    )


def _csv(rows: list[ExportRow], filename: str) -> web.Response:
    safe_name = "".join(c if c.isalnum() or c in "-_." else "_" for c in filename)
    return web.Response(
        body=csv_bytes(rows),
        content_type="text/csv",
        charset="utf-8",
        headers={
            **_HEADERS,
            "Content-Disposition": f'attachment; filename="{safe_name}"',
        },
    )
