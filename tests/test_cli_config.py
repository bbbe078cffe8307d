"""The command line's handling of configuration files, as a user meets it."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import yaml

POSTROOM = [sys.executable, "-m", "postroom"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*POSTROOM, *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_config_check_accepts_the_embedded_default() -> None:
    result = run("config", "check")

    assert result.returncode == 0
    assert "ok:" in result.stdout


def test_a_broken_config_stops_serve_naming_each_key_without_a_traceback(
    tmp_path: Path,
) -> None:
    broken = tmp_path / "postroom.yaml"
    broken.write_text("queue:\n  max_age: 4.5x\nsubmission:\n  lisen: 1.2.3.4:25\n")

    result = run("serve", "--config", str(broken))

    assert result.returncode == 2
    assert "queue.max_age: '4.5x' is not a duration" in result.stderr
    assert "submission.lisen: unknown key" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_missing_config_file_is_named(tmp_path: Path) -> None:
    result = run("config", "check", "--config", str(tmp_path / "nope.yaml"))

    assert result.returncode == 2
    assert "nope.yaml" in result.stderr
    assert "cannot read the file" in result.stderr


def test_config_show_prints_the_effective_values(tmp_path: Path) -> None:
    path = tmp_path / "postroom.yaml"
    path.write_text("queue: {max_age: 2d}\n")

    result = run("config", "show", "--config", str(path))

    shown = yaml.safe_load(result.stdout)
    assert result.returncode == 0
    assert shown["queue"]["max_age"] == "2d"
    assert shown["submission"]["listen"] == "127.0.0.1:2525"


SECRETS = {
    "queue": {"url": "postgresql://postroom:db-pass-1@db.example/postroom"},
    "submission": {
        "users": {"panel": "scrypt$hash-of-panel"},
        "tls": {"cert": "/etc/postroom/cert.pem", "key": "/etc/postroom/key.pem"},
    },
    "web": {"users": {"viewer": "scrypt$hash-of-viewer"}},
    "inbound": {"secret": "inbound-secret-0123456789"},
    "webhooks": [
        {
            "url": "https://hook:hook-pass-2@hooks.example/postroom",
            "secret": "webhook-secret-0123456789",
        },
        {
            "url": "https://hooks.example/other?token=t&password=hook-pass-3",
            "secret": "webhook-secret-9876543210",
        },
    ],
}


def test_config_show_masks_every_secret_unless_asked(tmp_path: Path) -> None:
    path = tmp_path / "postroom.yaml"
    path.write_text(yaml.safe_dump(SECRETS))

    masked = run("config", "show", "--config", str(path))
    clear = run("config", "show", "--config", str(path), "--show-secrets")

    assert masked.returncode == 0
    for secret in ("db-pass-1", "hook-pass-2", "hook-pass-3", "secret-", "hash-of"):
        assert secret not in masked.stdout
    assert masked.stdout.startswith("# secrets masked; --show-secrets prints them\n")
    shown = yaml.safe_load(masked.stdout)
    assert shown["queue"]["url"] == "postgresql://postroom@db.example/postroom"
    assert shown["submission"]["users"] == {"panel": "********"}
    assert shown["web"]["users"] == {"viewer": "********"}
    assert shown["inbound"]["secret"] == "********"
    assert [hook["secret"] for hook in shown["webhooks"]] == ["********"] * 2
    assert [hook["url"] for hook in shown["webhooks"]] == [
        "https://hook@hooks.example/postroom",
        "https://hooks.example/other?token=t&password=********",
    ]
    assert clear.returncode == 0
    assert yaml.safe_load(clear.stdout)["webhooks"][0] == {
        **SECRETS["webhooks"][0],
        "events": ["delivered", "deferred", "bounced", "unsubscribed", "complaint"],
    }
    assert "db-pass-1" in clear.stdout
    assert "hash-of-panel" in clear.stdout
    assert not clear.stdout.startswith("#")


def test_config_show_of_a_config_without_secrets_says_nothing_of_them() -> None:
    result = run("config", "show")

    assert result.returncode == 0
    assert not result.stdout.startswith("#")


def test_a_busy_listen_address_names_the_config_file_and_key(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = tmp_path / "postroom.yaml"
        config.write_text(
            f"data_dir: {tmp_path / 'var'}\nsubmission: {{listen: 127.0.0.1:{port}}}\n"
        )

        result = run("serve", "--config", str(config))

    assert result.returncode == 2
    assert f"configuration error in {config}" in result.stderr
    assert "submission.listen: cannot listen on" in result.stderr


def test_config_check_opens_the_dkim_key_files_it_names(tmp_path: Path) -> None:
    config = tmp_path / "postroom.yaml"
    config.write_text(
        "dkim:\n  - {domain: example.org, selector: s1, key: "
        f"{tmp_path / 'missing.key'}}}\n"
    )

    result = run("config", "check", "--config", str(config))

    assert result.returncode == 2
    assert "dkim.0.key" in result.stderr
    assert "cannot read the key file" in result.stderr


def test_config_check_refuses_two_listeners_on_one_port_naming_both_keys(
    tmp_path: Path,
) -> None:
    config = tmp_path / "postroom.yaml"
    config.write_text(
        "submission: {listen: '127.0.0.1:2525'}\n"
        "inbound: {listen: '127.0.0.1:2525', bounce_domain: bounces.example.org}\n"
    )

    result = run("config", "check", "--config", str(config))

    assert result.returncode == 2
    assert (
        "inbound.listen: 127.0.0.1:2525 is also submission.listen (127.0.0.1:2525)"
        in result.stderr
    )
    assert "ok:" not in result.stdout
