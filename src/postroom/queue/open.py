"""Choosing the store backend from the configuration."""

from __future__ import annotations

from postroom.config import Config
from postroom.errors import StorageError
from postroom.queue.postgres import PostgresStore
from postroom.queue.sqlite import SqliteStore
from postroom.queue.store import Store


def open_store(config: Config) -> Store:
    """The store that ``config`` names, not yet opened (await its `open`).

    A ``postgresql://`` URL names a PostgreSQL database that many nodes
    may share. Otherwise the SQLite file lives at `Config.sqlite_path`;
    the data directory is created, readable only by the daemon's user,
    when missing.
    """
    url = config.queue.url
    if url is not None and url.startswith(("postgresql:", "postgres:")):
        return PostgresStore(url)

    path = config.sqlite_path
    try:
        config.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot create {path.parent}: {exc}") from exc
    return SqliteStore(path)
