"""Dashboards and alert rules against what is exported: every query parses (promql-parser,
Prometheus' grammar), names only metric families of metric_families.txt, the required alerts
and views exist, and every datasource a dashboard uses is provisioned."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import promql_parser

from . import repo
from .report import problems

PROM_DIR = repo.ROOT / "monitoring" / "prometheus"
DASHBOARDS = repo.ROOT / "monitoring" / "grafana" / "dashboards"
# Series Prometheus makes itself, allowed beside metric_families.txt.
PROMETHEUS_SERIES = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}
# Grafana's range variables, replaced by a duration so that the query parses.
GRAFANA_RANGES = {"$__rate_interval": "5m", "$__interval": "1m", "${__range}": "1h", "$__range": "1h"}
# The alerts that must exist: what, and a test on the whitespace-free expression.
REQUIRED_ALERTS = {
    "error ratio": lambda e: "nis_requests_total" in e and 'outcome="error"' in e,
    "p99 latency": lambda e: "histogram_quantile(0.99" in e and "nis_request_duration_seconds_bucket" in e,
    "dead letters": lambda e: "dead_lettered" in e,
    "outbox backlog": lambda e: "nis_outbox_pending" in e,
    "instance down": lambda e: re.search(r"\bup\{", e) is not None,
    # The cache on the write path: writes refused for want of a fence, settles that failed.
    "cache fence refusals": lambda e: "increase(nis_cache_fence_refusals_total" in e,
    "cache settle failures": lambda e: "increase(nis_cache_settle_failures_total" in e,
    # Reconciliation: any repaired pair (a change the queue lost), and runs that stopped
    # succeeding; the latter only where periodic runs are on (interval > 0).
    "reconciliation repairs": lambda e: "increase(nis_reconcile_repaired_pairs_total" in e,
    "reconciliation not running": lambda e: "time()-" in e
    and "nis_reconcile_last_success_timestamp_seconds" in e
    and re.search(r"nis_reconcile_interval_seconds(\{[^}]*\})?\)>0", e) is not None,
}
# The views the dashboards must show.
REQUIRED_VIEWS = {
    "RED per service by transport and operation": lambda e: "nis_requests_total" in e and "transport,operation" in e,
    "latency by transport and operation": lambda e: "nis_request_duration_seconds_bucket" in e and "transport,operation" in e,
    "cache hit ratio": lambda e: "nis_cache_lookups_total" in e and 'result="hit"' in e and "/" in e,
    "cache: writes refused for want of a fence": lambda e: "nis_cache_fence_refusals_total" in e,
    "cache: settles failed after a commit": lambda e: "nis_cache_settle_failures_total" in e,
    "events published": lambda e: "nis_events_published_total" in e,
    "events consumed by outcome": lambda e: "nis_events_consumed_total" in e and "outcome" in e,
    "events dead-lettered": lambda e: "dead_lettered" in e,
    "outbox backlog": lambda e: "nis_outbox_pending" in e,
    "Kong traffic by route and status": lambda e: "kong_http_requests_total" in e and "route,code" in e,
    "reconciliation: pairs repaired by direction": lambda e: "increase(nis_reconcile_repaired_pairs_total" in e and "direction" in e,
    "reconciliation: runs by outcome": lambda e: "nis_reconcile_runs_total" in e and "outcome" in e,
    "reconciliation: time since the last success": lambda e: "time()-" in e and "nis_reconcile_last_success_timestamp_seconds" in e,
    "reconciliation: interval (the alert's threshold)": lambda e: "nis_reconcile_interval_seconds" in e,
    "dead letters per service": lambda e: "nis_dead_letters" in e,
}


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects; raises ValueError when it does not parse."""
    for variable, value in GRAFANA_RANGES.items():
        expr = expr.replace(variable, value)
    names: set[str] = set()
    pending: list[Any] = [promql_parser.parse(expr)]
    while pending:
        node = pending.pop()
        if isinstance(node, promql_parser.VectorSelector):
            if node.name:
                names.add(node.name)
            continue
        for attribute in ("lhs", "rhs", "expr", "vector_selector", "param"):
            child = getattr(node, attribute, None)
            if child is not None and not isinstance(child, (str, int, float)):
                pending.append(child)
        pending.extend(getattr(node, "args", None) or [])
    return names


def unknown_families(expr: str, families: dict[str, str]) -> list[str]:
    """Names in `expr` that are neither exported families nor their histogram series."""
    unknown = []
    for name in sorted(metric_names(expr)):
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        exported = name in families or (base != name and families.get(base) in {"histogram", "summary"})
        if not exported and name not in PROMETHEUS_SERIES:
            unknown.append(name)
    return unknown


def query_problems(queries: Iterable[tuple[str, str]], families: dict[str, str]) -> list[str]:
    found = []
    for where, expr in queries:
        try:
            found += [f"{where}: {name} is not in metric_families.txt" for name in unknown_families(expr, families)]
        except ValueError as error:
            found.append(f"{where}: does not parse: {error}")
    return found


def missing(required: dict, expressions: list[str], what: str) -> list[str]:
    compact = [re.sub(r"\s+", "", e) for e in expressions]
    return [f"no {what} on {name}" for name, test in required.items() if not any(test(e) for e in compact)]


def alert_rules() -> list[dict]:
    rules = []
    for path in sorted((PROM_DIR / "rules").glob("*.yml")):
        for group in repo.load_yaml(path).get("groups", []):
            rules += [r for r in group.get("rules", []) if "alert" in r]
    return rules


def all_panels(panels: Iterable[dict]) -> Iterable[dict]:
    for panel in panels:
        yield panel
        yield from all_panels(panel.get("panels", []))


def prometheus_queries(dashboard: dict) -> list[tuple[str, str]]:
    """(where, PromQL) of every Prometheus query of a dashboard, variables included."""
    queries = []
    for panel in all_panels(dashboard.get("panels", [])):
        for target in panel.get("targets", []):
            source = target.get("datasource") or panel.get("datasource") or {}
            kind = source.get("type") or source.get("uid", "") if isinstance(source, dict) else str(source)
            if "prometheus" in kind and target.get("expr"):
                queries.append((f"panel {panel.get('title')!r}", target["expr"]))
    for variable in dashboard.get("templating", {}).get("list", []):
        query = variable.get("query") if variable.get("type") == "query" else None
        query = query.get("query") if isinstance(query, dict) else query
        match = re.match(r"\s*label_values\((.*),\s*\w+\s*\)\s*$", query or "")
        if match:
            queries.append((f"variable ${variable.get('name')}", match.group(1)))
    return queries


def datasource_uids(dashboard: dict) -> set[str]:
    uids = set()
    for panel in all_panels(dashboard.get("panels", [])):
        for holder in [panel, *panel.get("targets", [])]:
            source = holder.get("datasource")
            if isinstance(source, dict) and source.get("uid"):
                uids.add(source["uid"])
    return uids


def dashboards() -> dict[Path, dict]:
    return {path: json.loads(path.read_text()) for path in sorted(DASHBOARDS.glob("*.json"))}


def check_alerts() -> str:
    rules = alert_rules()
    families = repo.read_metric_families()
    found = query_problems(((f"alert {r['alert']}", r["expr"]) for r in rules), families)
    found += missing(REQUIRED_ALERTS, [r["expr"] for r in rules], "alert")
    problems(found)
    return f"{len(rules)} alerts on exported families; {', '.join(REQUIRED_ALERTS)} covered"


def check_dashboards() -> str:
    boards = dashboards()
    families = repo.read_metric_families()
    queries = [(f"{path.name} {where}", expr) for path, board in boards.items() for where, expr in prometheus_queries(board)]
    found = query_problems(queries, families)
    found += missing(REQUIRED_VIEWS, [expr for _, expr in queries], "panel")
    used = set().union(*(datasource_uids(b) for b in boards.values())) if boards else set()
    provisioning = repo.ROOT / "monitoring" / "grafana" / "provisioning"
    compose_uids = {d.get("uid") for d in repo.load_yaml(provisioning / "datasources" / "datasources.yml").get("datasources", [])}
    helm = repo.load_yaml(repo.ROOT / "k8s" / "helm" / "grafana.yaml")
    helm_uids = {d.get("uid") for d in helm["datasources"]["datasources.yaml"]["datasources"]}
    found += [f"datasource uid {u} is not provisioned for compose" for u in sorted(used - compose_uids)]
    found += [f"datasource uid {u} is not in k8s/helm/grafana.yaml" for u in sorted(used - helm_uids)]
    mounts = {v.split(":")[1] for v in repo.compose()["services"]["grafana"].get("volumes", []) if v.startswith("./monitoring/grafana/dashboards")}
    for provider in repo.load_yaml(provisioning / "dashboards" / "dashboards.yml").get("providers", []):
        path = provider.get("options", {}).get("path")
        if path not in mounts:
            found.append(f"dashboard provider path {path} is not where compose mounts the dashboards {sorted(mounts)}")
    problems(found)
    return f"{len(boards)} dashboards, {len(queries)} queries parse and use exported families; datasources provisioned"
