"""One NATS release in compose, Helm and the local tests; prod syncs before acknowledging."""

from nischeck import nats, repo

VERSIONS_ENV = "NATS_CHART_VERSION=2.12.6              # NATS 2.12.6; image pinned to 2.12.8 in nats.yaml\n"
SAME = {"compose": "2.12.8-alpine", "helm": "2.12.8-alpine", "local": "2.12.8"}


def test_the_repository_passes():
    nats.check_nats()


def test_the_pins_are_read_where_they_are():
    assert nats.compose_tag({"services": {"nats": {"image": "nats:2.12.8-alpine"}}}) == "2.12.8-alpine"
    assert nats.compose_tag({"services": {"nats": {"image": "nats"}}}) == ""
    assert nats.helm_tag({"container": {"image": {"tag": "2.12.8-alpine"}}}) == "2.12.8-alpine"
    assert nats.helm_tag({"config": {}}) == ""
    assert nats.local_version("X=1\nNIS_NATS_VERSION=2.12.8\n") == "2.12.8"


def test_the_same_exact_release_everywhere_passes():
    assert nats.version_problems(SAME, VERSIONS_ENV) == []


def test_a_floating_tag_or_no_pin_is_caught():
    found = nats.version_problems({**SAME, "compose": "2.12-alpine", "helm": ""}, VERSIONS_ENV)
    assert found == [
        "compose: '2.12-alpine' is not an exact NATS release (X.Y.Z)",
        "helm: 'nothing' is not an exact NATS release (X.Y.Z)",
    ]
    assert nats.version_problems({**SAME, "compose": "latest"}, VERSIONS_ENV) == ["compose: 'latest' is not an exact NATS release (X.Y.Z)"]


def test_releases_that_differ_are_caught():
    found = nats.version_problems({**SAME, "helm": "2.10.22-alpine"}, VERSIONS_ENV)
    assert found == ["NATS releases differ: compose 2.12.8, helm 2.10.22, local 2.12.8"]


def test_a_versions_env_comment_naming_another_server_is_caught():
    stale = "NATS_CHART_VERSION=1.2.6               # NATS 2.10.22 with JetStream\n"
    assert nats.version_problems(SAME, stale) == ["k8s/helm/versions.env: the NATS_CHART_VERSION comment does not name the pinned server 2.12.8"]


def test_prod_without_sync_always_is_caught():
    base = repo.load_yaml(nats.HELM / "nats.yaml")
    assert nats.sync_problems(base, {"config": {"cluster": {"enabled": True}}}) == [
        "k8s/helm/prod/nats.yaml: config.jetstream.merge.sync_interval is None, not always (acknowledged messages may not be on disk)"
    ]
    two_minutes = {"config": {"jetstream": {"merge": {"sync_interval": "2m"}}}}
    assert len(nats.sync_problems(base, two_minutes)) == 1
    assert nats.sync_problems(base, {"config": {"jetstream": {"merge": {"sync_interval": "always"}}}}) == []


def test_config_changes_that_would_not_restart_the_servers_are_caught():
    prod = {"config": {"jetstream": {"merge": {"sync_interval": "always"}}}}
    assert nats.sync_problems({}, prod) == [
        "k8s/helm: podTemplate.configChecksumAnnotation is not true (nats-server cannot reload sync_interval: a change would not apply)"
    ]
    assert nats.sync_problems({"podTemplate": {"configChecksumAnnotation": True}}, {**prod, "podTemplate": {"configChecksumAnnotation": False}}) != []
