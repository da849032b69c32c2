"""NetworkPolicies against the pods that really exist: a default deny, each data store open
to its own clients only, every selector matching the labels the workloads and the charts put
on their pods, DNS left reachable wherever egress is restricted, and the charts' own policies
switched off where ours take their place."""

from __future__ import annotations

from . import repo
from .report import problems

# The pod labels the third-party charts set (app.kubernetes.io/name), per release, read from
# each chart's templates at the version pinned in k8s/helm/versions.env (docs/deploy.md,
# "Settings and their sources").
CHART_POD_NAMES = {"postgresql", "mongodb", "redis", "nats"}
# Who may reach each store.
CLIENTS = {
    "postgresql": {"students"},
    "mongodb": {"courses", "mongodb"},
    # redis: prod runs a primary, replicas and Sentinels (k8s/helm/prod/redis.yaml)
    "redis": {"courses", "students", "redis"},
    "nats": {"courses", "students", "initializer", "nats"},
}

# Ports on which the pods of a clustered store must reach each other: Redis replication and
# Sentinel (prod, k8s/helm/prod/redis.yaml), NATS cluster routes, the MongoDB replica set.
PEER_PORTS = {"redis": {6379, 26379}, "nats": {6222}, "mongodb": {27017}}


def pod_names(docs: list[dict]) -> set[str]:
    """app.kubernetes.io/name of every pod the overlay runs."""
    names = set()
    for doc in docs:
        labels = doc.get("spec", {}).get("template", {}).get("metadata", {}).get("labels", {})
        if "app.kubernetes.io/name" in labels:
            names.add(labels["app.kubernetes.io/name"])
    return names


def selected_name(selector: dict) -> str | None:
    return selector.get("matchLabels", {}).get("app.kubernetes.io/name")


def policy_problems(docs: list[dict]) -> list[str]:
    policies = repo.of_kind(docs, "NetworkPolicy")
    known = pod_names(docs) | CHART_POD_NAMES
    found = []
    if not any(p["spec"].get("podSelector") == {} and "Ingress" in p["spec"].get("policyTypes", []) and not p["spec"].get("ingress") for p in policies):
        found.append("no default-deny ingress policy")
    for policy in policies:
        name = selected_name(policy["spec"].get("podSelector", {}))
        if policy["spec"].get("podSelector") and name not in known:
            found.append(f"{repo.ident(policy)}: selects pods named {name!r}, which no workload or chart runs")
        for rule in policy["spec"].get("ingress", []):
            for peer in rule.get("from", []):
                peer_name = selected_name(peer.get("podSelector", {}))
                if "podSelector" in peer and peer_name not in known:
                    found.append(f"{repo.ident(policy)}: admits pods named {peer_name!r}, which no workload or chart runs")
                if name in CLIENTS and ("namespaceSelector" in peer or "ipBlock" in peer or peer_name not in CLIENTS[name]):
                    found.append(f"{repo.ident(policy)}: admits {peer} (only {', '.join(sorted(CLIENTS[name]))})")
            if name in CLIENTS and not rule.get("from"):
                found.append(f"{repo.ident(policy)}: a rule admits everyone")
        if "Egress" in policy["spec"].get("policyTypes", []) and not allows_dns(policy):
            found.append(f"{repo.ident(policy)}: restricts egress without allowing DNS (UDP and TCP 53)")
    for store in CLIENTS:
        if not any(selected_name(p["spec"].get("podSelector", {})) == store for p in policies):
            found.append(f"{store}: no NetworkPolicy selects it")
    for store, ports in PEER_PORTS.items():
        missing = ports - admitted_ports(policies, store, store)
        if missing:
            found.append(f"{store}: its pods are not admitted to each other on port(s) {', '.join(map(str, sorted(missing)))}")
    return found


def admitted_ports(policies: list[dict], store: str, client: str) -> set[int]:
    """The ports of the pods named `store` that the policies open to the pods named `client`."""
    ports: set[int] = set()
    for policy in policies:
        if selected_name(policy["spec"].get("podSelector", {})) != store:
            continue
        for rule in policy["spec"].get("ingress", []):
            if any(selected_name(peer.get("podSelector", {})) == client for peer in rule.get("from", [])):
                ports |= {port.get("port") for port in rule.get("ports", [])}
    return ports


# Where each chart switches its own NetworkPolicy, at the pinned chart version: left on, it
# would admit clients that ours keep out.
CHART_POLICY_SWITCHES = {
    "postgresql": ("primary", "networkPolicy", "enabled"),
    "mongodb": ("networkPolicy", "enabled"),
    "redis": ("networkPolicy", "enabled"),
}


def chart_policy_problems(values: dict[str, dict]) -> list[str]:
    found = []
    for chart, path in CHART_POLICY_SWITCHES.items():
        node: object = values.get(chart, {})
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        if node is not False:
            found.append(f"k8s/helm/{chart}.yaml: {'.'.join(path)} is not false (the chart's own policy would admit everyone)")
    return found


def allows_dns(policy: dict) -> bool:
    protocols = set()
    for rule in policy["spec"].get("egress", []):
        for port in rule.get("ports", []) or [{}]:
            if port.get("port") in (53, "dns", None):
                protocols.add(port.get("protocol", "UDP") if port else "any")
    return "any" in protocols or {"UDP", "TCP"} <= protocols


def check_network(overlay: str) -> str:
    values = {chart: repo.load_yaml(repo.ROOT / "k8s" / "helm" / f"{chart}.yaml") for chart in CHART_POLICY_SWITCHES}
    problems(policy_problems(list(repo.rendered(overlay))) + chart_policy_problems(values))
    return "default deny; each store open to its clients only; selectors match real pods"
