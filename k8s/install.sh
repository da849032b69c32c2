#!/usr/bin/env bash
# Installs nis and everything it needs on the cluster of the current kubectl
# context, in order, and waits for each step. Safe to run again: Helm
# releases are upgraded, existing Secrets are kept, the Jobs run again.
#
#   k8s/install.sh [dev|prod]            (default: dev)
#
# Steps:
#   1. preflight (kubectl, helm, the context)     6. Prometheus, Loki, Alloy, Grafana
#   2. Helm repositories                          7. the nis Jobs: initializer, migrations
#   3. namespaces nis, kong, monitoring           8. the nis services, Ingresses, policies
#   4. Secrets (random values unless present)     9. how to call the API
#   5. PostgreSQL, MongoDB, Redis, NATS, Kong
#
# Environment:
#   NIS_IMAGE_REGISTRY  where the nis images are, e.g. ghcr.io/acme (the
#                       images are then <registry>/nis-courses, ...). Unset:
#                       the bare names, e.g. loaded into kind with
#                       `kind load docker-image nis-courses:dev`.
#   NIS_IMAGE_TAG       image tag (default: the overlay's: dev / 0.1.0)
#   NIS_HELM_TIMEOUT    per-release wait (default 10m)
#
# Build the images first (docs/deploy.md):
#   docker build --target courses-distroless  -t nis-courses:dev .
#   docker build --target students-distroless -t nis-students:dev .
#   docker build --target initializer         -t nis-initializer:dev .
set -euo pipefail

env_name=${1:-dev}
case $env_name in
  dev | prod) ;;
  -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
  *) echo "usage: $0 [dev|prod]" >&2; exit 2 ;;
esac

k8s_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_dir=$(cd "$k8s_dir/.." && pwd)
helm_dir=$k8s_dir/helm
timeout=${NIS_HELM_TIMEOUT:-10m}
# shellcheck source=k8s/helm/versions.env
. "$helm_dir/versions.env"

step=0
step() { step=$((step + 1)); printf '\n==> %d. %s\n' "$step" "$*"; }
log() { printf '    %s\n' "$*"; }
die() { printf 'install: %s\n' "$*" >&2; exit 1; }

# helm upgrade --install with the base values file, plus helm/prod/<name>.yaml
# in prod when it exists. Usage: release NAME NAMESPACE CHART VERSION [ARGS...]
release() {
  local name=$1 namespace=$2 chart=$3 version=$4
  shift 4
  local values=(-f "$helm_dir/$name.yaml")
  if [[ $env_name == prod && -f $helm_dir/prod/$name.yaml ]]; then
    values+=(-f "$helm_dir/prod/$name.yaml")
  fi
  log "helm: $name ($chart $version) in namespace $namespace"
  helm upgrade --install "$name" "$chart" --version "$version" \
    --namespace "$namespace" "${values[@]}" "$@" \
    --wait --timeout "$timeout"
}

# A random secret: 32 bytes as hex (URL-safe, so it can go into URLs as is).
random_hex() { od -An -N32 -tx1 /dev/urandom | tr -d ' \n'; }

secret_exists() { kubectl -n "$1" get secret "$2" >/dev/null 2>&1; }

# The value of KEY in Secret NAME (namespace NS), decoded.
secret_value() {
  kubectl -n "$1" get secret "$2" -o "jsonpath={.data.$3}" | base64 -d
}

# Creates Secret NAME in NS from KEY=VALUE pairs unless it exists.
ensure_secret() {
  local ns=$1 name=$2
  shift 2
  if secret_exists "$ns" "$name"; then
    log "secret $ns/$name exists: kept"
    return
  fi
  local args=()
  for pair in "$@"; do args+=(--from-literal="$pair"); done
  kubectl -n "$ns" create secret generic "$name" "${args[@]}" >/dev/null
  log "secret $ns/$name created"
}

# ---------------------------------------------------------------------------
step "Preflight"
command -v kubectl >/dev/null || die "kubectl is not installed"
command -v helm >/dev/null || die "helm (3.8 or newer, for OCI charts) is not installed"
context=$(kubectl config current-context 2>/dev/null) || die "no current kubectl context"
kubectl version >/dev/null 2>&1 || die "cannot reach the cluster of context '$context'"
log "context: $context"
log "environment: $env_name"

# ---------------------------------------------------------------------------
step "Helm repositories"
helm repo add kong "$KONG_REPO" --force-update >/dev/null
helm repo add prometheus-community "$PROMETHEUS_REPO" --force-update >/dev/null
helm repo add grafana "$GRAFANA_REPO" --force-update >/dev/null
helm repo add nats "$NATS_REPO" --force-update >/dev/null
helm repo update >/dev/null
log "kong, prometheus-community, grafana, nats (+ Bitnami OCI: $BITNAMI_OCI)"

# ---------------------------------------------------------------------------
step "Namespaces"
# nis comes from the kustomize base (with its Pod Security labels); it is
# needed now because the data stores go into it.
kubectl apply -f "$k8s_dir/base/namespace.yaml" >/dev/null
for ns in kong monitoring; do
  kubectl create namespace "$ns" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
done
log "nis, kong, monitoring"

# ---------------------------------------------------------------------------
step "Secrets (k8s/secrets.example.yaml lists them)"
ensure_secret nis postgresql-auth \
  "postgres-password=$(random_hex)" "password=$(random_hex)"
ensure_secret nis mongodb-auth \
  "mongodb-root-password=$(random_hex)" "mongodb-passwords=$(random_hex)" \
  "mongodb-replica-set-key=$(random_hex)"
ensure_secret nis redis-auth "redis-password=$(random_hex)"

# The programs' connection URLs, built from the passwords above (whether
# just generated or already there).
pg_password=$(secret_value nis postgresql-auth password)
mongo_password=$(secret_value nis mongodb-auth mongodb-passwords)
redis_password=$(secret_value nis redis-auth redis-password)
mongo_members=1
[[ $env_name == prod ]] && mongo_members=3
mongo_hosts=""
for ((i = 0; i < mongo_members; i++)); do
  mongo_hosts+="${mongo_hosts:+,}mongodb-$i.mongodb-headless:27017"
done
pg_host=postgresql:5432
ensure_secret nis students-db \
  "DATABASE_URL=postgres://nis:${pg_password}@${pg_host}/nis_students"
# (It lists the replica set members: after switching dev <-> prod, delete
# the Secret courses-db so that it is made again with the right members.)
ensure_secret nis courses-db \
  "MONGODB_URI=mongodb://nis:$mongo_password@$mongo_hosts/nis_courses?replicaSet=rs0&authSource=nis_courses"
ensure_secret nis nis-redis "REDIS_URL=redis://:$redis_password@redis-master:6379"

# The API key of the Kong consumer; KIC finds it by this label.
if ! secret_exists nis nis-client-key; then
  ensure_secret nis nis-client-key "key=$(random_hex)"
  kubectl -n nis label secret nis-client-key konghq.com/credential=key-auth >/dev/null
fi
ensure_secret monitoring grafana-admin "admin-user=admin" "admin-password=$(random_hex)"

# ---------------------------------------------------------------------------
step "Data stores and the gateway"
release postgresql nis "$BITNAMI_OCI/postgresql" "$POSTGRESQL_CHART_VERSION"
release mongodb nis "$BITNAMI_OCI/mongodb" "$MONGODB_CHART_VERSION"
release redis nis "$BITNAMI_OCI/redis" "$REDIS_CHART_VERSION"
release nats nis nats/nats "$NATS_CHART_VERSION"
# Also installs the Kong CRDs that k8s/base/kong/ needs.
release kong kong kong/kong "$KONG_CHART_VERSION"

# ---------------------------------------------------------------------------
step "Monitoring (files from monitoring/, shared with docker compose)"
# Scratch space inside k8s/, so the overlay below can name its base by a
# relative path (kustomize refuses absolute ones); removed on exit.
tmp=$(mktemp -d "$k8s_dir/.install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# Alert rules and scrape jobs as Helm values, without yq: indent the files
# under their keys (both are plain YAML documents).
{
  echo "serverFiles:"
  echo "  alerting_rules.yml:"
  sed 's/^/    /' "$repo_dir/monitoring/prometheus/rules/nis-alerts.yml"
  echo "extraScrapeConfigs: |"
  sed 's/^/  /' "$repo_dir/monitoring/prometheus/scrape-k8s.yml"
} >"$tmp/prometheus-monitoring.yaml"
release prometheus monitoring prometheus-community/prometheus "$PROMETHEUS_CHART_VERSION" \
  -f "$tmp/prometheus-monitoring.yaml"
release loki monitoring grafana/loki "$LOKI_CHART_VERSION"
release alloy monitoring grafana/alloy "$ALLOY_CHART_VERSION" \
  --set-file "alloy.configMap.content=$repo_dir/monitoring/alloy/k8s.alloy"

# The dashboards, for Grafana's sidecar (label grafana_dashboard=1).
kubectl -n monitoring create configmap nis-dashboards \
  --from-file="$repo_dir/monitoring/grafana/dashboards" --dry-run=client -o yaml \
  | kubectl label --local -f - grafana_dashboard=1 -o yaml \
  | kubectl annotate --local -f - grafana_folder=nis -o yaml \
  | kubectl apply -f - >/dev/null
log "configmap monitoring/nis-dashboards"
release grafana monitoring grafana/grafana "$GRAFANA_CHART_VERSION"

# ---------------------------------------------------------------------------
step "nis: Jobs (streams, migrations)"
# The overlay, with the image registry/tag of this install.
mkdir -p "$tmp/overlay"
{
  echo "apiVersion: kustomize.config.k8s.io/v1beta1"
  echo "kind: Kustomization"
  echo "resources:"
  echo "  - ../../overlays/$env_name"
  if [[ -n ${NIS_IMAGE_REGISTRY:-} || -n ${NIS_IMAGE_TAG:-} ]]; then
    echo "images:"
    for image in nis-courses nis-students nis-initializer; do
      echo "  - name: $image"
      [[ -n ${NIS_IMAGE_REGISTRY:-} ]] && echo "    newName: ${NIS_IMAGE_REGISTRY%/}/$image"
      [[ -n ${NIS_IMAGE_TAG:-} ]] && echo "    newTag: \"$NIS_IMAGE_TAG\""
    done
  fi
} >"$tmp/overlay/kustomization.yaml"
kubectl kustomize "$tmp/overlay" >"$tmp/nis.yaml"

# Jobs are immutable: remove the previous run's so they run again.
kubectl -n nis delete job nis-initializer students-migrate courses-migrate \
  --ignore-not-found >/dev/null
# Everything but the long-running servers (their Deployments, autoscalers
# and disruption budgets carry app.kubernetes.io/component=server), so the
# servers start only once the streams and schemas exist.
kubectl apply -f "$tmp/nis.yaml" -l 'app.kubernetes.io/component!=server' >/dev/null
for job in nis-initializer students-migrate courses-migrate; do
  log "waiting for job/$job"
  kubectl -n nis wait --for=condition=complete "job/$job" --timeout=10m >/dev/null \
    || die "job/$job did not complete: kubectl -n nis logs job/$job"
done

# ---------------------------------------------------------------------------
step "nis: services"
kubectl apply -f "$tmp/nis.yaml" >/dev/null
for deployment in students courses; do
  log "waiting for deployment/$deployment"
  kubectl -n nis rollout status "deployment/$deployment" --timeout=10m >/dev/null
done

# ---------------------------------------------------------------------------
step "Done"
proxy=$(kubectl -n kong get svc kong-kong-proxy \
  -o jsonpath='{.status.loadBalancer.ingress[0].ip}{.status.loadBalancer.ingress[0].hostname}' \
  2>/dev/null || true)
cat <<EOF
    API key:    kubectl -n nis get secret nis-client-key -o jsonpath='{.data.key}' | base64 -d
    Proxy:      ${proxy:-"(no load balancer address yet) kubectl -n kong port-forward svc/kong-kong-proxy 8000:80"}
    Try:        curl -H "apikey: \$KEY" http://${proxy:-localhost:8000}/api/students
    Grafana:    kubectl -n monitoring port-forward svc/grafana 3000:80
                (user admin, password: kubectl -n monitoring get secret grafana-admin -o jsonpath='{.data.admin-password}' | base64 -d)
    Prometheus: kubectl -n monitoring port-forward svc/prometheus-server 9090:80
EOF
