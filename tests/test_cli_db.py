"""`postroom db migrate` on both backends."""

from __future__ import annotations

import asyncio
from pathlib import Path

from click.testing import CliRunner

from postroom.cli import main
from postroom.queue.postgres_schema import MIGRATIONS as PG_MIGRATIONS
from postroom.queue.sqlite_schema import MIGRATIONS as SQLITE_MIGRATIONS


async def test_db_migrate_command_migrates_then_has_nothing_to_do(
    pg_url: str, tmp_path: Path
) -> None:
    config_file = tmp_path / "postroom.yaml"
    config_file.write_text(f"queue:\n  url: {pg_url}\n")
    runner = CliRunner()

    # The command runs its own event loop, so it runs in a thread here.
    first = await asyncio.to_thread(
        runner.invoke, main, ["db", "migrate", "--config", str(config_file)]
    )
    second = await asyncio.to_thread(
        runner.invoke, main, ["db", "migrate", "--config", str(config_file)]
    )

    latest = len(PG_MIGRATIONS)
    assert first.exit_code == 0, first.output
    assert f"from version 0 to {latest}" in first.output
    assert f"schema at version {latest}, nothing to do" in second.output


def test_db_migrate_command_migrates_a_sqlite_file(tmp_path: Path) -> None:
    config_file = tmp_path / "postroom.yaml"
    config_file.write_text(f"data_dir: {tmp_path / 'var'}\n")

    result = CliRunner().invoke(main, ["db", "migrate", "--config", str(config_file)])

    assert result.exit_code == 0, result.output
    assert f"migrated from version 0 to {len(SQLITE_MIGRATIONS)}" in result.output
    assert (tmp_path / "var").exists()
