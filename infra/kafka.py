"""The local Apache Kafka broker: one combined KRaft broker+controller on loopback."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from importlib import resources
from pathlib import Path

from aiokafka.client import AIOKafkaClient
from aiokafka.errors import KafkaError

from dispatch.settings import Settings
from infra.errors import InfraError
from infra.processes import (
    PidFile,
    Say,
    ServiceStatus,
    child_running,
    drop_stale_pid_file,
    ensure_port_free,
    tail,
    terminate,
)

KAFKA_MAIN_CLASS = "kafka.Kafka"
STORAGE_TOOL_CLASS = "kafka.tools.StorageTool"


def _pom_text() -> str:
    return resources.files("infra").joinpath("maven/pom.xml").read_text()


class KafkaBroker:
    """Fetch, configure, start, probe and stop the local broker; all paths come from settings."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.home = settings.state_dir.resolve() / "kafka"
        self.data_dir = self.home / "data"
        self.config_path = self.home / "server.properties"
        self.log4j_path = self.home / "log4j.properties"
        self.log_path = self.home / "logs" / "server.log"
        self.console_path = self.home / "logs" / "console.log"
        # The config path is unique per state directory, so it tells our broker from any other.
        self.pid_file = PidFile(self.home / "kafka.pid", marker=str(self.config_path))
        pom_hash = hashlib.sha256(_pom_text().encode()).hexdigest()[:12]
        self.jars_dir = settings.cache_dir.expanduser().resolve() / "kafka" / pom_hash

    # -- jars -------------------------------------------------------------------------------

    def ensure_jars(self) -> Path:
        """Copy the pinned Kafka jars from Maven into the cache once; later starts are offline."""
        done_marker = self.jars_dir / ".complete"
        if done_marker.exists():
            return self.jars_dir
        mvn = shutil.which("mvn")
        if mvn is None:
            raise InfraError(
                "mvn not found on PATH: Maven is needed once to fetch the Kafka jars "
                "(install Maven, or set DISPATCH_KAFKA_BOOTSTRAP to use an existing broker)"
            )
        self.jars_dir.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.jars_dir.parent) as work:
            work_dir = Path(work)
            pom = work_dir / "pom.xml"
            pom.write_text(_pom_text())
            libs = work_dir / "libs"
            cmd = [mvn, "-B", "-q", "-f", str(pom), "dependency:copy-dependencies"]
            cmd += [f"-DoutputDirectory={libs}", "-DincludeScope=runtime"]
            if self.settings.maven_repository_url:
                mirror = work_dir / "settings.xml"
                mirror.write_text(_maven_mirror_settings(self.settings.maven_repository_url))
                cmd += ["-s", str(mirror)]
            result = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if result.returncode != 0:
                raise InfraError(_explain_maven_failure(result.stdout + result.stderr))
            (libs / ".complete").write_text("ok\n")
            if self.jars_dir.exists():
                shutil.rmtree(self.jars_dir)
            libs.rename(self.jars_dir)
        return self.jars_dir

    # -- configuration and storage ----------------------------------------------------------

    def write_config(self) -> None:
        """Write server.properties and the log4j config for this state directory."""
        s = self.settings
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        host = s.kafka_host
        lines = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{host}:{s.kafka_controller_port}",
            "listeners": f"PLAINTEXT://{host}:{s.kafka_port},CONTROLLER://{host}:{s.kafka_controller_port}",
            "advertised.listeners": f"PLAINTEXT://{host}:{s.kafka_port}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(self.data_dir),
            "num.partitions": str(s.kafka_partitions),
            # One node: every replication factor is 1.
            "default.replication.factor": "1",
            "min.insync.replicas": "1",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "8",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "4",
            # A new consumer group starts at once instead of waiting 3 s for more members.
            "group.initial.rebalance.delay.ms": "0",
            # Topics are declared by the project (with their partitions), never by a typo.
            "auto.create.topics.enable": "false",
            "num.network.threads": "2",
            "num.io.threads": "4",
            "log.retention.hours": "168",
        }
        self.config_path.write_text("".join(f"{k}={v}\n" for k, v in lines.items()))
        self.log4j_path.write_text(
            "log4j.rootLogger=INFO, file\n"
            "log4j.appender.file=org.apache.log4j.RollingFileAppender\n"
            f"log4j.appender.file.File={self.log_path}\n"
            "log4j.appender.file.MaxFileSize=20MB\n"
            "log4j.appender.file.MaxBackupIndex=3\n"
            "log4j.appender.file.layout=org.apache.log4j.PatternLayout\n"
            "log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n\n"
            "log4j.logger.kafka=INFO\nlog4j.logger.org.apache.kafka=INFO\n"
        )

    def _java(self) -> str:
        java = shutil.which("java")
        if java is None:
            raise InfraError(
                "java not found on PATH: the local Kafka broker needs Java 17+ "
                "(install OpenJDK, or set DISPATCH_KAFKA_BOOTSTRAP to use an existing broker)"
            )
        return java

    def _java_cmd(self, main_class: str, *args: str) -> list[str]:
        return [
            self._java(),
            f"-Xmx{self.settings.kafka_heap}",
            f"-Xms{self.settings.kafka_heap}",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j.configuration=file:{self.log4j_path}",
            f"-Dkafka.logs.dir={self.log_path.parent}",
            "-cp",
            str(self.jars_dir / "*"),
            main_class,
            *args,
        ]

    def ensure_formatted(self) -> None:
        """Format the KRaft storage on first start; later starts keep their data."""
        if (self.data_dir / "meta.properties").exists():
            return
        cluster_id = _new_cluster_id()
        cmd = self._java_cmd(
            STORAGE_TOOL_CLASS, "format", "-t", cluster_id, "-c", str(self.config_path)
        )
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()
            raise InfraError(f"formatting Kafka storage failed: {detail[-1] if detail else '?'}")

    # -- lifecycle --------------------------------------------------------------------------

    def up(self, say: Say) -> ServiceStatus:
        """Start the broker unless ours already runs, then wait until it answers metadata."""
        pid = self.pid_file.live_pid()
        if pid is None:
            drop_stale_pid_file(self.pid_file, "kafka", say)
            self._java()
            self.ensure_jars()
            s = self.settings
            ensure_port_free(s.kafka_host, s.kafka_port, "Kafka", "DISPATCH_KAFKA_PORT")
            ensure_port_free(
                s.kafka_host,
                s.kafka_controller_port,
                "the Kafka controller",
                "DISPATCH_KAFKA_CONTROLLER_PORT",
            )
            self.write_config()
            self.ensure_formatted()
            pid = self._spawn()
            self._wait_healthy(lambda: child_running(pid))
        else:
            self._wait_healthy(lambda: self.pid_file.live_pid() == pid)
        return self.status()

    def _spawn(self) -> int:
        cmd = self._java_cmd(KAFKA_MAIN_CLASS, str(self.config_path))
        console = os.open(self.console_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            # A session of its own: the broker outlives this CLI and gets no terminal signals.
            # posix_spawn rather than Popen: nothing here will ever wait on the broker.
            pid = os.posix_spawn(
                cmd[0],
                cmd,
                dict(os.environ),
                file_actions=[
                    (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                    (os.POSIX_SPAWN_DUP2, console, 1),
                    (os.POSIX_SPAWN_DUP2, console, 2),
                ],
                setsid=True,
            )
        finally:
            os.close(console)
        self.pid_file.write(pid)
        return pid

    def _wait_healthy(self, running: Callable[[], bool]) -> None:
        deadline = time.monotonic() + self.settings.startup_timeout_s
        bootstrap = self.settings.local_kafka_bootstrap
        while time.monotonic() < deadline:
            if not running():
                self.pid_file.remove()
                raise InfraError(
                    f"Kafka exited during start-up; see {self.log_path}: "
                    f"{tail(self.console_path, 2) or tail(self.log_path, 2)}"
                )
            if asyncio.run(broker_count(bootstrap, timeout_s=2.0)) > 0:
                return
            time.sleep(0.2)  # polling a port that is not open yet: there is no event to await
        raise InfraError(
            f"Kafka did not answer a metadata request on {bootstrap} within "
            f"{self.settings.startup_timeout_s:.0f} s; see {self.log_path}"
        )

    def down(self, say: Say) -> bool:
        """Stop our broker if it runs; return whether one was stopped."""
        pid = self.pid_file.live_pid()
        if pid is None:
            drop_stale_pid_file(self.pid_file, "kafka", say)
            return False
        self.pid_file.remove()
        # The broker shuts down cleanly on SIGTERM; 30 s covers a controlled shutdown on 2 cores.
        terminate(pid, timeout_s=30.0)
        return True

    def status(self) -> ServiceStatus:
        """Report whether the broker runs, where, and whether it answers metadata."""
        if self.settings.kafka_bootstrap is not None:
            address = self.settings.kafka_bootstrap
            healthy = asyncio.run(broker_count(address, timeout_s=5.0)) > 0
            return ServiceStatus("kafka", False, None, address, healthy, "external (configured)")
        address = self.settings.local_kafka_bootstrap
        pid = self.pid_file.live_pid()
        if pid is None:
            detail = f"stale pid file {self.pid_file.path}" if self.pid_file.is_stale() else ""
            return ServiceStatus("kafka", True, None, address, False, detail or "not running")
        count = asyncio.run(broker_count(address, timeout_s=5.0))
        detail = f"Apache Kafka KRaft, {count} broker(s), logs {self.log_path}"
        return ServiceStatus("kafka", True, pid, address, count > 0, detail)


async def broker_count(bootstrap: str, *, timeout_s: float) -> int:
    """Return how many brokers a metadata request reports, or 0 when none answers."""
    if not await _port_open(bootstrap, timeout_s=timeout_s):
        # aiokafka logs every refused connection at ERROR; a closed port needs no client.
        return 0
    client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000))
    try:
        await asyncio.wait_for(client.bootstrap(), timeout=timeout_s)
        metadata = await asyncio.wait_for(client.fetch_all_metadata(), timeout=timeout_s)
        return len(metadata.brokers())
    except (KafkaError, OSError, TimeoutError):
        return 0
    finally:
        await client.close()


async def _port_open(bootstrap: str, *, timeout_s: float) -> bool:
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), timeout_s)
    except (OSError, TimeoutError, ValueError):
        return False
    writer.close()
    await writer.wait_closed()
    return True


def _new_cluster_id() -> str:
    # Kafka cluster ids are 16 random bytes in unpadded URL-safe base64; a leading '-' would
    # read as a command-line flag, which is why Kafka itself never generates one.
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not text.startswith("-"):
            return text


def _maven_mirror_settings(url: str) -> str:
    return (
        "<settings><mirrors><mirror><id>dispatch-mirror</id><mirrorOf>*</mirrorOf>"
        f"<url>{url}</url></mirror></mirrors></settings>\n"
    )


def _explain_maven_failure(output: str) -> str:
    unreachable = (
        "Could not transfer",
        "Connection refused",
        "UnknownHost",
        "Unknown host",
        "Network is unreachable",
        "timed out",
        "Could not resolve",
    )
    if any(word in output for word in unreachable):
        return (
            "could not fetch the Kafka jars: the Maven repository is unreachable "
            "(check the network, or point DISPATCH_MAVEN_REPOSITORY_URL at a mirror)"
        )
    last = [line for line in output.splitlines() if "ERROR" in line][:1]
    return f"Maven failed to fetch the Kafka jars: {last[0] if last else output.strip()[-200:]}"
