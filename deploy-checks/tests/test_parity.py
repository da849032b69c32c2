"""Compose and Kubernetes drift apart in ways these checks see."""

import copy

from nischeck import parity, repo


def sample():
    compose = repo.compose()
    docs = [copy.deepcopy(d) for d in repo.rendered("dev")]
    return compose, docs


def deployment(docs, name):
    return next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == name)


def test_the_repository_agrees():
    compose, docs = sample()
    assert parity.service_problems("students", compose, docs) == []


def test_a_port_changed_on_one_side_is_caught():
    compose, docs = sample()
    compose["services"]["students"]["environment"]["HTTP_ADDR"] = "0.0.0.0:9000"
    assert any("http port" in p for p in parity.service_problems("students", compose, docs))


def test_a_setting_on_one_side_only_is_caught():
    compose, docs = sample()
    compose["services"]["courses"]["environment"]["NEW_SETTING"] = "1"
    assert "courses: NEW_SETTING is set in compose only" in parity.service_problems("courses", compose, docs)


def test_a_curl_healthcheck_or_another_probe_path_is_caught():
    compose, docs = sample()
    compose["services"]["students"]["healthcheck"]["test"] = ["CMD", "curl", "-f", "http://127.0.0.1:8020/healthz"]
    deployment(docs, "students")["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["path"] = "/healthz"
    found = parity.service_problems("students", compose, docs)
    assert any("healthcheck is" in p for p in found) and any("readinessProbe" in p for p in found)


def test_another_image_is_caught():
    compose, docs = sample()
    deployment(docs, "courses")["spec"]["template"]["spec"]["containers"][0]["image"] = "nis-courses-distroless:1"
    assert any("image nis-courses-distroless:1" in p for p in parity.service_problems("courses", compose, docs))


def test_gateway_timeouts_that_differ_are_caught():
    _, docs = sample()
    kong = {"services": [{"name": "students", "connect_timeout": 2000, "read_timeout": 10000, "write_timeout": 10000, "retries": 5}]}
    assert parity.gateway_timeout_problems(kong, docs) == ["students: Kong retries is 5 in kong.yml, konghq.com/retries is 2 on Service/students"]
