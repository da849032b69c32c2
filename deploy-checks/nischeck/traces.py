"""Traces reach one backend: the services (OTLP/gRPC) and Kong's opentelemetry plugin
(OTLP/HTTP) send theirs to Tempo, in compose and in Kubernetes, on the ports Tempo receives on;
both run the same Tempo release; Grafana queries that Tempo, and Loki and Tempo link to each
other (a log line's trace id to its trace, a span to its log lines)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from . import repo
from .parity import k8s_env
from .report import problems

SERVICES = ("students", "courses")
ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"
# The release k8s/install.sh installs ("release tempo monitoring grafana/tempo") and so the
# name of its Service, and the chart's ports at the pinned version (values tempo.receivers.otlp
# and tempo.server.http_listen_port of grafana/tempo 1.24.4).
RELEASE = re.compile(r"^release (\S+) (\S+) grafana/tempo ", re.M)
CHART_PORTS = {"grpc": 4317, "http": 4318, "api": 3200}
# A JSON log line of the programs inside a request (tracing's JSON format).
SAMPLE_TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
SAMPLE_LOG = (
    '{"timestamp":"2026-01-01T00:00:00.000000Z","level":"INFO","fields":{"message":"request"},"target":"nis",'
    f'"span":{{"request_id":"r-1","trace_id":"{SAMPLE_TRACE_ID}","span_id":"00f067aa0ba902b7","name":"request"}}}}'
)


def port_of(endpoint: object) -> int | None:
    match = re.search(r":(\d+)$", str(endpoint or ""))
    return int(match.group(1)) if match else None


def endpoint_problem(where: str, url: object, host: str, port: int | None, path: str = "") -> list[str]:
    """[] when `url` is http://host:port/path, else what is wrong."""
    expected = f"http://{host}:{port}{path}"
    parts = urlsplit(str(url or ""))
    try:
        actual = (parts.scheme, parts.hostname, parts.port, parts.path if path else parts.path.rstrip("/"))
    except ValueError:  # a port that is not a number
        actual = None
    return [] if actual == ("http", host, port, path) else [f"{where}: {url or 'nothing'}, expected {expected}"]


def compose_tempo(compose: dict) -> tuple[str, str, dict[str, int | None]]:
    """compose's Tempo: its service name, image tag and ports (from the config file it mounts)."""
    for name, service in compose["services"].items():
        image = service.get("image", "")
        if image.startswith("grafana/tempo:"):
            config_path = next((a.split("=", 1)[1] for a in service.get("command", []) if a.startswith("-config.file=")), "")
            mounted = {v.split(":")[1]: v.split(":")[0] for v in service.get("volumes", [])}
            host_file = mounted.get(config_path)
            config = repo.load_yaml(repo.ROOT / host_file) if host_file else {}
            protocols = config.get("distributor", {}).get("receivers", {}).get("otlp", {}).get("protocols", {})
            ports = {
                "grpc": port_of((protocols.get("grpc") or {}).get("endpoint")),
                "http": port_of((protocols.get("http") or {}).get("endpoint")),
                "api": config.get("server", {}).get("http_listen_port"),
            }
            return name, image.split(":", 1)[1], ports
    return "", "", {}


def opentelemetry_endpoints(plugins: list[dict], where: str) -> list[tuple[str, object]]:
    return [
        (f"{where} opentelemetry traces_endpoint", (p.get("config") or {}).get("traces_endpoint"))
        for p in plugins
        if p.get("plugin", p.get("name")) == "opentelemetry"
    ]


def datasource_problems(datasources: list[dict], where: str, host: str, api_port: int | None) -> list[str]:
    """Tempo (uid tempo) at `host`; Loki's trace id field links to it, and its spans to Loki."""
    by_uid = {d.get("uid"): d for d in datasources}
    tempo, loki = by_uid.get("tempo", {}), by_uid.get("loki", {})
    if tempo.get("type") != "tempo":
        return [f"{where}: no Tempo datasource with uid tempo"]
    found = endpoint_problem(f"{where} Tempo datasource url", tempo.get("url"), host, api_port)
    if (tempo.get("jsonData", {}).get("tracesToLogsV2") or {}).get("datasourceUid") != "loki":
        found.append(f"{where}: Tempo's tracesToLogsV2 does not lead to the Loki datasource (uid loki)")
    links = [f for f in loki.get("jsonData", {}).get("derivedFields", []) if f.get("datasourceUid") == "tempo"]
    captured = set()
    for field in links:
        match = re.search(field.get("matcherRegex", "(?!)"), SAMPLE_LOG)
        captured.add(match.group(1) if match and match.groups() else None)
    if SAMPLE_TRACE_ID not in captured:
        found.append(f"{where}: no Loki derived field to Tempo captures the trace id of a JSON log line (span.trace_id)")
    return found


def release_problems(compose_tag: str, helm_tag: object, versions_env: str) -> list[str]:
    """One exact Tempo release: compose's image, the chart's tempo.tag, versions.env's comment."""
    found = []
    if not re.fullmatch(r"\d+\.\d+\.\d+", compose_tag):
        found.append(f"compose: grafana/tempo:{compose_tag or '?'} is not an exact release (X.Y.Z)")
    if str(helm_tag) != compose_tag:
        found.append(f"k8s/helm/tempo.yaml: tempo.tag is {helm_tag!r}, compose runs {compose_tag!r}")
    match = re.search(r"^TEMPO_CHART_VERSION=\d+\.\d+\.\d+\s+#\s*Tempo (\S+)", versions_env, re.M)
    if not match or match.group(1) != compose_tag:
        found.append(f"versions.env: TEMPO_CHART_VERSION's comment does not name Tempo {compose_tag}")
    return found


def trace_problems(overlay: str) -> list[str]:
    compose = repo.compose()
    name, tag, ports = compose_tempo(compose)
    if not name:
        return ["compose: no grafana/tempo service"]
    found = []
    # compose
    for service in SERVICES:
        env = compose["services"][service].get("environment") or {}
        found += endpoint_problem(f"compose {service} {ENDPOINT}", env.get(ENDPOINT), name, ports["grpc"])
    kong = repo.load_yaml(repo.ROOT / "kong" / "kong.yml")
    endpoints = opentelemetry_endpoints(kong.get("plugins", []), "kong.yml")
    found += [] if endpoints else ["kong.yml: no opentelemetry plugin"]
    for where, url in endpoints:
        found += endpoint_problem(where, url, name, ports["http"], "/v1/traces")
    provisioned = repo.load_yaml(repo.ROOT / "monitoring" / "grafana" / "provisioning" / "datasources" / "datasources.yml")
    found += datasource_problems(provisioned.get("datasources", []), "compose Grafana", name, ports["api"])
    found += [f"compose Tempo {kind} port is {ports[kind]}, the chart's is {port}" for kind, port in CHART_PORTS.items() if ports[kind] != port]
    # Kubernetes
    release = RELEASE.search((repo.ROOT / "k8s" / "install.sh").read_text())
    if not release:
        return found + ["k8s/install.sh: no grafana/tempo release"]
    host = f"{release.group(1)}.{release.group(2)}.svc.cluster.local"
    docs = list(repo.rendered(overlay))
    deployments = {d["metadata"]["name"]: d for d in repo.of_kind(docs, "Deployment")}
    for service in SERVICES:
        env = k8s_env(docs, deployments[service]) if service in deployments else {}
        found += endpoint_problem(f"Deployment/{service} {ENDPOINT}", env.get(ENDPOINT), host, CHART_PORTS["grpc"])
    endpoints = opentelemetry_endpoints(repo.of_kind(docs, "KongPlugin"), "KongPlugin")
    found += [] if endpoints else [f"{overlay}: no opentelemetry KongPlugin"]
    for where, url in endpoints:
        found += endpoint_problem(where, url, host, CHART_PORTS["http"], "/v1/traces")
    helm = repo.load_yaml(repo.ROOT / "k8s" / "helm" / "grafana.yaml")
    found += datasource_problems(helm["datasources"]["datasources.yaml"]["datasources"], "k8s/helm/grafana.yaml", host, CHART_PORTS["api"])
    values = repo.load_yaml(repo.ROOT / "k8s" / "helm" / "tempo.yaml")
    found += release_problems(tag, (values.get("tempo") or {}).get("tag"), (repo.ROOT / "k8s" / "helm" / "versions.env").read_text())
    return found


def check_traces(overlay: str) -> str:
    problems(trace_problems(overlay))
    return "services (OTLP/gRPC) and Kong (OTLP/HTTP) -> one Tempo release; Grafana links Loki <-> Tempo"
