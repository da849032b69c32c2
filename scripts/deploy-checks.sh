#!/usr/bin/env bash
# The static checks of the deployment files (deploy-checks/check.py): Dockerfile, compose,
# Kong, monitoring, Kubernetes. Installs what they need when missing — promtool (Debian
# package `prometheus`), kubectl must already be there — and keeps their Python packages in a
# virtualenv outside the source tree, rebuilt when deploy-checks/requirements.txt changes.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$NIS_ROOT"

if ! command -v promtool >/dev/null || ! command -v prometheus >/dev/null; then
  apt_install prometheus
fi
command -v kubectl >/dev/null || die "kubectl is needed to render the kustomize overlays"

venv=${NIS_DEPLOY_CHECKS_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/nis/deploy-checks-venv}
stamp=$(sha256sum deploy-checks/requirements.txt | cut -c1-16)
if [[ ! -f $venv/.nis-ready-$stamp ]]; then
  log "creating $venv for deploy-checks"
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  python3 -m venv "$venv" || { apt_install python3-venv; python3 -m venv "$venv"; }
  "$venv/bin/pip" install -q -r deploy-checks/requirements.txt
  touch "$venv/.nis-ready-$stamp"
fi
log "deploy-checks/check.py"
"$venv/bin/python" deploy-checks/check.py
