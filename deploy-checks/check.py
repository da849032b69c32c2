#!/usr/bin/env python3
"""Static checks of the nis deployment files.

    python3 deploy-checks/check.py            (from anywhere; paths are repo-relative)

Checks the Dockerfile, docker-compose.yml, kong/, monitoring/ and k8s/ against
each other and against two data files beside this script: routes.txt (the
public API) and metric_families.txt (the metrics dashboards and alerts may use).
No Docker engine, cluster or network is needed: `kubectl kustomize` renders the
overlays, kubernetes-validate checks them against the Kubernetes schemas, and
promtool checks the Prometheus files.

Prints one line per check (PASS / FAIL / SKIP), then "N passed, M failed"
(", K skipped" is added only when something was skipped). Exits 1 when a check
failed, 2 when it cannot run at all (missing Python packages). Installs nothing:
see deploy-checks/README.md for the virtualenv.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

try:
    import yaml
    import kubernetes_validate
    from kubernetes_validate import utils as kv_utils
except ImportError as error:  # pragma: no cover - environment problem
    sys.stderr.write(
        f"deploy-checks: missing Python package ({error.name}).\n"
        "Create the virtualenv described in deploy-checks/README.md:\n"
        "  python3 -m venv .venv-deploy-checks && "
        ".venv-deploy-checks/bin/pip install -r deploy-checks/requirements.txt\n"
    )
    sys.exit(2)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

# Kubernetes version the rendered manifests are validated against. The
# manifests use the preStop `sleep` action (beta and on by default since
# 1.30), so 1.30 is the oldest cluster they are meant for.
KUBERNETES_VERSION = "1.31"

# Sample ids that make routes.txt paths concrete, per service.
SAMPLE_IDS = {
    "courses": "64b7f0c2a1d4e5f6a7b8c9d0",  # MongoDB ObjectId
    "students": "0190f5a2-7c1e-7d3a-9b2e-4f6a8c0d1e2f",  # UUIDv7
}
# The HTTP port each service serves the API, the probes and /metrics on.
HTTP_PORTS = {"courses": 8010, "students": 8020}
# Paths that must never be routed through Kong.
PRIVATE_PATHS = ["/healthz", "/readyz", "/metrics", "/"]
# Series Prometheus makes itself; allowed in queries beside metric_families.txt.
PROMETHEUS_SERIES = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}
# Variables docker-compose.yml may interpolate. Everything else in .env (the
# `make up` settings such as DATABASE_URL=...127.0.0.1...) would be wrong
# inside containers, so compose must not read it.
COMPOSE_VARIABLES = {"KONG_API_KEY", "POSTGRES_PASSWORD", "GRAFANA_ADMIN_PASSWORD", "NIS_TAG"}
# CRD kinds that kubernetes-validate has no schema for; checked by hand below.
CRD_GROUPS = ("configuration.konghq.com/",)


# ---------------------------------------------------------------- reporting


class CheckFailed(Exception):
    """A check found a problem; the message says what and where."""


class Skipped(Exception):
    """A check could not run here (a missing tool); the message says why."""


@dataclass
class Report:
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    lines: list[str] = field(default_factory=list)

    def run(self, name: str, fn: Callable[[], str | None]) -> None:
        try:
            note = fn()
        except CheckFailed as error:
            self.failed += 1
            self._print("FAIL", name, str(error))
        except Skipped as error:
            self.skipped += 1
            self._print("SKIP", name, str(error))
        except Exception:  # a bug in a check must not hide the others
            self.failed += 1
            self._print("FAIL", name, "check crashed:\n" + traceback.format_exc())
        else:
            self.passed += 1
            self._print("PASS", name, note)

    @staticmethod
    def _print(status: str, name: str, detail: str | None) -> None:
        line = f"{status}  {name}"
        if detail:
            first, *rest = str(detail).rstrip().splitlines()
            line += f": {first}"
            for extra in rest:
                line += f"\n        {extra}"
        print(line, flush=True)

    def summary(self) -> str:
        text = f"{self.passed} passed, {self.failed} failed"
        if self.skipped:
            text += f", {self.skipped} skipped"
        return text


def problems(found: list[str], limit: int = 20) -> None:
    """Raise CheckFailed listing `found` (one per line), if any."""
    if found:
        shown = found[:limit]
        more = f"\n... and {len(found) - limit} more" if len(found) > limit else ""
        raise CheckFailed(f"{len(found)} problem(s)\n" + "\n".join(shown) + more)


# ---------------------------------------------------------------- helpers


def rel(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def load_yaml(path: Path) -> Any:
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def load_yaml_all(text: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess:
    kwargs.setdefault("capture_output", True)
    kwargs.setdefault("text", True)
    kwargs.setdefault("stdin", subprocess.DEVNULL)
    kwargs.setdefault("timeout", 300)
    return subprocess.run(cmd, **kwargs)


def tool(name: str) -> str | None:
    return shutil.which(name)


# ---------------------------------------------------------------- data files


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    service: str

    def concrete(self) -> str:
        return self.path.replace("{id}", SAMPLE_IDS[self.service])


def read_routes() -> list[Route]:
    routes = []
    for number, line in enumerate((HERE / "routes.txt").read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 3:
            raise CheckFailed(f"routes.txt:{number}: expected METHOD PATH SERVICE, got {line!r}")
        method, path, service = parts
        if method not in {"GET", "POST", "PUT", "DELETE", "PATCH"}:
            raise CheckFailed(f"routes.txt:{number}: unknown method {method}")
        if service not in SAMPLE_IDS:
            raise CheckFailed(f"routes.txt:{number}: unknown service {service}")
        if not path.startswith(f"/api/{service}"):
            raise CheckFailed(f"routes.txt:{number}: {path} is not under /api/{service}")
        routes.append(Route(method, path, service))
    return routes


def read_metric_families() -> dict[str, str]:
    families = {}
    for number, line in enumerate((HERE / "metric_families.txt").read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 3 or parts[1] not in {"counter", "gauge", "histogram", "summary"}:
            raise CheckFailed(f"metric_families.txt:{number}: expected NAME TYPE EXPORTED-BY, got {line!r}")
        families[parts[0]] = parts[1]
    return families


def check_routes_file() -> str:
    routes = read_routes()
    seen = set()
    for route in routes:
        key = (route.method, route.path)
        if key in seen:
            raise CheckFailed(f"duplicate route {route.method} {route.path}")
        seen.add(key)
    services = sorted({r.service for r in routes})
    return f"{len(routes)} routes of {', '.join(services)}"


def check_metric_families_file() -> str:
    families = read_metric_families()
    if not any(name.startswith("nis_") for name in families):
        raise CheckFailed("no nis_ family listed")
    return f"{len(families)} families"


# ---------------------------------------------------------------- Dockerfile


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)


def parse_dockerfile(path: Path) -> list[Stage]:
    logical: list[str] = []
    buffer = ""
    for raw in path.read_text().splitlines():
        stripped = raw.strip()
        if not buffer and (not stripped or stripped.startswith("#")):
            continue
        if buffer and stripped.startswith("#"):
            continue  # comment lines inside a continued instruction
        if stripped.endswith("\\"):
            buffer += stripped[:-1] + " "
            continue
        logical.append(buffer + stripped)
        buffer = ""
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical:
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        rest = rest.strip()
        if keyword == "ARG" and not stages:
            name, _, default = rest.partition("=")
            global_args[name.strip()] = default.strip()
            continue
        if keyword == "FROM":
            words = [w for w in rest.split() if not w.startswith("--")]
            base = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: global_args.get(m.group(1) or m.group(2), ""), words[0])
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else f"stage{len(stages)}"
            stages.append(Stage(name=name, base=base))
            continue
        if stages:
            stages[-1].instructions.append((keyword, rest))
    return stages


def stage_chain(stages: list[Stage], name: str) -> list[Stage]:
    """The stage and the stages it is built FROM, nearest first."""
    by_name = {s.name: s for s in stages}
    chain = []
    current = by_name.get(name)
    while current is not None and current not in chain:
        chain.append(current)
        current = by_name.get(current.base)
    return chain


def effective(stages: list[Stage], name: str, keyword: str) -> str | None:
    """The last value of an inherited instruction (USER, HEALTHCHECK) for a target."""
    for stage in stage_chain(stages, name):
        for kw, rest in reversed(stage.instructions):
            if kw == keyword:
                return rest
    return None


def external_base(stages: list[Stage], name: str) -> str:
    return stage_chain(stages, name)[-1].base


def installed_tools(stages: list[Stage], name: str) -> set[str]:
    """Programs a target has beyond its base image: apt-get installs and COPYed binaries."""
    tools: set[str] = set()
    for stage in stage_chain(stages, name):
        for kw, rest in stage.instructions:
            if kw == "RUN" and "apt-get install" in rest:
                for command in rest.split("&&"):
                    if "apt-get install" in command:
                        tools.update(w for w in command.split("install", 1)[1].split() if not w.startswith("-"))
            if kw == "COPY":
                tools.add(rest.split()[-1])
    return tools


DOCKERFILE = ROOT / "Dockerfile"
SERVICE_TARGETS = ["courses", "students"]
ALL_TARGETS = ["courses", "students", "initializer", "courses-distroless", "students-distroless"]


def check_dockerfile_targets() -> str:
    stages = parse_dockerfile(DOCKERFILE)
    names = {s.name for s in stages}
    missing = [t for t in ALL_TARGETS if t not in names]
    problems([f"no target {t!r}" for t in missing])
    return f"{len(stages)} stages; targets {', '.join(ALL_TARGETS)}"


def check_dockerfile_non_root() -> str:
    stages = parse_dockerfile(DOCKERFILE)
    found = []
    for target in ALL_TARGETS:
        user = effective(stages, target, "USER")
        if user is None:
            found.append(f"{target}: no USER (would run as the base image's user, often root)")
            continue
        uid = user.split(":")[0]
        if uid in {"root", "0"}:
            found.append(f"{target}: USER {user} is root")
    problems(found)
    return "every target sets a non-root USER"


def check_dockerfile_layers() -> str:
    stages = parse_dockerfile(DOCKERFILE)
    found = []
    if len(stages) < 3:
        found.append("not a multi-stage build")
    builder_ok = False
    for stage in stages:
        runs = [(i, r) for i, (kw, r) in enumerate(stage.instructions) if kw == "RUN"]
        copies = [i for i, (kw, r) in enumerate(stage.instructions) if kw == "COPY" and r.split()[0] == "."]
        cook = [i for i, r in runs if "cargo chef cook" in r]
        build = [i for i, r in runs if "cargo build" in r]
        mounts = [i for i, r in runs if "cargo build" in r and "--mount=type=cache" in r]
        if build and (mounts or (cook and copies and cook[0] < copies[0] < build[0])):
            builder_ok = True
    if not builder_ok:
        found.append("no stage caches the dependencies (cargo chef cook before COPY . ., or a cache mount)")
    for target in ALL_TARGETS:
        base = external_base(stages, target)
        if base.startswith("rust:"):
            found.append(f"{target}: the final image is the Rust toolchain image")
    problems(found)
    return "cargo-chef dependency layer; runtime stages without the toolchain"


def check_dockerfile_healthchecks() -> str:
    stages = parse_dockerfile(DOCKERFILE)
    found, notes = [], []
    for target in ALL_TARGETS:
        healthcheck = effective(stages, target, "HEALTHCHECK")
        distroless = "distroless" in external_base(stages, target)
        if healthcheck is None or healthcheck.upper().startswith("NONE"):
            if target in SERVICE_TARGETS:
                found.append(f"{target}: a compose service image without HEALTHCHECK")
            continue
        if distroless:
            found.append(f"{target}: HEALTHCHECK on a distroless image (no shell, no client to run it)")
            continue
        match = re.search(r'CMD\s+\[\s*"([^"]+)"', healthcheck)
        if not match:
            found.append(f"{target}: HEALTHCHECK should use the exec form CMD [...]")
            continue
        program = match.group(1)
        if program not in installed_tools(stages, target):
            found.append(f"{target}: HEALTHCHECK runs {program}, which the image does not install")
        notes.append(target)
    problems(found)
    return f"HEALTHCHECK on {', '.join(notes)}; none on distroless targets"


def check_dockerfile_pinned() -> str:
    stages = parse_dockerfile(DOCKERFILE)
    names = {s.name for s in stages}
    found = []
    for stage in stages:
        if stage.base in names:
            continue
        if ":" not in stage.base.split("/")[-1] or stage.base.endswith(":latest"):
            found.append(f"stage {stage.name}: base image {stage.base!r} has no fixed tag")
    problems(found)
    return ", ".join(sorted({s.base for s in stages if s.base not in names}))


def check_dockerignore() -> str:
    path = ROOT / ".dockerignore"
    if not path.exists():
        raise CheckFailed(".dockerignore is missing")
    entries = {line.strip().rstrip("/") for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")}
    missing = [e for e in ("target", ".git", ".env") if e not in entries]
    problems([f"{e} is not excluded from the build context" for e in missing])
    return "target/, .git/ and .env stay out of the build context"


# ---------------------------------------------------------------- compose

COMPOSE = ROOT / "docker-compose.yml"


def compose() -> dict:
    return load_yaml(COMPOSE)


def compose_build_target(service: dict) -> str | None:
    build = service.get("build")
    if isinstance(build, dict):
        return build.get("target")
    return None


def is_one_shot(service: dict) -> bool:
    """A program that runs once and exits: marked by an explicit `restart: "no"`.

    (Compose's default is also "no", but a service without the key is taken
    as long-running here, so that it cannot dodge the healthcheck rule.)"""
    return service.get("restart") in ("no", False)  # unquoted `no` is YAML false


def has_healthcheck(service: dict, stages: list[Stage]) -> bool:
    healthcheck = service.get("healthcheck")
    if isinstance(healthcheck, dict):
        return not healthcheck.get("disable", False) and bool(healthcheck.get("test"))
    target = compose_build_target(service)
    return bool(target and effective(stages, target, "HEALTHCHECK"))


def check_compose_targets() -> str:
    services = compose()["services"]
    stages = parse_dockerfile(DOCKERFILE)
    names = {s.name for s in stages}
    found, used = [], set()
    for name, service in services.items():
        build = service.get("build")
        if build is None:
            continue
        context = build if isinstance(build, str) else build.get("context", ".")
        dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
        if (ROOT / context / dockerfile).resolve() != DOCKERFILE.resolve():
            found.append(f"{name}: builds from {context}/{dockerfile}, not the repository's Dockerfile")
        target = compose_build_target(service)
        if not target:
            found.append(f"{name}: build without a target (would build the last stage)")
        elif target not in names:
            found.append(f"{name}: target {target!r} is not a stage of the Dockerfile")
        else:
            used.add(target)
    problems(found)
    return f"targets used: {', '.join(sorted(used))}"


def check_compose_mounts() -> str:
    services = compose()["services"]
    found, count, external = [], 0, []
    for name, service in services.items():
        for volume in service.get("volumes", []) or []:
            if isinstance(volume, dict):
                if volume.get("type") != "bind":
                    continue
                source = volume["source"]
            else:
                source = volume.split(":", 1)[0]
                if not source.startswith((".", "/", "~")):
                    continue  # a named volume
            if source.startswith(("/", "~")):
                external.append(f"{name}:{source}")
                continue
            count += 1
            if not (ROOT / source).exists():
                found.append(f"{name}: mounts {source}, which does not exist")
    problems(found)
    note = f"{count} repository files/directories mounted, all present"
    if external:
        note += f"; host paths not checked: {', '.join(external)}"
    return note


def check_compose_depends_on() -> str:
    services = compose()["services"]
    stages = parse_dockerfile(DOCKERFILE)
    found, edges = [], 0
    for name, service in services.items():
        depends = service.get("depends_on") or {}
        if isinstance(depends, list):
            found.append(f"{name}: depends_on without conditions (only waits for a start)")
            continue
        for target, spec in depends.items():
            edges += 1
            if target not in services:
                found.append(f"{name}: depends on unknown service {target}")
                continue
            condition = (spec or {}).get("condition", "service_started")
            other = services[target]
            if condition == "service_healthy":
                if not has_healthcheck(other, stages):
                    found.append(f"{name}: waits for {target} to be healthy, but {target} has no healthcheck")
            elif condition == "service_completed_successfully":
                if not is_one_shot(other):
                    found.append(f"{name}: waits for {target} to complete, but {target} is restarted (not a one-shot)")
            else:
                found.append(f"{name}: depends on {target} with condition {condition} (use service_healthy or service_completed_successfully)")
    problems(found)
    return f"{edges} dependencies, each on a healthcheck or a one-shot"


def check_compose_healthchecks() -> str:
    services = compose()["services"]
    stages = parse_dockerfile(DOCKERFILE)
    found, long_running = [], []
    for name, service in services.items():
        if is_one_shot(service):
            continue
        long_running.append(name)
        if not has_healthcheck(service, stages):
            found.append(f"{name}: long-running without a healthcheck")
            continue
        # A healthcheck runs inside the container: its program must exist there.
        test = (service.get("healthcheck") or {}).get("test")
        target = compose_build_target(service)
        if target and isinstance(test, list) and test:
            distroless = "distroless" in external_base(stages, target)
            if test[0] == "CMD-SHELL" and distroless:
                found.append(f"{name}: CMD-SHELL healthcheck on a distroless image (no shell)")
            if test[0] == "CMD" and len(test) > 1:
                program = test[1]
                if program not in installed_tools(stages, target) and not program.startswith("/usr/local/bin/"):
                    found.append(f"{name}: healthcheck runs {program}, which target {target} does not install")
    problems(found)
    return f"{len(long_running)} long-running services, all health-checked"


def check_compose_order() -> str:
    services = compose()["services"]
    graph = {name: list((service.get("depends_on") or {})) for name, service in services.items()}
    state: dict[str, int] = {}
    order: list[str] = []

    def visit(node: str, path: list[str]) -> None:
        if state.get(node) == 1:
            raise CheckFailed("dependency cycle: " + " -> ".join(path + [node]))
        if state.get(node) == 2:
            return
        state[node] = 1
        for nxt in graph.get(node, []):
            visit(nxt, path + [node])
        state[node] = 2
        order.append(node)

    for node in graph:
        visit(node, [])
    first = [n for n in order if not graph[n]]
    return f"acyclic; first to start: {', '.join(first)}"


def check_compose_ports() -> str:
    services = compose()["services"]
    found, public, local = [], [], []
    for name, service in services.items():
        for port in service.get("ports", []) or []:
            if isinstance(port, dict):
                host_ip = port.get("host_ip", "")
                text = f"{host_ip}:{port.get('published')}:{port.get('target')}"
            else:
                text = str(port)
                parts = text.split(":")
                host_ip = ":".join(parts[:-2]) if len(parts) >= 3 else ""
            host_ip = host_ip.strip("[]")
            if host_ip in {"127.0.0.1", "::1", "localhost"}:
                local.append(f"{name} {text}")
            elif name == "kong":
                public.append(f"{name} {text}")
            else:
                found.append(f"{name}: publishes {text} beyond localhost (only Kong may)")
    problems(found)
    if not public:
        raise CheckFailed("Kong's proxy is not published")
    return f"public: {', '.join(public)}; localhost only: {', '.join(local) or 'none'}"


def check_compose_variables() -> str:
    text = COMPOSE.read_text()
    used = {}
    for match in re.finditer(r"\$\{(\w+)(:?[-?][^}]*)?\}|\$(\w+)", text):
        name = match.group(1) or match.group(3)
        if name:
            used.setdefault(name, []).append(match.group(0))
    found = [f"${{{name}}} is not a compose variable (allowed: {', '.join(sorted(COMPOSE_VARIABLES))})" for name in used if name not in COMPOSE_VARIABLES]
    key_uses = used.get("KONG_API_KEY", [])
    if not key_uses or not all(":?" in use for use in key_uses):
        found.append("KONG_API_KEY must be required (${KONG_API_KEY:?...}), never defaulted")
    # Cross-check with .env.example: any make-up variable used here would
    # silently take its 127.0.0.1 value from .env.
    example = ROOT / ".env.example"
    if example.exists():
        make_up_vars = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", example.read_text(), re.M))
        clash = sorted((make_up_vars - COMPOSE_VARIABLES) & set(used))
        found += [f"${{{name}}} is also a `make up` variable in .env.example" for name in clash]
    problems(found)
    return f"interpolates only {', '.join(sorted(used))}"


def check_compose_stores() -> str:
    services = compose()["services"]
    found = []

    def env(name: str) -> dict:
        environment = services.get(name, {}).get("environment", {}) or {}
        if isinstance(environment, list):
            environment = dict(item.split("=", 1) for item in environment)
        return environment

    mongo = services.get("mongodb", {})
    command = " ".join(mongo.get("command", []) if isinstance(mongo.get("command"), list) else [str(mongo.get("command", ""))])
    if "--replSet" not in command:
        found.append("mongodb: not started as a replica set (--replSet)")
    if "rs.initiate" not in json.dumps(mongo.get("healthcheck", {})):
        found.append("mongodb: the healthcheck does not initiate the replica set")
    for name in ("courses", "courses-migrate"):
        uri = env(name).get("MONGODB_URI", "")
        if not re.search(r"replicaSet=|directConnection=true", uri):
            found.append(f"{name}: MONGODB_URI without replicaSet= or directConnection=true")
    for name in ("students", "students-migrate"):
        if not env(name).get("DATABASE_URL", "").startswith("postgres"):
            found.append(f"{name}: DATABASE_URL is not a PostgreSQL URL")
    nats_command = " ".join(map(str, services.get("nats", {}).get("command", [])))
    if not re.search(r"(^|\s)(-js|--jetstream)(\s|$)", nats_command):
        found.append("nats: JetStream is not enabled (-js)")
    for name in ("courses", "students"):
        if env(name).get("LOG_FORMAT") != "json":
            found.append(f"{name}: LOG_FORMAT is not json")
    problems(found)
    return "MongoDB replica set rs0, PostgreSQL URL, NATS with JetStream, JSON logs"


def check_compose_kong() -> str:
    kong = compose()["services"].get("kong")
    if not kong:
        raise CheckFailed("no kong service")
    env = kong.get("environment", {})
    found = []
    if str(env.get("KONG_DATABASE")) != "off":
        found.append("KONG_DATABASE is not off (DB-less)")
    entrypoint = " ".join(kong.get("entrypoint", []))
    if "render-config.sh" not in entrypoint:
        found.append("the entrypoint does not render kong.yml (render-config.sh)")
    mounts = [v for v in kong.get("volumes", []) if isinstance(v, str) and v.startswith("./kong")]
    if not mounts:
        found.append("kong/ is not mounted")
    if "KONG_STATUS_LISTEN" not in env:
        found.append("no status listener for /metrics")
    problems(found)
    return "DB-less, kong/kong.yml rendered with the key at start"


# ---------------------------------------------------------------- routing


@dataclass
class GatewayRoute:
    """One way into a service: a Kong route or an Ingress path."""

    where: str
    kind: str  # "prefix", "regex", "exact", "k8s-prefix"
    pattern: str
    service: str  # the service it leads to, as a routes.txt service name (or "?host:port")
    methods: frozenset[str] | None = None

    def matches(self, method: str, path: str) -> bool:
        if self.methods and method not in self.methods:
            return False
        if self.kind == "regex":
            return re.match(self.pattern, path) is not None  # Kong 3.x anchors at the start
        if self.kind == "exact":
            return path == self.pattern
        if self.kind == "k8s-prefix":  # Kubernetes Prefix: whole path elements
            prefix = self.pattern.rstrip("/")
            return path == prefix or path.startswith(prefix + "/") or prefix == ""
        return path.startswith(self.pattern)


def kong_routes() -> tuple[list[GatewayRoute], dict]:
    config = load_yaml(ROOT / "kong" / "kong.yml")
    routes = []
    for service in config.get("services", []):
        url = service.get("url") or f"{service.get('protocol', 'http')}://{service.get('host')}:{service.get('port', 80)}"
        match = re.match(r"https?://([^:/]+):(\d+)", url)
        target = "?" + url
        if match:
            host, port = match.group(1), int(match.group(2))
            if HTTP_PORTS.get(host) == port:
                target = host
        for route in service.get("routes", []):
            for path in route.get("paths", []):
                if path.startswith("~"):
                    kind, pattern = "regex", path[1:]
                else:
                    kind, pattern = "prefix", path
                methods = frozenset(route["methods"]) if route.get("methods") else None
                routes.append(GatewayRoute(f"kong.yml route {route.get('name')} {path}", kind, pattern, target, methods))
    return routes, config


def check_gateway_routes(routes: list[GatewayRoute]) -> str:
    api = read_routes()
    found = []
    for route in api:
        path = route.concrete()
        hits = [g for g in routes if g.matches(route.method, path)]
        if not hits:
            found.append(f"{route.method} {route.path}: no gateway route leads there")
        for hit in hits:
            if hit.service != route.service:
                found.append(f"{route.method} {route.path}: {hit.where} sends it to {hit.service}, not {route.service}")
    for gateway in routes:
        if not any(gateway.matches(r.method, r.concrete()) for r in api):
            found.append(f"{gateway.where}: leads to no route of routes.txt")
        for private in PRIVATE_PATHS:
            if any(gateway.matches(method, private) for method in ("GET", "POST")):
                found.append(f"{gateway.where}: exposes {private}")
        for service in SAMPLE_IDS:
            lookalike = f"/api/{service}x"
            if gateway.matches("GET", lookalike):
                found.append(f"{gateway.where}: also matches {lookalike}")
    problems(found)
    return f"{len(routes)} gateway paths <-> {len(api)} routes; probes and /metrics not routed"


def check_kong_routes() -> str:
    routes, _ = kong_routes()
    if not routes:
        raise CheckFailed("kong.yml has no routes")
    return check_gateway_routes(routes)


def plugin_applies(plugin: dict, service: str, route: str) -> bool:
    if plugin.get("enabled", True) is False:
        return False
    scope_service = plugin.get("service")
    scope_route = plugin.get("route")
    if scope_service is None and scope_route is None and plugin.get("consumer") is None:
        return True
    return scope_service == service or scope_route == route


def check_key_auth_config(config: dict, where: str) -> list[str]:
    found = []
    names = set(config.get("key_names", []))
    for needed in ("apikey", "x-api-key"):
        if needed not in names:
            found.append(f"{where}: key_names lacks {needed}")
    if config.get("key_in_query", True) is not False:
        found.append(f"{where}: key_in_query is not false (keys would be accepted in URLs)")
    if config.get("key_in_header", True) is not True:
        found.append(f"{where}: key_in_header is not true")
    return found


def check_kong_key_auth() -> str:
    _, config = kong_routes()
    plugins = list(config.get("plugins", []))
    found = []
    for service in config.get("services", []):
        plugins += [dict(p, service=service["name"]) for p in service.get("plugins", [])]
        for route in service.get("routes", []):
            plugins += [dict(p, route=route["name"]) for p in route.get("plugins", [])]
    key_auths = [p for p in plugins if p.get("name") == "key-auth"]
    if not key_auths:
        raise CheckFailed("no key-auth plugin")
    for plugin in key_auths:
        found += check_key_auth_config(plugin.get("config", {}), "key-auth")
    covered = 0
    for service in config.get("services", []):
        for route in service.get("routes", []):
            if any(plugin_applies(p, service["name"], route["name"]) for p in key_auths):
                covered += 1
            else:
                found.append(f"route {route['name']}: not behind key-auth")
    problems(found)
    return f"{covered} routes behind key-auth; keys in headers apikey/x-api-key only"


def check_kong_plugins() -> str:
    _, config = kong_routes()
    plugins = {p.get("name"): p.get("config", {}) for p in config.get("plugins", [])}
    found = []
    for name in ("prometheus", "rate-limiting", "correlation-id"):
        if name not in plugins:
            found.append(f"global plugin {name} is missing")
    correlation = plugins.get("correlation-id", {})
    if str(correlation.get("header_name", "")).lower() != "x-request-id":
        found.append("correlation-id does not use the x-request-id header")
    prometheus = plugins.get("prometheus", {})
    for flag in ("status_code_metrics", "latency_metrics"):
        if prometheus.get(flag) is not True:
            found.append(f"prometheus: {flag} is not true (the dashboards' kong_ families would be missing)")
    limits = plugins.get("rate-limiting", {})
    if not any(limits.get(unit) for unit in ("second", "minute", "hour", "day")):
        found.append("rate-limiting sets no limit")
    if limits.get("policy") == "cluster":
        found.append("rate-limiting policy cluster needs a database (Kong is DB-less)")
    problems(found)
    return "prometheus, rate-limiting, correlation-id (x-request-id)"


def check_kong_no_key() -> str:
    _, config = kong_routes()
    found = []
    for consumer in config.get("consumers", []):
        for credential in consumer.get("keyauth_credentials", []):
            if credential.get("key") != "${KONG_API_KEY}":
                found.append(f"consumer {consumer.get('username')}: a literal key is in git")
    if not config.get("consumers"):
        found.append("no consumer: nobody could call the API")
    problems(found)
    return "the consumer's key is the ${KONG_API_KEY} placeholder"


def check_kong_render() -> str:
    script = ROOT / "kong" / "render-config.sh"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "kong.yml"
        base_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "NIS_KONG_RENDERED": str(out)}
        key = "checkKey_" + "0123456789abcdef"  # a made-up key, split so it reads as none
        result = run(["sh", str(script), "--render-only"], env=dict(base_env, KONG_API_KEY=key))
        if result.returncode != 0:
            raise CheckFailed(f"rendering failed: {result.stderr.strip()}")
        rendered = load_yaml(out)
        keys = [c.get("key") for c in rendered["consumers"][0]["keyauth_credentials"]]
        if keys != [key]:
            raise CheckFailed(f"rendered keys are {keys}, expected the given key")
        for bad, why in (("", "empty"), ("short", "too short"), ("abc/def&ghi\\jklmnopq", "sed metacharacters")):
            result = run(["sh", str(script), "--render-only"], env=dict(base_env, KONG_API_KEY=bad))
            if result.returncode == 0:
                raise CheckFailed(f"accepted a bad key ({why})")
    return "renders the key; refuses empty, short and unsafe keys"


def check_gen_kong_key() -> str:
    script = ROOT / "scripts" / "gen-kong-key.sh"
    with tempfile.TemporaryDirectory() as tmp:
        env_file = Path(tmp) / ".env"
        env_file.write_text("LOG_FORMAT=text")  # no trailing newline on purpose
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "NIS_ENV_FILE": str(env_file)}
        first = run(["bash", str(script), "--print"], env=env)
        second = run(["bash", str(script), "--print"], env=env)
        if first.returncode or second.returncode:
            raise CheckFailed((first.stderr + second.stderr).strip())
        key = first.stdout.strip()
        if not re.fullmatch(r"[A-Za-z0-9._~-]{16,128}", key):
            raise CheckFailed(f"generated key {key!r} does not fit kong/render-config.sh's rules")
        if second.stdout.strip() != key:
            raise CheckFailed("a second run replaced the key")
        lines = env_file.read_text().splitlines()
        if "LOG_FORMAT=text" not in lines or lines.count(f"KONG_API_KEY={key}") != 1:
            raise CheckFailed(f".env is not as expected: {lines}")
    return "writes KONG_API_KEY once, keeps it and the rest of .env"


# ---------------------------------------------------------------- Kubernetes

OVERLAYS = ["dev", "prod"]
_rendered: dict[str, list[dict]] = {}


def rendered(overlay: str) -> list[dict]:
    if overlay not in _rendered:
        if not tool("kubectl"):
            raise CheckFailed("kubectl is not installed (needed for `kubectl kustomize`)")
        result = run(["kubectl", "kustomize", str(ROOT / "k8s" / "overlays" / overlay)])
        if result.returncode != 0:
            raise CheckFailed(result.stderr.strip())
        _rendered[overlay] = load_yaml_all(result.stdout)
    return _rendered[overlay]


def of_kind(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d.get("kind") == kind]


def ident(doc: dict) -> str:
    return f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"


def pod_spec(doc: dict) -> dict:
    return doc.get("spec", {}).get("template", {}).get("spec", {})


def check_render(overlay: str) -> str:
    docs = rendered(overlay)
    kinds: dict[str, int] = {}
    for doc in docs:
        kinds[doc["kind"]] = kinds.get(doc["kind"], 0) + 1
    return f"{len(docs)} objects: " + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))


def check_validate(overlay: str) -> str:
    docs = rendered(overlay)
    found, skipped, validated = [], [], 0
    for doc in docs:
        if doc.get("apiVersion", "").startswith(CRD_GROUPS):
            skipped.append(ident(doc))
            continue
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
            validated += 1
        except kv_utils.ValidationError as error:
            path = ".".join(str(p) for p in error.path)
            found.append(f"{ident(doc)}: {path}: {error.message}")
        except kv_utils.SchemaNotFoundError as error:
            found.append(f"{ident(doc)}: {error.message}")
    problems(found)
    return (
        f"{validated} objects valid against Kubernetes {KUBERNETES_VERSION} (strict); "
        f"no schema for Kong CRDs, skipped here and checked by hand below: {', '.join(skipped)}"
    )


def check_workloads(overlay: str) -> str:
    docs = rendered(overlay)
    found = []
    deployments = of_kind(docs, "Deployment")
    jobs = of_kind(docs, "Job")
    if not deployments:
        found.append("no Deployment")
    for doc in deployments + jobs:
        spec = pod_spec(doc)
        pod_security = spec.get("securityContext", {})
        is_deployment = doc["kind"] == "Deployment"
        if spec.get("automountServiceAccountToken") is not False:
            found.append(f"{ident(doc)}: mounts a service account token it does not need")
        if not is_deployment and spec.get("restartPolicy") not in {"Never", "OnFailure"}:
            found.append(f"{ident(doc)}: restartPolicy must be Never or OnFailure")
        for container in spec.get("containers", []) + spec.get("initContainers", []):
            where = f"{ident(doc)} container {container.get('name')}"
            security = container.get("securityContext", {})
            if not (security.get("runAsNonRoot", pod_security.get("runAsNonRoot")) is True):
                found.append(f"{where}: runAsNonRoot is not true")
            if security.get("runAsUser", pod_security.get("runAsUser")) == 0:
                found.append(f"{where}: runs as uid 0")
            if security.get("readOnlyRootFilesystem") is not True:
                found.append(f"{where}: readOnlyRootFilesystem is not true")
            if security.get("allowPrivilegeEscalation") is not False:
                found.append(f"{where}: allowPrivilegeEscalation is not false")
            if "ALL" not in (security.get("capabilities", {}).get("drop") or []):
                found.append(f"{where}: capabilities do not drop ALL")
            resources = container.get("resources", {})
            for section in ("requests", "limits"):
                for resource in ("cpu", "memory"):
                    if resource not in resources.get(section, {}):
                        found.append(f"{where}: no {section}.{resource}")
            if not is_deployment:
                continue
            ports = {p.get("name"): p.get("containerPort") for p in container.get("ports", [])}
            expected = {"readinessProbe": "/readyz", "livenessProbe": "/healthz", "startupProbe": "/healthz"}
            for probe, path in expected.items():
                spec_probe = container.get(probe)
                if not spec_probe:
                    found.append(f"{where}: no {probe}")
                    continue
                http = spec_probe.get("httpGet")
                if not http:
                    continue  # exec/grpc/tcp probes are fine too
                if http.get("path") != path:
                    found.append(f"{where}: {probe} asks {http.get('path')}, expected {path}")
                port = http.get("port")
                if isinstance(port, str) and port not in ports:
                    found.append(f"{where}: {probe} uses port {port!r}, not a container port")
    problems(found)
    return f"{len(deployments)} Deployments, {len(jobs)} Jobs: probes, requests/limits, non-root, read-only root, drop ALL"


def ingress_routes(docs: list[dict]) -> list[GatewayRoute]:
    services = {d["metadata"]["name"]: d for d in of_kind(docs, "Service")}
    routes = []
    for ingress in of_kind(docs, "Ingress"):
        for rule in ingress["spec"].get("rules", []):
            for entry in rule.get("http", {}).get("paths", []):
                backend = entry["backend"]["service"]
                name = backend["name"]
                port = backend.get("port", {})
                target = f"?{name}:{port.get('name') or port.get('number')}"
                service = services.get(name)
                if service is not None:
                    for service_port in service["spec"].get("ports", []):
                        if port.get("name") in (None, service_port.get("name")) and port.get("number") in (None, service_port.get("port")):
                            if HTTP_PORTS.get(name) == service_port.get("port"):
                                target = name
                path = entry.get("path", "/")
                path_type = entry.get("pathType")
                if path_type == "Exact":
                    kind, pattern = "exact", path
                elif path_type == "Prefix":
                    kind, pattern = "k8s-prefix", path
                elif path.startswith("/~"):
                    kind, pattern = "regex", path[2:]
                else:
                    kind, pattern = "prefix", path
                routes.append(GatewayRoute(f"Ingress {ingress['metadata']['name']} {path}", kind, pattern, target))
    return routes


def check_ingress_routes(overlay: str) -> str:
    docs = rendered(overlay)
    routes = ingress_routes(docs)
    if not routes:
        raise CheckFailed("no Ingress path")
    return check_gateway_routes(routes)


def check_ingress_plugins(overlay: str) -> str:
    docs = rendered(overlay)
    plugins = {d["metadata"]["name"]: d for d in of_kind(docs, "KongPlugin")}
    found = []
    for name, plugin in plugins.items():
        if not plugin.get("plugin"):
            found.append(f"KongPlugin/{name}: no `plugin`")
        if not isinstance(plugin.get("config", {}), dict):
            found.append(f"KongPlugin/{name}: config is not a mapping")
        if plugin.get("plugin") == "key-auth":
            found += check_key_auth_config(plugin.get("config", {}), f"KongPlugin/{name}")
    for ingress in of_kind(docs, "Ingress"):
        annotations = ingress["metadata"].get("annotations", {})
        if ingress["spec"].get("ingressClassName") != "kong":
            found.append(f"{ident(ingress)}: ingressClassName is not kong")
        names = [n.strip() for n in annotations.get("konghq.com/plugins", "").split(",") if n.strip()]
        kinds = set()
        for name in names:
            if name not in plugins:
                found.append(f"{ident(ingress)}: plugin {name} is not a KongPlugin of the overlay")
            else:
                kinds.add(plugins[name].get("plugin"))
        for needed in ("key-auth", "rate-limiting", "prometheus", "correlation-id"):
            if needed not in kinds:
                found.append(f"{ident(ingress)}: no {needed} plugin")
    secrets = {d["metadata"]["name"]: d for d in secret_templates()}
    consumers = of_kind(docs, "KongConsumer")
    if not consumers:
        found.append("no KongConsumer: nobody could call the API")
    for consumer in consumers:
        if not consumer.get("username"):
            found.append(f"{ident(consumer)}: no username")
        if consumer["metadata"].get("annotations", {}).get("kubernetes.io/ingress.class") != "kong":
            found.append(f"{ident(consumer)}: no kubernetes.io/ingress.class: kong annotation")
        for credential in consumer.get("credentials", []):
            secret = secrets.get(credential)
            if secret is None:
                found.append(f"{ident(consumer)}: credential Secret {credential} is not in k8s/secrets.example.yaml")
            elif secret["metadata"].get("labels", {}).get("konghq.com/credential") != "key-auth" or "key" not in secret.get("stringData", {}):
                found.append(f"Secret {credential}: needs label konghq.com/credential=key-auth and a `key`")
    problems(found)
    return f"{len(plugins)} KongPlugins; key-auth, rate-limiting, prometheus, request id on every Ingress; consumer key from a Secret"


def secret_templates() -> list[dict]:
    return load_yaml_all((ROOT / "k8s" / "secrets.example.yaml").read_text())


def check_secret_refs(overlay: str) -> str:
    docs = rendered(overlay)
    templates = {(d["metadata"]["name"], key) for d in secret_templates() for key in d.get("stringData", {})}
    found, refs = [], set()
    for doc in of_kind(docs, "Deployment") + of_kind(docs, "Job"):
        spec = pod_spec(doc)
        for container in spec.get("containers", []):
            for var in container.get("env", []):
                ref = var.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    refs.add((ref["name"], ref["key"]))
                    if (ref["name"], ref["key"]) not in templates:
                        found.append(f"{ident(doc)}: {var['name']} from Secret {ref['name']}/{ref['key']}, not in k8s/secrets.example.yaml")
            for source in container.get("envFrom", []):
                if "secretRef" in source:
                    found.append(f"{ident(doc)}: envFrom a whole Secret (name the keys instead)")
    if of_kind(docs, "Secret"):
        found.append("the overlay contains Secrets (they would overwrite the real ones on apply)")
    problems(found)
    return f"{len(refs)} secret keys referenced, all templated; no Secret in the overlay"


def check_network_policies(overlay: str) -> str:
    docs = rendered(overlay)
    policies = of_kind(docs, "NetworkPolicy")
    found = []
    allowed = {
        "postgresql": {"students"},
        "mongodb": {"courses", "mongodb"},
        "redis": {"courses", "students"},
        "nats": {"courses", "students", "initializer", "nats"},
    }
    if not any(p["spec"].get("podSelector") == {} and "Ingress" in p["spec"].get("policyTypes", []) and not p["spec"].get("ingress") for p in policies):
        found.append("no default-deny ingress policy")
    for store, clients in allowed.items():
        selecting = [p for p in policies if p["spec"].get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/name") == store]
        if not selecting:
            found.append(f"{store}: no NetworkPolicy selects it")
        for policy in selecting:
            for rule in policy["spec"].get("ingress", []):
                peers = rule.get("from")
                if not peers:
                    found.append(f"{ident(policy)}: a rule admits everyone")
                    continue
                for peer in peers:
                    if "namespaceSelector" in peer or "ipBlock" in peer:
                        found.append(f"{ident(policy)}: admits a namespace or address range")
                        continue
                    name = peer.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/name")
                    if name not in clients:
                        found.append(f"{ident(policy)}: admits pods {peer.get('podSelector')} (only {', '.join(sorted(clients))})")
    problems(found)
    return "default deny; postgresql <- students, mongodb <- courses, redis/nats <- the services"


def check_replicas(overlay: str) -> str:
    docs = rendered(overlay)
    deployments = of_kind(docs, "Deployment")
    hpas = {d["spec"]["scaleTargetRef"]["name"]: d for d in of_kind(docs, "HorizontalPodAutoscaler")}
    pdbs = of_kind(docs, "PodDisruptionBudget")
    found = []
    if overlay == "dev":
        for deployment in deployments:
            if deployment["spec"].get("replicas") != 1:
                found.append(f"{ident(deployment)}: replicas is {deployment['spec'].get('replicas')}, dev wants 1")
            if deployment["metadata"]["name"] in hpas:
                found.append(f"{ident(deployment)}: autoscaled in dev")
        problems(found)
        return "1 replica each, no autoscaling"
    for deployment in deployments:
        name = deployment["metadata"]["name"]
        replicas = deployment["spec"].get("replicas")
        if replicas is not None and replicas < 2:
            found.append(f"{ident(deployment)}: replicas {replicas} < 2")
        hpa = hpas.get(name)
        if hpa is None:
            found.append(f"{ident(deployment)}: no HorizontalPodAutoscaler")
        elif hpa["spec"].get("minReplicas", 1) < 2:
            found.append(f"HorizontalPodAutoscaler/{name}: minReplicas < 2")
        labels = deployment["spec"]["selector"]["matchLabels"]
        if not any(all(p["spec"].get("selector", {}).get("matchLabels", {}).get(k) == v for k, v in labels.items()) for p in pdbs):
            found.append(f"{ident(deployment)}: no PodDisruptionBudget")
    initializer = next((c for c in of_kind(docs, "ConfigMap") if c["metadata"]["name"] == "initializer"), {})
    if initializer.get("data", {}).get("STREAM_REPLICAS") != "3":
        found.append("ConfigMap/initializer: STREAM_REPLICAS is not 3")
    nats = load_yaml(ROOT / "k8s" / "helm" / "prod" / "nats.yaml")
    cluster = nats.get("config", {}).get("cluster", {})
    if not cluster.get("enabled") or cluster.get("replicas", 0) < 3:
        found.append("k8s/helm/prod/nats.yaml: NATS is not a cluster of 3 (streams with 3 replicas need it)")
    problems(found)
    return "HPA min >= 2 and a PDB per service; STREAM_REPLICAS=3 on a 3-node NATS cluster"


def check_secret_templates() -> str:
    found, count = [], 0
    harmless = {("grafana-admin", "admin-user")}
    for secret in secret_templates():
        name = secret["metadata"]["name"]
        if secret.get("data"):
            found.append(f"Secret {name}: use stringData placeholders, not data")
        for key, value in secret.get("stringData", {}).items():
            count += 1
            if (name, key) in harmless:
                continue
            if not re.search(r"<[^>]+>", str(value)):
                found.append(f"Secret {name}: {key} holds a value, not a <placeholder>")
    problems(found)
    return f"{count} keys, placeholders only"


def check_helm_values() -> str:
    helm = ROOT / "k8s" / "helm"
    install = (ROOT / "k8s" / "install.sh").read_text()
    versions = (helm / "versions.env").read_text()
    found = []
    files = sorted(helm.glob("*.yaml")) + sorted((helm / "prod").glob("*.yaml"))
    for path in files:
        try:
            data = load_yaml(path)
        except yaml.YAMLError as error:
            found.append(f"{rel(path)}: {error}")
            continue
        if not isinstance(data, dict):
            found.append(f"{rel(path)}: not a mapping")
    releases = set(re.findall(r"^release (\S+) ", install, re.M))
    bases = {p.stem for p in helm.glob("*.yaml")}
    found += [f"k8s/helm/{b}.yaml: install.sh installs no release {b}" for b in sorted(bases - releases)]
    found += [f"install.sh: release {r} has no k8s/helm/{r}.yaml" for r in sorted(releases - bases)]
    found += [f"k8s/helm/prod/{p.stem}.yaml: no base file" for p in (helm / "prod").glob("*.yaml") if p.stem not in bases]
    for chart in ("KONG", "PROMETHEUS", "GRAFANA", "LOKI", "ALLOY", "NATS", "POSTGRESQL", "MONGODB", "REDIS"):
        if not re.search(rf"^{chart}_CHART_VERSION=\d+\.\d+\.\d+", versions, re.M):
            found.append(f"versions.env: no pinned {chart}_CHART_VERSION")
    for path in ("monitoring/prometheus/rules/nis-alerts.yml", "monitoring/prometheus/scrape-k8s.yml",
                 "monitoring/alloy/k8s.alloy", "monitoring/grafana/dashboards"):
        if path not in install:
            found.append(f"install.sh does not use {path}")
        if not (ROOT / path).exists():
            found.append(f"{path} does not exist")
    grafana = load_yaml(helm / "grafana.yaml")
    uids = {d.get("uid") for d in grafana["datasources"]["datasources.yaml"]["datasources"]}
    missing = dashboard_datasource_uids() - uids
    found += [f"grafana.yaml: no datasource with uid {uid} (the dashboards use it)" for uid in sorted(missing)]
    for name in ("postgresql", "mongodb", "redis"):
        values = load_yaml(helm / f"{name}.yaml")
        if values.get("networkPolicy", {}).get("enabled") is not False:
            found.append(f"{name}.yaml: the chart's own NetworkPolicy is not disabled (it would admit everyone)")
    problems(found)
    return f"{len(files)} values files parse; each chart pinned and installed; Grafana datasource uids match the dashboards"


STUB_KUBECTL = """#!/bin/sh
echo "kubectl $*" >>"$STUB_LOG"
case "$*" in
  *kustomize*|*--dry-run=client*|*--local*) exec "$REAL_KUBECTL" "$@" ;;
  "config current-context") echo stub-context ;;
  *"get secret"*jsonpath*) printf c3R1Yg== ;;
  *"get secret"*) exit 1 ;;
  *"get svc"*) ;;
  apply\ *|*" apply "*)
    # keep what would be applied, for the checks
    prev=""
    for arg in "$@"; do
      if [ "$prev" = "-f" ]; then
        if [ "$arg" = "-" ]; then cat; else cat "$arg"; fi >>"$STUB_DIR/applied-$$.yaml"
      fi
      prev=$arg
    done ;;
  *" -f -"*) cat >/dev/null ;;
esac
exit 0
"""
STUB_HELM = """#!/bin/sh
echo "helm $*" >>"$STUB_LOG"
prev=""
for arg in "$@"; do
  if [ "$prev" = "-f" ] && [ ! -f "$arg" ]; then echo "helm stub: no values file $arg" >&2; exit 1; fi
  if [ "$prev" = "--set-file" ] && [ ! -f "${arg#*=}" ]; then echo "helm stub: no file ${arg#*=}" >&2; exit 1; fi
  prev=$arg
done
exit 0
"""


def check_install_dry_run(overlay: str) -> str:
    """Runs k8s/install.sh against stub kubectl/helm (on a copy of the files)."""
    real_kubectl = tool("kubectl")
    if not real_kubectl:
        raise CheckFailed("kubectl is not installed")
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        copy = tmp_path / "repo"
        for part in ("k8s", "monitoring"):
            shutil.copytree(ROOT / part, copy / part, ignore=shutil.ignore_patterns(".install.*"))
        stubs = tmp_path / "bin"
        stubs.mkdir()
        for name, text in (("kubectl", STUB_KUBECTL), ("helm", STUB_HELM)):
            (stubs / name).write_text(text)
            (stubs / name).chmod(0o755)
        log = tmp_path / "calls.log"
        env = {
            "PATH": f"{stubs}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "STUB_LOG": str(log),
            "STUB_DIR": str(tmp_path),
            "REAL_KUBECTL": real_kubectl,
            "KUBECONFIG": str(tmp_path / "no-kubeconfig"),
            "NIS_IMAGE_REGISTRY": "registry.example/nis",
            "NIS_IMAGE_TAG": "9.9.9",
        }
        result = run(["bash", str(copy / "k8s" / "install.sh"), overlay], env=env)
        calls = log.read_text().splitlines() if log.exists() else []
        if result.returncode != 0:
            raise CheckFailed(f"install.sh {overlay} failed:\n{result.stderr.strip()[-2000:]}")
        installs = [c.split()[3] for c in calls if c.startswith("helm upgrade --install")]
        expected = ["postgresql", "mongodb", "redis", "nats", "kong", "prometheus", "loki", "alloy", "grafana"]
        if installs != expected:
            raise CheckFailed(f"helm releases in order {installs}, expected {expected}")
        applied = "\n".join(p.read_text() for p in sorted(tmp_path.glob("applied-*.yaml")))
        if "image: registry.example/nis/nis-students:9.9.9" not in applied:
            raise CheckFailed("the applied manifests do not use NIS_IMAGE_REGISTRY/NIS_IMAGE_TAG")
        job_wait = next((i for i, c in enumerate(calls) if "wait --for=condition=complete" in c), None)
        full_apply = [i for i, c in enumerate(calls) if " apply -f " in c and "component!=server" not in c and "-f -" not in c]
        if job_wait is None or not full_apply or full_apply[-1] < job_wait:
            raise CheckFailed("the services are not applied after the Jobs completed")
        if list((copy / "k8s").glob(".install.*")):
            raise CheckFailed("install.sh left its scratch directory behind")
    return f"{len(calls)} kubectl/helm calls; 9 releases in order, Jobs before services, images overridden"


# ---------------------------------------------------------------- Prometheus

PROM_DIR = ROOT / "monitoring" / "prometheus"


def promtool() -> str:
    path = tool("promtool")
    if not path:
        raise Skipped("promtool is not installed (Debian: apt-get install -y prometheus)")
    return path


def promtool_run(*args: str, cwd: Path | None = None) -> str:
    result = run([promtool(), *args], cwd=cwd)
    output = (result.stdout + result.stderr).strip()
    if result.returncode != 0:
        raise CheckFailed(output)
    return output


def check_promtool_config() -> str:
    promtool_run("check", "config", str(PROM_DIR / "prometheus.yml"))
    return "monitoring/prometheus/prometheus.yml (docker compose)"


def check_promtool_k8s_config() -> str:
    scrape = load_yaml(PROM_DIR / "scrape-k8s.yml")
    if not isinstance(scrape, list):
        raise CheckFailed("scrape-k8s.yml must be a list of scrape configs (the chart's extraScrapeConfigs)")
    compose_jobs = {j["job_name"] for j in load_yaml(PROM_DIR / "prometheus.yml")["scrape_configs"]}
    k8s_jobs = {j["job_name"] for j in scrape}
    missing = sorted(j for j in compose_jobs - k8s_jobs if j != "prometheus")
    if missing:
        raise CheckFailed(f"jobs of prometheus.yml missing for Kubernetes: {missing} (the alert rules use job names)")
    note = ""
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "prometheus.yml"
        config.write_text(yaml.safe_dump({"scrape_configs": scrape}))
        try:
            promtool_run("check", "config", str(config))
        except CheckFailed as error:
            # Debian's promtool is built without Kubernetes service discovery
            # and rejects the field itself. Then check the rest of each job
            # with promtool (discovery swapped for a static target) and the
            # discovery block by hand.
            if "field kubernetes_sd_configs not found" not in str(error):
                raise
            found = []
            for job in scrape:
                for sd in job.get("kubernetes_sd_configs", []):
                    if sd.get("role") not in {"node", "pod", "service", "endpoints", "endpointslice", "ingress"}:
                        found.append(f"{job['job_name']}: unknown kubernetes_sd role {sd.get('role')!r}")
                    names = sd.get("namespaces", {}).get("names", [])
                    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                        found.append(f"{job['job_name']}: namespaces.names must be a list of names")
                    if set(sd) - {"role", "namespaces", "selectors", "api_server", "kubeconfig_file", "attach_metadata"}:
                        found.append(f"{job['job_name']}: unknown kubernetes_sd field(s) {sorted(set(sd) - {'role', 'namespaces'})}")
            problems(found)
            static = [
                {**{k: v for k, v in job.items() if k != "kubernetes_sd_configs"},
                 "static_configs": [{"targets": ["placeholder:80"]}]}
                for job in scrape
            ]
            config.write_text(yaml.safe_dump({"scrape_configs": static}))
            promtool_run("check", "config", str(config))
            note = ("; this promtool lacks Kubernetes discovery, so kubernetes_sd_configs "
                    "was checked by hand and the rest by promtool")
    return f"scrape-k8s.yml as a full config; jobs {', '.join(sorted(k8s_jobs))}{note}"


def rule_files() -> list[Path]:
    return sorted((PROM_DIR / "rules").glob("*.yml"))


def check_promtool_rules() -> str:
    files = rule_files()
    if not files:
        raise CheckFailed("no rule files in monitoring/prometheus/rules")
    output = promtool_run("check", "rules", *map(str, files))
    counts = re.findall(r"SUCCESS: (\d+) rules found", output)
    return f"{sum(map(int, counts))} rules"


def check_promtool_tests() -> str:
    tests = sorted((PROM_DIR / "tests").glob("*.yml"))
    if not tests:
        raise CheckFailed("no rule unit tests in monitoring/prometheus/tests")
    promtool_run("test", "rules", *map(str, tests))
    count = sum(len(load_yaml(t).get("tests", [])) for t in tests)
    return f"{count} test groups in {', '.join(t.name for t in tests)}"


def alert_rules() -> list[dict]:
    rules = []
    for path in rule_files():
        for group in load_yaml(path).get("groups", []):
            rules += [r for r in group.get("rules", []) if "alert" in r]
    return rules


def check_alert_coverage() -> str:
    rules = alert_rules()
    found = []
    wanted = {
        "error ratio": lambda e: "nis_requests_total" in e and 'outcome="error"' in e,
        "p99 latency": lambda e: "histogram_quantile(0.99" in e and "nis_request_duration_seconds_bucket" in e,
        "dead letters": lambda e: "dead_lettered" in e,
        "outbox backlog": lambda e: "nis_outbox_pending" in e,
        "instance down": lambda e: re.search(r"\bup\{", e) is not None,
    }
    for what, test in wanted.items():
        names = [r["alert"] for r in rules if test(re.sub(r"\s+", "", r["expr"]))]
        if not names:
            found.append(f"no alert on {what}")
    for rule in rules:
        if not rule.get("labels", {}).get("severity"):
            found.append(f"{rule['alert']}: no severity label")
        if not rule.get("annotations", {}).get("summary"):
            found.append(f"{rule['alert']}: no summary annotation")
    problems(found)
    return f"{len(rules)} alerts: " + ", ".join(r["alert"] for r in rules)


# PromQL: just enough lexing to find the metric names of an expression.
PROMQL_KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset",
    "and", "or", "unless", "inf", "nan", "start", "end", "atan2",
}
GRAFANA_RANGES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h", "${__range}": "1h"}


def grafana_to_promql(expr: str) -> str:
    for variable, value in GRAFANA_RANGES.items():
        expr = expr.replace(variable, value)
    return expr


def promql_metric_names(expr: str) -> set[str]:
    text = grafana_to_promql(expr)
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', text)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w.:])([A-Za-z_:][\w:]*)", text):
        name = match.group(1)
        after = text[match.end():].lstrip()
        if after.startswith("(") or name.lower() in PROMQL_KEYWORDS or name.startswith("$"):
            continue
        names.add(name)
    return names


def unknown_metrics(expr: str, families: dict[str, str]) -> list[str]:
    bad = []
    for name in promql_metric_names(expr):
        if name in families or name in PROMETHEUS_SERIES:
            continue
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        if base != name and families.get(base) in {"histogram", "summary"}:
            continue
        bad.append(name)
    return bad


def check_rules_metrics() -> str:
    families = read_metric_families()
    found, used = [], set()
    for rule in alert_rules():
        names = promql_metric_names(rule["expr"])
        used |= names
        for name in unknown_metrics(rule["expr"], families):
            found.append(f"{rule['alert']}: {name} is not in metric_families.txt")
    problems(found)
    return f"uses {', '.join(sorted(used))}"


# ---------------------------------------------------------------- Grafana

DASHBOARDS = ROOT / "monitoring" / "grafana" / "dashboards"


def dashboards() -> dict[Path, dict]:
    return {path: json.loads(path.read_text()) for path in sorted(DASHBOARDS.glob("*.json"))}


def all_panels(panels: Iterable[dict]) -> Iterable[dict]:
    for panel in panels:
        yield panel
        yield from all_panels(panel.get("panels", []))


def datasource_type(datasource: Any) -> str:
    if isinstance(datasource, dict):
        return datasource.get("type") or datasource.get("uid", "")
    return str(datasource or "prometheus")


def prometheus_queries(dashboard: dict) -> list[tuple[str, str]]:
    """(where, PromQL) for every Prometheus query of a dashboard, variables included."""
    queries = []
    for panel in all_panels(dashboard.get("panels", [])):
        for target in panel.get("targets", []):
            source = datasource_type(target.get("datasource") or panel.get("datasource"))
            if "prometheus" in source and target.get("expr"):
                queries.append((f"panel {panel.get('title')!r}", target["expr"]))
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") != "query":
            continue
        query = variable.get("query")
        query = query.get("query") if isinstance(query, dict) else query
        match = re.match(r"\s*label_values\((.*),\s*\w+\s*\)\s*$", query or "")
        if match:
            queries.append((f"variable ${variable.get('name')}", match.group(1)))
        elif query and not query.strip().startswith(("label_names", "metrics")):
            queries.append((f"variable ${variable.get('name')}", query))
    return queries


def dashboard_datasource_uids() -> set[str]:
    uids = set()
    for dashboard in dashboards().values():
        for panel in all_panels(dashboard.get("panels", [])):
            for holder in [panel] + panel.get("targets", []):
                source = holder.get("datasource")
                if isinstance(source, dict) and source.get("uid"):
                    uids.add(source["uid"])
    return uids


def check_dashboards_shape() -> str:
    boards = dashboards()
    if not boards:
        raise CheckFailed("no dashboards in monitoring/grafana/dashboards")
    found, uids = [], {}
    for path, board in boards.items():
        uid = board.get("uid")
        if not uid or not board.get("title"):
            found.append(f"{path.name}: no uid or title")
        if uid in uids:
            found.append(f"{path.name}: uid {uid} also used by {uids[uid]}")
        uids[uid] = path.name
        ids = [p.get("id") for p in all_panels(board.get("panels", []))]
        if len(ids) != len(set(ids)):
            found.append(f"{path.name}: duplicate panel ids")
    provisioning = load_yaml(ROOT / "monitoring" / "grafana" / "provisioning" / "datasources" / "datasources.yml")
    provisioned = {d.get("uid") for d in provisioning.get("datasources", [])}
    found += [f"datasource uid {u} used by the dashboards is not provisioned" for u in sorted(dashboard_datasource_uids() - provisioned)]
    providers = load_yaml(ROOT / "monitoring" / "grafana" / "provisioning" / "dashboards" / "dashboards.yml")
    grafana = compose()["services"].get("grafana", {})
    mounts = {v.split(":")[1] for v in grafana.get("volumes", []) if isinstance(v, str) and v.startswith("./monitoring/grafana/dashboards")}
    for provider in providers.get("providers", []):
        if provider.get("options", {}).get("path") not in mounts:
            found.append(f"dashboard provider path {provider.get('options', {}).get('path')} is not where compose mounts the dashboards {sorted(mounts)}")
    problems(found)
    return f"{len(boards)} dashboards ({', '.join(sorted(uids))}); datasources and paths provisioned"


def check_dashboards_metrics() -> str:
    families = read_metric_families()
    found, count = [], 0
    for path, board in dashboards().items():
        for where, expr in prometheus_queries(board):
            count += 1
            for name in unknown_metrics(expr, families):
                found.append(f"{path.name} {where}: {name} is not in metric_families.txt")
    problems(found)
    return f"{count} Prometheus queries, all on listed families"


def check_dashboards_parse() -> str:
    rules, index = [], 0
    for path, board in dashboards().items():
        for where, expr in prometheus_queries(board):
            index += 1
            rules.append({"record": f"dashboard_query_{index}", "expr": grafana_to_promql(expr),
                          "labels": {"source": f"{path.name} {where}"[:200]}})
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / "dashboard-queries.yml"
        file.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
        promtool_run("check", "rules", str(file))
    return f"{len(rules)} queries are valid PromQL (promtool, Grafana ranges as 5m/1m/1h)"


def check_dashboards_views() -> str:
    queries = [re.sub(r"\s+", "", e) for board in dashboards().values() for _, e in prometheus_queries(board)]
    found = []
    wanted = {
        "RED per service by transport and operation": lambda e: "nis_requests_total" in e and "transport,operation" in e,
        "latency by transport and operation": lambda e: "nis_request_duration_seconds_bucket" in e and "transport,operation" in e,
        "cache hit ratio": lambda e: "nis_cache_lookups_total" in e and 'result="hit"' in e and "/" in e,
        "events published": lambda e: "nis_events_published_total" in e,
        "events consumed by outcome": lambda e: "nis_events_consumed_total" in e and "outcome" in e,
        "events dead-lettered": lambda e: "dead_lettered" in e,
        "outbox backlog": lambda e: "nis_outbox_pending" in e,
        "Kong traffic by route and status": lambda e: "kong_http_requests_total" in e and "route,code" in e,
    }
    for what, test in wanted.items():
        if not any(test(q) for q in queries):
            found.append(f"no panel shows {what}")
    problems(found)
    return ", ".join(wanted)


# ---------------------------------------------------------------- logs


def check_log_pipeline() -> str:
    found = []
    loki = load_yaml(ROOT / "monitoring" / "loki" / "loki.yml")
    if loki.get("server", {}).get("http_listen_port") != 3100:
        found.append("loki.yml: not listening on 3100")
    compose_alloy = (ROOT / "monitoring" / "alloy" / "config.alloy").read_text()
    k8s_alloy = (ROOT / "monitoring" / "alloy" / "k8s.alloy").read_text()
    for name, text in (("config.alloy", compose_alloy), ("k8s.alloy", k8s_alloy)):
        if text.count("{") != text.count("}"):
            found.append(f"{name}: unbalanced braces")
        if "loki.write" not in text or ":3100/loki/api/v1/push" not in text:
            found.append(f"{name}: does not push to Loki")
        if 'target_label  = "service"' not in text:
            found.append(f"{name}: no `service` label (the dashboards filter on it)")
    services = compose()["services"]
    labelled = [n for n, s in services.items() if str((s.get("labels") or {}).get("io.nis.logs")) == "true"]
    for name in ("courses", "students", "initializer"):
        if name not in labelled:
            found.append(f"compose {name}: no io.nis.logs=true label, its logs would not reach Loki")
    problems(found)
    return f"Alloy ships {', '.join(labelled)} to Loki"


# ---------------------------------------------------------------- main


def main() -> int:
    os.chdir(ROOT)
    report = Report()
    checks: list[tuple[str, Callable[[], str | None]]] = [
        ("routes.txt parses", check_routes_file),
        ("metric_families.txt parses", check_metric_families_file),
        ("Dockerfile: a target per image", check_dockerfile_targets),
        ("Dockerfile: non-root user in every image", check_dockerfile_non_root),
        ("Dockerfile: multi-stage, dependency layer cached", check_dockerfile_layers),
        ("Dockerfile: HEALTHCHECK where the image can run one", check_dockerfile_healthchecks),
        ("Dockerfile: base images pinned", check_dockerfile_pinned),
        (".dockerignore", check_dockerignore),
        ("compose: build targets exist in the Dockerfile", check_compose_targets),
        ("compose: mounted files exist", check_compose_mounts),
        ("compose: depends_on targets are health-checked or one-shots", check_compose_depends_on),
        ("compose: every long-running service has a healthcheck it can run", check_compose_healthchecks),
        ("compose: start-up order has no cycle", check_compose_order),
        ("compose: only Kong is published beyond localhost", check_compose_ports),
        ("compose: interpolates only its own variables", check_compose_variables),
        ("compose: data stores as the services need them", check_compose_stores),
        ("compose: Kong DB-less with kong/kong.yml", check_compose_kong),
        ("kong.yml: routes <-> routes.txt", check_kong_routes),
        ("kong.yml: key-auth on every route", check_kong_key_auth),
        ("kong.yml: prometheus, rate limiting, request id", check_kong_plugins),
        ("kong.yml: no API key in git", check_kong_no_key),
        ("kong/render-config.sh", check_kong_render),
        ("scripts/gen-kong-key.sh", check_gen_kong_key),
    ]
    for overlay in OVERLAYS:
        checks += [
            (f"k8s {overlay}: renders (kubectl kustomize)", lambda o=overlay: check_render(o)),
            (f"k8s {overlay}: validates (kubernetes-validate --strict)", lambda o=overlay: check_validate(o)),
            (f"k8s {overlay}: workloads: probes, resources, security context", lambda o=overlay: check_workloads(o)),
            (f"k8s {overlay}: Ingress paths <-> routes.txt", lambda o=overlay: check_ingress_routes(o)),
            (f"k8s {overlay}: Kong plugins and consumer (CRDs)", lambda o=overlay: check_ingress_plugins(o)),
            (f"k8s {overlay}: secret references", lambda o=overlay: check_secret_refs(o)),
            (f"k8s {overlay}: NetworkPolicies", lambda o=overlay: check_network_policies(o)),
            (f"k8s {overlay}: replicas", lambda o=overlay: check_replicas(o)),
            (f"k8s {overlay}: install.sh dry run (stub kubectl/helm)", lambda o=overlay: check_install_dry_run(o)),
        ]
    checks += [
        ("k8s/secrets.example.yaml: placeholders only", check_secret_templates),
        ("k8s/helm: values, versions, install.sh", check_helm_values),
        ("promtool check config (compose)", check_promtool_config),
        ("promtool check config (Kubernetes scrape jobs)", check_promtool_k8s_config),
        ("promtool check rules", check_promtool_rules),
        ("promtool test rules", check_promtool_tests),
        ("alert rules: required alerts", check_alert_coverage),
        ("alert rules: listed metric families only", check_rules_metrics),
        ("dashboards: shape and provisioning", check_dashboards_shape),
        ("dashboards: listed metric families only", check_dashboards_metrics),
        ("dashboards: queries parse (promtool)", check_dashboards_parse),
        ("dashboards: required views", check_dashboards_views),
        ("logs: Alloy -> Loki", check_log_pipeline),
    ]
    for name, fn in checks:
        report.run(name, fn)
    print(report.summary())
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
