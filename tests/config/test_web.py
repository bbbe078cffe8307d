"""Config tests for the web section's results switch and users, and webhooks."""

from __future__ import annotations

import pytest

from postroom.config import parse_config
from postroom.errors import ConfigError
from postroom.relay.passwords import hash_password


def test_results_pages_are_on_by_default_on_loopback_without_users() -> None:
    config = parse_config("{}")

    assert config.web.results is True
    assert config.web.listen.startswith("127.0.0.1:")
    assert config.web.users == {}
    assert config.webhooks == ()


def test_a_web_user_needs_a_postroom_hash() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config("web: {users: {ops: plain-text}}")

    assert "web.users" in str(caught.value.problems)


def test_a_hashed_web_user_is_taken() -> None:
    config = parse_config(f"web: {{users: {{ops: '{hash_password('pw')}'}}}}")

    assert list(config.web.users) == ["ops"]


def test_a_webhook_takes_every_event_unless_it_names_some() -> None:
    config = parse_config(
        "webhooks:\n"
        "  - {url: 'https://a.test/h', secret: sixteen-characters}\n"
        "  - {url: 'https://b.test/h', secret: sixteen-characters, events: [bounced]}\n"
    )

    assert len(config.webhooks[0].events) == 5
    assert config.webhooks[1].events == ("bounced",)


@pytest.mark.parametrize(
    "entry",
    [
        "{url: 'ftp://a.test/h', secret: sixteen-characters}",
        "{url: 'https://a.test/h', secret: short}",
        "{url: 'https://a.test/h', secret: sixteen-characters, events: [opened]}",
    ],
)
def test_a_broken_webhook_entry_is_refused(entry: str) -> None:
    with pytest.raises(ConfigError):
        parse_config(f"webhooks: [{entry}]")


def test_one_url_may_not_be_two_webhooks() -> None:
    hook = "{url: 'https://a.test/h', secret: sixteen-characters}"

    with pytest.raises(ConfigError):
        parse_config(f"webhooks: [{hook}, {hook}]")
