"""The inbound and suppression sections of the config file."""

from __future__ import annotations

import pytest

from postroom.config import parse_config
from postroom.errors import ConfigError


def test_the_inbound_and_suppression_keys_are_read() -> None:
    config = parse_config(
        """
inbound:
  listen: 0.0.0.0:25
  bounce_domain: Bounces.Example.ORG.
  bounce_local: rtn
  secret: a-long-enough-secret
  postmaster_forward: [ops@example.org]
  feedback_local: abuse-reports
  unsubscribe_local: leave
suppression:
  scope: global
  policy: {blocked: true}
"""
    )

    assert config.inbound.bounce_domain == "bounces.example.org"
    assert config.inbound.postmaster_forward == ("ops@example.org",)
    assert config.suppression.scope == "global"
    assert config.suppression.policy["blocked"] is True
    assert config.suppression.policy["unknown_user"] is True


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("inbound: {bounce_local: Bounces}", "inbound.bounce_local"),
        ("inbound: {bounce_local: " + "a" * 33 + "}", "inbound.bounce_local"),
        ("inbound: {unsubscribe_local: fbl}", "must differ"),
        ("inbound: {secret: short}", "at least 16"),
        ("inbound: {bounce_domain: localhost}", "not a domain"),
        ("inbound: {postmaster_forward: [nobody]}", "not an e-mail address"),
        (
            "suppression: {policy: {no_such_thing: true}}",
            "suppression.policy.no_such_thing: unknown category; known: auto_reply",
        ),
        ("suppression: {scope: everywhere}", "suppression.scope"),
    ],
)
def test_a_bad_inbound_or_suppression_setting_is_named(text: str, problem: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_config(text)

    assert problem in str(error.value)
