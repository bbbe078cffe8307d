"""The blacklist_monitor section of the config file."""

from __future__ import annotations

import pytest

from postroom.config import parse_config
from postroom.config.schema import DnsblZone
from postroom.errors import ConfigError


def test_zones_are_names_or_mappings_and_zen_lists_ipv6_by_default() -> None:
    config = parse_config(
        "blacklist_monitor:\n"
        "  ip_zones: [ZEN.spamhaus.org., {zone: v6.example, ipv6: true}, b.example]\n"
    )

    assert config.blacklist_monitor.ip_zones == (
        DnsblZone(zone="zen.spamhaus.org", ipv6=True),
        DnsblZone(zone="v6.example", ipv6=True),
        DnsblZone(zone="b.example", ipv6=False),
    )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("blacklist_monitor: {timezone: Mars/Olympus}", "blacklist_monitor.timezone"),
        (
            "blacklist_monitor: {sending_ips: [not-an-ip]}",
            "blacklist_monitor.sending_ips",
        ),
        ("blacklist_monitor: {dns: {port: 0}}", "blacklist_monitor.dns.port"),
    ],
)
def test_bad_blacklist_monitor_settings_name_their_key(text: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text)

    assert any(p.startswith(problem) for p in caught.value.problems)
