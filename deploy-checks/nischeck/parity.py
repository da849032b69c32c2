"""Compose and Kubernetes run the same programs the same way: one image per service, the
same ports, health gated on the same endpoint, the same settings (by name, and by value where
the value is wiring rather than tuning), and the same gateway timeouts."""

from __future__ import annotations

from . import repo
from .report import problems

SERVICES = ("students", "courses")
# Settings whose values must match: they connect the parts, they are not per-environment tuning.
WIRING = ("HTTP_ADDR", "GRPC_ADDR", "COURSES_GRPC_URL", "STUDENTS_GRPC_URL", "NIS_PREFIX", "LOG_FORMAT", "MONGODB_DATABASE")
# Kong service fields (kong.yml) and the ingress controller's Service annotations for them.
GATEWAY_TIMEOUTS = {
    "connect_timeout": "konghq.com/connect-timeout",
    "read_timeout": "konghq.com/read-timeout",
    "write_timeout": "konghq.com/write-timeout",
    "retries": "konghq.com/retries",
}


def k8s_env(docs: list[dict], deployment: dict) -> dict[str, str | None]:
    """The Deployment's environment: ConfigMap values, and None for values from Secrets."""
    maps = {m["metadata"]["name"]: m.get("data", {}) for m in repo.of_kind(docs, "ConfigMap")}
    container = repo.pod_spec(deployment)["containers"][0]
    env: dict[str, str | None] = {}
    for source in container.get("envFrom", []):
        env.update(maps.get(source.get("configMapRef", {}).get("name"), {}))
    for var in container.get("env", []):
        env[var["name"]] = var.get("value")
    return env


def port_of(address: str | None) -> int | None:
    return int(address.rsplit(":", 1)[1]) if address and ":" in address else None


def service_problems(name: str, compose: dict, docs: list[dict]) -> list[str]:
    found = []
    service = compose["services"][name]
    deployments = {d["metadata"]["name"]: d for d in repo.of_kind(docs, "Deployment")}
    if name not in deployments:
        return [f"{name}: no Deployment"]
    deployment = deployments[name]
    container = repo.pod_spec(deployment)["containers"][0]

    # One image per service, from the Dockerfile target of the same name.
    image = f"nis-{name}"
    if service.get("build", {}).get("target") != name or not service.get("image", "").startswith(f"{image}:"):
        found.append(f"compose {name}: not image {image} built from target {name}")
    if container["image"].split(":")[0] != image:
        found.append(f"Deployment/{name}: image {container['image']}, compose runs {image}")

    # Settings.
    compose_env = {k: str(v) for k, v in (service.get("environment") or {}).items()}
    cluster_env = k8s_env(docs, deployment)
    found += [f"{name}: {k} is set in compose only" for k in sorted(set(compose_env) - set(cluster_env))]
    found += [f"{name}: {k} is set in Kubernetes only" for k in sorted(set(cluster_env) - set(compose_env))]
    for key in WIRING:
        if key in compose_env and key in cluster_env and compose_env[key] != cluster_env[key]:
            found.append(f"{name}: {key} is {compose_env[key]!r} in compose, {cluster_env[key]!r} in Kubernetes")

    # Ports: the addresses, the container ports, the Service ports and the known port agree.
    container_ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
    service_ports = {}
    for svc in repo.of_kind(docs, "Service"):
        if svc["metadata"]["name"] == name:
            service_ports = {p["name"]: p["port"] for p in svc["spec"]["ports"]}
    for port_name, variable, known in (("http", "HTTP_ADDR", repo.HTTP_PORTS), ("grpc", "GRPC_ADDR", repo.GRPC_PORTS)):
        seen = {
            f"compose {variable}": port_of(compose_env.get(variable)),
            f"Kubernetes {variable}": port_of(cluster_env.get(variable)),
            f"containerPort {port_name}": container_ports.get(port_name),
            f"Service port {port_name}": service_ports.get(port_name),
        }
        if set(seen.values()) != {known[name]}:
            found.append(f"{name} {port_name} port: expected {known[name]} everywhere, got {seen}")

    # Health: compose runs the binary's healthcheck (its /readyz); Kubernetes probes the same.
    test = (service.get("healthcheck") or {}).get("test")
    if test != ["CMD", f"/usr/local/bin/{name}", "healthcheck"]:
        found.append(f"compose {name}: healthcheck is {test}, expected the binary's `healthcheck` (its /readyz)")
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz"), ("startupProbe", "/healthz")):
        http = (container.get(probe) or {}).get("httpGet", {})
        if http.get("path") != path or http.get("port") != "http":
            found.append(f"Deployment/{name}: {probe} is {http or 'missing'}, expected GET {path} on port http")
    return found


def gateway_timeout_problems(kong: dict, docs: list[dict]) -> list[str]:
    found = []
    services = {s["metadata"]["name"]: s for s in repo.of_kind(docs, "Service")}
    for kong_service in kong.get("services", []):
        name = kong_service["name"]
        annotations = services.get(name, {}).get("metadata", {}).get("annotations", {})
        for field, annotation in GATEWAY_TIMEOUTS.items():
            if str(kong_service.get(field)) != str(annotations.get(annotation)):
                found.append(f"{name}: Kong {field} is {kong_service.get(field)} in kong.yml, {annotation} is {annotations.get(annotation)} on Service/{name}")
    return found


def check_parity(overlay: str) -> str:
    docs = list(repo.rendered(overlay))
    compose = repo.compose()
    found = [p for name in SERVICES for p in service_problems(name, compose, docs)]
    found += gateway_timeout_problems(repo.load_yaml(repo.ROOT / "kong" / "kong.yml"), docs)
    problems(found)
    return "same image, ports, health endpoints, settings and gateway timeouts as compose"
