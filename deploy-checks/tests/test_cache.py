"""Redis on the write path: the repository passes; a fence count that does not match the
replicas, prod without failover or without the master Service, a REDIS_URL elsewhere, an
eviction policy that could pick fences, and compose waiting for replicas it has not are seen."""

import copy

from nischeck import cache, repo


def docs(overlay):
    return [copy.deepcopy(d) for d in repo.rendered(overlay)]


def install_sh():
    return (repo.ROOT / "k8s" / "install.sh").read_text()


def problems(overlay, objects=None, values=None, script=None, compose=None):
    return cache.redis_problems(
        overlay,
        objects if objects is not None else docs(overlay),
        values if values is not None else cache.chart_values(overlay),
        script if script is not None else install_sh(),
        compose if compose is not None else repo.compose(),
    )


def common(objects):
    return next(d for d in objects if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "nis-common")


def test_the_repository_passes():
    assert problems("dev") == []
    assert problems("prod") == []
    assert cache.replicas(cache.chart_values("dev")) == 0
    assert cache.replicas(cache.chart_values("prod")) == 2


def test_replicas_follow_the_chart():
    assert cache.replicas({"architecture": "standalone", "replica": {"replicaCount": 3}}) == 0
    # without Sentinel the primary is its own StatefulSet; with it, one of the replicaCount pods
    assert cache.replicas({"architecture": "replication", "replica": {"replicaCount": 3}}) == 3
    assert cache.replicas({"architecture": "replication", "replica": {"replicaCount": 3}, "sentinel": {"enabled": True}}) == 2
    assert cache.merged({"a": {"b": 1, "c": 2}}, {"a": {"c": 3}}) == {"a": {"b": 1, "c": 3}}


def test_a_fence_count_other_than_the_replicas_is_caught():
    objects = docs("prod")
    common(objects)["data"]["CACHE_FENCE_REPLICAS"] = "1"
    assert any("CACHE_FENCE_REPLICAS is '1'" in p and "runs 2 Redis replica(s)" in p for p in problems("prod", objects))
    values = cache.chart_values("prod")
    values["replica"]["replicaCount"] = 4
    assert any("runs 3 Redis replica(s)" in p for p in problems("prod", values=values))
    objects = docs("dev")
    del common(objects)["data"]["CACHE_FENCE_REPLICAS"]
    assert any("CACHE_FENCE_REPLICAS is None" in p for p in problems("dev", objects))


def test_prod_without_failover_or_master_service_is_caught():
    standalone = cache.chart_values("dev")
    objects = docs("prod")
    common(objects)["data"]["CACHE_FENCE_REPLICAS"] = "0"
    found = problems("prod", objects, standalone)
    assert any("not replicated with Sentinel" in p for p in found) and any("Sentinel needs 3 servers" in p for p in found)
    values = cache.chart_values("prod")
    values["sentinel"]["masterService"]["enabled"] = False
    values["replica"]["automountServiceAccountToken"] = False
    found = problems("prod", values=values)
    assert any("sentinel.masterService.enabled is not true" in p for p in found)
    assert any("replica.automountServiceAccountToken is not true" in p for p in found)


def test_a_redis_url_not_on_the_primary_is_caught():
    script = install_sh().replace("@redis-master:6379", "@redis:6379")
    assert any("REDIS_URL points at 'redis'" in p for p in problems("prod", script=script))


def test_an_eviction_policy_that_could_pick_fences_is_caught():
    for policy in ("volatile-ttl", "allkeys-lfu", "noeviction"):
        values = cache.chart_values("prod")
        values["commonConfiguration"] = values["commonConfiguration"].replace("allkeys-lru", policy)
        assert any(f"maxmemory-policy {policy}" in p for p in problems("prod", values=values))


def test_compose_waiting_for_replicas_is_caught():
    compose = repo.compose()
    compose["services"]["students"]["environment"]["CACHE_FENCE_REPLICAS"] = "2"
    assert problems("dev", compose=compose) == ["docker-compose.yml students: CACHE_FENCE_REPLICAS is '2'; compose runs one Redis server (0)"]
