"""The trace checks accept the repository and catch a service, Kong or Grafana pointed elsewhere."""

import copy

import pytest

from nischeck import repo, traces

VERSIONS_ENV = "TEMPO_CHART_VERSION=1.24.4             # Tempo 2.9.0\n"
LOKI = {
    "uid": "loki",
    "type": "loki",
    "jsonData": {"derivedFields": [{"name": "trace_id", "matcherRegex": '"trace_id":"([0-9a-f]{32})"', "datasourceUid": "tempo"}]},
}
TEMPO = {"uid": "tempo", "type": "tempo", "url": "http://tempo:3200", "jsonData": {"tracesToLogsV2": {"datasourceUid": "loki"}}}


@pytest.mark.parametrize("overlay", repo.OVERLAYS)
def test_the_repository_passes(overlay):
    traces.check_traces(overlay)


def test_endpoints_are_compared_by_scheme_host_port_and_path():
    assert traces.endpoint_problem("x", "http://tempo:4317", "tempo", 4317) == []
    assert traces.endpoint_problem("x", "http://tempo:4317/", "tempo", 4317) == []
    assert traces.endpoint_problem("x", "http://tempo:4318/v1/traces", "tempo", 4318, "/v1/traces") == []
    assert traces.endpoint_problem("x", "http://tempo:4318", "tempo", 4317) == ["x: http://tempo:4318, expected http://tempo:4317"]
    assert traces.endpoint_problem("x", "http://jaeger:4317", "tempo", 4317) != []
    assert traces.endpoint_problem("x", "http://tempo:4318/v1/logs", "tempo", 4318, "/v1/traces") != []
    assert traces.endpoint_problem("x", None, "tempo", 4317) == ["x: nothing, expected http://tempo:4317"]
    assert traces.endpoint_problem("x", "http://tempo:port", "tempo", 4317) != []


def test_linked_datasources_pass():
    assert traces.datasource_problems([LOKI, TEMPO], "g", "tempo", 3200) == []


def test_missing_links_and_a_regex_that_misses_the_trace_id_are_caught():
    tempo = copy.deepcopy(TEMPO)
    tempo["jsonData"] = {}
    loki = copy.deepcopy(LOKI)
    loki["jsonData"]["derivedFields"][0]["matcherRegex"] = "traceID=(\\w+)"
    assert traces.datasource_problems([loki, tempo], "g", "tempo", 3200) == [
        "g: Tempo's tracesToLogsV2 does not lead to the Loki datasource (uid loki)",
        "g: no Loki derived field to Tempo captures the trace id of a JSON log line (span.trace_id)",
    ]
    assert traces.datasource_problems([LOKI], "g", "tempo", 3200) == ["g: no Tempo datasource with uid tempo"]
    assert traces.datasource_problems([LOKI, {**TEMPO, "url": "http://tempo:3100"}], "g", "tempo", 3200) == [
        "g Tempo datasource url: http://tempo:3100, expected http://tempo:3200"
    ]


def test_one_exact_tempo_release_everywhere():
    assert traces.release_problems("2.9.0", "2.9.0", VERSIONS_ENV) == []
    assert traces.release_problems("2.9.0", "2.8.2", VERSIONS_ENV) == ["k8s/helm/tempo.yaml: tempo.tag is '2.8.2', compose runs '2.9.0'"]
    assert traces.release_problems("latest", "latest", VERSIONS_ENV) == [
        "compose: grafana/tempo:latest is not an exact release (X.Y.Z)",
        "versions.env: TEMPO_CHART_VERSION's comment does not name Tempo latest",
    ]


def test_kong_plugins_are_found_in_both_forms():
    declarative = [{"name": "opentelemetry", "config": {"traces_endpoint": "http://tempo:4318/v1/traces"}}, {"name": "key-auth"}]
    crd = [{"kind": "KongPlugin", "plugin": "opentelemetry", "config": {"traces_endpoint": "u"}}, {"kind": "KongPlugin", "plugin": "key-auth"}]
    assert traces.opentelemetry_endpoints(declarative, "kong.yml") == [("kong.yml opentelemetry traces_endpoint", "http://tempo:4318/v1/traces")]
    assert traces.opentelemetry_endpoints(crd, "KongPlugin") == [("KongPlugin opentelemetry traces_endpoint", "u")]


def test_a_service_sending_elsewhere_in_compose_is_caught(monkeypatch):
    compose = copy.deepcopy(repo.compose())
    compose["services"]["courses"]["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"] = "http://tempo:4318"
    del compose["services"]["students"]["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"]
    monkeypatch.setattr(repo, "compose", lambda: compose)
    assert traces.trace_problems("dev") == [
        "compose students OTEL_EXPORTER_OTLP_ENDPOINT: nothing, expected http://tempo:4317",
        "compose courses OTEL_EXPORTER_OTLP_ENDPOINT: http://tempo:4318, expected http://tempo:4317",
    ]
