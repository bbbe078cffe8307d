"""`postroom suppress`: read and repair the suppression lists.

A list is a campaign's, or with ``--global`` the one that covers every
campaign (stored under the scope ``*``). The CSV form, read by ``import``
and written by ``export``, has the columns ``address,scope,reason,
created_at``; an import file may carry only the first column, and then
takes the scope from ``--campaign``/``--global`` and the reason from
``--reason``.
"""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO, TypeVar

import click

from postroom.cli_common import config_option, load_or_exit, quiet_logs, with_store
from postroom.clock import SystemClock
from postroom.queue.models import Suppression
from postroom.queue.store import GLOBAL_SCOPE, Store
from postroom.relay.message import is_mailbox

F = TypeVar("F", bound=Callable[..., Any])


CSV_HEADER = ("address", "scope", "reason", "created_at")

# Entries written per transaction while importing: large enough to be quick,
# small enough that the daemon's own writes are not held up for long.
IMPORT_BATCH = 2000


def _scope_options(func: F) -> F:
    func = click.option(
        "--global", "everywhere", is_flag=True, help="The list of every campaign."
    )(func)
    return click.option("--campaign", default=None, help="The campaign's list.")(func)


def _scope(campaign: str | None, everywhere: bool, *, required: bool) -> str | None:
    if campaign and everywhere:
        raise click.UsageError("give --campaign or --global, not both")
    if everywhere:
        return GLOBAL_SCOPE
    if campaign is None and required:
        raise click.UsageError("name the list: --campaign NAME or --global")
    return campaign


@click.group()
def suppress() -> None:
    """Read and repair the suppression lists."""


@suppress.command("list")
@config_option
@_scope_options
@click.option("--limit", default=1000, show_default=True)
@quiet_logs
def suppress_list(
    config_path: Path | None, campaign: str | None, everywhere: bool, limit: int
) -> None:
    """List suppressed addresses (of one list, or of all)."""
    config = load_or_exit(config_path)
    scope = _scope(campaign, everywhere, required=False)
    entries = with_store(lambda store: store.suppressions(scope, limit), config)
    for entry in entries:
        click.echo(
            f"{entry.scope:<20} {entry.address:<40} {entry.reason:<16} "
            f"{_timestamp(entry.created_at)}"
        )


@suppress.command("add")
@config_option
@_scope_options
@click.option("--reason", default="manual", show_default=True)
@click.argument("addresses", nargs=-1, required=True)
@quiet_logs
def suppress_add(
    config_path: Path | None,
    campaign: str | None,
    everywhere: bool,
    reason: str,
    addresses: tuple[str, ...],
) -> None:
    """Put ADDRESSES on a list; they are not mailed again there."""
    config = load_or_exit(config_path)
    scope = _scope(campaign, everywhere, required=True)
    assert scope is not None
    bad = [address for address in addresses if not is_mailbox(address.strip())]
    if bad:
        # The same check as import, so an export always imports again.
        raise click.BadParameter(
            ", ".join(repr(address) for address in bad) + " is not an address",
            param_hint="ADDRESSES",
        )
    now = SystemClock().now()
    entries = [
        Suppression(scope, address.strip(), reason, now) for address in addresses
    ]
    added = with_store(lambda store: store.suppress_many(entries), config, create=True)
    click.echo(f"{added} address(es) added to {scope}")


@suppress.command("remove")
@config_option
@_scope_options
@click.argument("addresses", nargs=-1, required=True)
@quiet_logs
def suppress_remove(
    config_path: Path | None,
    campaign: str | None,
    everywhere: bool,
    addresses: tuple[str, ...],
) -> None:
    """Take ADDRESSES off a list, so that later messages reach them again."""
    config = load_or_exit(config_path)
    scope = _scope(campaign, everywhere, required=True)
    assert scope is not None

    async def body(store: Store) -> int:
        removed = 0
        for address in addresses:
            removed += await store.unsuppress(scope, address)
        return removed

    removed = with_store(body, config)
    click.echo(f"{removed} address(es) removed from {scope}")


@suppress.command("export")
@config_option
@_scope_options
@click.option("--output", "-o", type=click.File("w"), default="-")
@quiet_logs
def suppress_export(
    config_path: Path | None, campaign: str | None, everywhere: bool, output: TextIO
) -> None:
    """Write suppressed addresses as CSV (address,scope,reason,created_at)."""
    config = load_or_exit(config_path)
    scope = _scope(campaign, everywhere, required=False)
    entries = with_store(lambda store: store.suppressions(scope, None), config)
    writer = csv.writer(output, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for entry in entries:
        writer.writerow(
            (entry.address, entry.scope, entry.reason, _timestamp(entry.created_at))
        )


@suppress.command("import")
@config_option
@_scope_options
@click.option("--reason", default="import", show_default=True)
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@quiet_logs
def suppress_import(
    config_path: Path | None,
    campaign: str | None,
    everywhere: bool,
    reason: str,
    path: Path,
) -> None:
    """Add the addresses of a CSV file (as written by export, or one
    address a line) to the lists it names or to the one given."""
    config = load_or_exit(config_path)
    default_scope = _scope(campaign, everywhere, required=False)
    now = SystemClock().now()
    text = path.read_text(encoding="utf-8-sig")
    entries = list(_read_entries(io.StringIO(text), default_scope, reason, now))

    async def body(store: Store) -> int:
        added = 0
        with click.progressbar(
            length=len(entries), label="importing", file=sys.stderr
        ) as bar:
            for start in range(0, len(entries), IMPORT_BATCH):
                batch = entries[start : start + IMPORT_BATCH]
                added += await store.suppress_many(batch)
                bar.update(len(batch))
        return added

    added = with_store(body, config, create=True)
    click.echo(f"{added} of {len(entries)} address(es) added")


def _read_entries(
    text: TextIO, default_scope: str | None, reason: str, now: datetime
) -> Iterator[Suppression]:
    for number, row in enumerate(csv.reader(text), start=1):
        if not row or not row[0].strip() or row[0].strip().startswith("#"):
            continue
        if number == 1 and row[0].strip().lower() in ("address", "email address"):
            continue  # a header line
        address = row[0].strip()
        if not is_mailbox(address):
            raise click.ClickException(f"line {number}: {address!r} is no address")
        scope = (row[1].strip() if len(row) > 1 else "") or default_scope
        if scope is None:
            raise click.ClickException(
                f"line {number}: no scope; give --campaign NAME or --global"
            )
        why = (row[2].strip() if len(row) > 2 else "") or reason
        created = _parse_time(row[3], number) if len(row) > 3 and row[3] else now
        yield Suppression(scope, address, why, created)


def _parse_time(value: str, number: int) -> datetime:
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise click.ClickException(f"line {number}: {value!r} is no time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
