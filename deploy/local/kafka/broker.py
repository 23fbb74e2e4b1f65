#!/usr/bin/env python3
"""A single-node Apache Kafka broker (KRaft) for tests and local runs, from Maven Central jars.

No Kafka source is built and nothing is downloaded by hand: ``pom.xml`` beside this file names
the published broker artifact, Maven resolves its classpath into ``~/.m2`` once, and the broker
runs as ``java -cp <classpath> kafka.Kafka server.properties`` on 127.0.0.1 only.

Stdlib only, so it works before the project's venv exists. As a module::

    broker = LocalKafka(Path("/tmp/k"))
    bootstrap = broker.start()      # "127.0.0.1:PORT", once the broker answers Metadata
    broker.restart()                # same ports, same data
    broker.stop()

As a script::

    python deploy/local/kafka/broker.py prepare            # resolve the jars (CI setup)
    python deploy/local/kafka/broker.py start [--dir DIR]  # prints the bootstrap, keeps running
    python deploy/local/kafka/broker.py status [--dir DIR]
    python deploy/local/kafka/broker.py stop [--dir DIR]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
POM = HERE / "pom.xml"
LOG4J2 = HERE / "log4j2.yaml"
NODE_ID = 1
HEAP = ("-Xms64m", "-Xmx512m")
# Fewer JIT and GC threads: the broker idles in tests and shares two cores with the test run.
JVM_FLAGS = ("-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Djava.awt.headless=true")


class LocalKafkaError(Exception):
    """The local broker could not be prepared, started or reached; the message says why."""


def _tool(name: str, hint: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise LocalKafkaError(f"`{name}` not found on PATH: the local Kafka broker needs {hint}")
    return path


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gcal-kafka"


def kafka_classpath(*, refresh: bool = False) -> str:
    """The broker's Java classpath, resolved by Maven once per pom.xml content and cached."""
    digest = hashlib.sha256(POM.read_bytes()).hexdigest()[:16]
    cache = _cache_dir() / f"local-kafka-{digest}.classpath"
    if not refresh and cache.is_file():
        classpath = cache.read_text(encoding="utf-8").strip()
        if classpath and all(Path(jar).is_file() for jar in classpath.split(os.pathsep)):
            return classpath
    mvn = _tool("mvn", "Maven 3 (apt-get install maven) to fetch the Kafka jars")
    _tool("java", "Java 17 or newer (apt-get install openjdk-17-jre-headless)")
    cache.parent.mkdir(parents=True, exist_ok=True)
    partial = cache.with_suffix(f".{os.getpid()}.tmp")
    command = [mvn, "-q", "-B", "-f", str(POM), "dependency:build-classpath"]
    command.append(f"-Dmdep.outputFile={partial}")
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0 or not partial.is_file():
        tail = (done.stdout + done.stderr).strip()[-3000:]
        raise LocalKafkaError(f"Maven could not resolve the Kafka jars ({POM}):\n{tail}")
    os.replace(partial, cache)
    return cache.read_text(encoding="utf-8").strip()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cluster_id() -> str:
    # Kafka's Uuid text form: 16 random bytes, URL-safe base64 without padding, never leading "-".
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode("ascii")
        if not text.startswith("-"):
            return text


def _request(sock: socket.socket, api_key: int, version: int, body: bytes) -> bytes:
    client = b"gcal-kafka-probe"
    header = struct.pack(">hhih", api_key, version, 7, len(client)) + client
    frame = header + body
    sock.sendall(struct.pack(">i", len(frame)) + frame)
    size = struct.unpack(">i", _recv(sock, 4))[0]
    return _recv(sock, size)[4:]  # drop the correlation id (response header v0)


def _recv(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise ConnectionError("broker closed the connection")
        chunks += chunk
    return bytes(chunks)


def broker_ids(bootstrap: str, timeout: float = 2.0) -> list[int]:
    """Node ids of the live brokers, asked over the Kafka protocol (ApiVersions, Metadata v4-7).

    An empty list or an ``OSError`` means the broker is not serving clients yet.
    """
    host, _, port = bootstrap.rpartition(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        reply = _request(sock, 18, 0, b"")  # ApiVersions v0: every broker answers it
        error, count = struct.unpack_from(">hi", reply, 0)
        if error != 0:
            raise ConnectionError(f"ApiVersions error code {error}")
        ranges = {}
        for i in range(count):
            key, low, high = struct.unpack_from(">hhh", reply, 6 + 6 * i)
            ranges[key] = (low, high)
        low, high = ranges.get(3, (0, -1))
        version = max(low, 4)
        if version > min(high, 7):  # v4-v7 share this layout; v8 adds request fields
            raise ConnectionError(f"broker offers Metadata v{low}-v{high}, probe speaks v4-v7")
        # Metadata: no topics (empty array), no auto-creation.
        reply = _request(sock, 3, version, struct.pack(">ib", 0, 0))
        offset = 4  # throttle_time_ms
        (count,) = struct.unpack_from(">i", reply, offset)
        offset += 4
        ids = []
        for _ in range(count):
            node_id, host_len = struct.unpack_from(">ih", reply, offset)
            offset += 6 + host_len + 4  # node id, host, port
            (rack_len,) = struct.unpack_from(">h", reply, offset)
            offset += 2 + max(rack_len, 0)
            ids.append(node_id)
        return ids


def is_serving(bootstrap: str, timeout: float = 2.0) -> bool:
    """True when a broker at ``bootstrap`` answers Metadata with at least one live broker."""
    try:
        return bool(broker_ids(bootstrap, timeout))
    except (OSError, ConnectionError, struct.error, ValueError):
        return False


def _die_with_parent() -> list[str]:
    """A command prefix asking Linux to SIGTERM the broker when the thread that started it dies,
    so a killed test run leaves no JVM behind (util-linux ``setpriv``; none where it is missing).
    """
    setpriv = shutil.which("setpriv") if sys.platform.startswith("linux") else None
    return [setpriv, "--pdeathsig", "TERM", "--"] if setpriv else []


class LocalKafka:
    """One broker+controller node whose state (config, data, log, pid) lives in ``workdir``.

    Ports are picked free on 127.0.0.1 unless given, remembered in ``workdir/broker.json`` and
    reused by ``restart()`` and by a later ``start()`` on the same directory.
    """

    def __init__(
        self, workdir: Path, port: int | None = None, controller_port: int | None = None
    ) -> None:
        self.workdir = Path(workdir).resolve()
        self.data_dir = self.workdir / "data"
        self.log_path = self.workdir / "broker.log"
        self.pid_path = self.workdir / "broker.pid"
        saved = self._saved_state()
        self.port = port or saved.get("port") or free_port()
        self.controller_port = controller_port or saved.get("controller_port") or free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0, *, detached: bool = False) -> str:
        """Format storage if new, start the JVM, wait until it serves clients; the bootstrap.

        ``detached`` leaves the broker running after this Python process exits (the CLI);
        otherwise the broker gets SIGTERM when the thread that started it dies.
        """
        if self.is_running():
            return self.bootstrap
        java = _tool("java", "Java 17 or newer (apt-get install openjdk-17-jre-headless)")
        classpath = kafka_classpath()
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.port == self.controller_port:
            raise LocalKafkaError("port and controller_port must differ")
        for port in (self.port, self.controller_port):
            if _listening(port):
                raise LocalKafkaError(f"port {port} on 127.0.0.1 is already in use")
        config = self.workdir / "server.properties"
        config.write_text(self._properties(), encoding="utf-8")
        base = [java, *HEAP, *JVM_FLAGS, f"-Dlog4j2.configurationFile={LOG4J2}", "-cp", classpath]
        if not (self.data_dir / "meta.properties").is_file():
            fmt = [*base, "kafka.tools.StorageTool", "format", "-t", _cluster_id()]
            done = subprocess.run(
                [*fmt, "-c", str(config)], capture_output=True, text=True, check=False
            )
            if done.returncode != 0:
                out = (done.stdout + done.stderr).strip()[-3000:]
                raise LocalKafkaError(f"formatting KRaft storage failed:\n{out}")
        began = time.monotonic()
        with self.log_path.open("ab") as log:
            log.write(f"\n=== starting broker at {time.ctime()} ===\n".encode())
            log.flush()
            self._process = subprocess.Popen(
                [*([] if detached else _die_with_parent()), *base, "kafka.Kafka", str(config)],
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pid_path.write_text(f"{self._process.pid}\n", encoding="utf-8")
        self._save_state()
        self._wait_serving(began, timeout)
        return self.bootstrap

    def stop(self, timeout: float = 30.0) -> None:
        """Shut the broker down (SIGTERM, then SIGKILL after ``timeout``); idempotent."""
        pid = self._pid()
        if pid is not None and _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            if not self._wait_exit(pid, timeout):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                self._wait_exit(pid, 10.0)
        self._process = None
        self.pid_path.unlink(missing_ok=True)

    def restart(self, timeout: float = 60.0) -> str:
        """Stop, then start on the same ports and data directory (committed data survives)."""
        detached = self._process is None
        self.stop()
        return self.start(timeout, detached=detached)

    @property
    def pid(self) -> int | None:
        """The broker's process id while it runs."""
        return self._pid() if self.is_running() else None

    def is_running(self) -> bool:
        """True while the broker process (started here or by the CLI) is alive."""
        pid = self._pid()
        return pid is not None and _alive(pid)

    def _pid(self) -> int | None:
        if self._process is not None:
            return self._process.pid
        try:
            return int(self.pid_path.read_text(encoding="utf-8").strip())
        except (OSError, ValueError):
            return None

    def _wait_exit(self, pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                return True
            if self._process is None and not _alive(pid):
                return True
            time.sleep(0.1)
        return False

    def _wait_serving(self, began: float, timeout: float) -> None:
        deadline = began + timeout
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                self.pid_path.unlink(missing_ok=True)
                raise LocalKafkaError(
                    f"broker exited with code {self._process.returncode}; "
                    f"last lines of {self.log_path}:\n{self._log_tail()}"
                )
            if is_serving(self.bootstrap, timeout=1.0):
                return
            time.sleep(0.2)
        self.stop()
        raise LocalKafkaError(
            f"broker did not serve clients on {self.bootstrap} within {timeout:.0f}s; "
            f"last lines of {self.log_path}:\n{self._log_tail()}"
        )

    def _log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def _saved_state(self) -> dict[str, int]:
        try:
            state = json.loads((self.workdir / "broker.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return {k: v for k, v in state.items() if isinstance(v, int)}

    def _save_state(self) -> None:
        state = {"port": self.port, "controller_port": self.controller_port}
        text = json.dumps({**state, "bootstrap": self.bootstrap}, indent=2)
        (self.workdir / "broker.json").write_text(text + "\n", encoding="utf-8")

    def _properties(self) -> str:
        settings = {
            "process.roles": "broker,controller",
            "node.id": NODE_ID,
            "controller.quorum.voters": f"{NODE_ID}@127.0.0.1:{self.controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},"
            f"CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": self.data_dir,
            # One node: every internal topic has one replica, and few partitions to create.
            "num.partitions": 1,
            "default.replication.factor": 1,
            "min.insync.replicas": 1,
            "offsets.topic.replication.factor": 1,
            "offsets.topic.num.partitions": 1,
            "transaction.state.log.replication.factor": 1,
            "transaction.state.log.min.isr": 1,
            "transaction.state.log.num.partitions": 1,
            "share.coordinator.state.topic.replication.factor": 1,
            "share.coordinator.state.topic.min.isr": 1,
            "group.initial.rebalance.delay.ms": 0,
            "group.min.session.timeout.ms": 1000,
            # The connector creates its topics; a typo must fail, not create a topic.
            "auto.create.topics.enable": "false",
            # Compaction tests: the cleaner looks often and cleans any dirty closed segment.
            "log.cleaner.enable": "true",
            "log.cleaner.threads": 1,
            "log.cleaner.backoff.ms": 500,
            "log.cleaner.min.cleanable.ratio": 0.01,
            "log.cleaner.dedupe.buffer.size": 16 * 1024 * 1024,
            # Transactions whose producer died are aborted soon after transaction.timeout.ms.
            "transaction.abort.timed.out.transaction.cleanup.interval.ms": 1000,
            # Small machine: few threads.
            "num.network.threads": 2,
            "num.io.threads": 2,
            "background.threads": 2,
            "num.recovery.threads.per.data.dir": 1,
        }
        return "".join(f"{key}={value}\n" for key, value in settings.items())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped) counts as gone, and so does a process that reused the
    # pid of a broker long gone: never signal something that is not a Kafka broker.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z" and b"kafka.Kafka" in cmdline


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    prepare = commands.add_parser("prepare", help="resolve the Kafka jars with Maven (cached)")
    prepare.add_argument("--refresh", action="store_true", help="ask Maven even if cached")
    for name, text in (
        ("start", "start a broker (or report the running one) and print its bootstrap"),
        ("stop", "stop the broker"),
        ("status", "print the bootstrap and exit 0 if running, else exit 3"),
    ):
        sub = commands.add_parser(name, help=text)
        sub.add_argument("--dir", type=Path, default=Path(".kafka"), help="state directory")
        if name == "start":
            sub.add_argument("--port", type=int, default=None)
            sub.add_argument("--controller-port", type=int, default=None)
            sub.add_argument("--timeout", type=float, default=90.0)
    args = parser.parse_args(argv)
    try:
        if args.command == "prepare":
            classpath = kafka_classpath(refresh=args.refresh)
            print(f"{len(classpath.split(os.pathsep))} jars resolved for {POM}")
            return 0
        broker = LocalKafka(args.dir)
        if args.command == "start":
            if args.port or args.controller_port:
                broker = LocalKafka(args.dir, args.port, args.controller_port)
            was_running = broker.is_running()
            began = time.monotonic()
            bootstrap = broker.start(args.timeout, detached=True)
            took = time.monotonic() - began
            print(bootstrap)
            how = "already running" if was_running else f"started in {took:.1f}s"
            print(f"{how}, pid {broker.pid}, log {broker.log_path}", file=sys.stderr)
        elif args.command == "stop":
            broker.stop()
        elif broker.is_running():
            print(f"running {broker.bootstrap} pid {broker.pid}")
        else:
            print("stopped")
            return 3
    except LocalKafkaError as exc:
        print(f"broker.py: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
