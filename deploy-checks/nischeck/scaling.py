"""Replicas across the overlay, the initializer's settings and the NATS chart values: dev runs
one of each; prod runs at least two of each service with an autoscaler and a disruption
budget, and three stream replicas on a three-server NATS cluster."""

from __future__ import annotations

from . import repo
from .report import problems


def scaling_problems(overlay: str, docs: list[dict], nats_prod: dict) -> list[str]:
    deployments = repo.of_kind(docs, "Deployment")
    hpas = {d["spec"]["scaleTargetRef"]["name"]: d for d in repo.of_kind(docs, "HorizontalPodAutoscaler")}
    pdbs = repo.of_kind(docs, "PodDisruptionBudget")
    found = []
    if overlay == "dev":
        for deployment in deployments:
            if deployment["spec"].get("replicas") != 1:
                found.append(f"{repo.ident(deployment)}: replicas {deployment['spec'].get('replicas')}, dev wants 1")
            if deployment["metadata"]["name"] in hpas:
                found.append(f"{repo.ident(deployment)}: autoscaled in dev")
        return found
    for deployment in deployments:
        name = deployment["metadata"]["name"]
        if (deployment["spec"].get("replicas") or 2) < 2:
            found.append(f"{repo.ident(deployment)}: fewer than 2 replicas")
        if hpas.get(name, {}).get("spec", {}).get("minReplicas", 0) < 2:
            found.append(f"{repo.ident(deployment)}: no autoscaler with minReplicas >= 2")
        labels = deployment["spec"]["selector"]["matchLabels"]
        if not any(all(p["spec"].get("selector", {}).get("matchLabels", {}).get(k) == v for k, v in labels.items()) for p in pdbs):
            found.append(f"{repo.ident(deployment)}: no PodDisruptionBudget")
    initializer = next((c for c in repo.of_kind(docs, "ConfigMap") if c["metadata"]["name"] == "initializer"), {})
    if initializer.get("data", {}).get("STREAM_REPLICAS") != "3":
        found.append("ConfigMap/initializer: STREAM_REPLICAS is not 3")
    cluster = nats_prod.get("config", {}).get("cluster", {})
    if not cluster.get("enabled") or cluster.get("replicas", 0) < 3:
        found.append("k8s/helm/prod/nats.yaml: NATS is not a cluster of 3 (streams with 3 replicas need it)")
    return found


def check_scaling(overlay: str) -> str:
    nats = repo.load_yaml(repo.ROOT / "k8s" / "helm" / "prod" / "nats.yaml")
    problems(scaling_problems(overlay, list(repo.rendered(overlay)), nats))
    return "1 replica each" if overlay == "dev" else "HPA min >= 2 and a PDB per service; 3 stream replicas on 3 NATS servers"
