"""The queue, stats and export commands against a real store."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from postroom.cli import export_fields, main, split_name
from postroom.config import load_config
from postroom.queue.models import (
    Attempt,
    AttemptResult,
    BounceRecord,
    ExportRow,
    NewMessage,
    NewRecipient,
    Outcome,
    State,
)
from postroom.queue.open import open_store

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "postroom.yaml"
    path.write_text(yaml.safe_dump({"data_dir": str(tmp_path / "var")}))
    return path


@pytest.fixture
def queue_id(config_file: Path) -> str:
    """A message to three recipients: one deferred, one bounced, one waiting."""

    async def fill() -> str:
        store = open_store(load_config(config_file))
        await store.open()
        accepted = await store.accept(
            NewMessage(
                mail_from="surveys@example.org",
                recipients=(
                    NewRecipient("later@example.net", "Bob Later"),
                    NewRecipient("nouser@example.net", "User, Nora"),
                    NewRecipient("new@example.net"),
                ),
                raw=b"Subject: hi\r\n\r\nbody\r\n",
                campaign="spring",
                submitted_by=None,
                client_address="127.0.0.1",
            ),
            T0,
        )
        later, nouser, _ = accepted.recipient_ids
        await store.lease_due(T0, 10, timedelta(minutes=5))
        await store.record(
            AttemptResult(
                Attempt(later, T0, Outcome.DEFERRED, "mx.example.net", 451,
                        "4.7.1", "4.7.1 Greylisted"),
                State.DEFERRED,
                next_attempt_at=T0 + timedelta(minutes=5),
            )
        )  # fmt: skip
        await store.record(
            AttemptResult(
                Attempt(nouser, T0, Outcome.BOUNCED, "mx.example.net", 550,
                        None, "No such user"),
                State.BOUNCED,
                bounce=BounceRecord(nouser, "nouser@example.net", "spring", T0,
                                    "failed", 550, None, "unknown_user", True,
                                    "No such user"),
            )
        )  # fmt: skip
        await store.close()
        return accepted.queue_id

    return asyncio.run(fill())


def invoke(*args: str) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_stats_json_has_every_documented_figure(
    config_file: Path, queue_id: str
) -> None:
    figures = json.loads(invoke("stats", "--json", "--config", str(config_file)))

    assert figures == {
        "campaign": None,
        "sent_ok": 0,
        "bounced": 1,
        "invalid": 0,
        "deferred": 1,
        "queued": 1,
        "suppressed": 0,
        "unsubscribed": 0,
        "complaints": 0,
    }


def test_stats_for_an_unknown_campaign_are_zero(
    config_file: Path, queue_id: str
) -> None:
    figures = json.loads(
        invoke("stats", "--campaign", "other", "--json", "--config", str(config_file))
    )

    assert figures["bounced"] == figures["deferred"] == figures["queued"] == 0


def test_queue_list_shows_waiting_recipients(config_file: Path, queue_id: str) -> None:
    listing = invoke("queue", "list", "--config", str(config_file))

    assert "later@example.net" in listing
    assert "new@example.net" in listing
    assert "nouser@example.net" not in listing  # final, not waiting
    assert "451 4.7.1" in listing


def test_queue_show_prints_every_attempt(config_file: Path, queue_id: str) -> None:
    shown = invoke("queue", "show", queue_id, "--config", str(config_file))

    assert f"queue id:    {queue_id}" in shown
    assert "campaign:    spring" in shown
    assert "Greylisted" in shown
    assert "550" in shown


def test_queue_show_of_an_unknown_id_fails_clearly(
    config_file: Path, queue_id: str
) -> None:
    result = CliRunner().invoke(
        main, ["queue", "show", "nope", "--config", str(config_file)]
    )

    assert result.exit_code == 1
    assert "not found" in result.output


def test_queue_retry_makes_deferred_recipients_due(
    config_file: Path, queue_id: str
) -> None:
    output = invoke("queue", "retry", queue_id, "--config", str(config_file))

    assert output.strip() == "1 recipient(s) due now"


def test_queue_retry_does_not_count_a_suppressed_recipient(
    config_file: Path, queue_id: str
) -> None:
    cfg = ("--config", str(config_file))
    invoke("suppress", "add", *cfg, "--campaign", "spring", "later@example.net")

    output = invoke("queue", "retry", "--all", *cfg)

    assert output.strip() == "0 recipient(s) due now"


def test_queue_delete_removes_waiting_recipients_and_keeps_final_ones(
    config_file: Path, queue_id: str
) -> None:
    output = invoke("queue", "delete", queue_id, "--config", str(config_file))
    listing = invoke("queue", "list", "--config", str(config_file))
    figures = json.loads(invoke("stats", "--json", "--config", str(config_file)))

    assert output.strip() == f"deleted 2 waiting recipient(s) of {queue_id}"
    assert listing == ""
    assert (figures["bounced"], figures["deferred"], figures["queued"]) == (1, 0, 0)


def test_queue_list_has_a_header_line(config_file: Path, queue_id: str) -> None:
    first = invoke("queue", "list", "--config", str(config_file)).splitlines()[0]

    assert first.split()[:3] == ["QUEUE", "ID", "STATE"]


def test_queue_retry_of_an_unknown_id_fails(config_file: Path, queue_id: str) -> None:
    result = CliRunner().invoke(
        main, ["queue", "retry", "nope", "--config", str(config_file)]
    )

    assert result.exit_code == 1
    assert "not found" in result.output


def test_queue_retry_takes_an_id_or_all_but_not_both(
    config_file: Path, queue_id: str
) -> None:
    result = CliRunner().invoke(
        main, ["queue", "retry", queue_id, "--all", "--config", str(config_file)]
    )

    assert result.exit_code == 2


def test_commands_refuse_to_invent_an_empty_queue(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.yaml"
    elsewhere.write_text(yaml.safe_dump({"data_dir": str(tmp_path / "nothing")}))

    result = CliRunner().invoke(main, ["stats", "--config", str(elsewhere)])

    assert result.exit_code == 1
    assert "no queue at" in result.output
    assert not (tmp_path / "nothing").exists()


def test_an_empty_time_window_is_refused(config_file: Path, queue_id: str) -> None:
    result = CliRunner().invoke(
        main,
        ["export", "bounces", "--since", "2026-03-03", "--until", "2026-03-02",
         "--config", str(config_file)],
    )  # fmt: skip

    assert result.exit_code == 2
    assert "--since must come before --until" in result.output


def test_bounce_export_derives_the_class_from_the_basic_code(
    config_file: Path, queue_id: str
) -> None:
    rows = list(
        csv.reader(
            io.StringIO(invoke("export", "bounces", "--config", str(config_file)))
        )
    )

    assert rows[1] == [
        "nouser@example.net", "User", "Nora", "550", "5", "0", "0",
        "2026-03-02T08:00:00Z",
    ]  # fmt: skip


def test_export_time_window_is_inclusive_then_exclusive(
    config_file: Path, queue_id: str
) -> None:
    inside = invoke("export", "deferrals", "--since", "2026-03-02T08:00:00Z",
                    "--config", str(config_file))  # fmt: skip
    outside = invoke("export", "deferrals", "--until", "2026-03-02T08:00:00Z",
                     "--config", str(config_file))  # fmt: skip

    assert "later@example.net,Later,Bob,451,4,7,1" in inside
    assert outside.count("\n") == 1  # the header alone


def test_a_bad_time_is_refused_with_the_expected_form(config_file: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["export", "bounces", "--since", "yesterday", "--config", str(config_file)],
    )

    assert result.exit_code == 2
    assert "ISO 8601" in result.output


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Ada Lovelace", ("Lovelace", "Ada")),
        ("Lovelace, Ada", ("Lovelace", "Ada")),
        ("Mary Ann  Evans", ("Evans", "Mary Ann")),
        ("Cher", ("Cher", "")),
        ("", ("", "")),
    ],
)
def test_names_are_split_into_last_and_first(
    name: str, expected: tuple[str, str]
) -> None:
    assert split_name(name) == expected


def test_a_row_with_no_code_at_all_leaves_the_codes_empty() -> None:
    row = ExportRow("a@example.net", "", "c", None, None, T0, "timed out")

    assert export_fields(row)[3:7] == ("", "", "", "")
