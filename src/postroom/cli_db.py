"""`postroom db`: the store's schema.

``postroom db migrate`` brings the schema of the configured store (the
SQLite file, or the PostgreSQL database of ``queue.url``) to the version
this build knows. The daemon does the same when it starts; the command
lets an administrator migrate first, once, before rolling out new nodes.
A database newer than this build is refused and left as it is.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import click

from postroom.cli_common import config_option, load_or_exit, quiet_logs
from postroom.config import Config
from postroom.errors import StorageError
from postroom.queue import postgres_schema, sqlite_schema
from postroom.queue.postgres import redact


@click.group("db")
def db_group() -> None:
    """Look after the store's schema."""


@db_group.command("migrate")
@config_option
@quiet_logs
def db_migrate(config_path: Path | None) -> None:
    """Apply every schema migration the store is missing."""
    config = load_or_exit(config_path)
    try:
        where, before, after = migrate_store(config)
    except StorageError as exc:
        raise click.ClickException(str(exc)) from exc
    if before == after:
        click.echo(f"{where}: schema at version {after}, nothing to do")
    else:
        click.echo(f"{where}: schema migrated from version {before} to {after}")


def migrate_store(config: Config) -> tuple[str, int, int]:
    """Migrate the store ``config`` names; where it is, the versions before
    and after."""
    url = config.queue.url
    if url is not None and url.startswith(("postgresql:", "postgres:")):
        where = redact(url)
        versions = asyncio.run(postgres_schema.migrate_database(url, where))
        return where, *versions

    path = config.sqlite_path
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        conn = sqlite_schema.connect(path)
    except (OSError, sqlite3.Error) as exc:
        raise StorageError(f"cannot open {path}: {exc}") from exc
    try:
        before: int = conn.execute("PRAGMA user_version").fetchone()[0]
        after = sqlite_schema.migrate(conn, path)
    except sqlite3.Error as exc:
        raise StorageError(f"cannot migrate {path}: {exc}") from exc
    finally:
        conn.close()
    return str(path), before, after
