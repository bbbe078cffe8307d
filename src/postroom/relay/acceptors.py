"""More processes accepting submissions on the same port.

How this works: one event loop speaks SMTP to every client, and with many
clients that loop, not the disk, is what limits how fast mail is accepted.
With ``submission.processes`` above 1 the daemon starts that many minus one
acceptor processes. Each binds the submission address with SO_REUSEPORT,
so the kernel spreads new connections over all of them, and each commits
what it accepts to the same store through its own connection before it
answers 250, exactly as the main process does: the durability promise does
not depend on which process took the message. Only the main process
delivers; an acceptor that stored a message wakes it with a datagram on a
loopback socket (a lost datagram costs at most one poll interval).

An acceptor gets its configuration pickled on its standard input and
stops, letting transactions in progress finish, when that pipe closes:
when the main process stops it, and when the main process dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import pickle
import signal
import sys
from collections.abc import Callable

import structlog

from postroom.clock import SystemClock
from postroom.config import Config, split_hostport
from postroom.errors import ConfigError
from postroom.queue.open import open_store
from postroom.relay.submission import SubmissionServer

log = structlog.get_logger()

_READY = b"ready\n"
_START_TIMEOUT = 60.0
_STOP_TIMEOUT = 30.0


class _WakeReceiver(asyncio.DatagramProtocol):
    def __init__(self, on_wake: Callable[[], None]) -> None:
        self._on_wake = on_wake

    def datagram_received(self, data: bytes, addr: object) -> None:
        self._on_wake()


class AcceptorPool:
    """The extra acceptor processes of one daemon."""

    def __init__(self, config: Config, count: int, on_wake: Callable[[], None]):
        self._config = config
        self._count = count
        self._on_wake = on_wake
        self._processes: list[asyncio.subprocess.Process] = []
        self._wake: asyncio.DatagramTransport | None = None

    @property
    def pids(self) -> list[int]:
        """The process ids of the running acceptors."""
        return [process.pid for process in self._processes]

    async def start(self, port: int) -> None:
        """Start the acceptors on ``port`` (the main listener's port) and
        wait until each is listening."""
        loop = asyncio.get_running_loop()
        self._wake, _ = await loop.create_datagram_endpoint(
            lambda: _WakeReceiver(self._on_wake), local_addr=("127.0.0.1", 0)
        )
        wake_port = self._wake.get_extra_info("sockname")[1]
        host, _ = split_hostport(self._config.submission.listen)
        submission = self._config.submission.model_copy(
            update={"listen": f"[{host}]:{port}" if ":" in host else f"{host}:{port}"}
        )
        payload = pickle.dumps(
            self._config.model_copy(update={"submission": submission})
        )
        for _ in range(self._count):
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "postroom",
                "serve",
                "--acceptor",
                str(wake_port),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
            )
            self._processes.append(process)
            assert process.stdin is not None
            assert process.stdout is not None
            process.stdin.write(len(payload).to_bytes(8, "big") + payload)
            await process.stdin.drain()
        for process in self._processes:
            assert process.stdout is not None
            try:
                async with asyncio.timeout(_START_TIMEOUT):
                    line = await process.stdout.readline()
            except TimeoutError:
                line = b""
            if line != _READY:
                await self.stop()
                raise ConfigError(
                    ["submission.processes: an acceptor process did not start"]
                )
        log.info("submission.acceptors_started", processes=len(self._processes))

    async def stop(self) -> None:
        """Close every acceptor's pipe and wait for it to finish."""
        for process in self._processes:
            if process.stdin is not None:
                process.stdin.close()
        for process in self._processes:
            try:
                async with asyncio.timeout(_STOP_TIMEOUT):
                    await process.wait()
            except TimeoutError:
                log.warning("submission.acceptor_killed", pid=process.pid)
                process.kill()
                await process.wait()
        self._processes = []
        if self._wake is not None:
            self._wake.close()
            self._wake = None


def read_config() -> Config:
    """The configuration an acceptor's parent wrote on its standard input."""
    stdin = sys.stdin.buffer
    size = int.from_bytes(stdin.read(8), "big")
    config = pickle.loads(stdin.read(size))  # noqa: S301 -- written by our parent
    if not isinstance(config, Config):
        raise TypeError("an acceptor expects its configuration on standard input")
    return config


async def run_acceptor(config: Config, wake_port: int) -> None:
    """The body of an acceptor process (see the module docstring)."""
    loop = asyncio.get_running_loop()
    wake, _ = await loop.create_datagram_endpoint(
        asyncio.DatagramProtocol, remote_addr=("127.0.0.1", wake_port)
    )

    def wake_engine() -> None:
        with contextlib.suppress(OSError):
            wake.sendto(b"!")

    store = open_store(config)
    await store.open()
    submission = SubmissionServer(config, store, SystemClock(), on_accept=wake_engine)
    stopping = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    try:
        await submission.start()
        await _watch_parent(stopping)
        sys.stdout.buffer.write(_READY)
        sys.stdout.buffer.flush()
        await stopping.wait()
    finally:
        await submission.stop()
        wake.close()
        await store.close()


async def _watch_parent(stopping: asyncio.Event) -> None:
    """Set ``stopping`` once standard input reaches its end."""

    class EndOfInput(asyncio.Protocol):
        def connection_lost(self, exc: Exception | None) -> None:
            stopping.set()

    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(EndOfInput, sys.stdin)
