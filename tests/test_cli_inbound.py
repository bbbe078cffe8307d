"""Reading what the inbound listener kept, from the command line."""

from __future__ import annotations

import asyncio
from pathlib import Path

import yaml
from click.testing import CliRunner

from postroom.cli import main
from postroom.clock import ManualClock
from postroom.config import load_config
from postroom.queue.models import NewInboundReport
from postroom.queue.open import open_store

MAIL = b"From: someone@example.com\r\nSubject: your relay\r\n\r\nhello postmaster\r\n"


def keep(config_file: Path) -> int:
    async def run() -> int:
        store = open_store(load_config(config_file))
        await store.open()
        try:
            report = NewInboundReport(
                "192.0.2.7", "someone@example.com", ("postmaster@relay.test",), MAIL
            )
            return await store.add_inbound(report, ManualClock().now())
        finally:
            await store.close()

    return asyncio.run(run())


def test_kept_mail_is_listed_and_shown_whole(tmp_path: Path) -> None:
    config_file = tmp_path / "postroom.yaml"
    config_file.write_text(yaml.safe_dump({"data_dir": str(tmp_path / "var")}))
    report_id = keep(config_file)
    runner = CliRunner()

    listing = runner.invoke(main, ["inbound", "list", "--config", str(config_file)])
    shown = runner.invoke(
        main, ["inbound", "show", str(report_id), "--config", str(config_file)]
    )
    raw = runner.invoke(
        main, ["inbound", "show", str(report_id), "--raw", "--config", str(config_file)]
    )
    missing = runner.invoke(
        main, ["inbound", "show", "999", "--config", str(config_file)]
    )

    assert listing.exit_code == 0
    assert "<someone@example.com>" in listing.output
    assert "postmaster@relay.test" in listing.output
    assert "outcome:   pending" in shown.output
    assert "hello postmaster" in shown.output
    assert raw.stdout_bytes == MAIL
    assert missing.exit_code == 1
    assert "not found" in missing.output
