"""Redis on the write path: a write fences the cache scopes it changes before committing and is
refused when it cannot (docs/behaviour.md §6), so prod runs Redis with replicas and Sentinel,
the services reach the current primary by the Service the chart keeps on it, and every write
waits until each replica holds its fence (CACHE_FENCE_REPLICAS = the replicas of the chart
values), so that whichever replica is promoted holds it. Where there is one Redis server (dev,
compose) no replica can acknowledge anything: 0. The eviction policy must not pick fences."""

from __future__ import annotations

import copy
import re

from . import repo
from .report import problems

HELM = repo.ROOT / "k8s" / "helm"
# The chart's own defaults for the keys read here (bitnami/redis values.yaml at tag
# redis/19.6.2, the version of k8s/helm/versions.env).
CHART_DEFAULTS = {
    "architecture": "replication",
    "replica": {"replicaCount": 3, "automountServiceAccountToken": False},
    "sentinel": {"enabled": False, "masterService": {"enabled": False}},
    "rbac": {"create": False},
    "serviceAccount": {"create": True},
}
# The Service in front of the primary, in both architectures: templates/master/service.yaml
# (standalone) and, with sentinel.masterService.enabled, templates/sentinel/service.yaml;
# "<fullname>-master", the fullname being the release's name, "redis".
MASTER_SERVICE = "redis-master"
# LRU evicts the least recently used key of its samples: never a fence just set. LFU would
# (a new key starts with a low count), as would random or shortest-TTL eviction (fences have
# the shortest TTLs); noeviction would refuse fences once memory is full.
EVICTION_POLICIES = {"allkeys-lru", "volatile-lru"}


def merged(*layers: dict) -> dict:
    """Helm's merge of values files: later files win, maps merge key by key."""
    result: dict = {}
    for layer in layers:
        for key, value in (layer or {}).items():
            if isinstance(value, dict) and isinstance(result.get(key), dict):
                result[key] = merged(result[key], value)
            else:
                result[key] = copy.deepcopy(value)
    return result


def get(values: dict, path: str) -> object:
    node: object = values
    for key in path.split("."):
        node = node.get(key) if isinstance(node, dict) else None
    return node


def replicas(values: dict) -> int:
    """The Redis replicas (servers besides the primary) the chart runs with these values."""
    if get(values, "architecture") != "replication":
        return 0
    count = int(get(values, "replica.replicaCount") or 0)
    # With Sentinel the primary is one of the replica.replicaCount pods of redis-node.
    return count - 1 if get(values, "sentinel.enabled") else count


def fence_replicas(docs: list[dict]) -> str | None:
    common = next((c for c in repo.of_kind(docs, "ConfigMap") if c["metadata"]["name"] == "nis-common"), {})
    return common.get("data", {}).get("CACHE_FENCE_REPLICAS")


def redis_url_host(install_sh: str) -> str | None:
    match = re.search(r"REDIS_URL=redis://[^@\s\"]*@([\w.-]+):6379", install_sh)
    return match.group(1) if match else None


def eviction_policy(values: dict) -> str | None:
    match = re.search(r"^\s*maxmemory-policy\s+(\S+)", str(get(values, "commonConfiguration") or ""), re.MULTILINE)
    return match.group(1) if match else None


def redis_problems(overlay: str, docs: list[dict], values: dict, install_sh: str, compose: dict) -> list[str]:
    """`values`: the chart values the overlay's install uses (base, plus prod's in prod)."""
    found = []
    where = "k8s/helm/redis.yaml" + (" + prod/redis.yaml" if overlay == "prod" else "")
    expected = replicas(values)
    actual = fence_replicas(docs)
    if actual != str(expected):
        found.append(f"ConfigMap/nis-common: CACHE_FENCE_REPLICAS is {actual!r}, {where} runs {expected} Redis replica(s)")
    sentinel = bool(get(values, "sentinel.enabled"))
    if overlay == "prod":
        if get(values, "architecture") != "replication" or not sentinel:
            found.append(f"{where}: Redis is not replicated with Sentinel (writes need it: a lost primary must fail over)")
        if expected < 2:
            found.append(f"{where}: {expected} Redis replica(s); Sentinel needs 3 servers for a quorum that survives losing one")
    elif expected != 0:
        found.append(f"{where}: {overlay} runs {expected} Redis replica(s), expected one standalone server")
    if sentinel:
        # Without it the chart makes no redis-master Service in Sentinel mode; with it, it
        # refuses to render unless the label updater can reach the API (_helpers.tpl).
        for key in ("sentinel.masterService.enabled", "rbac.create", "serviceAccount.create", "replica.automountServiceAccountToken"):
            if get(values, key) is not True:
                found.append(f"{where}: {key} is not true (the Service {MASTER_SERVICE} must follow the primary)")
    host = redis_url_host(install_sh)
    if host != MASTER_SERVICE:
        found.append(f"k8s/install.sh: REDIS_URL points at {host!r}, not the Service {MASTER_SERVICE} on the primary")
    policy = eviction_policy(values)
    if policy not in EVICTION_POLICIES:
        found.append(f"{where}: maxmemory-policy {policy}, expected one of {', '.join(sorted(EVICTION_POLICIES))} (fences must not be evicted first)")
    for name in ("students", "courses"):
        value = str((compose["services"][name].get("environment") or {}).get("CACHE_FENCE_REPLICAS"))
        if value != "0":
            found.append(f"docker-compose.yml {name}: CACHE_FENCE_REPLICAS is {value!r}; compose runs one Redis server (0)")
    return found


def chart_values(overlay: str) -> dict:
    layers = [CHART_DEFAULTS, repo.load_yaml(HELM / "redis.yaml")]
    if overlay == "prod" and (HELM / "prod" / "redis.yaml").exists():
        layers.append(repo.load_yaml(HELM / "prod" / "redis.yaml"))
    return merged(*layers)


def check_redis(overlay: str) -> str:
    values = chart_values(overlay)
    install_sh = (repo.ROOT / "k8s" / "install.sh").read_text()
    problems(redis_problems(overlay, list(repo.rendered(overlay)), values, install_sh, repo.compose()))
    n = replicas(values)
    return f"{n} Redis replica(s), CACHE_FENCE_REPLICAS={n}" + (", Sentinel, redis-master on the primary" if n else "")
