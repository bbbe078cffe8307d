"""`postroom inbound`: read what the inbound listener kept.

Every message the inbound listener accepts is kept with what came of it:
DSNs and complaints, mail to postmaster when no forward address is set
(RFC 5321 section 4.5.1 wants a person to read it), and reports that
matched nobody or carried a forged token.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from postroom.cli_common import config_option, load_or_exit, quiet_logs, with_store
from postroom.queue.models import InboundOutcome, InboundReport
from postroom.queue.store import Store


@click.group("inbound")
def inbound_group() -> None:
    """Reports and mail kept by the inbound listener."""


@inbound_group.command("list")
@config_option
@click.option(
    "--outcome",
    type=click.Choice([str(o) for o in InboundOutcome]),
    default=None,
    help="Only messages with this outcome (among others, for mail sent to"
    " several of our addresses).",
)
@click.option(
    "--limit",
    default=100,
    show_default=True,
    type=click.IntRange(min=1),
    help="Show at most this many, the newest.",
)
@quiet_logs
def inbound_list(config_path: Path | None, outcome: str | None, limit: int) -> None:
    """One line per kept message, newest first."""
    config = load_or_exit(config_path)
    reports = with_store(
        lambda store: store.inbound_reports(outcome, limit, newest_first=True), config
    )
    if reports:
        click.echo(
            f"{'ID':>6}  {'RECEIVED':<25} {'KIND':<10} {'OUTCOME':<12} {'FROM':<30} TO"
        )
    for report in reports:
        click.echo(_line(report))


@inbound_group.command("show")
@config_option
@click.argument("report_id", type=int)
@click.option("--raw", is_flag=True, help="Print the message exactly as received.")
@quiet_logs
def inbound_show(config_path: Path | None, report_id: int, raw: bool) -> None:
    """One kept message: its envelope, outcome and bytes."""
    config = load_or_exit(config_path)

    async def body(store: Store) -> tuple[InboundReport | None, bytes]:
        found = await store.inbound_reports(limit=1, report_id=report_id)
        return (found[0] if found else None), await store.load_inbound_raw(report_id)

    report, data = with_store(body, config)
    if raw:
        sys.stdout.buffer.write(data)
        return
    if report is not None:
        click.echo(f"id:        {report.id}")
        click.echo(f"received:  {report.received_at.isoformat()}")
        click.echo(f"peer:      {report.peer}")
        click.echo(f"from:      {_angled(report.mail_from)}")
        click.echo(f"to:        {', '.join(report.rcpts)}")
        click.echo(f"kind:      {report.kind or '-'}")
        click.echo(f"outcome:   {report.outcome}")
        if report.detail:
            click.echo(f"detail:    {report.detail}")
        click.echo("")
    # Kept with the CRLF line ends of SMTP; --raw gives those bytes.
    click.echo(data.decode("utf-8", "replace").replace("\r\n", "\n"), nl=False)


def _line(report: InboundReport) -> str:
    return (
        f"{report.id:>6}  {report.received_at.isoformat(timespec='seconds'):<25} "
        f"{report.kind or '-':<10} {report.outcome:<12} "
        f"{_angled(report.mail_from):<30} {', '.join(report.rcpts)}"
    )


def _angled(address: str) -> str:
    """``address`` in angle brackets; the null sender (kept as it came,
    ``<>`` or empty) as ``<>``."""
    return "<>" if address in ("", "<>") else f"<{address}>"
