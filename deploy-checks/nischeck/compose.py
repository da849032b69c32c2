"""docker-compose.yml against the rest of the repository: build targets are Dockerfile
stages, mounted files exist, start-up waits only on healthchecks or one-shots, only Kong is
published, only compose's own variables are read, the stores are set up as the services need
them, and every program's logs reach Loki (Alloy's filter)."""

from __future__ import annotations

import json
import re

from . import repo
from .report import problems

# Variables docker-compose.yml may interpolate. The `make up` settings of .env.example point
# at 127.0.0.1 and would be wrong inside containers.
COMPOSE_VARIABLES = {"KONG_API_KEY", "POSTGRES_PASSWORD", "GRAFANA_ADMIN_PASSWORD", "NIS_TAG"}
PROGRAMS = ("courses", "students", "initializer")


def dockerfile_stages(text: str) -> set[str]:
    return set(re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)", text, re.M | re.I))


def is_one_shot(service: dict) -> bool:
    """Runs once and exits: marked by an explicit `restart: "no"` (unquoted `no` is YAML false)."""
    return service.get("restart") in ("no", False)


def build_problems(services: dict, stages: set[str]) -> list[str]:
    found = []
    for name, service in services.items():
        build = service.get("build")
        if build is None:
            continue
        target = build.get("target") if isinstance(build, dict) else None
        if target not in stages:
            found.append(f"{name}: build target {target!r} is not a stage of the Dockerfile")
    return found


def mount_problems(services: dict) -> list[str]:
    found = []
    for name, service in services.items():
        for volume in service.get("volumes", []) or []:
            source = volume.get("source", "") if isinstance(volume, dict) else volume.split(":", 1)[0]
            if source.startswith(".") and not (repo.ROOT / source).exists():
                found.append(f"{name}: mounts {source}, which does not exist")
    return found


def dependency_problems(services: dict) -> list[str]:
    """Each long-running service has a healthcheck; start-up waits on health or completion."""
    found = []
    for name, service in services.items():
        if not is_one_shot(service) and not (service.get("healthcheck") or {}).get("test"):
            found.append(f"{name}: long-running without a healthcheck")
        depends = service.get("depends_on") or {}
        if isinstance(depends, list):
            found.append(f"{name}: depends_on without conditions (only waits for a start)")
            continue
        for target, spec in depends.items():
            condition = (spec or {}).get("condition", "service_started")
            other = services.get(target)
            if other is None:
                found.append(f"{name}: depends on unknown service {target}")
            elif condition == "service_completed_successfully" and not is_one_shot(other):
                found.append(f"{name}: waits for {target} to complete, but {target} is restarted")
            elif condition not in ("service_healthy", "service_completed_successfully"):
                found.append(f"{name}: depends on {target} with condition {condition}")
    return found


def port_problems(services: dict) -> list[str]:
    found = []
    for name, service in services.items():
        for port in service.get("ports", []) or []:
            text = str(port.get("host_ip", "") if isinstance(port, dict) else port)
            local = text.startswith(("127.0.0.1:", "[::1]:", "localhost:")) or text in {"127.0.0.1", "::1"}
            if not local and name != "kong":
                found.append(f"{name}: publishes {port} beyond localhost (only Kong may)")
    return found


def variable_problems(text: str, make_up_variables: set[str]) -> list[str]:
    used: dict[str, list[str]] = {}
    for match in re.finditer(r"\$\{(\w+)([^}]*)\}|\$(\w+)", text.replace("$$", "")):
        used.setdefault(match.group(1) or match.group(3), []).append(match.group(0))
    found = [f"${{{name}}} is not a compose variable" for name in sorted(used) if name not in COMPOSE_VARIABLES]
    if not used.get("KONG_API_KEY") or not all(":?" in use for use in used["KONG_API_KEY"]):
        found.append("KONG_API_KEY must be required (${KONG_API_KEY:?...}), never defaulted")
    found += [f"${{{n}}} is also a `make up` variable in .env.example" for n in sorted((make_up_variables - COMPOSE_VARIABLES) & set(used))]
    return found


def store_problems(services: dict) -> list[str]:
    """MongoDB as a replica set (courses writes in transactions), NATS with JetStream."""
    found = []
    mongo = services.get("mongodb", {})
    if "--replSet" not in mongo.get("command", []):
        found.append("mongodb: not started as a replica set (--replSet)")
    if "rs.initiate" not in json.dumps(mongo.get("healthcheck", {})):
        found.append("mongodb: the healthcheck does not initiate the replica set")
    for name in ("courses", "courses-migrate"):
        uri = (services.get(name, {}).get("environment") or {}).get("MONGODB_URI", "")
        if "replicaSet=" not in uri:
            found.append(f"{name}: MONGODB_URI does not name the replica set")
    if not {"-js", "--jetstream"} & set(map(str, services.get("nats", {}).get("command", []))):
        found.append("nats: JetStream is not enabled (-js)")
    return found


def log_problems(services: dict, alloy: str) -> list[str]:
    """Alloy keeps the containers labelled io.nis.logs=true: each program must carry it."""
    found = []
    if "io_nis_logs" not in alloy and "io.nis.logs" not in alloy:
        found.append("monitoring/alloy/config.alloy does not select containers by io.nis.logs")
    for name in PROGRAMS:
        if str((services.get(name, {}).get("labels") or {}).get("io.nis.logs")) != "true":
            found.append(f"{name}: no io.nis.logs=true label, its logs would not reach Loki")
    return found


def check_compose() -> str:
    text = (repo.ROOT / "docker-compose.yml").read_text()
    services = repo.compose()["services"]
    example = repo.ROOT / ".env.example"
    make_up = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", example.read_text(), re.M)) if example.exists() else set()
    found = build_problems(services, dockerfile_stages((repo.ROOT / "Dockerfile").read_text()))
    found += mount_problems(services) + dependency_problems(services) + port_problems(services)
    found += variable_problems(text, make_up) + store_problems(services)
    found += log_problems(services, (repo.ROOT / "monitoring" / "alloy" / "config.alloy").read_text())
    problems(found)
    return f"{len(services)} services: targets, mounts, start-up order, ports, variables, stores, logs"
