"""`postroom dsn parse` on files, mboxes, Maildirs and folders."""

from __future__ import annotations

import json
import mailbox
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from postroom.cli import main

POSTROOM = [sys.executable, "-m", "postroom"]
# shared/ lies beside the checkout, in development and in CI alike.
CORPUS = (
    Path(__file__).resolve().parents[1] / ".." / "shared" / "bounce-corpus" / "emails"
)
needs_corpus = pytest.mark.skipif(
    not CORPUS.is_dir(), reason="the shared bounce corpus is not here"
)
RECORD_KEYS = {
    "recipient",
    "action",
    "reply_code",
    "status",
    "category",
    "hard",
    "diagnostic",
    "remote_mta",
}
# The smallest RFC 3464 report: one recipient, refused as unknown.
BOUNCE = (
    b"From: MAILER-DAEMON@mx.example\r\n"
    b"To: bounce@relay.example\r\n"
    b"Subject: Undelivered Mail Returned to Sender\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n'
    b"\r\n"
    b"--b\r\n"
    b"Content-Type: text/plain\r\n"
    b"\r\n"
    b"Your message could not be delivered.\r\n"
    b"--b\r\n"
    b"Content-Type: message/delivery-status\r\n"
    b"\r\n"
    b"Reporting-MTA: dns; mx.example\r\n"
    b"\r\n"
    b"Final-Recipient: rfc822; gone@x.example\r\n"
    b"Action: failed\r\n"
    b"Status: 5.1.1\r\n"
    b"Diagnostic-Code: smtp; 550 5.1.1 <gone@x.example>: user unknown\r\n"
    b"--b--\r\n"
)


def run(*args: str) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def parse_in_subprocess(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*POSTROOM, "dsn", "parse", *map(str, paths)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


@needs_corpus
def test_dsn_parse_json_prints_one_documented_object_per_message() -> None:
    files = [CORPUS / "lhost-postfix-04.eml", CORPUS / "arf-01.eml"]

    lines = run("dsn", "parse", "--json", *map(str, files)).splitlines()

    first, second = (json.loads(line) for line in lines)
    assert set(first) == {"file", "kind", "records"}
    assert (first["file"], first["kind"]) == (str(files[0]), "dsn")
    [record] = first["records"]
    assert set(record) == RECORD_KEYS
    assert (record["action"], record["status"], record["hard"]) == (
        "failed",
        "5.1.1",
        True,
    )
    assert second["kind"] == "arf"


@needs_corpus
def test_dsn_parse_reads_an_mbox_and_a_maildir(tmp_path: Path) -> None:
    names = ["lhost-postfix-01.eml", "lhost-exim-01.eml", "rfc3834-01.eml"]
    box = mailbox.mbox(tmp_path / "bounces.mbox")
    maildir = mailbox.Maildir(tmp_path / "Maildir")
    for name in names:
        raw = (CORPUS / name).read_bytes()
        box.add(raw)
        maildir.add(raw)
    box.close()

    from_mbox = run("dsn", "parse", "--json", str(tmp_path / "bounces.mbox"))
    from_maildir = run("dsn", "parse", "--json", str(tmp_path / "Maildir"))

    mbox_reports = [json.loads(line) for line in from_mbox.splitlines()]
    maildir_reports = [json.loads(line) for line in from_maildir.splitlines()]
    assert [r["file"].rpartition("#")[2] for r in mbox_reports] == ["1", "2", "3"]
    assert [r["kind"] for r in mbox_reports] == ["dsn", "dsn", "auto_reply"]
    assert sorted(r["kind"] for r in maildir_reports) == ["auto_reply", "dsn", "dsn"]
    assert all("/new/" in r["file"] for r in maildir_reports)


@needs_corpus
def test_dsn_parse_without_json_prints_each_recipient(tmp_path: Path) -> None:
    copy = tmp_path / "one.eml"
    shutil.copy(CORPUS / "lhost-postfix-04.eml", copy)

    output = run("dsn", "parse", str(copy))

    assert output.splitlines()[0].startswith(f"{copy}: dsn")
    assert "failed  550 5.1.1  unknown_user (hard)" in output


def test_dsn_parse_says_when_a_folder_holds_no_messages(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    one = tmp_path / "one.eml"
    one.write_bytes(BOUNCE)

    alone = parse_in_subprocess(empty)
    mixed = parse_in_subprocess(one, empty)
    missing = parse_in_subprocess(tmp_path / "nope")

    assert (alone.returncode, alone.stdout) == (1, "")
    assert alone.stderr == f"postroom: no messages in {empty}\n"
    assert mixed.returncode == 1
    assert mixed.stdout.startswith(f"{one}: dsn")
    assert f"no messages in {empty}" in mixed.stderr
    assert missing.returncode == 2


@pytest.mark.parametrize("content", [b"", b" \r\n\t\n"])
def test_dsn_parse_takes_an_empty_file_for_no_message(
    tmp_path: Path, content: bytes
) -> None:
    blank = tmp_path / "blank.mbox"
    blank.write_bytes(content)
    one = tmp_path / "one.eml"
    one.write_bytes(BOUNCE)

    alone = parse_in_subprocess(blank)
    mixed = parse_in_subprocess(one, blank)

    assert (alone.returncode, alone.stdout) == (1, "")
    assert alone.stderr == f"postroom: no messages in {blank}\n"
    assert mixed.returncode == 1
    assert mixed.stdout.startswith(f"{one}: dsn")
    assert mixed.stderr == f"postroom: no messages in {blank}\n"


def test_dsn_parse_passes_over_empty_files_in_a_folder(tmp_path: Path) -> None:
    folder = tmp_path / "bounces"
    folder.mkdir()
    (folder / "a.eml").write_bytes(b"")
    (folder / "b.eml").write_bytes(BOUNCE)

    output = run("dsn", "parse", str(folder))

    assert output.splitlines()[0].startswith(f"{folder / 'b.eml'}: dsn")
