"""Log lines: JSON when asked, every line, secrets masked."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from postroom import log


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()


@pytest.mark.usefixtures("restore_logging")
def test_library_warnings_and_our_events_are_all_json_lines(
    capsys: pytest.CaptureFixture[str],
) -> None:
    log.configure("info", "json")

    logging.getLogger("mail.log").warning("%r unrecognised: %s", ("::1", 1), b"\x00")
    structlog.get_logger().info("submission.accepted", queue_id="q1", password="pw")

    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [line["event"] for line in lines][1] == "submission.accepted"
    assert lines[0]["logger"] == "mail.log"
    assert lines[0]["level"] == "warning"
    assert lines[1]["password"] == "********"
    assert "pw" not in json.dumps(lines)


@pytest.mark.usefixtures("restore_logging")
def test_library_debug_lines_stay_out_even_at_debug_level(
    capsys: pytest.CaptureFixture[str],
) -> None:
    log.configure("debug", "json")

    logging.getLogger("mail.log").debug("AUTH PLAIN AHVzZXIAcGFzcw==")

    assert capsys.readouterr().err == ""
