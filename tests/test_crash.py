"""kill -9 in the middle of accepting and delivering loses nothing.

The daemon runs as a real process; a few hundred messages are submitted by
concurrent SMTP clients while deliveries to a slow receiving server are in
flight, and the process is killed with SIGKILL. After a restart, every
message that was answered 250 must arrive; the only repeats allowed are
the deliveries that were in flight at the kill, which the restarted daemon
counts when it frees their leases.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import sys
from pathlib import Path

import aiosmtplib
import yaml

from tests.peers.dnsserver import free_port
from tests.peers.nodes import invitation, sequence
from tests.peers.sink import Sink

TOTAL = 400
KILL_AFTER = 200
CLIENTS = 8
CONCURRENCY = 20


def start_daemon(config_file: Path, log_file: Path) -> subprocess.Popen[bytes]:
    with log_file.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "postroom", "serve", "--config", str(config_file)],
            stdout=log,
            stderr=log,
        )


async def wait_for_port(port: int, process: subprocess.Popen[bytes]) -> None:
    for _ in range(300):
        assert process.poll() is None, "the daemon exited during start-up"
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the daemon did not start listening")


async def test_kill_9_loses_no_accepted_message_and_repeats_only_in_flight_ones(
    tmp_path: Path, sink: Sink
) -> None:
    sink_port = await sink.listen()
    submission_port = free_port()
    config_file = tmp_path / "postroom.yaml"
    config_file.write_text(
        yaml.safe_dump(
            {
                "hostname": "relay.test",
                "data_dir": str(tmp_path / "var"),
                "submission": {"listen": f"127.0.0.1:{submission_port}"},
                "web": {"listen": "127.0.0.1:0"},
                "delivery": {
                    "routes": {"example.net": f"127.0.0.1:{sink_port}"},
                    "concurrency": CONCURRENCY,
                    "poll_interval": "100ms",
                },
                "logging": {"format": "json"},
            }
        )
    )
    log_file = tmp_path / "postroom.log"
    daemon = start_daemon(config_file, log_file)
    await wait_for_port(submission_port, daemon)

    accepted: set[int] = set()
    queue: asyncio.Queue[int] = asyncio.Queue()
    for seq in range(TOTAL):
        queue.put_nowait(seq)

    async def client() -> None:
        while not queue.empty():
            seq = queue.get_nowait()
            try:
                await aiosmtplib.send(
                    invitation(seq, "slow"), hostname="127.0.0.1",
                    port=submission_port, timeout=10,
                )  # fmt: skip
            except (aiosmtplib.SMTPException, OSError):
                continue  # no 250: the client would try again later
            accepted.add(seq)
            if len(accepted) >= KILL_AFTER and daemon.poll() is None:
                daemon.send_signal(signal.SIGKILL)

    await asyncio.gather(*(client() for _ in range(CLIENTS)))
    daemon.wait(timeout=10)
    delivered_before_restart = len(sink.messages)

    daemon = start_daemon(config_file, log_file)
    try:
        await wait_for_port(submission_port, daemon)
        for _ in range(1200):
            arrived = {sequence(m.data) for m in sink.messages}
            if accepted <= arrived:
                break
            await asyncio.sleep(0.05)
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=30)

    events = [json.loads(line) for line in log_file.read_text().splitlines()]
    released = sum(
        e["recipients"] for e in events if e.get("event") == "queue.leases_released"
    )
    arrived_list = [sequence(m.data) for m in sink.messages]
    duplicates = len(arrived_list) - len(set(arrived_list))

    assert KILL_AFTER <= len(accepted) < TOTAL  # the kill came mid-submission
    assert 0 < delivered_before_restart < len(accepted)  # and mid-delivery
    assert accepted - set(arrived_list) == set()  # every 250 arrived
    assert duplicates <= released <= CONCURRENCY  # repeats: in-flight only
    assert daemon.returncode == 0
