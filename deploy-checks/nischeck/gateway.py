"""The ways in: every Kong route and Ingress path leads to a real route of the right service
(routes.txt), every real route is reachable, probes and /metrics are not, and key-auth covers
all of it, with the key taken from headers only."""

from __future__ import annotations

import re
from dataclasses import dataclass

from . import repo
from .report import problems

# Paths that must never be routed through the gateway.
PRIVATE_PATHS = ("/healthz", "/readyz", "/metrics", "/")
# The plugins every way in must have (Kong globally; each Ingress by annotation).
REQUIRED_PLUGINS = ("key-auth", "rate-limiting", "prometheus", "correlation-id", "opentelemetry")


@dataclass(frozen=True)
class GatewayRoute:
    """One way into a service: a Kong route path or an Ingress path."""

    where: str
    kind: str  # "prefix" (Kong), "regex" (Kong `~`), "exact" / "k8s-prefix" (Ingress)
    pattern: str
    service: str  # the service it leads to, or "?<target>" when it leads to no service's API port
    methods: frozenset[str] | None = None

    def matches(self, method: str, path: str) -> bool:
        if self.methods and method not in self.methods:
            return False
        if self.kind == "regex":
            return re.match(self.pattern, path) is not None  # Kong 3.x anchors at the start
        if self.kind == "exact":
            return path == self.pattern
        if self.kind == "k8s-prefix":  # Kubernetes Prefix matches whole path elements
            prefix = self.pattern.rstrip("/")
            return prefix == "" or path == prefix or path.startswith(prefix + "/")
        return path.startswith(self.pattern)


def service_of(host: str, port: int | None) -> str:
    return host if repo.HTTP_PORTS.get(host) == port else f"?{host}:{port}"


def kong_routes(config: dict) -> list[GatewayRoute]:
    routes = []
    for service in config.get("services", []):
        url = service.get("url") or f"http://{service.get('host')}:{service.get('port', 80)}"
        match = re.match(r"https?://([^:/]+):(\d+)", url)
        target = service_of(match.group(1), int(match.group(2))) if match else f"?{url}"
        for route in service.get("routes", []):
            methods = frozenset(route["methods"]) if route.get("methods") else None
            for path in route.get("paths", []):
                kind, pattern = ("regex", path[1:]) if path.startswith("~") else ("prefix", path)
                where = f"kong.yml route {route.get('name')} {path}"
                routes.append(GatewayRoute(where, kind, pattern, target, methods))
    return routes


def ingress_routes(docs: list[dict]) -> list[GatewayRoute]:
    services = {d["metadata"]["name"]: d for d in repo.of_kind(docs, "Service")}
    routes = []
    for ingress in repo.of_kind(docs, "Ingress"):
        for rule in ingress["spec"].get("rules", []):
            for entry in rule.get("http", {}).get("paths", []):
                backend = entry["backend"]["service"]
                port = backend.get("port", {})
                number = port.get("number")
                for service_port in services.get(backend["name"], {}).get("spec", {}).get("ports", []):
                    if port.get("name") == service_port.get("name"):
                        number = service_port.get("port")
                path = entry.get("path", "/")
                kind = {"Exact": "exact", "Prefix": "k8s-prefix"}.get(entry.get("pathType"), "prefix")
                where = f"Ingress {ingress['metadata']['name']} {path}"
                routes.append(GatewayRoute(where, kind, path, service_of(backend["name"], number)))
    return routes


def route_problems(gateway: list[GatewayRoute], api: list[repo.Route]) -> list[str]:
    """Every API route reaches its service; every gateway path leads to an API route only."""
    found = []
    if not gateway:
        found.append("no gateway route at all")
    for route in api:
        path = route.concrete()
        hits = [g for g in gateway if g.matches(route.method, path)]
        if not hits:
            found.append(f"{route.method} {route.path}: no gateway route leads there")
        found += [f"{route.method} {route.path}: {hit.where} sends it to {hit.service}, not {route.service}" for hit in hits if hit.service != route.service]
    for way in gateway:
        if not any(way.matches(r.method, r.concrete()) for r in api):
            found.append(f"{way.where}: leads to no route of routes.txt")
        found += [f"{way.where}: exposes {private}" for private in PRIVATE_PATHS if any(way.matches(method, private) for method in ("GET", "POST"))]
        found += [f"{way.where}: also matches /api/{service}x" for service in repo.SAMPLE_IDS if way.matches("GET", f"/api/{service}x")]
    return found


def key_auth_problems(config: dict, where: str) -> list[str]:
    """The key is read from the `apikey` and `x-api-key` headers, never from the URL."""
    found = []
    names = set(config.get("key_names", []))
    found += [f"{where}: key_names lacks {n}" for n in ("apikey", "x-api-key") if n not in names]
    if config.get("key_in_query", True) is not False:
        found.append(f"{where}: key_in_query is not false (keys would be accepted in URLs)")
    if config.get("key_in_header", True) is not True:
        found.append(f"{where}: key_in_header is not true")
    return found


def plugin_config_problems(kind: str, config: dict, where: str) -> list[str]:
    """What other files rely on: the services log the request id Kong sets (x-request-id), the
    Kong dashboard uses the metric families the prometheus plugin exports only when told, and
    the services continue W3C `traceparent` headers only (so traces begin at the gateway)."""
    if kind == "opentelemetry":
        return opentelemetry_problems(config, where)
    if kind == "correlation-id" and str(config.get("header_name", "")).lower() != "x-request-id":
        return [f"{where}: correlation-id does not set x-request-id (the header the services log)"]
    if kind == "prometheus":
        return [
            f"{where}: prometheus {flag} is not true (the Kong dashboard's families would be missing)"
            for flag in ("status_code_metrics", "latency_metrics")
            if config.get(flag) is not True
        ]
    return []


def opentelemetry_problems(config: dict, where: str) -> list[str]:
    found = []
    if not str(config.get("traces_endpoint", "")).endswith("/v1/traces"):
        found.append(f"{where}: opentelemetry traces_endpoint is not an OTLP/HTTP traces URL (.../v1/traces)")
    propagation = config.get("propagation") or {}
    for direction in ("extract", "inject"):
        if "w3c" not in (propagation.get(direction) or []):
            found.append(f"{where}: opentelemetry propagation.{direction} lacks w3c (the services read only traceparent)")
    return found


def kong_plugin_problems(config: dict) -> list[str]:
    """Every Kong route is behind key-auth and the other required plugins apply globally."""
    found = []
    global_plugins = {p.get("name"): p for p in config.get("plugins", []) if p.get("enabled", True)}
    found += [f"global plugin {name} is missing" for name in REQUIRED_PLUGINS if name not in global_plugins]
    for name, plugin in global_plugins.items():
        found += plugin_config_problems(name, plugin.get("config", {}), "kong.yml")
    key_auths = [p for p in config.get("plugins", []) if p.get("name") == "key-auth"]
    for service in config.get("services", []):
        service_auth = [p for p in service.get("plugins", []) if p.get("name") == "key-auth"]
        for route in service.get("routes", []):
            route_auth = [p for p in route.get("plugins", []) if p.get("name") == "key-auth"]
            covering = [p for p in key_auths + service_auth + route_auth if p.get("enabled", True)]
            if not covering:
                found.append(f"route {route.get('name')}: not behind key-auth")
            for plugin in covering:
                found += key_auth_problems(plugin.get("config", {}), f"route {route.get('name')} key-auth")
    for consumer in config.get("consumers", []):
        for credential in consumer.get("keyauth_credentials", []):
            if credential.get("key") != "${KONG_API_KEY}":
                found.append(f"consumer {consumer.get('username')}: a literal key is in git")
    if not config.get("consumers"):
        found.append("no consumer: nobody could call the API")
    return found


def ingress_plugin_problems(docs: list[dict], secrets: list[dict]) -> list[str]:
    """Each Ingress names KongPlugins of every required kind; the consumer's credential is a
    Secret labelled for key-auth (the label the ingress controller selects credentials by)."""
    plugins = {d["metadata"]["name"]: d for d in repo.of_kind(docs, "KongPlugin")}
    found = []
    for name, plugin in plugins.items():
        if plugin.get("plugin") == "key-auth":
            found += key_auth_problems(plugin.get("config", {}), f"KongPlugin/{name}")
        found += plugin_config_problems(plugin.get("plugin", ""), plugin.get("config", {}), f"KongPlugin/{name}")
    for ingress in repo.of_kind(docs, "Ingress"):
        if ingress["spec"].get("ingressClassName") != "kong":
            found.append(f"{repo.ident(ingress)}: ingressClassName is not kong")
        annotation = ingress["metadata"].get("annotations", {}).get("konghq.com/plugins", "")
        kinds = set()
        for name in filter(None, (n.strip() for n in annotation.split(","))):
            if name in plugins:
                kinds.add(plugins[name].get("plugin"))
            else:
                found.append(f"{repo.ident(ingress)}: plugin {name} is not a KongPlugin of the overlay")
        found += [f"{repo.ident(ingress)}: no {k} plugin" for k in REQUIRED_PLUGINS if k not in kinds]
    by_name = {s["metadata"]["name"]: s for s in secrets}
    consumers = repo.of_kind(docs, "KongConsumer")
    if not consumers:
        found.append("no KongConsumer: nobody could call the API")
    for consumer in consumers:
        for credential in consumer.get("credentials", []):
            secret = by_name.get(credential)
            if secret is None:
                found.append(f"{repo.ident(consumer)}: credential Secret {credential} is not in k8s/secrets.example.yaml")
            elif secret["metadata"].get("labels", {}).get("konghq.com/credential") != "key-auth" or "key" not in secret.get("stringData", {}):
                found.append(f"Secret/{credential}: needs label konghq.com/credential=key-auth and a `key`")
    return found


def secret_templates() -> list[dict]:
    return repo.load_yaml_all((repo.ROOT / "k8s" / "secrets.example.yaml").read_text())


def check_kong() -> str:
    config = repo.load_yaml(repo.ROOT / "kong" / "kong.yml")
    routes = kong_routes(config)
    problems(route_problems(routes, repo.read_routes()) + kong_plugin_problems(config))
    return f"{len(routes)} Kong paths <-> routes.txt, all behind key-auth; probes and /metrics not routed"


def check_ingress(overlay: str) -> str:
    docs = list(repo.rendered(overlay))
    routes = ingress_routes(docs)
    problems(route_problems(routes, repo.read_routes()) + ingress_plugin_problems(docs, secret_templates()))
    return f"{len(routes)} Ingress paths <-> routes.txt, each with {', '.join(REQUIRED_PLUGINS)}"
