"""`make up`, `make down` and `make status` over the groups of local services.

    python -m infrastructure.local.services up|down|status [GROUP ...]

GROUP is `platform` (Kafka x3 KRaft, PostgreSQL, the S3 API server), `monitoring` (Prometheus, Alertmanager,
the exporters, the alert inbox), `airflow`, `superset` or `all`. Without one, `up` and `down` mean the platform
and its monitoring: Airflow and Superset stand on them and start on demand. `up` first starts a needed group
that does not serve; `down` stops in reverse order. `status` lists every service of the groups (all without
one) and exits 1 when one named is not healthy; without a name, when the platform or the monitoring is not
healthy or another group is half up.
"""
from __future__ import annotations

import argparse
import importlib
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from infrastructure.local.processes import Service
from infrastructure.settings import Settings, load

DEFAULT = ("platform", "monitoring")
# Imported when named, so stopping the platform never needs Airflow's or Superset's code to import.
MODULES = {"platform": "infrastructure.local.platform", "monitoring": "monitoring.local",
           "airflow": "orchestration.airflow_local", "superset": "gold.superset.provision"}


@dataclass(frozen=True)
class Group:
    """Services that start and stop together, with the work around them (topics, migrations, assets)."""
    name: str
    services: Callable[[Settings], list[Service]]
    up: Callable[[Settings], object]  # idempotent: keeps what runs, waits for health
    down: Callable[[Settings], list[str]]  # the names of the services it stopped
    needs: tuple[str, ...] = ()


def group(name: str) -> Group:
    return importlib.import_module(MODULES[name]).GROUP


def selected(names: list[str], settings: Settings | None = None) -> list[Group]:
    """The groups named (`all`: every one), in start order; given settings, also the groups they need
    that do not serve yet (one serving from another run dir, as a test's private Superset uses the
    shared platform, is left alone)."""
    wanted = set(MODULES) if "all" in names else set(names)
    unknown = wanted - set(MODULES)
    if unknown:
        raise SystemExit(f"unknown group {', '.join(sorted(unknown))}: choose from {', '.join(MODULES)} or all")
    if settings is not None:
        wanted |= {need for name in wanted for need in group(name).needs
                   if not all(service.answers() for service in group(need).services(settings))}
    return [group(name) for name in MODULES if name in wanted]


def rows(groups: list[Group], settings: Settings) -> list[dict]:
    out = []
    for g in groups:
        for service in g.services(settings):
            pid = service.pid()
            health = "stopped" if pid is None else "healthy" if service.answers() else "UNHEALTHY"
            address = f"{service.address[0]}:{service.address[1]}" if service.address else "-"
            out.append({"service": service.name, "group": g.name, "address": address, "pid": pid, "health": health})
    return out


def print_status(table: list[dict]) -> None:
    print(f"{'SERVICE':<22} {'GROUP':<11} {'ADDRESS':<18} {'PID':>8}  HEALTH")
    for row in table:
        print(f"{row['service']:<22} {row['group']:<11} {row['address']:<18} {row['pid'] or '-':>8}  {row['health']}")
    for name in dict.fromkeys(row["group"] for row in table):
        mine = [row for row in table if row["group"] == name]
        print(f"{name}: {sum(r['health'] == 'healthy' for r in mine)}/{len(mine)} services healthy")


def status_ok(table: list[dict], strict: set[str]) -> bool:
    """Every service of a `strict` group healthy; any other group wholly healthy or wholly stopped."""
    for name in dict.fromkeys(row["group"] for row in table):
        states = {row["health"] for row in table if row["group"] == name}
        if states != {"healthy"} and (name in strict or states != {"stopped"}):
            return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infrastructure.local.services",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument("groups", nargs="*", metavar="GROUP", help=f"{', '.join(MODULES)} or all")
    args = parser.parse_args(argv)
    settings = load()
    if args.command == "status":
        groups = selected(args.groups or ["all"])
        table = rows(groups, settings)
        print_status(table)
        return 0 if status_ok(table, {g.name for g in groups} if args.groups else set(DEFAULT)) else 1
    if args.command == "down":
        for g in reversed(selected(args.groups or list(DEFAULT))):
            stopped = g.down(settings)
            print(f"{g.name}: stopped {len(stopped)} services: {', '.join(stopped) or 'none running'}")
        return 0
    groups = selected(args.groups or list(DEFAULT), settings)
    for g in groups:
        began = time.monotonic()
        try:
            g.up(settings)
        except (RuntimeError, OSError) as exc:  # OSError: requests' errors too
            print(f"{g.name}: FAILED: {exc}", file=sys.stderr)
            return 1
        print(f"{g.name}: up in {time.monotonic() - began:.1f}s")
    table = rows(groups, settings)
    print_status(table)
    return 0 if status_ok(table, {g.name for g in groups}) else 1


if __name__ == "__main__":
    sys.exit(main())
