"""compose's cross-file rules on small examples."""

from nischeck import compose


def test_a_build_target_that_is_no_stage_is_caught():
    stages = compose.dockerfile_stages("FROM rust:1 AS builder\nFROM scratch AS students\n")
    assert stages == {"builder", "students"}
    assert compose.build_problems({"x": {"build": {"target": "courses"}}}, stages) == ["x: build target 'courses' is not a stage of the Dockerfile"]


def test_start_up_must_wait_on_health_or_completion():
    services = {
        "db": {"image": "db", "healthcheck": {"test": ["CMD", "true"]}},
        "job": {"image": "j", "restart": "no"},
        "app": {"image": "a", "depends_on": {"db": {"condition": "service_started"}, "job": {"condition": "service_completed_successfully"}}},
    }
    assert compose.dependency_problems(services) == [
        "app: long-running without a healthcheck",
        "app: depends on db with condition service_started",
    ]


def test_only_kong_is_published_beyond_localhost():
    services = {"kong": {"ports": ["8000:8000"]}, "grafana": {"ports": ["127.0.0.1:3000:3000"]}, "db": {"ports": ["5432:5432"]}}
    assert compose.port_problems(services) == ["db: publishes 5432:5432 beyond localhost (only Kong may)"]


def test_make_up_variables_and_a_defaulted_key_are_caught():
    text = "a: ${KONG_API_KEY:-x}\nb: ${DATABASE_URL}\nc: $$HOME\n"
    assert compose.variable_problems(text, {"DATABASE_URL"}) == [
        "${DATABASE_URL} is not a compose variable",
        "KONG_API_KEY must be required (${KONG_API_KEY:?...}), never defaulted",
        "${DATABASE_URL} is also a `make up` variable in .env.example",
    ]


def test_the_repository_passes():
    compose.check_compose()


def test_a_compose_scrape_job_missing_in_kubernetes_is_named():
    from nischeck import scrape

    compose_config = {"scrape_configs": [{"job_name": "prometheus"}, {"job_name": "kong"}, {"job_name": "nis-courses"}]}
    assert scrape.job_problems(compose_config, [{"job_name": "nis-courses"}]) == ["job kong of prometheus.yml has no Kubernetes counterpart"]
    static = scrape.with_static_targets([{"job_name": "x", "kubernetes_sd_configs": [{"role": "pod"}]}])
    assert static == {"scrape_configs": [{"job_name": "x", "static_configs": [{"targets": ["placeholder:80"]}]}]}
