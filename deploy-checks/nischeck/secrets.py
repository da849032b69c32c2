"""Secrets: every key a workload reads is listed in k8s/secrets.example.yaml (placeholders
only), and no Secret is part of an overlay (applying it would overwrite the real one)."""

from __future__ import annotations

import re

from . import repo
from .report import problems

# Template values that are settings, not secrets.
HARMLESS = {("grafana-admin", "admin-user")}


def templates() -> list[dict]:
    return repo.load_yaml_all((repo.ROOT / "k8s" / "secrets.example.yaml").read_text())


def template_problems(secrets: list[dict]) -> list[str]:
    found = []
    for secret in secrets:
        name = secret["metadata"]["name"]
        if secret.get("data"):
            found.append(f"Secret {name}: use stringData placeholders, not data")
        for key, value in secret.get("stringData", {}).items():
            if (name, key) not in HARMLESS and not re.search(r"<[^>]+>", str(value)):
                found.append(f"Secret {name}: {key} holds a value, not a <placeholder>")
    return found


def reference_problems(docs: list[dict], secrets: list[dict]) -> list[str]:
    listed = {(d["metadata"]["name"], key) for d in secrets for key in d.get("stringData", {})}
    found = [f"{repo.ident(d)}: an overlay must not contain Secrets" for d in repo.of_kind(docs, "Secret")]
    for doc in repo.of_kind(docs, "Deployment") + repo.of_kind(docs, "Job"):
        for container in repo.pod_spec(doc).get("containers", []):
            for var in container.get("env", []):
                ref = var.get("valueFrom", {}).get("secretKeyRef")
                if ref and (ref["name"], ref["key"]) not in listed:
                    found.append(f"{repo.ident(doc)}: {var['name']} from Secret {ref['name']}/{ref['key']}, not in k8s/secrets.example.yaml")
            if any("secretRef" in source for source in container.get("envFrom", [])):
                found.append(f"{repo.ident(doc)}: envFrom a whole Secret (name the keys instead)")
    return found


def check_secrets(overlay: str) -> str:
    secrets = templates()
    problems(template_problems(secrets) + reference_problems(list(repo.rendered(overlay)), secrets))
    return "every secret key read is templated with a placeholder; no Secret in the overlay"
