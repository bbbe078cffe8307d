"""`postroom blacklist scan`: the daily scan from the command line.

Run from a systemd timer next to the daemon: the report is enqueued in
the daemon's store, and the daemon delivers it.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import click

from postroom.blacklist_monitor.report import as_json, plain_text
from postroom.blacklist_monitor.scan import ScanOutcome, run_scan
from postroom.cli_common import config_option, load_or_exit, quiet_logs, with_store
from postroom.clock import SystemClock
from postroom.queue.store import Store


def _parse_day(_: object, __: object, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not a date such as 2026-01-05"
        ) from None


@click.group("blacklist")
def blacklist() -> None:
    """Daily scan of blocked deliveries and DNS blocklist listings."""


@blacklist.command("scan")
@click.option(
    "--date", "day", callback=_parse_day, help="YYYY-MM-DD (default: yesterday)."
)
@click.option("--dry-run", is_flag=True, help="Print the report; send nothing.")
@click.option("--json", "as_json_output", is_flag=True, help="One JSON object.")
@click.option("--force", is_flag=True, help="Send even if this day's report was.")
@config_option
@quiet_logs
def scan(
    day: date | None,
    dry_run: bool,
    as_json_output: bool,
    force: bool,
    config_path: Path | None,
) -> None:
    """Scan a day's refusals and the blocklists; enqueue the report."""
    config = load_or_exit(config_path)

    async def body(store: Store) -> ScanOutcome:
        return await run_scan(
            config, store, SystemClock(), day=day, dry_run=dry_run, force=force
        )

    outcome = with_store(body, config)
    if as_json_output:
        data = as_json(outcome.scan)
        data.update(sent=outcome.sent, queue_id=outcome.queue_id, note=outcome.note)
        click.echo(json.dumps(data))
    elif dry_run:
        if outcome.message is not None:
            click.echo(f"Subject: {outcome.message['Subject']}")
            click.echo(f"To: {outcome.message['To']}\n")
        click.echo(plain_text(outcome.scan), nl=False)
    elif outcome.sent:
        click.echo(
            f"report for {outcome.scan.day.isoformat()} enqueued as {outcome.queue_id}"
        )
    else:
        click.echo(
            f"report for {outcome.scan.day.isoformat()} not sent: {outcome.note}"
        )
