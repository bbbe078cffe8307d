"""Reading what the inbound listener kept, from the command line."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from postroom.cli import main
from postroom.clock import ManualClock
from postroom.config import load_config
from postroom.queue.models import NewInboundReport
from postroom.queue.open import open_store

MAIL = b"From: someone@example.com\r\nSubject: your relay\r\n\r\nhello postmaster\r\n"


def keep(config_file: Path, mail_from: str = "someone@example.com") -> int:
    async def run() -> int:
        store = open_store(load_config(config_file))
        await store.open()
        try:
            report = NewInboundReport(
                "192.0.2.7", mail_from, ("postmaster@relay.test",), MAIL
            )
            return await store.add_inbound(report, ManualClock().now())
        finally:
            await store.close()

    return asyncio.run(run())


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "postroom.yaml"
    path.write_text(yaml.safe_dump({"data_dir": str(tmp_path / "var")}))
    return path


def inbound(config_file: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["inbound", *args, "--config", str(config_file)])


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


def test_the_list_shows_the_newest_first_up_to_the_limit(config_file: Path) -> None:
    ids = [keep(config_file) for _ in range(3)]

    listing = inbound(config_file, "list", "--limit", "2")

    assert listing.exit_code == 0
    listed = [int(line.split()[0]) for line in listing.output.splitlines()[1:]]
    assert listed == [ids[2], ids[1]]


def test_the_outcome_filter_offers_every_outcome_and_refuses_others(
    config_file: Path,
) -> None:
    keep(config_file)

    pending = inbound(config_file, "list", "--outcome", "pending")
    unreadable = inbound(config_file, "list", "--outcome", "unreadable")
    bogus = inbound(config_file, "list", "--outcome", "bogus")

    assert len(pending.output.splitlines()) == 2  # the heading and the one
    assert (unreadable.exit_code, unreadable.output) == (0, "")
    assert bogus.exit_code == 2
    assert "'bogus' is not one of" in bogus.output
    for outcome in ("no_failure", "unreadable", "forwarded", "forged", "pending"):
        assert f"'{outcome}'" in bogus.output


@pytest.mark.parametrize("null_sender", ["<>", ""])
def test_the_null_sender_reads_as_empty_angle_brackets(
    config_file: Path, null_sender: str
) -> None:
    report_id = keep(config_file, mail_from=null_sender)

    listing = inbound(config_file, "list")
    shown = inbound(config_file, "show", str(report_id))

    assert "<<>>" not in listing.output + shown.output
    assert " <> " in listing.output
    assert "from:      <>\n" in shown.output


def test_show_prints_plain_newlines_and_raw_the_bytes_kept(config_file: Path) -> None:
    report_id = keep(config_file)

    shown = inbound(config_file, "show", str(report_id))
    raw = inbound(config_file, "show", str(report_id), "--raw")

    # Result.output would turn CRLF into LF itself: read the bytes.
    assert b"\r" not in shown.stdout_bytes
    assert shown.stdout_bytes.endswith(b"Subject: your relay\n\nhello postmaster\n")
    assert raw.stdout_bytes == MAIL
