"""The List-Unsubscribe stamp step and the checks on its configuration."""

from __future__ import annotations

from datetime import UTC, datetime
from email.parser import BytesParser
from email.policy import default as default_policy
from pathlib import Path

import pytest

from postroom.config import Config, parse_config
from postroom.errors import ConfigError
from postroom.queue.models import Delivery, Recipient, State
from postroom.queue.open import open_store
from postroom.relay.stamp import Stamped, build_stamper
from postroom.relay.unsubscribe import UnsubscribeHeaders
from postroom.tokens import TokenSigner
from tests.test_unsubscribe_path import all_events

SIGNER = TokenSigner(b"k" * 32, "unsubscribe")
BASE = "https://mail.example.org/unsubscribe"
MESSAGE = (
    b"From: surveys@example.org\r\n"
    b"To: ada@example.net\r\n"
    b"Subject: Your invitation\r\n"
    b"\r\n"
    b"Please take our survey.\r\n"
)
APP_HEADERS = (
    b"List-Unsubscribe: <https://app.example.org/u/42>\r\n"
    b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
)


def delivery_for(recipient_id: int, campaign: str = "spring") -> Delivery:
    now = datetime(2026, 1, 5, 9, tzinfo=UTC)
    recipient = Recipient(
        recipient_id, "q1", "ada@example.net", "", campaign, State.QUEUED, 0,
        now, now, now,
    )  # fmt: skip
    return Delivery(recipient, "surveys@example.org", now)


def stamp(step: UnsubscribeHeaders, raw: bytes = MESSAGE) -> bytes:
    return step(delivery_for(7), Stamped("surveys@example.org", raw)).raw


def headers(raw: bytes) -> list[tuple[str, str]]:
    parsed = BytesParser(policy=default_policy).parsebytes(raw)
    return [(name, str(value).strip()) for name, value in parsed.items()]


def test_both_headers_name_the_recipient_by_its_token() -> None:
    step = UnsubscribeHeaders(SIGNER, BASE, mailto_domain="bounces.example.org")

    raw = stamp(step)

    token = SIGNER.mint(7)
    assert headers(raw)[-2:] == [
        (
            "List-Unsubscribe",
            f"<mailto:unsubscribe+{token}@bounces.example.org>, <{BASE}/{token}>",
        ),
        ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
    ]
    assert raw.endswith(b"\r\n\r\nPlease take our survey.\r\n")


def test_without_a_mailto_domain_only_the_https_uri_is_given() -> None:
    raw = stamp(UnsubscribeHeaders(SIGNER, BASE + "/"))

    assert (
        b"List-Unsubscribe: <https://mail.example.org/unsubscribe/"
        + SIGNER.mint(7).encode()
        + b">\r\n"
    ) in raw


def test_a_long_header_is_folded_between_its_uris() -> None:
    step = UnsubscribeHeaders(SIGNER, BASE, mailto_domain="bounces.example.org")

    raw = stamp(step)

    lines = raw.split(b"\r\n")
    assert all(len(line) <= 78 for line in lines)
    assert any(line.startswith(b" <https://") for line in lines)


def test_keep_leaves_the_applications_own_headers_alone() -> None:
    raw = MESSAGE.replace(b"\r\n\r\n", b"\r\n" + APP_HEADERS + b"\r\n", 1)

    stamped = stamp(UnsubscribeHeaders(SIGNER, BASE), raw)

    assert stamped == raw


def test_replace_puts_ours_in_place_of_the_applications() -> None:
    raw = MESSAGE.replace(b"\r\n\r\n", b"\r\n" + APP_HEADERS + b"\r\n", 1)

    stamped = stamp(UnsubscribeHeaders(SIGNER, BASE, replace=True), raw)

    names = [name for name, _ in headers(stamped)]
    assert names.count("List-Unsubscribe") == 1
    assert names.count("List-Unsubscribe-Post") == 1
    assert b"app.example.org" not in stamped
    assert SIGNER.mint(7).encode() in stamped


@pytest.mark.parametrize(
    "url",
    [
        "http://mail.example.org/unsubscribe",
        "ftp://mail.example.org/unsubscribe",
        "https://mail.example.org/unsubscribe?x=1",
        "mail.example.org/unsubscribe",
    ],
)
def test_a_base_url_that_is_not_https_is_refused_naming_the_key(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(f"unsubscribe: {{base_url: '{url}'}}")

    assert caught.value.problems[0].startswith("unsubscribe.base_url: ")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8025/unsubscribe",
        "http://localhost/u",
        "http://[::1]/u",
        "https://mail.example.org/unsubscribe/",
    ],
)
def test_https_or_a_loopback_http_base_url_is_accepted(url: str) -> None:
    config = parse_config(f"unsubscribe: {{base_url: '{url}'}}")

    assert config.unsubscribe.base_url == url.rstrip("/")


async def test_a_loopback_http_base_url_starts_with_a_warning(tmp_path: Path) -> None:
    config = Config(
        data_dir=tmp_path,
        unsubscribe={"base_url": "http://127.0.0.1:8025/unsubscribe"},  # type: ignore[arg-type]
    )
    store = open_store(config)
    await store.open()

    with all_events() as events:
        stamper = await build_stamper(config, store)
    raw = stamper.stamp(delivery_for(7), MESSAGE).raw
    await store.close()

    [warning] = [e for e in events if e["event"] == "unsubscribe.insecure_url"]
    assert warning["log_level"] == "warning"
    assert b"List-Unsubscribe: <http://127.0.0.1:8025/unsubscribe/" in raw


async def test_no_base_url_means_no_headers(config: Config) -> None:
    store = open_store(config)
    await store.open()

    stamper = await build_stamper(config, store)
    await store.close()

    assert stamper.stamp(delivery_for(7), MESSAGE).raw == MESSAGE
