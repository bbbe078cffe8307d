"""``postroom dkim keygen``: the key file it writes and the record it prints."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import dkim
import pytest

from postroom.clock import ManualClock
from postroom.config.schema import DkimKeyConfig
from postroom.relay.dkim import DkimSigner
from postroom.relay.dkim_keys import load_keys
from tests.peers.dkimdns import txt_lookup
from tests.peers.dnsserver import DnsServer
from tests.relay.test_dkim import invitation


def keygen(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "postroom", "dkim", "keygen", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("option", "algorithm"), [("rsa", "rsa-sha256"), ("ed25519", "ed25519-sha256")]
)
def test_keygen_writes_a_private_key_and_a_txt_record_dkimpy_accepts(
    tmp_path: Path, dns_server: DnsServer, option: str, algorithm: str
) -> None:
    out = tmp_path / "s1.example.org.key"

    result = keygen(
        "--domain", "example.org", "--selector", "s1", "--out", str(out),
        "--algorithm", option,
    )  # fmt: skip
    name, value = result.stdout.splitlines()
    dns_server.add(name, "TXT", value)
    [key] = load_keys(
        [
            DkimKeyConfig(
                domain="example.org", selector="s1", key=out, algorithm=algorithm
            )
        ]  # type: ignore[arg-type]
    )
    signed = DkimSigner([key], ManualClock()).sign(invitation())

    assert result.returncode == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert name == "s1._domainkey.example.org"
    assert value.startswith(f'"v=DKIM1; k={option}; p=')
    assert all(len(part) <= 257 for part in value.split(' "'))
    assert dkim.verify(signed, dnsfunc=txt_lookup(dns_server.port))


def test_keygen_does_not_overwrite_an_existing_key(tmp_path: Path) -> None:
    out = tmp_path / "s1.key"
    out.write_text("published key")

    result = keygen("--domain", "example.org", "--selector", "s1", "--out", str(out))

    assert result.returncode != 0
    assert "not overwriting" in result.stderr
    assert out.read_text() == "published key"
