#!/usr/bin/env bash
# The checks of the deployment files (deploy-checks/README.md): first each vendor's own
# checker — hadolint, yamllint, check-jsonschema (compose specification), kubernetes-validate
# --strict on every rendered overlay, checkov, promtool — then the tests of the cross-file
# checks and the cross-file checks themselves (deploy-checks/run.py). shellcheck runs in
# scripts/lint.sh. Every stage runs; the script fails at the end if any stage failed.
#
# Installs what is missing: promtool (Debian package `prometheus`), and the Python packages,
# pinned, in virtualenvs outside the source tree (rebuilt when their requirements change).
# kubectl must be there already (it renders the kustomize overlays).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$NIS_ROOT"

# The Kubernetes version the manifests are validated against: the preStop `sleep` action is
# on by default since 1.30, so 1.31 is the oldest cluster they are meant for.
KUBERNETES_VERSION=1.31.0

if ! command -v promtool >/dev/null || ! command -v prometheus >/dev/null; then
  apt_install prometheus
fi
command -v kubectl >/dev/null || die "kubectl is needed to render the kustomize overlays"

cache=${XDG_CACHE_HOME:-$HOME/.cache}/nis
# venv DIR REQUIREMENTS: a virtualenv with exactly those packages (made again when they change).
venv() {
  local dir=$1 requirements=$2 stamp
  stamp=$(sha256sum "$requirements" | cut -c1-16)
  if [[ ! -f $dir/.nis-ready-$stamp ]]; then
    log "creating $dir from $requirements"
    rm -rf "$dir"
    mkdir -p "$(dirname "$dir")"
    python3 -m venv "$dir" || { apt_install python3-venv; python3 -m venv "$dir"; }
    "$dir/bin/pip" install -q --disable-pip-version-check -r "$requirements"
    touch "$dir/.nis-ready-$stamp"
  fi
}
tools=${NIS_DEPLOY_CHECKS_VENV:-$cache/deploy-checks-venv}
checkov_env=${NIS_CHECKOV_VENV:-$cache/checkov-venv}
venv "$tools" deploy-checks/requirements.txt
venv "$checkov_env" deploy-checks/requirements-checkov.txt

rendered=$(mktemp -d)
trap 'rm -rf "$rendered"' EXIT
for overlay in dev prod; do
  kubectl kustomize "k8s/overlays/$overlay" >"$rendered/$overlay.yaml" \
    || die "kubectl kustomize k8s/overlays/$overlay failed"
done

failed=()
# stage NAME COMMAND...: runs one checker, prints its output only when it fails.
stage() {
  local name=$1 output
  shift
  if output=$("$@" 2>&1); then
    printf 'PASS  %s\n' "$name"
  else
    printf 'FAIL  %s\n%s\n' "$name" "$output" | sed '2,$s/^/        /'
    failed+=("$name")
  fi
}

stage "hadolint Dockerfile" "$tools/bin/hadolint" --config .hadolint.yaml Dockerfile
stage "yamllint (every YAML file)" "$tools/bin/yamllint" --strict -c .yamllint.yaml .
stage "check-jsonschema: docker-compose.yml against the compose specification" \
  "$tools/bin/check-jsonschema" --builtin-schema vendor.compose-spec docker-compose.yml
for overlay in dev prod; do
  # The Kong CRDs (KongPlugin, KongConsumer) have no schema here: the validator warns and
  # skips them, and deploy-checks/nischeck/gateway.py checks them instead.
  stage "kubernetes-validate --strict: $overlay overlay (Kubernetes $KUBERNETES_VERSION)" \
    "$tools/bin/kubernetes-validate" --strict --no-warn -k "$KUBERNETES_VERSION" "$rendered/$overlay.yaml"
done
stage "checkov: Kubernetes workloads (both overlays) and the Dockerfile" \
  "$checkov_env/bin/checkov" --config-file deploy-checks/checkov.yaml \
  --framework kubernetes dockerfile -f "$rendered/dev.yaml" -f "$rendered/prod.yaml" -f Dockerfile
stage "promtool check config (compose)" promtool check config monitoring/prometheus/prometheus.yml
stage "promtool check rules" promtool check rules monitoring/prometheus/rules/*.yml
stage "promtool test rules" promtool test rules monitoring/prometheus/tests/*.yml
ruff_checks() {
  "$tools/bin/ruff" check --config deploy-checks/ruff.toml deploy-checks \
    && "$tools/bin/ruff" format --check --config deploy-checks/ruff.toml deploy-checks
}
stage "ruff: deploy-checks/ lints and is formatted" ruff_checks
stage "pytest deploy-checks/tests (the cross-file checks' own tests)" \
  "$tools/bin/python" -m pytest -q -p no:cacheprovider deploy-checks/tests
stage "cross-file checks (deploy-checks/run.py)" "$tools/bin/python" deploy-checks/run.py

if ((${#failed[@]})); then
  die "${#failed[@]} deployment check(s) failed: ${failed[*]}"
fi
log "deployment checks: all passed"
