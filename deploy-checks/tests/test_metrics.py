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
