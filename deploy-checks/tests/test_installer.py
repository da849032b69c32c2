"""k8s/install.sh against the stub cluster: repair, idempotence, dry run, failures named."""

import pytest

from nischeck import installer


@pytest.fixture
def cluster():
    stub = installer.StubCluster()
    yield stub
    stub.close()


def test_the_repository_passes():
    installer.check_install("dev")
    assert installer.helm_values_problems() == []


def test_a_run_interrupted_before_the_label_is_repaired(cluster):
    # The Secret exists (the interrupted run created it) but carries no label.
    (cluster.dir / "state" / "secret-nis-nis-client-key").touch()
    run = cluster.install("dev")
    assert run.returncode == 0
    assert not any("create secret generic nis-client-key" in c for c in run.calls)
    assert any("label secret nis-client-key konghq.com/credential=key-auth --overwrite" in c for c in run.calls)


def test_jobs_run_again_only_when_their_manifests_change(cluster):
    first = cluster.install("dev")
    second = cluster.install("dev")
    assert any("delete job" in c for c in first.calls)
    assert installer.second_run_problems(second) == []


def test_a_failing_stage_is_named(cluster):
    run = cluster.install("dev", failing_release="mongodb")
    assert run.returncode != 0
    assert "step 5 (Data stores and the gateway)" in run.stderr
    assert not any("upgrade --install redis" in c for c in run.calls)


def test_a_dry_run_changes_nothing_and_prints_the_plan(cluster):
    run = cluster.install("--dry-run", "prod")
    assert installer.dry_run_problems(run) == []
    assert "would run: helm upgrade --install grafana" in run.stdout


def test_an_unknown_argument_is_a_usage_error(cluster):
    run = cluster.install("staging")
    assert run.returncode == 2 and "usage:" in run.stderr
