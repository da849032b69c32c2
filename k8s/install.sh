#!/usr/bin/env bash
# Installs nis and everything it needs on the cluster of the current kubectl
# context, in order, and waits for each step (bounded; a failure names the
# step). Safe to run again, and a second run changes nothing: Helm releases
# are upgraded with the same values, existing Secrets are kept (the key's
# label is re-applied, repairing an interrupted run), the Jobs run again only
# when their manifests changed.
#
#   k8s/install.sh [--dry-run] [dev|prod]     (default: dev)
#
#   --dry-run   print the plan (releases, Secrets, manifests) and change nothing;
#               needs no cluster.
#
# Steps:
#   1. preflight (kubectl, helm, the context)     6. Prometheus, Loki, Tempo, Alloy, Grafana
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
#   NIS_WAIT_TIMEOUT    wait for each Job and Deployment (default 10m)
#
# Build the images first (docs/deploy.md):
#   docker build --target courses     -t nis-courses:dev .
#   docker build --target students    -t nis-students:dev .
#   docker build --target initializer -t nis-initializer:dev .
set -Eeuo pipefail

env_name=dev
dry_run=false
for arg in "$@"; do
  case $arg in
    dev | prod) env_name=$arg ;;
    --dry-run) dry_run=true ;;
    -h | --help) sed -n '2,/^set -Eeuo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: $0 [--dry-run] [dev|prod]" >&2; exit 2 ;;
  esac
done

k8s_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_dir=$(cd "$k8s_dir/.." && pwd)
helm_dir=$k8s_dir/helm
timeout=${NIS_HELM_TIMEOUT:-10m}
wait_timeout=${NIS_WAIT_TIMEOUT:-10m}
# shellcheck source=k8s/helm/versions.env
. "$helm_dir/versions.env"

step=0
step_name=""
step() { step=$((step + 1)); step_name=$*; printf '\n==> %d. %s\n' "$step" "$*"; }
log() { printf '    %s\n' "$*"; }
die() { printf 'install: step %d (%s): %s\n' "$step" "$step_name" "$*" >&2; exit 1; }
# Any other failing command still says where it happened.
on_error() { printf 'install: step %d (%s) failed (exit %d)\n' "$step" "$step_name" "$1" >&2; }
trap 'on_error $?' ERR

# Runs a command that changes the cluster, its output discarded (the log says what
# happens); with --dry-run, prints it instead.
change() {
  if $dry_run; then
    printf '    would run:'
    printf ' %q' "$@"
    printf '\n'
  else
    "$@" >/dev/null
  fi
}

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
  change helm upgrade --install "$name" "$chart" --version "$version" \
    --namespace "$namespace" "${values[@]}" "$@" \
    --wait --timeout "$timeout"
}

# A random secret: 32 bytes as hex (URL-safe, so it can go into URLs as is).
random_hex() { od -An -N32 -tx1 /dev/urandom | tr -d ' \n'; }

# A dry run has no cluster to ask: every Secret is taken as missing.
secret_exists() { ! $dry_run && kubectl -n "$1" get secret "$2" >/dev/null 2>&1; }

# The value of KEY in Secret NAME (namespace NS), decoded.
secret_value() {
  if $dry_run; then echo "<$2.$3>"; return; fi
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
  if $dry_run; then
    log "would create secret $ns/$name (${*%%=*}...) unless present"
    return
  fi
  kubectl -n "$ns" create secret generic "$name" "${args[@]}" >/dev/null
  log "secret $ns/$name created"
}

# Scratch space inside k8s/, so the overlay below can name its base by a
# relative path (kustomize refuses absolute ones); removed on exit.
tmp=$(mktemp -d "$k8s_dir/.install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# ---------------------------------------------------------------------------
step "Preflight"
command -v kubectl >/dev/null || die "kubectl is not installed"
if $dry_run; then
  log "dry run: nothing is changed, no cluster is asked"
else
  command -v helm >/dev/null || die "helm (3.8 or newer, for OCI charts) is not installed"
  context=$(kubectl config current-context 2>/dev/null) || die "no current kubectl context"
  kubectl version >/dev/null 2>&1 || die "cannot reach the cluster of context '$context'"
  log "context: $context"
fi
log "environment: $env_name"

# ---------------------------------------------------------------------------
step "Helm repositories"
change helm repo add kong "$KONG_REPO" --force-update
change helm repo add prometheus-community "$PROMETHEUS_REPO" --force-update
change helm repo add grafana "$GRAFANA_REPO" --force-update
change helm repo add nats "$NATS_REPO" --force-update
change helm repo update
log "kong, prometheus-community, grafana, nats (+ Bitnami OCI: $BITNAMI_OCI)"

# ---------------------------------------------------------------------------
step "Namespaces"
# nis comes from the kustomize base (with its Pod Security labels); it is
# needed now because the data stores go into it.
change kubectl apply -f "$k8s_dir/base/namespace.yaml"
for ns in kong monitoring; do
  kubectl create namespace "$ns" --dry-run=client -o yaml >"$tmp/namespace-$ns.yaml"
  change kubectl apply -f "$tmp/namespace-$ns.yaml"
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

# The API key of the Kong consumer. The ingress controller finds it by this label, so the
# label is applied on every run: a run interrupted between the two commands must not leave
# a credential that is ignored (every request would get 401).
ensure_secret nis nis-client-key "key=$(random_hex)"
change kubectl -n nis label secret nis-client-key konghq.com/credential=key-auth --overwrite
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
# Traces from the services and Kong (OTLP), queried by Grafana.
release tempo monitoring grafana/tempo "$TEMPO_CHART_VERSION"
release alloy monitoring grafana/alloy "$ALLOY_CHART_VERSION" \
  --set-file "alloy.configMap.content=$repo_dir/monitoring/alloy/k8s.alloy"

# The dashboards, for Grafana's sidecar (label grafana_dashboard=1).
kubectl -n monitoring create configmap nis-dashboards \
  --from-file="$repo_dir/monitoring/grafana/dashboards" --dry-run=client -o yaml \
  | kubectl label --local -f - grafana_dashboard=1 -o yaml \
  | kubectl annotate --local -f - grafana_folder=nis -o yaml >"$tmp/dashboards.yaml"
change kubectl apply -f "$tmp/dashboards.yaml"
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
jobs=(nis-initializer students-migrate courses-migrate)
log "manifests: ${env_name} overlay, $(grep -c '^kind:' "$tmp/nis.yaml") objects"

# A Job's pod template cannot change: when the Jobs' manifests differ from the cluster's
# (a new image, or no Job yet), the old ones are removed so they run again; unchanged Jobs
# are left alone, having already completed.
job_selector='app.kubernetes.io/component in (migration,provisioning)'
if $dry_run; then
  log "would re-run the Jobs ${jobs[*]} if their manifests changed"
elif ! kubectl diff -f "$tmp/nis.yaml" -l "$job_selector" >/dev/null 2>&1; then
  kubectl -n nis delete job "${jobs[@]}" --ignore-not-found >/dev/null
  log "Jobs changed or missing: they run (again)"
else
  log "Jobs unchanged since the last run: kept"
fi
# Everything but the long-running servers (their Deployments, autoscalers
# and disruption budgets carry app.kubernetes.io/component=server), so the
# servers start only once the streams and schemas exist.
change kubectl apply -f "$tmp/nis.yaml" -l 'app.kubernetes.io/component!=server'
for job in "${jobs[@]}"; do
  log "waiting for job/$job (up to $wait_timeout)"
  change kubectl -n nis wait --for=condition=complete "job/$job" --timeout="$wait_timeout" \
    || die "job/$job did not complete within $wait_timeout: kubectl -n nis logs job/$job"
done

# ---------------------------------------------------------------------------
step "nis: services"
change kubectl apply -f "$tmp/nis.yaml"
for deployment in students courses; do
  log "waiting for deployment/$deployment (up to $wait_timeout)"
  change kubectl -n nis rollout status "deployment/$deployment" --timeout="$wait_timeout" \
    || die "deployment/$deployment did not become ready within $wait_timeout: kubectl -n nis describe deployment/$deployment"
done
if $dry_run; then
  log "dry run done: nothing was changed"
  exit 0
fi

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
    Traces:     in Grafana, Explore -> Tempo (or a log line's "View trace" link)
EOF
