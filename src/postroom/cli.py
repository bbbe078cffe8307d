"""The `postroom` command: run the daemon, inspect and repair the queue,
read statistics and exports.

The inspecting commands open the same store as the daemon (SQLite in WAL
mode allows a reader and a writer at once), so they work while it runs.
"""

from __future__ import annotations

import asyncio
import csv
import json
import sys
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import yaml

from postroom import __version__
from postroom import log as logsetup
from postroom.cli_common import (
    config_option,
    fail_config,
    load_or_exit,
    quiet_logs,
    with_store,
)
from postroom.cli_dkim import dkim_group
from postroom.clock import SystemClock
from postroom.config import find_config
from postroom.errors import ConfigError, PostroomError
from postroom.queue.models import ExportRow, State
from postroom.queue.postgres import redact
from postroom.queue.store import Store

EXPORT_HEADER = (
    "Email address",
    "Last Name",
    "First Name",
    "SMTP code",
    "Class code",
    "Subject code",
    "Detail code",
    "Timestamp",
)


@click.group()
@click.version_option(__version__, prog_name="postroom")
def main() -> None:
    """postroom: an SMTP relay with bounce handling."""


# -- serve -------------------------------------------------------------------


@main.command()
@config_option
@click.option("--acceptor", "wake_port", type=int, default=None, hidden=True)
def serve(config_path: Path | None, wake_port: int | None) -> None:
    """Run the relay until SIGTERM or SIGINT."""
    from postroom.app import Relay
    from postroom.relay import acceptors

    # An acceptor process (see relay.acceptors) is given its configuration.
    config = (
        acceptors.read_config() if wake_port is not None else load_or_exit(config_path)
    )
    logsetup.configure(config.logging.level, config.logging.format)
    runner: Callable[[Coroutine[Any, Any, None]], None] = asyncio.run
    try:
        import uvloop  # a dependency wherever it builds (not on Windows)
    except ImportError:
        pass
    else:
        runner = uvloop.run
    if wake_port is not None:
        runner(acceptors.run_acceptor(config, wake_port))
        return
    try:
        runner(Relay(config).serve_forever())
    except ConfigError as exc:
        # Problems found only at start-up (a port in use, an unreadable key)
        # are still the config file's to fix.
        fail_config(exc, find_config(config_path))
    except PostroomError as exc:
        click.echo(f"postroom: {exc}", err=True)
        sys.exit(1)
    except OSError as exc:
        click.echo(f"postroom: cannot start: {exc}", err=True)
        sys.exit(1)


# -- dkim --------------------------------------------------------------------

main.add_command(dkim_group)


# -- config ------------------------------------------------------------------


@main.group("config")
def config_group() -> None:
    """Check or show the configuration."""


@config_group.command("check")
@config_option
def config_check(config_path: Path | None) -> None:
    """Validate the configuration file and the key files it names; exit 2
    naming every broken key."""
    from postroom.relay.dkim_keys import load_keys
    from postroom.relay.submission import tls_context

    path = find_config(config_path)
    config = load_or_exit(config_path)
    try:
        load_keys(config.dkim)
        tls_context(config.submission.tls)
    except ConfigError as exc:
        fail_config(exc, path)
    click.echo(f"ok: {path or 'embedded default'}")


@config_group.command("show")
@config_option
@click.option(
    "--show-secrets",
    is_flag=True,
    help="Print secrets, password hashes and URL passwords as they are.",
)
def config_show(config_path: Path | None, show_secrets: bool) -> None:
    """Print the effective configuration, defaults filled in; secrets are
    masked unless --show-secrets is given."""
    config = load_or_exit(config_path)
    data = config.model_dump(mode="json")
    if not show_secrets and _hide_secrets(data):
        # A YAML comment: the output still loads as the configuration.
        click.echo("# secrets masked; --show-secrets prints them")
    click.echo(yaml.safe_dump(data, sort_keys=False), nl=False)


_MASKED = "********"
# Found by key, so that a secret added to the schema later is masked too:
# ``secret``, ``password`` or a key ending in ``_secret`` or ``_password``.
_SECRET_NAMES = ("secret", "password")
_HASH_TABLES = ("users",)  # name -> password hash


def _named(key: str, *names: str) -> bool:
    return key in names or key.endswith(tuple(f"_{name}" for name in names))


def _hide_secrets(node: Any) -> int:
    """Mask, in place, the secrets of a dumped configuration; how many."""
    if isinstance(node, list):
        return sum(_hide_secrets(item) for item in node)
    if not isinstance(node, dict):
        return 0
    hidden = 0
    for key, value in node.items():
        if value is None:
            continue
        if _named(key, *_SECRET_NAMES):
            node[key] = _MASKED
            hidden += 1
        elif key in _HASH_TABLES and isinstance(value, dict):
            node[key] = dict.fromkeys(value, _MASKED)
            hidden += len(value)
        elif _named(key, "url") and isinstance(value, str):
            node[key] = _url_without_password(value)
            hidden += node[key] != value
        else:
            hidden += _hide_secrets(value)
    return hidden


def _url_without_password(url: str) -> str:
    """``url`` with no password in it: none before the host (as in logs),
    and a ``password`` parameter masked (libpq reads one there too)."""
    base, question, query = redact(url).partition("?")
    if not question:
        return base
    pairs = [pair.partition("=") for pair in query.split("&")]
    query = "&".join(
        name + equals + (_MASKED if name == "password" else value)
        for name, equals, value in pairs
    )
    return f"{base}?{query}"


@main.command()
@click.password_option(prompt="Password", confirmation_prompt=True)
def passwd(password: str) -> None:
    """Hash a password for submission.users in the config file."""
    from postroom.relay.passwords import hash_password

    click.echo(hash_password(password))


# -- queue -------------------------------------------------------------------


@main.group()
def queue() -> None:
    """Inspect and repair the queue."""


@queue.command("list")
@config_option
@click.option(
    "--state",
    type=click.Choice([s.value for s in State]),
    default=None,
    help="Only recipients in this state.",
)
@click.option("--campaign", default=None)
@click.option("--limit", default=100, show_default=True, type=click.IntRange(min=1))
@quiet_logs
def queue_list(
    config_path: Path | None, state: str | None, campaign: str | None, limit: int
) -> None:
    """List recipients (default: those still waiting: queued and deferred)."""
    config = load_or_exit(config_path)

    async def body(store: Store) -> None:
        states = [State(state)] if state else [State.QUEUED, State.DEFERRED]
        rows = []
        for wanted in states:
            rows += await store.recipients(state=wanted, campaign=campaign, limit=limit)
        rows.sort(key=lambda r: r.accepted_at)
        if rows:
            click.echo(
                f"{'QUEUE ID':<24}  {'STATE':<10} {'TRY':>3}  {'NEXT ATTEMPT':<32} "
                f"{'LAST':<10} {'CAMPAIGN':<16} RECIPIENT"
            )
        for r in rows[:limit]:
            due = r.next_attempt_at.isoformat() if r.next_attempt_at else "-"
            last = f"{r.last_code or ''} {r.last_status or ''}".strip() or "-"
            click.echo(
                f"{r.queue_id}  {r.state.value:<10} {r.attempts:>3}  {due:<32} "
                f"{last:<10} {r.campaign:<16} {r.address}"
            )

    with_store(body, config)


@queue.command("show")
@config_option
@click.argument("queue_id")
@quiet_logs
def queue_show(config_path: Path | None, queue_id: str) -> None:
    """Show one message: envelope, recipients and every attempt."""
    config = load_or_exit(config_path)

    async def body(store: Store) -> None:
        message = await store.get_message(queue_id)
        click.echo(f"queue id:    {message.queue_id}")
        click.echo(f"accepted:    {message.accepted_at.isoformat()}")
        click.echo(f"from:        <{message.mail_from}>")
        click.echo(f"campaign:    {message.campaign}")
        click.echo(f"message-id:  {message.message_id or '-'}")
        click.echo(f"size:        {message.size} bytes")
        click.echo(f"client:      {message.client_address}")
        if message.submitted_by:
            click.echo(f"user:        {message.submitted_by}")
        for r in await store.recipients(queue_id=queue_id):
            click.echo(f"\n  {r.address}  [{r.state.value}]  attempts {r.attempts}")
            if r.next_attempt_at is not None and not r.state.is_final:
                click.echo(f"    next attempt {r.next_attempt_at.isoformat()}")
            for a in await store.attempts(r.id):
                code = f"{a.code or ''} {a.status or ''}".strip() or "-"
                click.echo(
                    f"    {a.at.isoformat()}  {a.outcome.value:<9} "
                    f"{a.mx_host or '-'}  {code}"
                )
                for line in a.text.splitlines():
                    click.echo(f"        {line}")

    with_store(body, config)


@queue.command("retry")
@config_option
@click.argument("queue_id", required=False)
@click.option("--all", "everything", is_flag=True, help="Every deferred recipient.")
@quiet_logs
def queue_retry(
    config_path: Path | None, queue_id: str | None, everything: bool
) -> None:
    """Make deferred recipients due now (one message, or --all)."""
    if bool(queue_id) == everything:
        raise click.UsageError("name a QUEUE_ID or pass --all, not both")
    config = load_or_exit(config_path)

    async def body(store: Store) -> int:
        if queue_id:
            await store.get_message(queue_id)  # NotFound for an unknown id
        return await store.retry_now(queue_id, SystemClock().now())

    count = with_store(body, config)
    click.echo(f"{count} recipient(s) due now")


@queue.command("delete")
@config_option
@click.argument("queue_id")
@quiet_logs
def queue_delete(config_path: Path | None, queue_id: str) -> None:
    """Stop delivering a message: remove its waiting recipients.

    Recipients already delivered or bounced keep their records."""
    config = load_or_exit(config_path)

    async def body(store: Store) -> int:
        await store.get_message(queue_id)  # NotFound for an unknown id
        return await store.delete(queue_id)

    count = with_store(body, config)
    click.echo(f"deleted {count} waiting recipient(s) of {queue_id}")


# -- stats and exports -------------------------------------------------------


@main.command()
@config_option
@click.option("--campaign", default=None, help="One campaign (default: all).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
@quiet_logs
def stats(config_path: Path | None, campaign: str | None, as_json: bool) -> None:
    """Counts by result: Sent OK, Bounced, Invalid, Deferred, ..."""
    config = load_or_exit(config_path)
    result = with_store(lambda store: store.stats(campaign), config)
    figures = {
        "sent_ok": result.sent_ok,
        "bounced": result.bounced,
        "invalid": result.invalid,
        "deferred": result.deferred,
        "queued": result.queued,
        "suppressed": result.suppressed,
        "unsubscribed": result.unsubscribed,
        "complaints": result.complaints,
    }
    if as_json:
        click.echo(json.dumps({"campaign": campaign, **figures}))
        return
    labels = {
        "sent_ok": "Sent OK",
        "bounced": "Bounced",
        "invalid": "Invalid",
        "deferred": "Deferred",
        "queued": "Queued",
        "suppressed": "Suppressed",
        "unsubscribed": "Unsubscribed",
        "complaints": "  by complaint",
    }
    click.echo(f"campaign: {campaign or '(all)'}")
    for key, label in labels.items():
        click.echo(f"  {label:<13} {figures[key]:>9}")


def _parse_time(_: Any, __: Any, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an ISO 8601 time such as 2026-01-05 or "
            "2026-01-05T09:00:00Z"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@main.command()
@config_option
@click.argument("kind", type=click.Choice(["bounces", "deferrals"]))
@click.option("--campaign", default=None)
@click.option("--since", callback=_parse_time, help="ISO 8601, inclusive.")
@click.option("--until", callback=_parse_time, help="ISO 8601, exclusive.")
@click.option("--output", "-o", type=click.File("w"), default="-")
@quiet_logs
def export(
    config_path: Path | None,
    kind: str,
    campaign: str | None,
    since: datetime | None,
    until: datetime | None,
    output: Any,
) -> None:
    """Write bounce records or deferrals as CSV."""
    if since is not None and until is not None and since >= until:
        raise click.BadParameter(
            "--since must come before --until", param_hint="--since"
        )
    config = load_or_exit(config_path)

    async def body(store: Store) -> list[ExportRow]:
        if kind == "bounces":
            return await store.export_bounces(campaign, since, until)
        return await store.export_deferrals(campaign, since, until)

    rows = with_store(body, config)
    writer = csv.writer(output, lineterminator="\r\n")
    writer.writerow(EXPORT_HEADER)
    for row in rows:
        writer.writerow(export_fields(row))


def export_fields(row: ExportRow) -> tuple[str, ...]:
    """One CSV line: names from the display name, codes split in three.

    A missing enhanced code becomes ``<class> 0 0`` of the basic code; a
    row with neither leaves the codes empty.
    """
    last, first = split_name(row.display_name)
    status = row.status
    if status is None and row.code is not None:
        status = f"{row.code // 100}.0.0"
    klass, subject, detail = status.split(".") if status else ("", "", "")
    timestamp = row.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    code = str(row.code) if row.code is not None else ""
    return (row.address, last, first, code, klass, subject, detail, timestamp)


def split_name(display_name: str) -> tuple[str, str]:
    """("Last", "First") from "First Last" or "Last, First"."""
    name = " ".join(display_name.split())
    if not name:
        return "", ""
    if "," in name:
        last, _, first = name.partition(",")
        return last.strip(), first.strip()
    first, _, last = name.rpartition(" ")
    if not first:
        return name, ""
    return last, first


# -- commands kept in their own modules --------------------------------------
# Imported last: they build on the helpers above.

from postroom.blacklist_monitor.cli import blacklist  # noqa: E402
from postroom.cli_db import db_group  # noqa: E402
from postroom.cli_dsn import dsn_group  # noqa: E402
from postroom.cli_inbound import inbound_group  # noqa: E402
from postroom.cli_suppress import suppress  # noqa: E402

main.add_command(blacklist)
main.add_command(suppress)
main.add_command(dsn_group)
main.add_command(db_group)
main.add_command(inbound_group)
