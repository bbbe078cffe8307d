"""VERP stamping: the return path and the signed recipient header."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from postroom.config import Config
from postroom.queue.models import Delivery, Recipient, State
from postroom.queue.sqlite import SqliteStore
from postroom.relay.stamp import Stamped, build_stamper
from postroom.relay.verp import RCPT_HEADER, VerpStep, bounce_signer, with_header
from postroom.tokens import TokenSigner

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
RAW = b"Received: by relay.test\r\nSubject: hi\r\n\r\nbody\r\n"


def delivery(recipient_id: int, mail_from: str = "surveys@example.org") -> Delivery:
    recipient = Recipient(
        id=recipient_id,
        queue_id="q1",
        address="ok@example.net",
        display_name="",
        campaign="spring",
        state=State.QUEUED,
        attempts=0,
        accepted_at=T0,
        next_attempt_at=T0,
        updated_at=T0,
    )
    return Delivery(recipient, mail_from, T0)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened = SqliteStore(tmp_path / "q.sqlite3")
    await opened.open()
    yield opened
    await opened.close()


def verp_config(tmp_path: Path, **inbound: object) -> Config:
    return Config.model_validate(
        {
            "data_dir": str(tmp_path),
            "inbound": {"bounce_domain": "bounces.example.org", **inbound},
        }
    )


async def test_each_recipient_gets_a_return_path_naming_its_row(
    tmp_path: Path, store: SqliteStore
) -> None:
    stamper = await build_stamper(verp_config(tmp_path), store)
    signer = TokenSigner(await store.secret("verp"), "bounce")

    stamped = stamper.stamp(delivery(42), RAW)

    local, _, domain = stamped.mail_from.partition("@")
    assert domain == "bounces.example.org"
    assert local.startswith("bounces+")
    assert signer.check(local.removeprefix("bounces+")) == 42


@pytest.mark.parametrize("recipient_id", [0, 1, 2**31, 2**63 - 1])
async def test_the_local_part_fits_64_octets_and_survives_lowercasing(
    tmp_path: Path, store: SqliteStore, recipient_id: int
) -> None:
    config = verp_config(tmp_path, bounce_local="a" * 32)
    stamper = await build_stamper(config, store)
    signer = await bounce_signer(config, store)

    mail_from = stamper.stamp(delivery(recipient_id), RAW).mail_from

    local = mail_from.partition("@")[0]
    assert len(local) <= 64
    assert local == local.lower()
    assert signer.check(local.upper().lower().partition("+")[2]) == recipient_id


async def test_a_bounce_keeps_the_null_sender_but_gets_the_header(
    tmp_path: Path, store: SqliteStore
) -> None:
    stamper = await build_stamper(verp_config(tmp_path), store)

    stamped = stamper.stamp(delivery(7, mail_from=""), RAW)

    assert stamped.mail_from == ""
    assert f"{RCPT_HEADER}: ".encode() in stamped.raw


async def test_the_header_carries_the_same_token_at_the_end_of_the_header(
    tmp_path: Path, store: SqliteStore
) -> None:
    stamper = await build_stamper(verp_config(tmp_path), store)

    stamped = stamper.stamp(delivery(42), RAW)

    token = stamped.mail_from.partition("+")[2].partition("@")[0]
    assert stamped.raw == (
        b"Received: by relay.test\r\nSubject: hi\r\n"
        + f"{RCPT_HEADER}: {token}\r\n".encode()
        + b"\r\nbody\r\n"
    )


async def test_without_a_bounce_domain_the_sender_and_message_are_kept(
    tmp_path: Path, store: SqliteStore
) -> None:
    stamper = await build_stamper(Config(data_dir=tmp_path), store)

    stamped = stamper.stamp(delivery(42), RAW)

    assert (stamped.mail_from, stamped.raw) == ("surveys@example.org", RAW)


async def test_a_configured_secret_gives_every_store_the_same_key(
    tmp_path: Path, store: SqliteStore
) -> None:
    config = verp_config(tmp_path, secret="s" * 32)
    other = SqliteStore(tmp_path / "other.sqlite3")
    await other.open()
    try:
        first = await bounce_signer(config, store)
        second = await bounce_signer(config, other)
    finally:
        await other.close()

    assert second.check(first.mint(99)) == 99


def test_a_header_goes_into_a_message_that_is_all_header() -> None:
    assert with_header(b"Subject: hi\r\n", "X-A: 1") == b"Subject: hi\r\nX-A: 1\r\n"
    assert with_header(b"\r\nbody", "X-A: 1") == b"X-A: 1\r\n\r\nbody"


def test_the_step_is_usable_on_its_own() -> None:
    step = VerpStep(TokenSigner(b"k" * 32, "bounce"), "b", "d.example")

    stamped = step(delivery(3), Stamped("x@example.org", RAW))

    assert stamped.mail_from.startswith("b+")
    assert stamped.mail_from.endswith("@d.example")
