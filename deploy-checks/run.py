#!/usr/bin/env python3
"""The cross-file checks of the deployment files (nischeck/), one line each, then a summary.

    python3 deploy-checks/run.py        (from anywhere; scripts/deploy-checks.sh runs it)

Exits 1 when a check failed. The vendors' own checkers run before it in
scripts/deploy-checks.sh; README.md lists what each part covers.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from nischeck import cache, compose, gateway, installer, keys, metrics, nats, network, parity, scaling, scrape, secrets, traces  # noqa: E402
from nischeck.repo import OVERLAYS  # noqa: E402
from nischeck.report import Report  # noqa: E402


def main() -> int:
    report = Report()
    checks = [
        ("compose <-> Dockerfile, repository files, Alloy", compose.check_compose),
        ("Kong routes <-> routes.txt, key-auth everywhere", gateway.check_kong),
        ("kong/render-config.sh", keys.check_render_config),
        ("scripts/gen-kong-key.sh", keys.check_gen_key),
        ("alert rules <-> exported metric families", metrics.check_alerts),
        ("dashboards <-> exported metric families, datasources", metrics.check_dashboards),
        ("k8s/helm values <-> install.sh releases, pinned versions", installer.check_helm_values),
        ("NATS: one exact release in compose, Helm and the local tests; prod syncs before acking", nats.check_nats),
        ("Kubernetes scrape jobs <-> compose's, promtool", scrape.check_scrape_jobs),
    ]
    for overlay in OVERLAYS:
        checks += [
            (f"k8s {overlay}: Ingress paths <-> routes.txt, plugins, consumer", lambda o=overlay: gateway.check_ingress(o)),
            (f"k8s {overlay}: the same as compose", lambda o=overlay: parity.check_parity(o)),
            (f"k8s {overlay}: traces to the same Tempo as compose", lambda o=overlay: traces.check_traces(o)),
            (f"k8s {overlay}: NetworkPolicies <-> pods", lambda o=overlay: network.check_network(o)),
            (f"k8s {overlay}: replicas", lambda o=overlay: scaling.check_scaling(o)),
            (f"k8s {overlay}: Redis failover and cache fences", lambda o=overlay: cache.check_redis(o)),
            (f"k8s {overlay}: secret references", lambda o=overlay: secrets.check_secrets(o)),
            (f"k8s {overlay}: install.sh twice, and --dry-run (stub kubectl/helm)", lambda o=overlay: installer.check_install(o)),
        ]
    for name, check in checks:
        report.run(name, check)
    print(report.summary())
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
