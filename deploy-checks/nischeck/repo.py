"""The repository's files as data: paths, YAML, the two data files, the rendered overlays."""

from __future__ import annotations

import functools
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .report import CheckFailed

ROOT = Path(__file__).resolve().parents[2]
HERE = ROOT / "deploy-checks"
OVERLAYS = ("dev", "prod")

# Sample ids that make routes.txt paths concrete, per service.
SAMPLE_IDS = {
    "courses": "64b7f0c2a1d4e5f6a7b8c9d0",  # MongoDB ObjectId
    "students": "0190f5a2-7c1e-7d3a-9b2e-4f6a8c0d1e2f",  # UUIDv7
}
# The port each service serves its HTTP API, probes and /metrics on, and its gRPC port.
HTTP_PORTS = {"courses": 8010, "students": 8020}
GRPC_PORTS = {"courses": 50010, "students": 50020}


def load_yaml(path: Path) -> Any:
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def load_yaml_all(text: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess:
    """A subprocess with captured text output, no stdin and a deadline."""
    kwargs.setdefault("capture_output", True)
    kwargs.setdefault("text", True)
    kwargs.setdefault("stdin", subprocess.DEVNULL)
    kwargs.setdefault("timeout", 300)
    return subprocess.run(cmd, **kwargs)


def data_lines(path: Path) -> list[tuple[int, list[str]]]:
    """(line number, whitespace-separated fields) of each non-comment line."""
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if line:
            rows.append((number, line.split()))
    return rows


@dataclass(frozen=True)
class Route:
    """One route of the public API (routes.txt)."""

    method: str
    path: str
    service: str

    def concrete(self) -> str:
        return self.path.replace("{id}", SAMPLE_IDS[self.service]).replace("{course_id}", SAMPLE_IDS["courses"]).replace("{student_id}", SAMPLE_IDS["students"])


def read_routes(path: Path = HERE / "routes.txt") -> list[Route]:
    routes, seen = [], set()
    for number, parts in data_lines(path):
        if len(parts) != 3:
            raise CheckFailed(f"{path.name}:{number}: expected METHOD PATH SERVICE, got {parts}")
        method, route_path, service = parts
        if service not in SAMPLE_IDS or not route_path.startswith(f"/api/{service}"):
            raise CheckFailed(f"{path.name}:{number}: {route_path} is not a route of a service")
        if (method, route_path) in seen:
            raise CheckFailed(f"{path.name}:{number}: duplicate route {method} {route_path}")
        seen.add((method, route_path))
        routes.append(Route(method, route_path, service))
    return routes


def read_metric_families(path: Path = HERE / "metric_families.txt") -> dict[str, str]:
    """NAME -> TYPE of every metric family the services and Kong export."""
    families = {}
    for number, parts in data_lines(path):
        if len(parts) != 3 or parts[1] not in {"counter", "gauge", "histogram", "summary"}:
            raise CheckFailed(f"{path.name}:{number}: expected NAME TYPE EXPORTED-BY, got {parts}")
        families[parts[0]] = parts[1]
    return families


def compose() -> dict:
    return load_yaml(ROOT / "docker-compose.yml")


@functools.cache
def rendered(overlay: str) -> tuple[dict, ...]:
    """The objects of a kustomize overlay, as `kubectl kustomize` renders them."""
    result = run(["kubectl", "kustomize", str(ROOT / "k8s" / "overlays" / overlay)])
    if result.returncode != 0:
        raise CheckFailed(result.stderr.strip())
    return tuple(load_yaml_all(result.stdout))


def of_kind(docs: tuple[dict, ...] | list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d.get("kind") == kind]


def ident(doc: dict) -> str:
    return f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"


def pod_spec(doc: dict) -> dict:
    return doc.get("spec", {}).get("template", {}).get("spec", {})
