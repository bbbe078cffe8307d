"""`postroom dsn parse`: run the bounce parser over files, mboxes and Maildirs.

A PATH is a message file, an mbox (a file whose first line starts with
``From ``), a Maildir (a folder with ``cur`` or ``new`` in it) or any other
folder (every file under it, in name order). Messages from an mbox are
named ``PATH#N``, counting from 1. A file that is empty or holds only
white space is no message: alone, it is a PATH that holds none.
"""

from __future__ import annotations

import json
import mailbox
import sys
from collections.abc import Iterator
from pathlib import Path

import click

from postroom import dsn
from postroom.dsn import Record, Report


@click.group("dsn")
def dsn_group() -> None:
    """Bounce parsing tools."""


@dsn_group.command("parse")
@click.argument(
    "paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path)
)
@click.option(
    "--json", "as_json", is_flag=True, help="One JSON object per message per line."
)
def dsn_parse(paths: tuple[Path, ...], as_json: bool) -> None:
    """Parse bounce messages and print what each says about each recipient.

    Exits 0 when every PATH held a message, 1 when one held none (an empty
    file, or a folder with no message in it; said on stderr), 2 when one
    does not exist.
    """
    empty = False
    for path in paths:
        found = False
        for name, raw in messages(path):
            found = True
            report = dsn.parse(raw)
            if as_json:
                click.echo(json.dumps(report_json(name, report)))
            else:
                _print_report(name, report)
        if not found:
            click.echo(f"postroom: no messages in {path}", err=True)
            empty = True
    if empty:
        sys.exit(1)


def messages(path: Path) -> Iterator[tuple[str, bytes]]:
    """Every message under ``path``, with the name to print for it."""
    for name, raw in _contents(path):
        if raw.strip():
            yield name, raw


def _contents(path: Path) -> Iterator[tuple[str, bytes]]:
    if path.is_dir():
        if (path / "cur").is_dir() or (path / "new").is_dir():
            for folder in ("new", "cur"):
                if (path / folder).is_dir():
                    for item in sorted((path / folder).iterdir()):
                        if item.is_file():
                            yield str(item), item.read_bytes()
            return
        for item in sorted(path.rglob("*")):
            if item.is_file():
                yield str(item), item.read_bytes()
        return
    with path.open("rb") as handle:
        is_mbox = handle.read(5) == b"From "
    if not is_mbox:
        yield str(path), path.read_bytes()
        return
    box = mailbox.mbox(path, create=False)
    try:
        for number, key in enumerate(box.iterkeys(), start=1):
            yield f"{path}#{number}", box.get_bytes(key)
    finally:
        box.close()


def report_json(name: str, report: Report) -> dict[str, object]:
    """The documented JSON shape of one parsed message."""
    return {
        "file": name,
        "kind": str(report.kind),
        "records": [_record_json(record) for record in report.records],
    }


def _record_json(record: Record) -> dict[str, object]:
    return {
        "recipient": record.recipient,
        "action": str(record.action),
        "reply_code": record.reply_code,
        "status": record.status,
        "category": str(record.category),
        "hard": record.hard,
        "diagnostic": record.diagnostic,
        "remote_mta": record.remote_mta,
    }


def _print_report(name: str, report: Report) -> None:
    dialect = f" ({report.dialect})" if report.dialect else ""
    click.echo(f"{name}: {report.kind}{dialect}")
    for record in report.records:
        codes = " ".join(c for c in (record.reply_code, record.status) if c) or "-"
        hard = "hard" if record.hard else "soft"
        click.echo(
            f"  {record.recipient}  {record.action}  {codes}  "
            f"{record.category} ({hard})"
        )
        if record.diagnostic:
            click.echo(f"    {record.diagnostic[:200]}")
