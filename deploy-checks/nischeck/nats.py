"""One NATS server release everywhere, and production syncing before it acknowledges: compose's
image, the chart's image tag (k8s/helm/nats.yaml) and the server of the local tests
(scripts/lib.sh NIS_NATS_VERSION) are the same exact release, which versions.env names beside
the chart; prod's JetStream block has `sync_interval: always`; and since nats-server cannot
reload that setting, a config change rolls the servers (the chart's config checksum)."""

from __future__ import annotations

import re

from . import repo
from .report import problems

# An exact release, optionally with an image variant: 2.12.8, 2.12.8-alpine. Not 2.12, latest.
EXACT = re.compile(r"^(\d+\.\d+\.\d+)(-[a-z0-9.]+)?$")
HELM = repo.ROOT / "k8s" / "helm"


def compose_tag(compose: dict) -> str:
    image = str((compose.get("services", {}).get("nats") or {}).get("image", ""))
    return image.rpartition(":")[2] if ":" in image else ""


def helm_tag(values: dict) -> str:
    return str(((values.get("container") or {}).get("image") or {}).get("tag") or "")


def local_version(lib_sh: str) -> str:
    match = re.search(r"^NIS_NATS_VERSION=(\S+)", lib_sh, re.M)
    return match.group(1) if match else ""


def version_problems(tags: dict[str, str], versions_env: str) -> list[str]:
    """`tags`: where -> image tag or version. Each must be exact, and all the same release."""
    found, releases = [], {}
    for where, tag in tags.items():
        match = EXACT.match(tag)
        if match:
            releases[where] = match.group(1)
        else:
            found.append(f"{where}: {tag or 'nothing'!r} is not an exact NATS release (X.Y.Z)")
    if len(set(releases.values())) > 1:
        found.append("NATS releases differ: " + ", ".join(f"{where} {release}" for where, release in releases.items()))
    line = next((line for line in versions_env.splitlines() if line.startswith("NATS_CHART_VERSION=")), "")
    pinned = sorted(set(releases.values()))
    if len(pinned) == 1 and pinned[0] not in line.partition("#")[2]:
        found.append(f"k8s/helm/versions.env: the NATS_CHART_VERSION comment does not name the pinned server {pinned[0]}")
    return found


def sync_problems(base: dict, prod: dict) -> list[str]:
    """prod's effective JetStream config syncs every write; config changes restart the servers."""
    found = []
    merged: dict = {}
    for values in (base, prod):  # helm -f base -f prod: the later file wins, maps are merged
        merged.update(((values.get("config") or {}).get("jetstream") or {}).get("merge") or {})
    sync = merged.get("sync_interval", merged.get("sync"))
    if str(sync).lower() != "always":
        found.append(f"k8s/helm/prod/nats.yaml: config.jetstream.merge.sync_interval is {sync!r}, not always (acknowledged messages may not be on disk)")
    checksum = next(
        (v["podTemplate"]["configChecksumAnnotation"] for v in (prod, base) if "configChecksumAnnotation" in (v.get("podTemplate") or {})),
        None,
    )
    if checksum is not True:
        found.append("k8s/helm: podTemplate.configChecksumAnnotation is not true (nats-server cannot reload sync_interval: a change would not apply)")
    return found


def check_nats() -> str:
    base = repo.load_yaml(HELM / "nats.yaml")
    prod = repo.load_yaml(HELM / "prod" / "nats.yaml")
    tags = {
        "docker-compose.yml nats image": compose_tag(repo.compose()),
        "k8s/helm/nats.yaml container.image.tag": helm_tag(base),
        "scripts/lib.sh NIS_NATS_VERSION": local_version((repo.ROOT / "scripts" / "lib.sh").read_text()),
    }
    if helm_tag(prod):
        tags["k8s/helm/prod/nats.yaml container.image.tag"] = helm_tag(prod)
    found = version_problems(tags, (HELM / "versions.env").read_text())
    found += sync_problems(base, prod)
    problems(found)
    return f"NATS {EXACT.match(tags['scripts/lib.sh NIS_NATS_VERSION']).group(1)} in compose, Helm and the local tests; prod syncs before acknowledging"
