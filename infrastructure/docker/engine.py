"""A private Docker engine on this machine: what docker mode's end-to-end test runs against.

    python -m infrastructure.docker.engine up|down --home DIR --certs DIR [--address 172.31.250.1/24]

The engine stands for every docker-mode host at once (web servers and Spark host). It listens on a Unix
socket under DIR and, like a real host, on TCP 2376 with TLS and client-certificate verification, bound
to ADDRESS: the address of a bridge made before the engine starts (the engine's default bridge), so the
socket can bind to it and containers reach services of this machine there too. Nothing listens on
other interfaces. Images live in DATA_ROOT (default ~/.cache/tripclick-pipeline/dockerd), kept between
runs so an unchanged tree does not rebuild. Needs root, dockerd and iproute2.
"""
from __future__ import annotations

import argparse
import ipaddress
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from infrastructure.local import processes

TLS_PORT = 2376
BRIDGE = "tcdock0"
DEFAULT_ADDRESS = "172.31.250.1/24"
DEFAULT_DATA_ROOT = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "tripclick-pipeline" / "dockerd"


@dataclass(frozen=True)
class Engine:
    home: Path  # socket, pid file, exec root, log
    certs: Path  # server/<host>/{ca,server-cert,server-key}.pem from make-docker-certs.sh
    address: str = DEFAULT_ADDRESS  # CIDR of the bridge; the engine's TCP socket binds its host address
    data_root: Path = DEFAULT_DATA_ROOT

    @property
    def ip(self) -> str:
        return str(ipaddress.ip_interface(self.address).ip)

    @property
    def socket(self) -> Path:
        return self.home / "docker.sock"

    @property
    def unix_url(self) -> str:
        return f"unix://{self.socket}"

    @property
    def tcp_url(self) -> str:
        return f"tcp://{self.ip}:{TLS_PORT}"

    def client_env(self) -> dict[str, str]:
        """Environment for the docker CLI and docker-compose on this machine (Unix socket)."""
        return {**os.environ, "DOCKER_HOST": self.unix_url}


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def _make_bridge(address: str) -> None:
    if _ip("link", "show", BRIDGE, check=False).returncode != 0:
        _ip("link", "add", BRIDGE, "type", "bridge")
    if address not in _ip("-brief", "address", "show", BRIDGE).stdout:
        _ip("address", "add", address, "dev", BRIDGE)
    _ip("link", "set", BRIDGE, "up")


def service(engine: Engine) -> processes.Service:
    tls = engine.certs / "server" / "spark"  # standing for every host, it shows one host's certificate
    command = ["dockerd", "--data-root", str(engine.data_root), "--exec-root", str(engine.home / "exec"),
               "--pidfile", str(engine.home / "dockerd.own.pid"), "--bridge", BRIDGE,
               "-H", engine.unix_url, "-H", f"tcp://{engine.ip}:{TLS_PORT}",
               "--tlsverify", "--tlscacert", str(tls / "ca.pem"), "--tlscert", str(tls / "server-cert.pem"),
               "--tlskey", str(tls / "server-key.pem"),
               "--log-driver", "json-file", "--log-opt", "max-size=20m", "--log-opt", "max-file=5"]
    return processes.Service("dockerd", engine.home, command,
                             probe=lambda: engine.socket.exists() and processes.port_open(engine.ip, TLS_PORT),
                             expect="dockerd", address=(engine.ip, TLS_PORT), pid_name="dockerd.pid",
                             log_name="dockerd.log", prepare=lambda: _prepare(engine))


def _prepare(engine: Engine) -> None:
    if os.geteuid() != 0:
        raise processes.StartError("a Docker engine needs root")
    engine.data_root.mkdir(parents=True, exist_ok=True)
    _make_bridge(engine.address)


def start(engine: Engine) -> None:
    """Start dockerd unless it runs; wait until the TLS socket accepts connections."""
    dockerd = service(engine)
    dockerd.start()
    processes.wait_healthy([dockerd])


def stop(engine: Engine) -> bool:
    """Stop dockerd (its containers stop with it) and remove the bridge."""
    stopped = bool(processes.stop([service(engine)], timeout=60))
    _ip("link", "delete", BRIDGE, check=False)
    return stopped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infrastructure.docker.engine", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["up", "down"])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--certs", type=Path, required=True, help="OUT_DIR of make docker-certs")
    parser.add_argument("--address", default=DEFAULT_ADDRESS)
    args = parser.parse_args(argv)
    engine = Engine(args.home.resolve(), args.certs.resolve(), args.address)
    if args.command == "up":
        start(engine)
        print(f"engine: up on {engine.unix_url} and {engine.tcp_url} (TLS)")
    else:
        print(f"engine: {'stopped' if stop(engine) else 'was not running'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
