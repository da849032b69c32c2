"""The gateway checks accept the repository's Kong config and catch each kind of mistake."""

import copy

from nischeck import gateway, repo

OTEL = {"traces_endpoint": "http://tempo:4318/v1/traces", "propagation": {"extract": ["w3c"], "inject": ["w3c"], "default_format": "w3c"}}
API = [repo.Route("GET", "/api/students/{id}", "students"), repo.Route("GET", "/api/courses", "courses")]
KONG = {
    "services": [
        {"name": "students", "url": "http://students:8020", "routes": [{"name": "s", "paths": ["~/api/students/[^/]+$"]}]},
        {"name": "courses", "url": "http://courses:8010", "routes": [{"name": "c", "paths": ["~/api/courses$"]}]},
    ],
    "plugins": [
        {"name": "key-auth", "config": {"key_names": ["apikey", "x-api-key"], "key_in_query": False}},
        {"name": "rate-limiting"},
        {"name": "prometheus", "config": {"status_code_metrics": True, "latency_metrics": True}},
        {"name": "correlation-id", "config": {"header_name": "X-Request-Id"}},
        {"name": "opentelemetry", "config": OTEL},
    ],
    "consumers": [{"username": "nis", "keyauth_credentials": [{"key": "${KONG_API_KEY}"}]}],
}


def test_a_sound_config_passes():
    assert gateway.route_problems(gateway.kong_routes(KONG), API) == []
    assert gateway.kong_plugin_problems(KONG) == []


def test_a_route_to_the_wrong_service_or_port_is_caught():
    config = copy.deepcopy(KONG)
    config["services"][0]["url"] = "http://students:9999"
    found = gateway.route_problems(gateway.kong_routes(config), API)
    assert any("sends it to ?students:9999" in p for p in found)


def test_an_unrouted_api_route_and_an_exposed_probe_are_caught():
    config = copy.deepcopy(KONG)
    config["services"][1]["routes"][0]["paths"] = ["/"]
    found = gateway.route_problems(gateway.kong_routes(config), API)
    assert any("exposes /metrics" in p for p in found)
    config["services"][1]["routes"] = []
    found = gateway.route_problems(gateway.kong_routes(config), API)
    assert any("GET /api/courses: no gateway route" in p for p in found)


def test_a_prefix_that_also_matches_a_lookalike_is_caught():
    config = copy.deepcopy(KONG)
    config["services"][1]["routes"][0]["paths"] = ["/api/courses"]
    assert any("also matches /api/coursesx" in p for p in gateway.route_problems(gateway.kong_routes(config), API))


def test_key_auth_gaps_are_caught():
    config = copy.deepcopy(KONG)
    config["plugins"][0]["config"]["key_in_query"] = True
    assert any("key_in_query" in p for p in gateway.kong_plugin_problems(config))
    config["plugins"] = config["plugins"][1:]
    found = gateway.kong_plugin_problems(config)
    assert "route s: not behind key-auth" in found and "global plugin key-auth is missing" in found


def test_plugin_settings_other_files_rely_on_are_checked():
    config = copy.deepcopy(KONG)
    config["plugins"][2]["config"]["latency_metrics"] = False
    config["plugins"][3]["config"]["header_name"] = "x-correlation-id"
    assert gateway.kong_plugin_problems(config) == [
        "kong.yml: prometheus latency_metrics is not true (the Kong dashboard's families would be missing)",
        "kong.yml: correlation-id does not set x-request-id (the header the services log)",
    ]


def test_a_tracing_plugin_that_breaks_the_trace_is_caught():
    config = copy.deepcopy(KONG)
    config["plugins"][4]["config"] = {"traces_endpoint": "http://tempo:4317", "propagation": {"extract": ["w3c", "b3"], "inject": ["b3"]}}
    assert gateway.kong_plugin_problems(config) == [
        "kong.yml: opentelemetry traces_endpoint is not an OTLP/HTTP traces URL (.../v1/traces)",
        "kong.yml: opentelemetry propagation.inject lacks w3c (the services read only traceparent)",
    ]
    config["plugins"].pop(4)
    assert gateway.kong_plugin_problems(config) == ["global plugin opentelemetry is missing"]


def test_a_literal_key_in_git_is_caught():
    config = copy.deepcopy(KONG)
    config["consumers"][0]["keyauth_credentials"][0]["key"] = "hunter2hunter2hunter2"
    assert any("literal key" in p for p in gateway.kong_plugin_problems(config))


BACKEND = {"service": {"name": "students", "port": {"name": "http"}}}


def ingress_docs(plugins="auth,limit,metrics,ids,traces"):
    docs = [
        {"kind": "Service", "metadata": {"name": "students"}, "spec": {"ports": [{"name": "http", "port": 8020}]}},
        {
            "kind": "Ingress",
            "metadata": {"name": "students", "annotations": {"konghq.com/plugins": plugins}},
            "spec": {
                "ingressClassName": "kong",
                "rules": [{"http": {"paths": [{"path": "/api/students", "pathType": "Prefix", "backend": BACKEND}]}}],
            },
        },
        {"kind": "KongConsumer", "metadata": {"name": "nis"}, "username": "nis", "credentials": ["nis-client-key"]},
    ]
    kinds = (("auth", "key-auth"), ("limit", "rate-limiting"), ("metrics", "prometheus"), ("ids", "correlation-id"), ("traces", "opentelemetry"))
    for name, kind in kinds:
        config = {
            "key-auth": {"key_names": ["apikey", "x-api-key"], "key_in_query": False},
            "prometheus": {"status_code_metrics": True, "latency_metrics": True},
            "correlation-id": {"header_name": "x-request-id"},
            "opentelemetry": OTEL,
        }.get(kind, {})
        docs.append({"kind": "KongPlugin", "metadata": {"name": name}, "plugin": kind, "config": config})
    return docs


SECRET = {"metadata": {"name": "nis-client-key", "labels": {"konghq.com/credential": "key-auth"}}, "stringData": {"key": "<k>"}}


def test_ingress_paths_follow_kubernetes_prefix_rules():
    routes = gateway.ingress_routes(ingress_docs())
    assert routes[0].service == "students"
    assert routes[0].matches("GET", "/api/students/x") and not routes[0].matches("GET", "/api/studentsx")


def test_an_ingress_without_key_auth_or_an_unlabelled_credential_is_caught():
    assert gateway.ingress_plugin_problems(ingress_docs(), [SECRET]) == []
    found = gateway.ingress_plugin_problems(ingress_docs("limit,metrics,ids,traces"), [SECRET])
    assert found == ["Ingress/students: no key-auth plugin"]
    unlabelled = {"metadata": {"name": "nis-client-key"}, "stringData": {"key": "<k>"}}
    assert any("konghq.com/credential=key-auth" in p for p in gateway.ingress_plugin_problems(ingress_docs(), [unlabelled]))


def test_the_repository_passes():
    gateway.check_kong()
