"""Apache Kafka 3.5.1 in KRaft mode: three controllers and three brokers as local JVM processes.

Controllers and brokers are separate processes (as recommended for production) so that losing two
brokers still leaves a controller quorum: partitions shrink their ISR and producers with acks=all get
a clear NOT_ENOUGH_REPLICAS instead of hanging. Controller ports are the broker ports + 100; each JVM serves
its Prometheus metrics (the JMX exporter agent, monitoring/kafka-jmx.yaml) on its port + 400.
"""
from __future__ import annotations

import base64
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

from infrastructure.local import processes
from infrastructure.settings import REPO_ROOT, Settings

JARS = REPO_ROOT / ".cache" / "jars" / "kafka"
CONTROLLER_PORT_OFFSET = 100
METRICS_PORT_OFFSET = 400
JMX_AGENT = REPO_ROOT / ".cache" / "jars" / "jmx-exporter" / "jmx_prometheus_javaagent-1.0.1.jar"
JMX_CONFIG = REPO_ROOT / "monitoring" / "kafka-jmx.yaml"
CONTROLLER_HEAP = "128m"

LOG4J = """\
log4j.rootLogger=WARN, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.server.KafkaRaftServer=INFO
log4j.logger.kafka.server.BrokerServer=INFO
log4j.logger.kafka.server.ControllerServer=INFO
"""


@dataclass(frozen=True)
class KafkaNode:
    node_id: int
    role: str  # "controller" or "broker"
    host: str
    port: int
    run_dir: Path
    heap: str

    @property
    def name(self) -> str:
        return f"kafka-{self.role}-{self.node_id}"

    @property
    def home(self) -> Path:
        return self.run_dir / "kafka" / self.name

    @property
    def properties_file(self) -> Path:
        return self.home / "server.properties"

    @property
    def metrics_port(self) -> int:
        return self.port + METRICS_PORT_OFFSET


def nodes(settings: Settings) -> list[KafkaNode]:
    """Controllers get node ids 1..3, brokers 11..13, on the hosts/ports of KAFKA_BROKERS."""
    out = []
    for index, address in enumerate(settings.broker_list, start=1):
        host, _, port = address.rpartition(":")
        out.append(KafkaNode(index, "controller", host, int(port) + CONTROLLER_PORT_OFFSET, settings.run_dir,
                             CONTROLLER_HEAP))
    for index, address in enumerate(settings.broker_list, start=1):
        host, _, port = address.rpartition(":")
        out.append(KafkaNode(10 + index, "broker", host, int(port), settings.run_dir, settings.kafka_heap))
    return out


def _properties(node: KafkaNode, all_nodes: list[KafkaNode]) -> str:
    voters = ",".join(f"{n.node_id}@{n.host}:{n.port}" for n in all_nodes if n.role == "controller")
    common = {
        "node.id": node.node_id,
        "controller.quorum.voters": voters,
        "controller.listener.names": "CONTROLLER",
        "log.dirs": node.home / "data",
        "num.network.threads": 2,
        "num.io.threads": 4,
        "background.threads": 4,
    }
    # An idle cluster's own chatter, 7.6 CPU-s a minute with Kafka's defaults (500 ms each) and 5.8 with these
    # two: the active controller's no-op metadata record every 5 s, and followers' fetches held up to 4 s (a
    # fetch still returns as soon as a record arrives, so acks=all waits no longer).
    if node.role == "controller":
        role = {
            "process.roles": "controller",
            "metadata.max.idle.interval.ms": 5000,
            "listeners": f"CONTROLLER://{node.host}:{node.port}",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT",
        }
    else:
        role = {
            "process.roles": "broker",
            "listeners": f"PLAINTEXT://{node.host}:{node.port}",
            "advertised.listeners": f"PLAINTEXT://{node.host}:{node.port}",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT",
            "num.partitions": 3,
            "default.replication.factor": 3,
            "min.insync.replicas": 2,
            "offsets.topic.replication.factor": 3,
            "offsets.topic.num.partitions": 6,
            "transaction.state.log.replication.factor": 3,
            "transaction.state.log.min.isr": 2,
            "transaction.state.log.num.partitions": 6,
            "unclean.leader.election.enable": "false",
            "auto.create.topics.enable": "false",
            "group.initial.rebalance.delay.ms": 0,
            "log.retention.hours": 168,
            # Followers that stop fetching leave the ISR quickly, so acks=all fails fast and clearly.
            "replica.lag.time.max.ms": 10000,
            "replica.fetch.wait.max.ms": 4000,
        }
    return "".join(f"{k}={v}\n" for k, v in {**common, **role}.items())


def _java(node: KafkaNode, heap: str, main: list[str], agents: tuple[str, ...] = ()) -> list[str]:
    return ["java", f"-Xmx{heap}", f"-Xms{heap}", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", *agents,
            "-Djava.awt.headless=true", f"-Dlog4j.configuration=file:{node.run_dir / 'kafka' / 'log4j.properties'}",
            "-cp", f"{JARS}/*", *main]


def _cluster_id(run_dir: Path) -> str:
    path = run_dir / "kafka" / "cluster.id"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        cluster_id = "-"
        while cluster_id.startswith("-"):  # StorageTool would read it as an option; Kafka's own ids never do
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        path.write_text(cluster_id)
    return path.read_text().strip()


def _prepare(node: KafkaNode, all_nodes: list[KafkaNode]) -> None:
    """Configuration files and, the first time only, the storage format of the cluster."""
    if not any(JARS.glob("kafka_2.13-*.jar")) or not JMX_AGENT.exists():
        raise processes.StartError(f"Kafka jars or the JMX agent missing in {JARS.parent}: run `make setup`")
    (node.run_dir / "kafka" / "log4j.properties").write_text(LOG4J)
    node.properties_file.write_text(_properties(node, all_nodes))
    if not (node.home / "data" / "meta.properties").exists():
        subprocess.run(_java(node, "128m", ["kafka.tools.StorageTool", "format", "-t", _cluster_id(node.run_dir),
                                            "-c", str(node.properties_file), "--ignore-formatted"]),
                       check=True, capture_output=True)


def registered_brokers(bootstrap: str, timeout: float = 3.0) -> set[int]:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": int(timeout * 1000)})
    return set(admin.list_topics(timeout=timeout).brokers)


def _serves(node: KafkaNode) -> bool:
    """A controller answers on its port; a broker also sees itself in the cluster metadata, which it
    learns from the controllers: all brokers serving means the quorum has them all registered."""
    if not processes.port_open(node.host, node.port):
        return False
    return node.role == "controller" or node.node_id in registered_brokers(f"{node.host}:{node.port}", timeout=2)


def _service(node: KafkaNode, all_nodes: list[KafkaNode]) -> processes.Service:
    agent = f"-javaagent:{JMX_AGENT}={node.host}:{node.metrics_port}:{JMX_CONFIG}"
    command = _java(node, node.heap, ["kafka.Kafka", str(node.properties_file)], (agent,))
    return processes.Service(node.name, node.home, command,
                             probe=lambda: _serves(node), expect="kafka.Kafka", address=(node.host, node.port),
                             timeout=90, prepare=lambda: _prepare(node, all_nodes))


def services(settings: Settings) -> list[processes.Service]:
    all_nodes = nodes(settings)
    return [_service(node, all_nodes) for node in all_nodes]


def stop(settings: Settings) -> list[str]:
    """Stop brokers first (their controlled shutdown needs the controllers), then controllers."""
    all_nodes = nodes(settings)
    return [name for role in ("broker", "controller")
            for name in processes.stop([_service(n, all_nodes) for n in all_nodes if n.role == role])]
