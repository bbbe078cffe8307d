"""Mangled input never raises: every failure path is a report."""

import random
from pathlib import Path

import pytest

from postroom.dsn import ReportKind, parse
from postroom.dsn.parse import _parse

CORPUS = Path(__file__).resolve().parents[2] / ".." / "shared" / "bounce-corpus"
SAMPLES = sorted((CORPUS / "emails").rglob("*.eml"))

pytestmark = pytest.mark.skipif(not SAMPLES, reason="bounce corpus not present")


def _mangled(seed: int) -> list[bytes]:
    rng = random.Random(seed)
    out = []
    for path in rng.sample(SAMPLES, min(60, len(SAMPLES))):
        raw = path.read_bytes()
        out.append(raw[: rng.randrange(len(raw) + 1)])
        flipped = bytearray(raw)
        for _ in range(rng.randrange(1, 40)):
            flipped[rng.randrange(len(flipped))] = rng.randrange(256)
        out.append(bytes(flipped))
        out.append(rng.randbytes(rng.randrange(2000)))
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_truncated_flipped_and_random_bytes_never_raise(seed: int) -> None:
    for raw in _mangled(seed):
        _parse(raw)  # the unguarded reader: a raise here is a bug


def test_every_corpus_file_and_crlf_copy_parses_without_raising() -> None:
    for path in SAMPLES:
        _parse(path.read_bytes())


@pytest.mark.parametrize(
    "raw", [b"", b"\n\n\n", b"\xff\xfe\x00", b"Subject: x", b"From: \n\n--"]
)
def test_degenerate_input_is_unknown_or_not_a_bounce(raw: bytes) -> None:
    assert parse(raw).kind in (ReportKind.UNKNOWN, ReportKind.NOT_BOUNCE)


def test_deeply_nested_multipart_is_bounded() -> None:
    head = b"Content-Type: multipart/mixed; boundary=b\n\n--b\n"
    raw = b"From: x@example.com\n" + head * 500 + b"text\n"

    assert parse(raw).kind is ReportKind.NOT_BOUNCE


def test_a_text_part_that_decodes_to_a_lone_surrogate_does_not_raise() -> None:
    # UTF-7 can spell half of a surrogate pair; the pasted-bounce reader
    # re-encodes the decoded text.
    raw = (
        b"From: MAILER-DAEMON@mx.example.net\n"
        b"Subject: Returned mail\n"
        b'Content-Type: multipart/report; boundary="b"\n\n'
        b"--b\nContent-Type: text/plain; charset=utf-7\n\n"
        b"The report follows.\n"
        b"Return-Path: <>\n"
        b"Subject: Undelivered Mail +2Gs-\n\n"
        b"<gone@example.net>: 550 5.1.1 User unknown\n"
        b"--b--\n"
    )

    _parse(raw)  # the unguarded reader: a raise here is a bug
