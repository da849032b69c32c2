#!/usr/bin/env bash
# make up [REPLICAS=N]: start PostgreSQL, Redis and NATS where missing, create
# the database, build the workspace and start N processes (replicas, default 1,
# at most 10) of each service in the background, all on the same databases,
# Redis and NATS. Replica i listens on the configured ports + i - 1; each asks
# every replica of the other service (a comma-separated peer URL list).
# Returns once every replica answers /readyz, and prints where they listen.
# Configuration: defaults below < .env at the repo root < the environment.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$NIS_ROOT"

load_dotenv "$NIS_ROOT/.env"

# Shared by every service.
: "${REDIS_URL:=redis://127.0.0.1:6379}"
: "${NATS_URL:=nats://127.0.0.1:4222}"
: "${NIS_PREFIX:=nis}"
: "${LOG_FORMAT:=text}"
export REDIS_URL NATS_URL NIS_PREFIX LOG_FORMAT
# Per service (both read HTTP_ADDR/GRPC_ADDR, so these are set per process).
: "${DATABASE_URL:=postgres://postgres@127.0.0.1:5432/nis_students}"
: "${STUDENTS_HTTP_ADDR:=127.0.0.1:8020}"
: "${STUDENTS_GRPC_ADDR:=127.0.0.1:50020}"
: "${COURSES_HTTP_ADDR:=127.0.0.1:8010}"
: "${COURSES_GRPC_ADDR:=127.0.0.1:50010}"

READY_TIMEOUT=${NIS_READY_TIMEOUT:-90}
REPLICAS=${REPLICAS:-1}
[[ $REPLICAS =~ ^([1-9]|10)$ ]] || die "REPLICAS must be 1..10, got '$REPLICAS'"

# ensure_pg_database URL: create URL's database if missing (server from URL).
ensure_pg_database() {
  local url=$1 base query db admin
  base=${url%%\?*}; query=${url#"$base"}
  db=${base##*/}; admin=${base%/*}/postgres$query
  [[ -n $db && $db != *[!A-Za-z0-9_-]* ]] || die "DATABASE_URL: cannot use database name '$db'"
  if [[ $(psql -w -X -tA -d "$admin" -c "select 1 from pg_database where datname = '$db'") != 1 ]]; then
    log "PostgreSQL: creating database $db"
    psql -w -X -q -d "$admin" -c "create database \"$db\"" \
      || [[ $(psql -w -X -tA -d "$admin" -c "select 1 from pg_database where datname = '$db'") == 1 ]] \
      || die "could not create database $db"
  fi
}

SUMMARY=()

# replica_addr ADDR I: ADDR (host:port) with the port moved up by I - 1.
replica_addr() {
  local addr=$1 i=$2
  echo "${addr%:*}:$(( ${addr##*:} + i - 1 ))"
}

# peer_urls GRPC_ADDR: the gRPC URLs of every replica of a service, comma-separated.
peer_urls() {
  local i urls=()
  for (( i = 1; i <= REPLICAS; i++ )); do
    urls+=("http://$(replica_addr "${1/#0.0.0.0:/127.0.0.1:}" "$i")")
  done
  (IFS=,; echo "${urls[*]}")
}

# replica_name SERVICE I: the first replica keeps the plain name (students.pid, students.log).
replica_name() {
  if (( $2 == 1 )); then echo "$1"; else echo "$1-$2"; fi
}

# start_service BINARY NAME HTTP_ADDR GRPC_ADDR [VAR=value ...]
# Start $TARGET/debug/BINARY in the background as NAME (pidfile .run/NAME.pid,
# log .run/NAME.log) with the shared environment, HTTP_ADDR, GRPC_ADDR and the
# given variables, unless it already runs. Then wait for http://HTTP_ADDR/readyz.
start_service() {
  local binary=$1 name=$2 http=$3 grpc=$4; shift 4
  local pidfile=$NIS_RUN_DIR/$name.pid log=$NIS_RUN_DIR/$name.log
  local bin=$TARGET/debug/$binary pid url
  url=http://${http/#0.0.0.0:/127.0.0.1:}/readyz
  if pid=$(pidfile_alive "$pidfile"); then
    log "$name: already running (pid $pid); 'make down' first to restart it with a new build"
  else
    [[ -x $bin ]] || die "$name: no binary at $bin after the build"
    if tcp_open "${http%:*}" "${http##*:}"; then
      die "$name: $http is already in use by a process 'make up' did not start"
    fi
    log "$name: starting (log: $log)"
    printf '\n==== %s make up: starting %s\n' "$(date -Is)" "$name" >>"$log"
    # setsid: detached from the terminal's Ctrl-C; fd 9 (our lock) closed.
    env HTTP_ADDR="$http" GRPC_ADDR="$grpc" "$@" setsid "$bin" </dev/null >>"$log" 2>&1 9>&- &
    pid=$!
    record_pid "$pidfile" "$pid" TERM
  fi
  if ! wait_for_http "$url" "$READY_TIMEOUT" "$pid"; then
    log "last lines of $log:"
    tail -n 40 "$log" >&2 || true
    if pidfile_alive "$pidfile" >/dev/null; then
      die "$name: not ready at $url within ${READY_TIMEOUT}s; still running as pid $pid ('make down' stops it)"
    fi
    rm -f "$pidfile"
    die "$name exited before it was ready (see the log above)"
  fi
  log "$name: ready"
  SUMMARY+=("$(printf '%-10s HTTP http://%-16s gRPC %-16s pid %-7s log %s' \
    "$name" "$http" "$grpc" "$pid" "${log#"$NIS_ROOT"/}")")
}

nis_lock
ensure_servers_for "$DATABASE_URL" "$REDIS_URL" "$NATS_URL"
export NATS_URL=$NIS_NATS_URL
ensure_pg_database "$DATABASE_URL"
nis_unlock   # a build can take minutes; don't hold up a parallel `make test`

log "cargo build --workspace --bins"
cargo build --workspace --bins || die "cargo build failed (see above); no service was started"
TARGET=$(target_dir)

nis_lock

# The streams and consumers of the relation sync (idempotent: a no-op when they exist).
log "initializer: creating or updating the JetStream streams"
"$TARGET/debug/initializer" >>"$NIS_RUN_DIR/initializer.log" 2>&1 \
  || { tail -n 20 "$NIS_RUN_DIR/initializer.log" >&2; die "the initializer failed (log: .run/initializer.log)"; }

# courses: on MONGODB_URI when set, else on a MongoDB-compatible test server (scripts/mongo.sh).
MONGODB_URI=${MONGODB_URI:-$("$NIS_ROOT/scripts/mongo.sh" start)}
# Each replica reaches every replica of the other service over gRPC for the cross queries.
for (( i = 1; i <= REPLICAS; i++ )); do
  start_service students "$(replica_name students "$i")" \
    "$(replica_addr "$STUDENTS_HTTP_ADDR" "$i")" "$(replica_addr "$STUDENTS_GRPC_ADDR" "$i")" \
    DATABASE_URL="$DATABASE_URL" COURSES_GRPC_URL="$(peer_urls "$COURSES_GRPC_ADDR")"
  start_service courses "$(replica_name courses "$i")" \
    "$(replica_addr "$COURSES_HTTP_ADDR" "$i")" "$(replica_addr "$COURSES_GRPC_ADDR" "$i")" \
    MONGODB_URI="$MONGODB_URI" STUDENTS_GRPC_URL="$(peer_urls "$STUDENTS_GRPC_ADDR")"
done

echo
echo "nis is up:"
printf '  %s\n' "${SUMMARY[@]}"
echo "  'make logs' follows the logs, 'make down' stops what 'make up' started."
