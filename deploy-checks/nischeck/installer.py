"""k8s/install.sh, run for real against stand-ins of kubectl and helm that keep a little
cluster state in a directory: the order of the releases, Jobs before services, the image
override, a second run that changes nothing, the key's label repaired on every run, a dry
run that changes nothing, and a failure that names its step."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from . import repo
from .report import CheckFailed, problems

RELEASES = ["postgresql", "mongodb", "redis", "nats", "kong", "prometheus", "loki", "tempo", "alloy", "grafana"]
# Calls that change a cluster; a dry run makes none, a second run only idempotent ones.
CHANGING = ("apply", "create secret", "delete", "label secret", "upgrade --install", "repo add")

# kubectl: local commands go to the real kubectl; the cluster is a directory ($STUB_STATE).
STUB_KUBECTL = r"""#!/bin/sh
echo "kubectl $*" >>"$STUB_STATE/calls"
case " $*" in
  *kustomize*|*--dry-run=client*|*--local*) exec "$REAL_KUBECTL" "$@" ;;
  " config current-context") echo stub-context ;;
  *"get secret"*jsonpath*) printf c3R1Yg== ;;
  *"get secret "*) set -- $*; [ -f "$STUB_STATE/secret-$2-$5" ] ;;
  *"create secret generic "*) set -- $*; touch "$STUB_STATE/secret-$2-$6" ;;
  *" diff -f "*) file=$(echo " $*" | sed 's/.* diff -f \([^ ]*\).*/\1/')
     grep -qx "$(sha256sum <"$file" | cut -c1-64)" "$STUB_STATE/applied" 2>/dev/null ;;
  *" apply -f "*) file=$(echo " $*" | sed 's/.* apply -f \([^ ]*\).*/\1/')
     sha256sum <"$file" | cut -c1-64 >>"$STUB_STATE/applied"
     cat "$file" >>"$STUB_STATE/manifests" ;;
esac
"""
STUB_HELM = r"""#!/bin/sh
echo "helm $*" >>"$STUB_STATE/calls"
case "$*" in *"upgrade --install $STUB_FAILING_RELEASE "*) echo "stub: $STUB_FAILING_RELEASE fails" >&2; exit 1 ;; esac
prev=""
for arg in "$@"; do
  if [ "$prev" = "-f" ] && [ ! -f "$arg" ]; then echo "helm stub: no values file $arg" >&2; exit 1; fi
  if [ "$prev" = "--set-file" ] && [ ! -f "${arg#*=}" ]; then echo "helm stub: no file ${arg#*=}" >&2; exit 1; fi
  prev=$arg
done
"""


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    calls: list[str]


class StubCluster:
    """A copy of k8s/ and monitoring/, stub kubectl/helm, and the state they keep."""

    def __init__(self) -> None:
        self._tmp = tempfile.TemporaryDirectory()
        self.dir = Path(self._tmp.name)
        for part in ("k8s", "monitoring"):
            shutil.copytree(repo.ROOT / part, self.dir / "repo" / part, ignore=shutil.ignore_patterns(".install.*"))
        (self.dir / "bin").mkdir()
        (self.dir / "state").mkdir()
        for name, text in (("kubectl", STUB_KUBECTL), ("helm", STUB_HELM)):
            (self.dir / "bin" / name).write_text(text)
            (self.dir / "bin" / name).chmod(0o755)

    def install(self, *args: str, failing_release: str = "") -> Run:
        state = self.dir / "state"
        for name in ("calls", "manifests"):
            (state / name).unlink(missing_ok=True)
        real = shutil.which("kubectl")
        if not real:
            raise CheckFailed("kubectl is not installed (needed for `kubectl kustomize`)")
        env = {
            "PATH": f"{self.dir / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "STUB_STATE": str(state),
            "STUB_FAILING_RELEASE": failing_release or "-",
            "REAL_KUBECTL": real,
            "KUBECONFIG": str(self.dir / "no-kubeconfig"),
            "NIS_IMAGE_REGISTRY": "registry.example/nis",
            "NIS_IMAGE_TAG": "9.9.9",
        }
        result = repo.run(["bash", str(self.dir / "repo" / "k8s" / "install.sh"), *args], env=env)
        calls_file = state / "calls"
        calls = calls_file.read_text().splitlines() if calls_file.exists() else []
        return Run(result.returncode, result.stdout, result.stderr, calls)

    def manifests(self) -> str:
        path = self.dir / "state" / "manifests"
        return path.read_text() if path.exists() else ""

    def leftovers(self) -> list[Path]:
        return list((self.dir / "repo" / "k8s").glob(".install.*"))

    def close(self) -> None:
        self._tmp.cleanup()


def changing(calls: list[str]) -> list[str]:
    return [c for c in calls if any(f" {word} " in f" {c} " for word in CHANGING)]


def first_run_problems(run: Run, manifests: str) -> list[str]:
    if run.returncode != 0:
        return [f"install.sh failed:\n{run.stderr.strip()[-2000:]}"]
    found = []
    installs = [c.split()[3] for c in run.calls if c.startswith("helm upgrade --install")]
    if installs != RELEASES:
        found.append(f"helm releases in order {installs}, expected {RELEASES}")
    if "image: registry.example/nis/nis-students:9.9.9" not in manifests:
        found.append("the applied manifests do not use NIS_IMAGE_REGISTRY/NIS_IMAGE_TAG")
    job_wait = next((i for i, c in enumerate(run.calls) if "wait --for=condition=complete" in c), None)
    full_apply = [i for i, c in enumerate(run.calls) if " apply -f " in c and "component!=server" not in c and c.endswith("nis.yaml")]
    if job_wait is None or not full_apply or full_apply[-1] < job_wait:
        found.append("the services are not applied after the Jobs completed")
    if not any("label secret nis-client-key konghq.com/credential=key-auth" in c for c in run.calls):
        found.append("the API key Secret is not labelled for key-auth")
    return found


def second_run_problems(second: Run) -> list[str]:
    if second.returncode != 0:
        return [f"the second run failed:\n{second.stderr.strip()[-2000:]}"]
    found = []
    found += [f"the second run changes something: {c}" for c in second.calls if "create secret" in c or "delete job" in c]
    if not any("label secret nis-client-key" in c and "--overwrite" in c for c in second.calls):
        found.append("the second run does not re-apply the key's label (an interrupted run stays broken)")
    return found


def dry_run_problems(run: Run) -> list[str]:
    if run.returncode != 0:
        return [f"--dry-run failed:\n{run.stderr.strip()[-2000:]}"]
    found = [f"--dry-run changed something: {c}" for c in changing(run.calls)]
    if "would run: helm upgrade --install postgresql" not in run.stdout:
        found.append("--dry-run does not print the plan (no `would run: helm upgrade ...` line)")
    return found


def check_install(overlay: str) -> str:
    cluster = StubCluster()
    try:
        first = cluster.install(overlay)
        found = first_run_problems(first, cluster.manifests())
        second = cluster.install(overlay)
        found += second_run_problems(second)
        found += dry_run_problems(cluster.install("--dry-run", overlay))
        if cluster.leftovers():
            found.append("install.sh left its scratch directory behind")
        problems(found)
    finally:
        cluster.close()
    return f"{len(first.calls)} calls: releases in order, Jobs before services; a second run and --dry-run change nothing"


def helm_values_problems() -> list[str]:
    """Every values file belongs to a release install.sh installs, at a pinned chart version."""
    helm = repo.ROOT / "k8s" / "helm"
    install = (repo.ROOT / "k8s" / "install.sh").read_text()
    versions = (helm / "versions.env").read_text()
    releases = set(re.findall(r"^release (\S+) ", install, re.M))
    bases = {p.stem for p in helm.glob("*.yaml")}
    found = [f"k8s/helm/{b}.yaml: install.sh installs no release {b}" for b in sorted(bases - releases)]
    found += [f"install.sh: release {r} has no k8s/helm/{r}.yaml" for r in sorted(releases - bases)]
    found += [f"k8s/helm/prod/{p.stem}.yaml: no base file" for p in (helm / "prod").glob("*.yaml") if p.stem not in bases]
    found += [
        f"versions.env: no pinned {chart}_CHART_VERSION"
        for chart in (r.upper() for r in RELEASES)
        if not re.search(rf"^{chart}_CHART_VERSION=\d+\.\d+\.\d+", versions, re.M)
    ]
    return found


def check_helm_values() -> str:
    problems(helm_values_problems())
    return f"{len(RELEASES)} releases, each with its values file and a pinned chart version"
