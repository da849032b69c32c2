"""The Kubernetes scrape jobs (monitoring/prometheus/scrape-k8s.yml, handed to the chart as
`extraScrapeConfigs`): the same job names as compose's prometheus.yml (the alert rules and
dashboards select by job), and each job valid for promtool. Debian's promtool is built without
Kubernetes service discovery and rejects `kubernetes_sd_configs` itself, so promtool checks
each job with its discovery swapped for a static target; the discovery blocks are left to the
chart's Prometheus at install time."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import yaml

from . import repo
from .report import CheckFailed, problems


def job_problems(compose_config: dict, jobs: list[dict]) -> list[str]:
    if not isinstance(jobs, list):
        return ["scrape-k8s.yml must be a list of scrape configs (the chart's extraScrapeConfigs)"]
    compose_jobs = {j["job_name"] for j in compose_config.get("scrape_configs", [])}
    k8s_jobs = {j.get("job_name") for j in jobs}
    return [f"job {j} of prometheus.yml has no Kubernetes counterpart" for j in sorted(compose_jobs - k8s_jobs - {"prometheus"})]


def with_static_targets(jobs: list[dict]) -> dict:
    return {
        "scrape_configs": [
            {**{k: v for k, v in job.items() if k != "kubernetes_sd_configs"}, "static_configs": [{"targets": ["placeholder:80"]}]} for job in jobs
        ]
    }


def check_scrape_jobs() -> str:
    prom = repo.ROOT / "monitoring" / "prometheus"
    jobs = repo.load_yaml(prom / "scrape-k8s.yml")
    problems(job_problems(repo.load_yaml(prom / "prometheus.yml"), jobs))
    promtool = shutil.which("promtool")
    if not promtool:
        raise CheckFailed("promtool is not installed (Debian: apt-get install -y prometheus)")
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "prometheus.yml"
        config.write_text(yaml.safe_dump(with_static_targets(jobs)))
        result = repo.run([promtool, "check", "config", str(config)])
        if result.returncode != 0:
            raise CheckFailed((result.stdout + result.stderr).strip())
    return f"{len(jobs)} jobs, the same as compose's; promtool accepts them (discovery aside)"
