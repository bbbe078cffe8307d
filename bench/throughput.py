"""Messages per second through postroom and through Postfix, on loopback.

Run with ``.venv/bin/python bench/throughput.py`` (as root: Postfix's
master runs as root and smtp-sink wants a user to drop to). ``--quick``
sends 1,000 messages once per row instead of 5,000 three times.

What is measured, for each message size: Postfix's ``smtp-source`` sends
N messages over 20 parallel connections, one new connection per message,
to

- ``smtp-sink`` directly: the most this machine's loopback and the two
  tools themselves allow (the limit);
- a throwaway Postfix (Debian's configuration, with its own config, queue
  and data directories in a temporary folder, listening on a free loopback
  port) relaying everything to the same ``smtp-sink``;
- postroom (``postroom serve`` in a subprocess, SQLite store in a
  temporary data_dir) relaying to the same sink through a static route;
- postroom again, signing each copy with an RSA-2048 DKIM key.

The acceptance rate is N over the time until smtp-source has finished (its
last message answered 250); the end-to-end rate is N over the time until
the sink has counted all N messages (``smtp-sink -c`` prints a running
count after every message, which is read from its output as it comes).

Both relays keep the same promise: Postfix fsyncs each queue file before
its 250, postroom commits with ``synchronous=FULL`` before its 250.
Rows run interleaved, repetition by repetition, so that a burst of load
from elsewhere on the machine hurts them alike; the medians are printed.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

SMTP_SOURCE = "/usr/sbin/smtp-source"
SMTP_SINK = "/usr/sbin/smtp-sink"
POSTFIX = "/usr/sbin/postfix"
POSTCONF = "/usr/sbin/postconf"
INSTALL = "apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y postfix"
SESSIONS = 20
SINK_USER = "nobody"
POSTROOM = Path(sys.executable).with_name("postroom")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process {process.args} exited during start-up")
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", port), timeout=1) as conn,
        ):
            conn.recv(512)  # the greeting: the server is really up
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


# -- the sink ---------------------------------------------------------------


class Sink:
    """smtp-sink on a free port, with its message counter read as it runs."""

    def __init__(self) -> None:
        self.port = free_port()
        self._count = 0
        self._changed = threading.Condition()
        self._process = subprocess.Popen(
            [SMTP_SINK, "-u", SINK_USER, "-c", f"127.0.0.1:{self.port}", "1024"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        threading.Thread(target=self._read, daemon=True).start()
        wait_for_port(self.port, self._process)

    def _read(self) -> None:
        # smtp-sink -c rewrites one line ("sess=.. quit=.. mesg=N\r") after
        # every session end, QUIT and end of data.
        assert self._process.stdout is not None
        pattern = re.compile(rb"mesg=(\d+)")
        tail = b""
        while chunk := os.read(self._process.stdout.fileno(), 65536):
            tail = (tail + chunk)[-200:]
            counts = pattern.findall(tail)
            if counts:
                with self._changed:
                    self._count = int(counts[-1])
                    self._changed.notify_all()

    @property
    def count(self) -> int:
        with self._changed:
            return self._count

    def wait_for(self, target: int, timeout: float) -> float | None:
        """The monotonic time at which the count reached ``target``."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._count < target:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._changed.wait(left)
            return time.monotonic()

    def close(self) -> None:
        self._process.terminate()
        self._process.wait(10)


# -- the relays -------------------------------------------------------------


class Relay:
    name: str
    port: int
    pid: int | None = None

    def start(self) -> None: ...
    def stop(self) -> None: ...


class Direct(Relay):
    """No relay: smtp-source talks to the sink itself."""

    name = "limit"

    def __init__(self, sink: Sink) -> None:
        self.port = sink.port


class Postfix(Relay):
    """A private Postfix instance: nothing under /etc/postfix is written."""

    name = "postfix"

    def __init__(self, sink: Sink, root: Path) -> None:
        self._sink = sink
        self._root = root
        self.port = 0

    def start(self) -> None:
        root = self._root
        shutil.rmtree(root, ignore_errors=True)
        conf, spool, data = root / "etc", root / "spool", root / "data"
        for folder in (conf, spool, data):
            folder.mkdir(parents=True)
        shutil.chown(data, "postfix")
        # Debian's configuration as installed, copied; the copies are then
        # changed with postconf -c, which writes only where -c points.
        for name in ("main.cf", "master.cf", "dynamicmaps.cf", "postfix-files"):
            shutil.copy(Path("/etc/postfix") / name, conf / name)
        for name in ("dynamicmaps.cf.d", "postfix-files.d"):
            shutil.copytree(Path("/etc/postfix") / name, conf / name)
        self.port = free_port()
        settings = {
            "config_directory": conf,
            "meta_directory": conf,
            "queue_directory": spool,
            "data_directory": data,
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "myhostname": "relay.test",
            "mydestination": "",
            "alias_maps": "",
            "alias_database": "",
            "mynetworks": "127.0.0.0/8",
            "relayhost": f"[127.0.0.1]:{self._sink.port}",
            "smtp_connection_cache_on_demand": "yes",
            "default_destination_concurrency_limit": "20",
            # Its log goes to a file, as postroom's does (no syslog here).
            "maillog_file": root / "maillog",
            "maillog_file_prefixes": root,
        }
        self._postconf("-e", *(f"{key}={value}" for key, value in settings.items()))
        self._postconf("-M", f"smtp/inet=127.0.0.1:{self.port} inet n - n - - smtpd")
        # Debian's master.cf chroots its daemons into the queue directory,
        # which only Debian's init script knows how to furnish.
        self._postconf("-F", "*/*/chroot=n")
        subprocess.run(
            [POSTFIX, "-c", str(conf), "start"], check=True, capture_output=True
        )
        wait_for_port(self.port)
        self.pid = int((spool / "pid" / "master.pid").read_text().split()[0])

    def _postconf(self, *args: str) -> None:
        subprocess.run(
            [POSTCONF, "-c", str(self._root / "etc"), *args],
            check=True,
            capture_output=True,
        )

    def stop(self) -> None:
        subprocess.run(
            [POSTFIX, "-c", str(self._root / "etc"), "stop"],
            check=False,
            capture_output=True,
        )
        shutil.rmtree(self._root, ignore_errors=True)


class Postroom(Relay):
    """``postroom serve`` with a fresh data directory."""

    def __init__(
        self,
        sink: Sink,
        root: Path,
        *,
        dkim: bool,
        extra: dict[str, object],
        name: str | None = None,
        source: Path | None = None,
    ) -> None:
        self.name = name or ("postroom+dkim" if dkim else "postroom")
        self._sink = sink
        self._root = root
        self._dkim = dkim
        self._extra = extra
        self._source = source
        self._process: subprocess.Popen[bytes] | None = None
        self.port = 0

    def start(self) -> None:
        root = self._root
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        self.port = free_port()
        config: dict[str, object] = {
            "hostname": "relay.test",
            "data_dir": str(root / "data"),
            "submission": {"listen": f"127.0.0.1:{self.port}"},
            "delivery": {
                "routes": {"*": f"127.0.0.1:{self._sink.port}"},
                # As many parallel sessions to the sink as Postfix opens.
                "per_domain_concurrency": 20,
            },
            "logging": {"level": "info", "format": "json"},
        }
        if self._dkim:
            key = root / "dkim.key"
            subprocess.run(
                [
                    str(POSTROOM), "dkim", "keygen", "--domain", "example.org",
                    "--selector", "bench", "--out", str(key),
                ],
                check=True,
                capture_output=True,
            )  # fmt: skip
            config["dkim"] = [
                {"domain": "example.org", "selector": "bench", "key": str(key)}
            ]
        for section, values in self._extra.items():
            merged = config.get(section)
            if isinstance(merged, dict) and isinstance(values, dict):
                merged.update(values)
            else:
                config[section] = values
        config_file = root / "postroom.yaml"
        config_file.write_text(yaml.safe_dump(config))
        env = dict(os.environ)
        if self._source is not None:
            env["PYTHONPATH"] = str(self._source)
        with (root / "postroom.log").open("wb") as log:
            self._process = subprocess.Popen(
                [str(POSTROOM), "serve", "--config", str(config_file)],
                stdout=log,
                stderr=log,
                env=env,
            )
        wait_for_port(self.port, self._process)
        self.pid = self._process.pid

    def stop(self) -> None:
        if self._process is not None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        shutil.rmtree(self._root, ignore_errors=True)


# -- one run ----------------------------------------------------------------


def tree(pid: int) -> list[int]:
    """``pid`` and every process below it."""
    found = [pid]
    for current in found:
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{current}/task").iterdir():
                children = (task / "children").read_text().split()
                found.extend(int(child) for child in children)
    return found


def peak_kb(pid: int) -> int:
    """The summed VmHWM of ``pid``'s process tree, in kB."""
    total = 0
    for member in tree(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
    return total


def cpu_seconds(pid: int) -> float:
    """CPU time used by ``pid``'s process tree so far, reaped children too."""
    ticks = 0
    for member in tree(pid):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{member}/stat").read_text().rpartition(")")[2]
            utime, stime, cutime, cstime = fields.split()[11:15]
            ticks += int(utime) + int(stime) + int(cutime) + int(cstime)
    return ticks / os.sysconf("SC_CLK_TCK")


class PeakSampler:
    """Samples the peak memory of a process tree while a run goes on."""

    def __init__(self, pid: int | None) -> None:
        self._pid = pid
        self.peak_kb = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> PeakSampler:
        if self._pid is not None:
            self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        if self._pid is not None:
            self._thread.join()

    def _sample(self) -> None:
        assert self._pid is not None
        while True:
            self.peak_kb = max(self.peak_kb, peak_kb(self._pid))
            if self._done.wait(0.2):
                self.peak_kb = max(self.peak_kb, peak_kb(self._pid))
                return


class Profiler:
    """py-spy (a development tool: ``pip install py-spy``) sampling a
    postroom daemon for the length of one run, stacks saved in raw form."""

    def __init__(self, relay: Relay, out: Path | None) -> None:
        self._out = out if isinstance(relay, Postroom) else None
        self._pid = relay.pid
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Profiler:
        if self._out is not None:
            spy = Path(sys.executable).with_name("py-spy")
            self._process = subprocess.Popen(
                [
                    str(spy), "record", "--pid", str(self._pid), "--rate", "250",
                    "--format", "raw", "--threads", "--nonblocking", "--subprocesses",
                    "--output", str(self._out),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
            time.sleep(0.5)  # let it attach before the first message
        return self

    def __exit__(self, *_: object) -> None:
        if self._process is not None:
            self._process.send_signal(signal.SIGINT)
            self._process.wait(30)


@dataclass
class Result:
    accept: float
    end_to_end: float | None
    peak_mb: float | None
    cpu_ms: float | None  # CPU time of the relay's processes per message


def run(
    relay: Relay, sink: Sink, count: int, size: int, profile: Path | None = None
) -> Result:
    base = sink.count
    cpu_before = cpu_seconds(relay.pid) if relay.pid is not None else 0.0
    with PeakSampler(relay.pid) as sampler, Profiler(relay, profile):
        started = time.monotonic()
        subprocess.run(
            [
                SMTP_SOURCE, "-s", str(SESSIONS), "-m", str(count), "-l", str(size),
                "-f", "from@example.org", "-t", "to@example.net",
                f"127.0.0.1:{relay.port}",
            ],
            check=True,
        )  # fmt: skip
        accepted = time.monotonic()
        arrived = sink.wait_for(base + count, timeout=max(120.0, count / 10))
    peak = sampler.peak_kb / 1024 if relay.pid is not None else None
    cpu = None
    if relay.pid is not None:
        cpu = (cpu_seconds(relay.pid) - cpu_before) * 1000 / count
    return Result(
        accept=count / (accepted - started),
        end_to_end=None if arrived is None else count / (arrived - started),
        peak_mb=peak,
        cpu_ms=cpu,
    )


# -- reporting --------------------------------------------------------------


@dataclass
class Row:
    name: str
    size: int
    results: list[Result] = field(default_factory=list)

    def median(self, what: str) -> float | None:
        values = [getattr(r, what) for r in self.results]
        if any(value is None for value in values) or not values:
            return None
        return statistics.median(values)

    def line(self) -> str:
        accept = self.median("accept")
        e2e = self.median("end_to_end")
        peaks = [r.peak_mb for r in self.results if r.peak_mb is not None]
        each = " ".join(
            f"{r.accept:.0f}/{r.end_to_end:.0f}"
            if r.end_to_end
            else f"{r.accept:.0f}/-"
            for r in self.results
        )
        text = (
            f"{self.name:<14} {self.size // 1024:>3} KB"
            f"  accept {accept or 0:7.0f} msg/s"
            f"  end-to-end {e2e or 0:7.0f} msg/s"
        )
        if e2e is None:
            text += " (some messages never reached the sink)"
        cpu = self.median("cpu_ms")
        if cpu is not None:
            text += f"  cpu {cpu:4.1f} ms/msg"
        if peaks:
            text += f"  peak {max(peaks):5.0f} MB"
        return text + f"  [runs accept/e2e: {each}]"


def ratio(a: float | None, b: float | None) -> str:
    return "-" if not a or not b else f"{a / b:.2f}x"


def check_tools() -> None:
    missing = [
        tool
        for tool in (SMTP_SOURCE, SMTP_SINK, POSTFIX, POSTCONF)
        if not Path(tool).exists()
    ]
    if missing:
        sys.exit(
            f"missing {', '.join(missing)}; install Postfix's tools with:\n  {INSTALL}"
        )
    if os.geteuid() != 0:
        sys.exit("run as root: Postfix's master and smtp-sink need it")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="N=1000, one repetition")
    parser.add_argument("-n", "--messages", type=int, default=None)
    parser.add_argument("--reps", type=int, default=None)
    parser.add_argument("--sizes", default="2048,20480", help="bytes, comma-separated")
    parser.add_argument(
        "--only", default="limit,postfix,postroom,postroom+dkim", help="rows to run"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="YAML",
        help="extra postroom config, e.g. --set '{delivery: {concurrency: 50}}'",
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME=YAML",
        help="one more postroom row with this extra config (for A/B runs)",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        default=None,
        metavar="SRC",
        help="one more postroom row running the package found in SRC "
        "(e.g. an older checkout's src/), to compare versions in one run",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        metavar="PREFIX",
        help="sample each postroom run with py-spy into PREFIX-NAME-SIZE-REP.txt",
    )
    args = parser.parse_args()
    check_tools()
    count = args.messages or (1000 if args.quick else 5000)
    reps = args.reps or (1 if args.quick else 3)
    sizes = [int(size) for size in args.sizes.split(",")]
    only = set(args.only.split(","))
    extra: dict[str, object] = {}
    for text in args.set:
        extra.update(yaml.safe_load(text))

    with contextlib.ExitStack() as stack:
        tmp = Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="postroom-bench-"))
        )
        # Postfix's daemons run as the postfix user and must reach their dirs.
        os.chmod(tmp, 0o755)  # noqa: S103
        sink = Sink()
        stack.callback(sink.close)
        relays: list[Relay] = [
            Direct(sink),
            Postfix(sink, tmp / "postfix"),
            Postroom(sink, tmp / "postroom", dkim=False, extra=extra),
            Postroom(sink, tmp / "postroom-dkim", dkim=True, extra=extra),
        ]
        relays = [relay for relay in relays if relay.name in only]
        if args.baseline is not None:
            relays.append(
                Postroom(
                    sink,
                    tmp / "baseline",
                    dkim=False,
                    extra=extra,
                    name="baseline",
                    source=args.baseline.resolve(),
                )
            )
        for variant in args.variant:
            name, _, text = variant.partition("=")
            relays.append(
                Postroom(
                    sink,
                    tmp / name,
                    dkim=False,
                    extra={**extra, **yaml.safe_load(text)},
                    name=name,
                )
            )
        rows = {(r.name, size): Row(r.name, size) for size in sizes for r in relays}
        print(
            f"{count} messages a run, {SESSIONS} sessions, {reps} repetition(s),"
            f" {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}",
            flush=True,
        )
        for rep in range(reps):
            for size in sizes:
                for relay in relays:
                    relay.start()
                    try:
                        out = None
                        if args.profile is not None:
                            out = Path(
                                f"{args.profile}-{relay.name}-{size}-{rep + 1}.txt"
                            )
                        result = run(relay, sink, count, size, out)
                    finally:
                        relay.stop()
                    rows[relay.name, size].results.append(result)
                    print(
                        f"  rep {rep + 1} {relay.name:<14} {size // 1024:>3} KB:"
                        f" accept {result.accept:6.0f}/s end-to-end "
                        f"{result.end_to_end or 0:6.0f}/s"
                        f" cpu {result.cpu_ms or 0:.1f} ms/msg",
                        file=sys.stderr,
                        flush=True,
                    )
        for row in rows.values():
            print(row.line())
        summary = []
        for size in sizes:
            postfix = rows.get(("postfix", size))
            postroom = rows.get(("postroom", size))
            dkim = rows.get(("postroom+dkim", size))
            if postfix is None:
                continue
            parts = []
            if postroom is not None:
                parts.append(
                    "accept "
                    + ratio(postroom.median("accept"), postfix.median("accept"))
                    + ", end-to-end "
                    + ratio(postroom.median("end_to_end"), postfix.median("end_to_end"))
                )
            if dkim is not None:
                parts.append(
                    "dkim end-to-end "
                    + ratio(dkim.median("end_to_end"), postfix.median("end_to_end"))
                )
            summary.append(f"{size // 1024} KB: " + "; ".join(parts))
        print("postroom / postfix: " + " | ".join(summary))


if __name__ == "__main__":
    main()
