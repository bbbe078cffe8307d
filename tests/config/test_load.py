from datetime import timedelta
from importlib import resources
from pathlib import Path

import pytest

from postroom.config import Config, load_config, parse_config
from postroom.errors import ConfigError


def test_the_embedded_default_file_matches_the_defaults_in_code() -> None:
    text = resources.files("postroom.config").joinpath("default.yaml").read_text()

    config = parse_config(text)

    assert config.model_dump(exclude={"hostname"}) == Config().model_dump(
        exclude={"hostname"}
    )


def test_no_file_gives_the_embedded_default() -> None:
    config = load_config(None)

    assert config.submission.listen == "127.0.0.1:2525"
    assert config.queue.max_age == timedelta(days=4, hours=12)
    assert config.queue.retry_schedule[0] == timedelta(minutes=5)
    assert config.sqlite_path == Path("var/postroom.sqlite3")


def test_an_empty_file_is_the_default() -> None:
    assert parse_config("").queue == Config().queue


def test_every_documented_key_is_read() -> None:
    text = """
hostname: relay.example.org
data_dir: /var/lib/postroom
queue:
  url: null
  retry_schedule: [1m, 2h]
  max_age: 2d
  keep_bodies: 1d
  keep_records: 30d
submission:
  listen: 0.0.0.0:587
  trusted_networks: [10.0.0.0/8]
  users: {app: "scrypt$16384$8$1$c2FsdA==$aGFzaA=="}
  tls: {cert: /etc/ssl/relay.pem, key: /etc/ssl/relay.key}
  max_message_size: 10MB
campaigns:
  header: X-Survey
delivery:
  routes: {"example.net": "127.0.0.1:2626", "*": "smarthost.example.org:587"}
  dns: {nameservers: [127.0.0.1], port: 5353, timeout: 2s}
  smtp_port: 2525
  source_ip: 192.0.2.10
  concurrency: 50
  per_domain_concurrency: 5
"""
    config = parse_config(text)

    assert config.hostname == "relay.example.org"
    assert config.queue.retry_schedule == (timedelta(minutes=1), timedelta(hours=2))
    assert config.queue.max_age == timedelta(days=2)
    assert config.submission.max_message_size == 10_000_000
    assert config.submission.tls.enabled
    assert config.campaigns.header == "X-Survey"
    assert config.delivery.routes["*"] == "smarthost.example.org:587"
    assert config.delivery.dns.port == 5353
    assert config.delivery.source_ip == "192.0.2.10"
    assert config.sqlite_path == Path("/var/lib/postroom/postroom.sqlite3")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("queue: {max_age: 4.5x}", "queue.max_age: '4.5x' is not a duration"),
        ("queue: {retry_schedule: []}", "queue.retry_schedule:"),
        ("queue: {retry_schedule: [5m, 0s]}", "queue.retry_schedule.1: '0s': a dur"),
        ("queue: {purge_interval: 0s}", "must be longer than zero"),
        ("delivery: {poll_interval: 0}", "must be longer than zero"),
        ("submission: {trusted_networks: [0.0.0.0/0]}", "would make postroom an open"),
        ("submission: {trusted_networks: ['::/0']}", "open relay"),
        (
            "submission: {users: {app: 'scrypt$1$1$1$c2FsdA==$aGFzaA=='}}",
            "AUTH is offe",
        ),
        ("delivery: {lease: 1m}", "delivery: lease (1m) must be at least twice"),
        (
            "queue: {retry_schedule: 5m}",
            "queue.retry_schedule: expected a list, not '5m'",
        ),
        ("data_dir: [a]", "data_dir: expected a file or directory path"),
        (
            "delivery: {concurrency: lots}",
            "delivery.concurrency: expected a whole number",
        ),
        ("queue:\n  max_age: 1d\n  max_age: 2d\n", "the key 'max_age' is given twice"),
        ("queue: {url: mysql://x}", "queue.url: must start with sqlite:///"),
        ("submission: {listen: localhost}", "submission.listen: 'localhost' is not"),
        ("submission: {trusted_networks: [300.1.1.1/8]}", "submission.trusted_ne"),
        ("submission: {users: {app: secret}}", "not a postroom hash"),
        ("submission: {max_message_size: lots}", "submission.max_message_size:"),
        ("submission: {tls: {cert: /x.pem}}", "cert and key must be given together"),
        ("delivery: {concurrency: 0}", "delivery.concurrency:"),
        ("delivery: {dns: {nameservers: [dns.google]}}", "not an IP address"),
        ("delivery: {routes: {example.net: nowhere}}", "delivery.routes.example.net:"),
        ("delivery: {smtp_port: 70000}", "delivery.smtp_port:"),
        ("queue: {max_agee: 1d}", "queue.max_agee: unknown key"),
        ("hostname: [a, b]", "hostname:"),
        ("[1, 2]", "the top level must be a mapping"),
        ("queue: {max_age: 1d\n", "not valid YAML"),
    ],
)
def test_a_broken_file_names_the_key_and_the_problem(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "postroom.yaml")

    assert expected in str(caught.value)
    assert str(caught.value).startswith("postroom.yaml: ")


def test_every_bad_network_in_a_list_is_named() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config("submission: {trusted_networks: [not-a-net, 10.0.0.0/33]}")

    assert "'not-a-net'" in str(caught.value)
    assert "'10.0.0.0/33'" in str(caught.value)


def test_every_broken_key_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config("queue: {max_age: soon}\ndelivery: {concurrency: -1}")

    assert len(caught.value.problems) == 2


def test_an_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_config(tmp_path / "missing.yaml")


def test_a_file_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"hostname: caf\xe9\n")

    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(path)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            "submission: {listen: '127.0.0.1:2525'}\n"
            "inbound: {listen: '127.0.0.1:2525', bounce_domain: bounces.test}\n",
            "inbound.listen: 127.0.0.1:2525 is also submission.listen",
        ),
        (
            "submission: {listen: '127.0.0.1:8025'}\nweb: {listen: '127.0.0.1:8025'}\n",
            "web.listen: 127.0.0.1:8025 is also submission.listen",
        ),
        (
            "inbound: {listen: '0.0.0.0:25', bounce_domain: bounces.test}\n"
            "web: {listen: '127.0.0.1:25'}\n",
            "web.listen: 127.0.0.1:25 is also inbound.listen (0.0.0.0:25)",
        ),
        (
            "submission: {listen: '[::]:2525'}\nweb: {listen: '[::1]:2525'}\n",
            "web.listen: [::1]:2525 is also submission.listen ([::]:2525)",
        ),
    ],
)
def test_two_listeners_on_one_address_and_port_are_refused(
    text: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as error:
        parse_config(text)

    assert problem in str(error.value)


@pytest.mark.parametrize(
    "text",
    [
        # Port 0 is any free port, a different one for each listener.
        "submission: {listen: '127.0.0.1:0'}\n"
        "inbound: {listen: '127.0.0.1:0', bounce_domain: bounces.test}\n"
        "web: {listen: '127.0.0.1:0'}\n",
        # Without a bounce domain there is no inbound listener.
        "inbound: {listen: '127.0.0.1:2525'}\n",
        # Without results pages or unsubscribe there is no web listener.
        "web: {listen: '127.0.0.1:2525', results: false}\n",
        "submission: {listen: '127.0.0.1:2525'}\nweb: {listen: '127.0.0.2:2525'}\n",
        # Each wildcard takes its port on the addresses of its own family.
        "submission: {listen: '0.0.0.0:2525'}\nweb: {listen: '[::]:2525'}\n",
        "submission: {listen: '0.0.0.0:2525'}\nweb: {listen: '[::1]:2525'}\n",
    ],
)
def test_listeners_that_can_all_be_opened_are_accepted(text: str) -> None:
    parse_config(text)


def test_every_broken_suppression_policy_entry_is_reported_at_once() -> None:
    text = "suppression:\n  policy:\n    unknown_user: maybe\n    bogus: true\n"

    with pytest.raises(ConfigError) as error:
        parse_config(text)

    assert error.value.problems[0].startswith(
        "suppression.policy.unknown_user: expected true or false, not 'maybe'"
    )
    assert error.value.problems[1].startswith(
        "suppression.policy.bogus: unknown category; known: auto_reply"
    )
    assert len(error.value.problems) == 2
