"""infrastructure/terraform as data (python-hcl2), and the contract checks the tests run on it.

Every check takes the Terraform folder as an argument and returns a list of problems (empty = fine), so a
test can run it on the real tree and on a deliberately broken copy. Values are resolved only as far as
the checks need: literals, `var.X` (the module's default) and `local.X`; anything else is an expression
the checks refuse rather than guess.
"""
from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import hcl2
import yaml

from infrastructure.settings import REPO_ROOT, read_env_file
from tests.deployment.artifacts import COMPOSE_FILES, DOCKER_API_HOSTS, DOCKER_DAEMON_JSON

TERRAFORM = REPO_ROOT / "infrastructure" / "terraform"
GUIDE = REPO_ROOT / "infrastructure" / "README.md"
EXAMPLE = "examples/aws_reference"
PUBLIC = ("0.0.0.0/0", "::/0")
NEVER_PUBLIC_PORTS = (2376, 5432)  # the Docker API (root on the host) and PostgreSQL
_REFERENCE = re.compile(r"^\$\{(var|local)\.([A-Za-z0-9_]+)\}$")
_COMPOSE_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:[:?-][^}]*)?\}")


class Unresolved(ValueError):
    """An expression the checks do not evaluate."""


def _plain(value):
    """python-hcl2's output without its quoting: '"x"' -> 'x', block markers dropped."""
    if isinstance(value, dict):
        return {_plain(key): _plain(item) for key, item in value.items() if key not in ("__is_block__", "__comments__")}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


@dataclass
class Module:
    """The .tf files of one folder, merged."""
    path: Path
    variables: dict[str, dict] = field(default_factory=dict)
    locals: dict[str, object] = field(default_factory=dict)
    resources: list[tuple[str, str, dict]] = field(default_factory=list)  # (type, name, body)
    data: list[tuple[str, str, dict]] = field(default_factory=list)
    module_calls: dict[str, dict] = field(default_factory=dict)

    def resolve(self, value):
        """Literals, lists, maps, var.X (its default) and local.X; Unresolved otherwise."""
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if isinstance(value, dict):
            return {key: self.resolve(item) for key, item in value.items()}
        if isinstance(value, str) and value.startswith("${"):
            match = _REFERENCE.match(value)
            if not match:
                raise Unresolved(value)
            kind, name = match.groups()
            if kind == "local":
                if name not in self.locals:
                    raise Unresolved(value)
                return self.resolve(self.locals[name])
            if "default" not in self.variables.get(name, {}):
                raise Unresolved(f"{value} has no default")
            return self.resolve(self.variables[name]["default"])
        return value

    def resources_of(self, kind: str) -> list[tuple[str, dict]]:
        return [(name, body) for type_, name, body in self.resources if type_ == kind]


def load_module(path: Path) -> Module:
    module = Module(path)
    for tf in sorted(path.glob("*.tf")):
        with tf.open(encoding="utf-8") as handle:
            parsed = _plain(hcl2.load(handle))
        for block in parsed.get("variable", []):
            module.variables.update(block)
        for block in parsed.get("locals", []):
            module.locals.update(block)
        for key, target in (("resource", module.resources), ("data", module.data)):
            for block in parsed.get(key, []):
                for kind, named in block.items():
                    target.extend((kind, name, body) for name, body in named.items())
        for block in parsed.get("module", []):
            module.module_calls.update(block)
    return module


@functools.cache
def _cached_modules(root: str) -> dict[str, Module]:
    base = Path(root)
    folders = sorted({tf.parent for tf in base.rglob("*.tf") if ".terraform" not in tf.parts})
    return {folder.relative_to(base).as_posix(): load_module(folder) for folder in folders}


def modules(root: Path = TERRAFORM) -> dict[str, Module]:
    """Every folder with .tf files, by path relative to root (e.g. 'modules/lake')."""
    return _cached_modules(str(root))


# --- security groups -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Rule:
    group: str  # the destination security group (host role)
    ports: tuple[int, int]
    source: str  # a group name, or a CIDR range
    where: str

    def covers(self, port: int) -> bool:
        return self.ports[0] <= port <= self.ports[1]


_GROUP_OF = re.compile(r"aws_security_group\.role\[\"?([a-z]+)\"?\]")


def _port_pair(module: Module, value, where: str) -> tuple[int, int]:
    ports = module.resolve(value)
    if not (isinstance(ports, list) and len(ports) == 2 and all(isinstance(p, int) for p in ports)):
        raise Unresolved(f"{where}: ports {value!r} resolve to {ports!r}")
    return ports[0], ports[1]


def security_rules(root: Path = TERRAFORM) -> tuple[list[Rule], list[str]]:
    """Every ingress rule anywhere under root, and the rules the checks cannot read (problems).

    The security_groups module's rows (local.group_rules, local.cidr_rules) are resolved with its
    variables' defaults, CIDR rows once per range of the variable's validation-checked list. Any other
    ingress rule (a literal aws_vpc_security_group_ingress_rule, aws_security_group_rule, inline
    ingress block) is read from its literal arguments.
    """
    rules: list[Rule] = []
    problems: list[str] = []
    for rel, module in modules(root).items():
        if rel == "modules/security_groups":
            for key, row in module.locals.get("group_rules", {}).items():
                try:
                    rules.append(Rule(module.resolve(row["group"]), _port_pair(module, row["ports"], key),
                                      module.resolve(row["source"]), f"{rel}: {key}"))
                except Unresolved as error:
                    problems.append(str(error))
            for key, row in module.locals.get("cidr_rules", {}).items():
                try:
                    cidrs = _cidr_values(module, row["cidrs"])
                    for cidr in cidrs:
                        rules.append(Rule(module.resolve(row["group"]), _port_pair(module, row["ports"], key), cidr,
                                          f"{rel}: {key}"))
                except Unresolved as error:
                    problems.append(str(error))
        for kind in ("aws_vpc_security_group_ingress_rule", "aws_security_group_rule"):
            for name, body in module.resources_of(kind):
                where = f"{rel}: {kind}.{name}"
                if kind == "aws_security_group_rule" and body.get("type") != "ingress":
                    continue
                if body.get("for_each") in ("${local.group_rules}", "${local.cidr_rule_rows}") \
                        and rel == "modules/security_groups":
                    continue  # the rows above
                problems += _literal_rule(module, body, where, rules)
        for name, body in module.resources_of("aws_security_group"):
            for index, block in enumerate(body.get("ingress", [])):
                problems += _literal_rule(module, block, f"{rel}: aws_security_group.{name} ingress[{index}]", rules,
                                          group=name)
    return rules, problems


def _cidr_values(module: Module, value) -> list[str]:
    """A rule's CIDR list: literal ranges, or a variable whose validation refuses public ranges (its
    stand-in is the variable's name, since the ranges are given per deployment)."""
    match = _REFERENCE.match(value) if isinstance(value, str) else None
    if match and match.group(1) == "var":
        name = match.group(2)
        conditions = " ".join(v.get("condition", "") for v in module.variables[name].get("validation", []))
        if not all(public in conditions for public in PUBLIC):
            raise Unresolved(f"var.{name} has no validation refusing {PUBLIC}")
        return [f"var.{name}"]
    resolved = module.resolve(value)
    return resolved if isinstance(resolved, list) else [resolved]


def _literal_rule(module: Module, body: dict, where: str, rules: list[Rule], group: str | None = None) -> list[str]:
    try:
        low, high = module.resolve(body.get("from_port")), module.resolve(body.get("to_port"))
        if not isinstance(low, int) or not isinstance(high, int):
            raise Unresolved(f"{where}: ports {body.get('from_port')!r}..{body.get('to_port')!r}")
        target = group or (_GROUP_OF.search(str(body.get("security_group_id", ""))) or [None, "?"])[1]
        sources = []
        for key in ("cidr_ipv4", "cidr_ipv6", "cidr_blocks", "ipv6_cidr_blocks"):
            if key in body:
                value = module.resolve(body[key])
                sources += value if isinstance(value, list) else [value]
        for key in ("referenced_security_group_id", "source_security_group_id", "security_groups"):
            if key in body:
                found = _GROUP_OF.findall(str(body[key]))
                if not found:
                    raise Unresolved(f"{where}: source {body[key]!r}")
                sources += found
        if not sources:
            raise Unresolved(f"{where}: no source")
        rules.extend(Rule(target, (low, high), source, where) for source in sources)
        return []
    except Unresolved as error:
        return [f"unreadable ingress rule: {error}"]


def public_exposures(root: Path = TERRAFORM) -> list[str]:
    """Rules that open the Docker API or PostgreSQL to an address range instead of a group, or anything
    to the whole internet; and rules the checks cannot read."""
    rules, problems = security_rules(root)
    for rule in rules:
        is_group = not (rule.source.startswith("var.") or "/" in rule.source)
        if rule.source in PUBLIC:
            problems.append(f"{rule.where}: {rule.group} {rule.ports} open to {rule.source}")
        for port in NEVER_PUBLIC_PORTS:
            if rule.covers(port) and not is_group:
                problems.append(f"{rule.where}: {rule.group} port {port} reachable from {rule.source}, not a group")
    return problems


# --- what the project says the ports are -----------------------------------------------------------

def deployment_env() -> dict[str, str]:
    """Docker mode's values: .env.docker.example over .env.example (the docker template leaves some out)."""
    merged = read_env_file(REPO_ROOT / ".env.example")
    merged.update({k: v for k, v in read_env_file(REPO_ROOT / ".env.docker.example").items() if v})
    return merged


def _interpolate(text: str, env: dict[str, str]) -> str:
    return _COMPOSE_VARIABLE.sub(lambda m: env[m.group(1)], text)


def compose_ports() -> dict[str, set[int]]:
    """role -> every port the role's hosts listen on for other hosts: the compose files' published
    ports, 2376 where docker-daemon.json exposes the Docker API, and the Kafka file's INTERNAL and
    CONTROLLER listeners, which the three Kafka hosts publish to each other."""
    env = deployment_env()
    expected: dict[str, set[int]] = {}
    daemon_ports = {int(host.rsplit(":", 1)[1]) for host in json.loads(DOCKER_DAEMON_JSON.read_text())["hosts"]
                    if host.startswith("tcp://")}
    for path, role in COMPOSE_FILES.items():
        compose = yaml.safe_load((REPO_ROOT / path).read_text(encoding="utf-8"))
        ports = expected.setdefault(role, set())
        for service in compose["services"].values():
            for entry in service.get("ports", []):
                parts = _interpolate(str(entry), env).split(":")
                ports.add(int(parts[-2] if len(parts) == 3 else parts[0]))
            listeners = service.get("environment", {}).get("KAFKA_LISTENERS", "")
            ports.update(int(item.rsplit(":", 1)[1]) for item in listeners.split(",")
                         if item.startswith(("INTERNAL://", "CONTROLLER://")))
        if role in DOCKER_API_HOSTS:
            ports |= daemon_ports
    return expected


def port_mismatches(root: Path = TERRAFORM) -> list[str]:
    """Differences between the ports the security groups open per role and compose_ports()."""
    rules, problems = security_rules(root)
    opened: dict[str, set[int]] = {}
    for rule in rules:
        opened.setdefault(rule.group, set()).update(range(rule.ports[0], rule.ports[1] + 1))
    expected = compose_ports()
    for role in sorted(expected.keys() | opened.keys()):
        have, want = opened.get(role, set()), expected.get(role, set())
        extra, missing = have - want, want - have
        if extra:
            problems.append(f"{role}: security group opens {sorted(extra)}, which no compose file publishes")
        if missing:
            problems.append(f"{role}: compose publishes {sorted(missing)}, which no security group rule opens")
    return problems


def guide_port_table() -> set[tuple[str, int, str]]:
    """(group, port, source) rows of the guide's 'Network and security groups' table; a VPN source is
    the variable that holds its ranges, 'nobody outside the host' is no row at all."""
    text = GUIDE.read_text(encoding="utf-8")
    section = text.split("## 2. Network and security groups", 1)[1].split("\n## ", 1)[0]
    rows = set()
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 4 or not re.match(r"^\d", cells[1]):
            continue
        group, port_text, source_text = cells[0], cells[1], cells[2]
        low, _, high = port_text.replace("–", "-").partition("-")
        ports = range(int(low), int(high or low) + 1)
        if source_text.startswith("nobody"):
            continue
        if "admin VPN" in source_text:
            sources = ["var.admin_cidrs"]
        elif "analysts" in source_text:
            sources = ["var.analyst_cidrs"]
        else:
            sources = [s.strip() for s in source_text.split("(")[0].split(",")]
        rows |= {(group, port, source) for port in ports for source in sources}
    return rows


def terraform_port_table(root: Path = TERRAFORM) -> set[tuple[str, int, str]]:
    rules, _ = security_rules(root)
    return {(rule.group, port, rule.source) for rule in rules for port in range(rule.ports[0], rule.ports[1] + 1)}


# --- hosts, names, lake ----------------------------------------------------------------------------

def example() -> Module:
    return modules()[EXAMPLE]


def layout() -> dict[str, dict]:
    """The example's hosts: name -> {role, zone, number}."""
    return example().resolve(example().locals["layout"])


def guide_hosts() -> list[str]:
    """Host names of the guide's 'Hosts and sizes' table, first column."""
    text = GUIDE.read_text(encoding="utf-8")
    section = text.split("## 1. Hosts and sizes", 1)[1].split("\n## ", 1)[0]
    names = []
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[1].startswith("`") and cells[1].endswith(".yaml`"):
            names += [name.strip() for name in cells[0].split(",")]
    return names


def lifecycle_problems(root: Path = TERRAFORM) -> list[str]:
    """Anything that could expire a current object under checkpoints/."""
    lake = modules(root)["modules/lake"]
    problems = []
    days = lake.resolve(lake.locals["current_object_days"])
    if days.get("checkpoints/", 0) != 0:
        problems.append(f"current_object_days expires checkpoints/ after {days['checkpoints/']} days")
    for name, body in lake.resources_of("aws_s3_bucket_lifecycle_configuration"):
        for rule in body.get("rule", []):  # static rules; the dynamic one is driven by current_object_days
            prefix = _rule_prefix(rule)
            expires = any("days" in e or "date" in e for e in rule.get("expiration", []))
            if expires and "checkpoints/".startswith(prefix):
                problems.append(f"{name}: rule {rule.get('id')} expires objects under {prefix or 'every prefix'}")
        dynamic = [block["rule"] for block in body.get("dynamic", []) if "rule" in block]
        if any(rule.get("for_each") != "${local.current_object_days}" for rule in dynamic):
            problems.append(f"{name}: a dynamic rule not driven by local.current_object_days")
    return problems


def _rule_prefix(rule: dict) -> str:
    filters = rule.get("filter", [{}])
    return (filters[0] or {}).get("prefix", "") if filters else ""


def policy_statements(module: Module, name: str) -> dict[str, set[str]]:
    """Sid -> actions of data.aws_iam_policy_document.<name>, dynamic statements included."""
    (body,) = [body for type_, data_name, body in module.data
               if type_ == "aws_iam_policy_document" and data_name == name]
    statements = list(body.get("statement", []))
    statements += [block["statement"]["content"][0] for block in body.get("dynamic", []) if "statement" in block]
    return {statement.get("sid", ""): set(statement["actions"]) for statement in statements}


def guide_lake_policy() -> dict[str, set[str]]:
    """Sid -> actions of the IAM policy JSON in the guide's 'S3: bucket layout and IAM policy'."""
    text = GUIDE.read_text(encoding="utf-8")
    section = text.split("## 4. S3: bucket layout and IAM policy", 1)[1]
    document = json.loads(section.split("```json", 1)[1].split("```", 1)[0])
    return {statement["Sid"]: set(statement["Action"]) for statement in document["Statement"]}
