"""What every `postroom` subcommand shares: the ``--config`` option, loading
the configuration (exit 2 naming each broken key), opening the store (exit
1 with the reason), and quiet logs for commands that print results.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine
from functools import wraps
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from postroom import log as logsetup
from postroom.config import Config, find_config, load_config
from postroom.errors import ConfigError, NotFound, PostroomError
from postroom.queue.open import open_store
from postroom.queue.store import Store

T = TypeVar("T")

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="YAML file to read (default: /etc/postroom/postroom.yaml if it "
    "exists, else the embedded default).",
)


def load_or_exit(config_path: Path | None) -> Config:
    """The configuration to use; a broken one ends the command (exit 2)."""
    path = find_config(config_path)
    try:
        return load_config(path)
    except ConfigError as exc:
        fail_config(exc)


def fail_config(exc: ConfigError, path: Path | None = None) -> NoReturn:
    """Print every problem of a broken configuration and exit 2."""
    source = exc.source or (str(path) if path else "the embedded default")
    click.echo(f"postroom: configuration error in {source}:", err=True)
    for problem in exc.problems:
        click.echo(f"  {problem}", err=True)
    sys.exit(2)


def with_store(
    body: Callable[[Store], Coroutine[Any, Any, T]],
    config: Config,
    *,
    create: bool = False,
) -> T:
    """Run ``body`` with the configured store open; errors become exit 1.

    Without ``create``, a SQLite queue that does not exist yet is an error
    rather than a new, empty one.
    """
    if not create and (
        config.queue.url is None or config.queue.url.startswith("sqlite:")
    ):
        path = config.sqlite_path
        if not path.exists():
            # Opening would create an empty queue and report zeros for it.
            raise click.ClickException(
                f"no queue at {path.resolve()}: is this the relay's data_dir? "
                "Run from the directory the relay runs in, or pass --config."
            )

    async def run() -> T:
        store = open_store(config)
        await store.open()
        try:
            return await body(store)
        finally:
            await store.close()

    try:
        return asyncio.run(run())
    except NotFound as exc:
        raise click.ClickException(f"not found: {exc}") from exc
    except PostroomError as exc:
        raise click.ClickException(str(exc)) from exc


def quiet_logs(func: Callable[..., T]) -> Callable[..., T]:
    """Only warnings on stderr, so the command's output stays readable."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        logsetup.configure("warning", "console")
        return func(*args, **kwargs)

    return wrapper
