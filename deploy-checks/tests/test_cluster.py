"""NetworkPolicies, replicas and secret references: the repository passes, mistakes are seen."""

import copy

from nischeck import network, repo, scaling, secrets


def docs(overlay="prod"):
    return [copy.deepcopy(d) for d in repo.rendered(overlay)]


def policy(objects, name):
    return next(d for d in objects if d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == name)


def test_the_repository_passes():
    for overlay in repo.OVERLAYS:
        assert network.policy_problems(docs(overlay)) == []
        assert secrets.reference_problems(docs(overlay), secrets.templates()) == []
    assert secrets.template_problems(secrets.templates()) == []


def test_a_selector_matching_no_pod_is_caught():
    objects = docs()
    policy(objects, "postgresql")["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/name"] = "postgres"
    found = network.policy_problems(objects)
    assert any("'postgres', which no workload" in p for p in found) and "postgresql: no NetworkPolicy selects it" in found


def test_a_store_opened_to_another_client_is_caught():
    objects = docs()
    rule = policy(objects, "postgresql")["spec"]["ingress"][0]
    rule["from"].append({"podSelector": {"matchLabels": {"app.kubernetes.io/name": "courses"}}})
    assert any("only students" in p for p in network.policy_problems(objects))


def test_egress_without_dns_is_caught():
    objects = docs()
    restricted = policy(objects, "students")
    restricted["spec"]["policyTypes"].append("Egress")
    restricted["spec"]["egress"] = [{"ports": [{"port": 53, "protocol": "UDP"}]}]
    assert any("DNS" in p for p in network.policy_problems(objects))
    restricted["spec"]["egress"][0]["ports"].append({"port": 53, "protocol": "TCP"})
    assert network.policy_problems(objects) == []


def test_prod_with_one_replica_or_two_stream_replicas_is_caught():
    objects = docs()
    hpa = next(d for d in objects if d["kind"] == "HorizontalPodAutoscaler")
    hpa["spec"]["minReplicas"] = 1
    found = scaling.scaling_problems("prod", objects, {"config": {"cluster": {"enabled": True, "replicas": 2}}})
    assert any("minReplicas >= 2" in p for p in found) and any("cluster of 3" in p for p in found)


def test_a_secret_key_not_templated_is_caught():
    objects = docs("dev")
    container = next(d for d in objects if d["kind"] == "Deployment")["spec"]["template"]["spec"]["containers"][0]
    container["env"].append({"name": "X", "valueFrom": {"secretKeyRef": {"name": "other", "key": "x"}}})
    assert any("Secret other/x" in p for p in secrets.reference_problems(objects, secrets.templates()))
    assert secrets.template_problems([{"metadata": {"name": "s"}, "stringData": {"k": "real-value"}}]) == ["Secret s: k holds a value, not a <placeholder>"]


def test_a_chart_policy_left_on_is_caught():
    values = {"postgresql": {"networkPolicy": {"enabled": False}}, "mongodb": {"networkPolicy": {"enabled": False}}, "redis": {}}
    assert network.chart_policy_problems(values) == [
        "k8s/helm/postgresql.yaml: primary.networkPolicy.enabled is not false (the chart's own policy would admit everyone)",
        "k8s/helm/redis.yaml: networkPolicy.enabled is not false (the chart's own policy would admit everyone)",
    ]


def test_store_pods_cut_off_from_each_other_are_caught():
    objects = docs()
    redis = policy(objects, "redis")
    redis["spec"]["ingress"] = [r for r in redis["spec"]["ingress"] if all(network.selected_name(p.get("podSelector", {})) != "redis" for p in r["from"])]
    assert network.policy_problems(objects) == ["redis: its pods are not admitted to each other on port(s) 6379, 26379"]
