"""Metric names come from Prometheus' grammar, not from text matching."""

import pytest

from nischeck import metrics

FAMILIES = {"nis_requests_total": "counter", "nis_request_duration_seconds": "histogram"}


def test_names_are_the_selected_series_only():
    expr = 'sum by (service) (rate(nis_requests_total{outcome="error", job=~"nis_.*"}[$__rate_interval])) / ignoring(x) up'
    assert metrics.metric_names(expr) == {"nis_requests_total", "up"}


def test_histogram_series_of_a_listed_family_are_known():
    expr = "histogram_quantile(0.99, sum by (le) (rate(nis_request_duration_seconds_bucket[5m])))"
    assert metrics.unknown_families(expr, FAMILIES) == []


def test_an_unexported_family_is_named():
    assert metrics.unknown_families("rate(nis_request_total[5m])", FAMILIES) == ["nis_request_total"]
    assert metrics.unknown_families("nis_requests_total_bucket", FAMILIES) == ["nis_requests_total_bucket"]


def test_a_query_that_does_not_parse_is_reported():
    found = metrics.query_problems([("panel x", "sum(rate(nis_requests_total[5m])")], FAMILIES)
    assert len(found) == 1 and found[0].startswith("panel x: does not parse")
    with pytest.raises(ValueError):
        metrics.metric_names("rate(")


def test_missing_views_are_named():
    found = metrics.missing({"errors": lambda e: "outcome" in e}, ["sum(up)"], "alert")
    assert found == ["no alert on errors"]


def test_the_repository_passes():
    metrics.check_alerts()
    metrics.check_dashboards()


def alert_expressions():
    return {r["alert"]: r["expr"] for r in metrics.alert_rules()}


def test_the_reconciliation_alerts_are_required():
    rules = alert_expressions()
    without = [e for name, e in rules.items() if name not in {"NisRelationRepaired", "NisReconcileNotRunning"}]
    assert metrics.missing(metrics.REQUIRED_ALERTS, without, "alert") == ["no alert on reconciliation repairs", "no alert on reconciliation not running"]


def test_a_not_running_alert_that_ignores_interval_0_is_caught():
    # Without `and ... interval > 0`, a service whose periodic runs are off would alert forever.
    unguarded = "time() - max by (service) (nis_reconcile_last_success_timestamp_seconds) > 3 * max by (service) (nis_reconcile_interval_seconds)"
    others = [e for name, e in alert_expressions().items() if name != "NisReconcileNotRunning"]
    assert metrics.missing(metrics.REQUIRED_ALERTS, [*others, unguarded], "alert") == ["no alert on reconciliation not running"]
    assert metrics.missing(metrics.REQUIRED_ALERTS, [*others, alert_expressions()["NisReconcileNotRunning"]], "alert") == []


def test_the_reconciliation_panels_are_required():
    board = metrics.dashboards()[metrics.DASHBOARDS / "nis-events.json"]
    row = next(p for p in board["panels"] if p["type"] == "row" and p["title"] == "Reconciliation")
    board["panels"] = [p for p in board["panels"] if p["gridPos"]["y"] < row["gridPos"]["y"]]
    expressions = [expr for _, expr in metrics.prometheus_queries(board)]
    found = metrics.missing(metrics.REQUIRED_VIEWS, expressions, "panel")
    assert [f for f in found if "reconciliation" in f or "dead letters per service" in f] == [
        "no panel on reconciliation: pairs repaired by direction",
        "no panel on reconciliation: runs by outcome",
        "no panel on reconciliation: time since the last success",
        "no panel on reconciliation: interval (the alert's threshold)",
        "no panel on dead letters per service",
    ]


def test_the_cache_alerts_and_panel_are_required():
    rules = alert_expressions()
    without = [e for name, e in rules.items() if name not in {"NisCacheFenceRefusals", "NisCacheSettleFailures"}]
    assert metrics.missing(metrics.REQUIRED_ALERTS, without, "alert") == ["no alert on cache fence refusals", "no alert on cache settle failures"]
    board = metrics.dashboards()[metrics.DASHBOARDS / "nis-services.json"]
    expressions = [expr for _, expr in metrics.prometheus_queries(board) if "nis_cache_fence" not in expr and "nis_cache_settle" not in expr]
    found = [f for f in metrics.missing(metrics.REQUIRED_VIEWS, expressions, "panel") if "cache:" in f]
    assert found == ["no panel on cache: writes refused for want of a fence", "no panel on cache: settles failed after a commit"]
