"""PostgreSQL for tests: a fresh database per test on the shared server, and
a private server that a test may stop and start.

The shared server is the one at 127.0.0.1:5432 (trust authentication, user
postgres). Tests that need it are skipped, saying why, when it does not
answer. A `PrivateCluster` is initdb'd into a temporary folder and listens
on a port of its own, so stopping it disturbs no other test.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import asyncpg

SHARED_HOST = "127.0.0.1"
SHARED_PORT = 5432
SHARED_URL = f"postgresql://postgres@{SHARED_HOST}:{SHARED_PORT}"

# Where the server binaries are looked for when they are not on PATH.
_BIN_DIRS = ("/usr/local/bin", "/usr/lib/postgresql/15/bin")


async def shared_server_problem() -> str | None:
    """Why the shared server cannot be used, or None when it can."""
    try:
        conn = await asyncpg.connect(f"{SHARED_URL}/postgres", timeout=3)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        return f"no PostgreSQL server answers at {SHARED_HOST}:{SHARED_PORT}: {exc}"
    await conn.close()
    return None


async def create_database(server_url: str = SHARED_URL) -> str:
    """A new, empty database on the server; its URL."""
    name = f"postroom_test_{secrets.token_hex(6)}"
    conn = await asyncpg.connect(f"{server_url}/postgres", timeout=5)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return f"{server_url}/{name}"


async def drop_database(url: str) -> None:
    """Drop the database that `create_database` made, whoever is connected."""
    server_url, _, name = url.rpartition("/")
    conn = await asyncpg.connect(f"{server_url}/postgres", timeout=5)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def _binary(name: str) -> str:
    found = shutil.which(name)
    if found is not None:
        return found
    for folder in _BIN_DIRS:
        candidate = Path(folder) / name
        if candidate.exists():
            return str(candidate)
    raise FileNotFoundError(f"{name} is not installed")


def cluster_problem() -> str | None:
    """Why a private server cannot be made here, or None when it can."""
    try:
        _binary("initdb")
        _binary("pg_ctl")
    except FileNotFoundError as exc:
        return str(exc)
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser, and initdb refuses root"
    return None


class PrivateCluster:
    """A PostgreSQL server of its own in a temporary folder, on ``port``.

    initdb refuses to run as root, so as root every server command runs
    as the ``postgres`` user, which owns the folder.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.folder = Path(tempfile.mkdtemp(prefix="postroom-pg-"))
        self.data = self.folder / "data"
        self.socket_dir = self.folder / "run"
        self.socket_dir.mkdir()
        self.log = self.folder / "server.log"
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
            shutil.chown(self.socket_dir, "postgres", "postgres")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}"

    def init(self) -> None:
        self._run(
            _binary("initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1"
        self._run(
            _binary("pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            options,
            "-w",
            "start",
        )

    def stop(self) -> None:
        self._run(_binary("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

    def _run(self, *command: str) -> None:
        argv: Sequence[str] = command
        if os.geteuid() == 0:
            argv = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(
            argv, check=True, capture_output=True, timeout=60, cwd=self.folder
        )
