"""`postroom suppress`: read and repair the suppression lists.

A list is a campaign's, or with ``--global`` the one that covers every
campaign (stored under the scope ``*``, which is no campaign name). The
CSV form, written by ``export`` and read by ``import``, starts with the
header line ``address,scope,reason,created_at``. An import file is either
that (columns found by their names in the header; others are ignored; an
empty or missing scope, reason or time is taken from the options or is
now) or, without a header line, one address a line, with the scope from
``--campaign``/``--global`` and the reason from ``--reason``. A comma in a
file without a header is an error rather than a guess at columns.

The reason is a word kept with the entry. postroom writes the failure
category of a bounce (``unknown_user``...), ``complaint`` and
``unsubscribe`` itself (these two count as opt-outs in ``postroom
stats``), and ``manual`` or ``import`` by default here; any other word
given with ``--reason`` or in a file is kept as it is.
"""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO, TypeVar

import click

from postroom.cli_common import config_option, load_or_exit, quiet_logs, with_store
from postroom.clock import SystemClock
from postroom.errors import StorageError
from postroom.queue.models import Suppression
from postroom.queue.store import GLOBAL_SCOPE, Store
from postroom.relay.message import clean_campaign, is_mailbox

F = TypeVar("F", bound=Callable[..., Any])


CSV_HEADER = ("address", "scope", "reason", "created_at")
# The first column's name in the header of export's CSV, and in that of
# `postroom export bounces` (whose other columns are not read here).
_ADDRESS_COLUMNS = ("address", "email address")

# Entries written per transaction while importing: large enough to be quick,
# small enough that the daemon's own writes are not held up for long.
IMPORT_BATCH = 2000


def _scope_options(func: F) -> F:
    func = click.option(
        "--global", "everywhere", is_flag=True, help="The list of every campaign."
    )(func)
    return click.option(
        "--campaign", default=None, help="The campaign's list (not '*': --global)."
    )(func)


def _scope(campaign: str | None, everywhere: bool, *, required: bool) -> str | None:
    if campaign and everywhere:
        raise click.UsageError("give --campaign or --global, not both")
    if everywhere:
        return GLOBAL_SCOPE
    if campaign is None:
        if required:
            raise click.UsageError("name the list: --campaign NAME or --global")
        return None
    problem = _campaign_problem(campaign)
    if problem:
        raise click.BadParameter(problem, param_hint="--campaign")
    return campaign.strip()


def _campaign_problem(name: str) -> str | None:
    """Why ``name`` cannot be a campaign's list, or None when it can."""
    if name.strip() == GLOBAL_SCOPE:
        return f"{name!r} marks the global list, not a campaign; use --global"
    if clean_campaign(name) is None:
        return (
            f"{name!r} is no campaign name: letters, digits and . _ : + @ / = -, "
            "starting with a letter or digit"
        )
    return None


@click.group()
def suppress() -> None:
    """Read and repair the suppression lists."""


@suppress.command("list")
@config_option
@_scope_options
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="Show at most this many entries (export writes them all).",
)
@quiet_logs
def suppress_list(
    config_path: Path | None, campaign: str | None, everywhere: bool, limit: int
) -> None:
    """List suppressed addresses (of one list, or of all)."""
    config = load_or_exit(config_path)
    scope = _scope(campaign, everywhere, required=False)
    # One more than shown tells whether the list goes on.
    entries = with_store(lambda store: store.suppressions(scope, limit + 1), config)
    for entry in entries[:limit]:
        click.echo(
            f"{entry.scope:<20} {entry.address:<40} {entry.reason:<16} "
            f"{_timestamp(entry.created_at)}"
        )
    if len(entries) > limit:
        # On stderr, so that a pipe reading stdout gets entries only.
        click.echo(
            f"postroom: the first {limit} entries shown; there are more "
            "(--limit N shows more, export writes all)",
            err=True,
        )


@suppress.command("add")
@config_option
@_scope_options
@click.option(
    "--reason", default="manual", show_default=True, help="Kept with each entry."
)
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
@click.option(
    "--reason",
    default="import",
    show_default=True,
    help="Kept with each entry whose line gives none.",
)
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@quiet_logs
def suppress_import(
    config_path: Path | None,
    campaign: str | None,
    everywhere: bool,
    reason: str,
    path: Path,
) -> None:
    """Add the addresses of a UTF-8 file to the lists it names or to the
    one given: export's CSV, whose header line
    address,scope,reason,created_at names its columns, or, with no header,
    one address a line (a comma there is an error). Nothing is added when
    a line is wrong."""
    config = load_or_exit(config_path)
    default_scope = _scope(campaign, everywhere, required=False)
    now = SystemClock().now()
    text = _read_text(path)
    entries = list(_read_entries(io.StringIO(text), default_scope, reason, now))

    async def body(store: Store) -> int:
        added = 0
        with click.progressbar(
            length=len(entries), label="importing", file=sys.stderr
        ) as bar:
            for start in range(0, len(entries), IMPORT_BATCH):
                batch = entries[start : start + IMPORT_BATCH]
                try:
                    added += await store.suppress_many(batch)
                except StorageError as exc:
                    # The batches before this one are committed and stay.
                    raise click.ClickException(
                        f"{exc}; {added} address(es) had been added before the "
                        f"failure (the first {start} of {len(entries)} entries "
                        "are in); importing the file again adds the rest"
                    ) from exc
                bar.update(len(batch))
        return added

    added = with_store(body, config, create=True)
    click.echo(f"{added} of {len(entries)} address(es) added")


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise click.ClickException(
            f"{path}: line {line}, byte {exc.start + 1}: not UTF-8 text; "
            "save the file as UTF-8"
        ) from None


def _read_entries(
    text: TextIO, default_scope: str | None, reason: str, now: datetime
) -> Iterator[Suppression]:
    columns: dict[str, int] | None = None  # None: no header, one address a line
    first = True
    for number, row in enumerate(csv.reader(text), start=1):
        cells = [cell.strip() for cell in row]
        if not cells or not any(cells) or cells[0].startswith("#"):
            continue
        if first:
            first = False
            if cells[0].lower() in _ADDRESS_COLUMNS:
                columns = _header(cells)
                continue
        if columns is None and len(cells) > 1:
            raise click.ClickException(
                f"line {number}: a comma, but the file has no header line; "
                "a file with columns starts with " + ",".join(CSV_HEADER)
            )
        yield _entry(number, cells, columns or {}, default_scope, reason, now)


def _header(cells: list[str]) -> dict[str, int]:
    """Where each column we read is, by its name in the header line."""
    columns = {"address": 0}
    for index, name in enumerate(cells[1:], start=1):
        if name.lower() in CSV_HEADER[1:]:
            columns.setdefault(name.lower(), index)
    return columns


def _entry(
    number: int,
    cells: list[str],
    columns: dict[str, int],
    default_scope: str | None,
    reason: str,
    now: datetime,
) -> Suppression:
    address = cells[0]
    if not is_mailbox(address):
        raise click.ClickException(f"line {number}: {address!r} is no address")
    scope = _cell(cells, columns, "scope") or default_scope
    if scope is None:
        raise click.ClickException(
            f"line {number}: no scope; give --campaign NAME or --global"
        )
    if scope != GLOBAL_SCOPE and (problem := _campaign_problem(scope)):
        raise click.ClickException(f"line {number}: {problem}")
    why = _cell(cells, columns, "reason") or reason
    when = _cell(cells, columns, "created_at")
    created = _parse_time(when, number) if when else now
    return Suppression(scope, address, why, created)


def _cell(cells: Sequence[str], columns: dict[str, int], name: str) -> str:
    index = columns.get(name)
    return cells[index] if index is not None and index < len(cells) else ""


def _parse_time(value: str, number: int) -> datetime:
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise click.ClickException(f"line {number}: {value!r} is no time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
