"""Real `postroom serve` processes and the clients that feed them, for the
many-node tests and the cluster benchmark.

A `Node` is one daemon with a submission port of its own, delivering every
``example.net`` recipient to a sink on loopback. `Submitter` keeps one SMTP
connection to a node open and sends message after message over it, noting
each reply code, so that thousands of messages are submitted quickly.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiosmtplib
import yaml

from tests.peers.dnsserver import free_port


def invitation(seq: int, local: str = "ok") -> EmailMessage:
    """Message number ``seq``, to ``<local>+<seq>@example.net``."""
    message = EmailMessage()
    message["From"] = "surveys@example.org"
    message["To"] = f"{local}+{seq}@example.net"
    message["Subject"] = f"Invitation {seq}"
    message["X-Seq"] = str(seq)
    message.set_content(f"Invitation number {seq}.\n")
    return message


def sequence(data: bytes) -> int:
    """The ``X-Seq`` number of a delivered message."""
    match = re.search(rb"^X-Seq: (\d+)\r?$", data, re.MULTILINE)
    assert match is not None, "a delivered message lost its header"
    return int(match[1])


@dataclass
class Node:
    """One daemon; `start` it, then submit to ``port``."""

    folder: Path
    queue_url: str | None
    sink_port: int
    concurrency: int = 20
    lease: str = "3s"
    level: str = "warning"
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.config_file = self.folder / "postroom.yaml"
        self.log_file = self.folder / "postroom.log"
        settings: dict[str, Any] = {
            "hostname": "relay.test",
            "data_dir": str(self.folder / "var"),
            "submission": {"listen": f"127.0.0.1:{self.port}"},
            "web": {"listen": "127.0.0.1:0"},
            "delivery": {
                "routes": {"example.net": f"127.0.0.1:{self.sink_port}"},
                "concurrency": self.concurrency,
                "lease": self.lease,
                # Short enough that a 3 s lease outlasts a whole transaction.
                "connect_timeout": "500ms",
                "command_timeout": "1s",
                "poll_interval": "200ms",
            },
            "logging": {"format": "json", "level": self.level},
        }
        if self.queue_url is not None:
            settings["queue"] = {"url": self.queue_url}
        self.config_file.write_text(yaml.safe_dump(settings))

    async def start(self) -> None:
        """Start the daemon and wait until it accepts connections."""
        self.process = self._spawn()
        for _ in range(400):
            if self.process.poll() is not None:
                raise AssertionError(
                    f"the daemon exited during start-up:\n{self.log_file.read_text()}"
                )
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                return
            await asyncio.sleep(0.05)
        raise AssertionError("the daemon did not start listening")

    def _spawn(self) -> subprocess.Popen[bytes]:
        command = [sys.executable, "-m", "postroom", "serve"]
        with self.log_file.open("ab") as log:
            return subprocess.Popen(
                [*command, "--config", str(self.config_file)], stdout=log, stderr=log
            )

    def kill(self) -> None:
        """SIGKILL: no clean-up of any kind."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    async def stop(self) -> int | None:
        """SIGTERM and wait; the exit code."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            await asyncio.to_thread(process.wait, 30)
        return process.returncode


@dataclass
class Submitter:
    """One open SMTP connection to ``port``; ``replies`` maps each message
    number to the reply code it got (0 when the connection failed)."""

    port: int
    replies: dict[int, int] = field(default_factory=dict)
    _client: aiosmtplib.SMTP | None = None

    async def send(self, seq: int, local: str = "ok") -> int:
        """Submit message ``seq``; the reply code to its end of data."""
        try:
            client = await self._connected()
            response = await client.send_message(invitation(seq, local))
        except aiosmtplib.SMTPResponseException as exc:
            code = exc.code
            if code == 421 or not (400 <= code < 600):
                await self.close()
        except (aiosmtplib.SMTPException, OSError):
            code = 0
            await self.close()
        else:
            code = 250 if response else 0
        self.replies[seq] = code
        return code

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                client.close()

    async def _connected(self) -> aiosmtplib.SMTP:
        if self._client is None or not self._client.is_connected:
            client = aiosmtplib.SMTP(
                hostname="127.0.0.1", port=self.port, timeout=15, start_tls=False
            )
            await client.connect()
            self._client = client
        return self._client
