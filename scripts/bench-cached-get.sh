#!/usr/bin/env bash
# bench-cached-get.sh: throughput (req/s) and p99 latency of the cached reads
# GET /api/students/{id} and GET /api/courses/{id}, for one set of release binaries.
#
#   cargo build --release -p students -p courses -p initializer
#   scripts/bench-cached-get.sh target/release          # BIN_DIR with students, courses, initializer
#
# It starts both services from BIN_DIR on free loopback ports against the local
# PostgreSQL, Redis and NATS, each run with its own names (bench_<random>): a PostgreSQL
# database, a Redis key prefix and JetStream streams (the initializer creates them), all
# removed at the end. Courses use MONGODB_URI when set, else a private MongoDB-compatible
# server from scripts/mongo.sh (stopped at the end). It creates one student and one course
# (POST), reads each once (fills the cache), runs one short unmeasured wrk per URL, then
# BENCH_RUNS times, alternating the two URLs, `wrk -t2 -c10 -d10s --latency`, and prints
# req/s and p99 per run and their medians. This is repeated per log level in
# BENCH_LOG_LEVELS (the services are restarted for each). Everything it started is
# stopped on exit; nothing else is touched. Needs wrk (apt-get install wrk), curl, jq,
# psql, redis-cli and python3.
#
# Output (stdout), one line each, whitespace-separated, for comparing runs:
#   run    LABEL LOG_LEVEL ENDPOINT N REQ_PER_S P99_MS NON_2XX SOCKET_ERRORS
#   median LABEL LOG_LEVEL ENDPOINT REQ_PER_S(median) MIN MAX P99_MS(median)
#   cache  LABEL LOG_LEVEL SERVICE hit=… miss=… error=…   (get lookups, from /metrics)
# Progress goes to stderr.
#
# Environment (default):
#   BENCH_LABEL        tag of the output lines (the name of BIN_DIR's grandparent, e.g. bench-base)
#   BENCH_RUNS         measured runs per URL and log level (3)
#   BENCH_THREADS      wrk -t (2)
#   BENCH_CONNECTIONS  wrk -c (10)
#   BENCH_DURATION     wrk -d (10s)
#   BENCH_WARMUP       duration of the unmeasured wrk run per URL (2s; 0 skips it)
#   BENCH_LOG_LEVELS   RUST_LOG values to measure, "default" = unset (the services' info) ("warn default")
#   BENCH_HTTP_WORKERS HTTP_WORKERS of the services (unset: one per core, their default)
#   BENCH_PG_URL       PostgreSQL server, no database (postgres://postgres@127.0.0.1:5432)
#   REDIS_URL          (redis://127.0.0.1:6379)
#   NATS_URL           (nats://127.0.0.1:4222)
#   MONGODB_URI        (unset: a private server via scripts/mongo.sh)
# All servers must be on loopback.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# seconds DURATION: wrk's "10", "10s", "2m", "1h" in seconds.
seconds() {
  [[ $1 =~ ^([0-9]+)([smh]?)$ ]] || die "not a wrk duration: $1"
  case ${BASH_REMATCH[2]} in
    m) echo $(( BASH_REMATCH[1] * 60 )) ;;
    h) echo $(( BASH_REMATCH[1] * 3600 )) ;;
    *) echo $(( BASH_REMATCH[1] )) ;;
  esac
}

usage() { echo "usage: $0 BIN_DIR   (a directory with release binaries students, courses, initializer)" >&2; exit 2; }
[[ $# -eq 1 ]] || usage
BIN_DIR=$(cd "$1" && pwd) || usage
for b in students courses initializer; do
  [[ -x $BIN_DIR/$b ]] || die "no executable $BIN_DIR/$b"
done

LABEL=${BENCH_LABEL:-$(basename "$(dirname "$(dirname "$BIN_DIR")")")}
RUNS=${BENCH_RUNS:-3}
THREADS=${BENCH_THREADS:-2}
CONNECTIONS=${BENCH_CONNECTIONS:-10}
DURATION=${BENCH_DURATION:-10s}
WARMUP=${BENCH_WARMUP:-2s}
read -r -a LOG_LEVELS <<<"${BENCH_LOG_LEVELS:-warn default}"
PG_URL=${BENCH_PG_URL:-postgres://postgres@127.0.0.1:5432}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
NATS_URL=${NATS_URL:-nats://127.0.0.1:4222}
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "BENCH_RUNS must be a positive number"
seconds "$DURATION" >/dev/null
[[ $WARMUP == 0 ]] || seconds "$WARMUP" >/dev/null
[[ $LABEL =~ ^[A-Za-z0-9._-]+$ ]] || die "BENCH_LABEL must be one word of letters, digits, . _ -"

# Only loopback servers: this is a local measurement and must not load anything else.
for url in "$PG_URL" "$REDIS_URL" "$NATS_URL" ${MONGODB_URI:+"$MONGODB_URI"}; do
  hp=$(url_hostport "$url")
  case ${hp%:*} in
    127.0.0.1 | localhost | '[::1]') ;;
    *) die "not a loopback server: ${hp%:*} (from one of BENCH_PG_URL, REDIS_URL, NATS_URL, MONGODB_URI)" ;;
  esac
done

command -v wrk >/dev/null || apt_install wrk
for tool in curl jq psql redis-cli python3; do
  command -v "$tool" >/dev/null || die "$tool is missing"
done

PREFIX=bench_$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')
DB=$PREFIX
WORK=$(mktemp -d "${TMPDIR:-/tmp}/nis-bench.XXXXXX")
SERVICE_PIDS=()
DB_CREATED='' MONGO_STARTED='' STREAMS_CREATED=''

# ---------------------------------------------------------------- cleanup

# stop_services: SIGTERM the services this script started, SIGKILL after 15 s.
stop_services() {
  local pid deadline
  for pid in "${SERVICE_PIDS[@]}"; do kill -s TERM "$pid" 2>/dev/null || true; done
  deadline=$(( $(date +%s) + 15 ))
  for pid in "${SERVICE_PIDS[@]}"; do
    while kill -0 "$pid" 2>/dev/null && (( $(date +%s) < deadline )); do sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      warn "pid $pid did not stop within 15s, sending SIGKILL"
      kill -s KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  done
  SERVICE_PIDS=()
}

# delete_streams: the JetStream streams of PREFIX (with their consumers), over the NATS protocol.
delete_streams() {
  local hp
  hp=$(url_hostport "$NATS_URL")
  timeout 20 python3 - "${hp%:*}" "${hp##*:}" "${PREFIX^^}" <<'PY'
import socket, sys
host, port, prefix = sys.argv[1].strip("[]"), int(sys.argv[2] or 4222), sys.argv[3]
s = socket.create_connection((host, port), timeout=5)
f = s.makefile("rb")
f.readline()  # INFO
s.sendall(b'CONNECT {"verbose":false,"pedantic":false}\r\nSUB _INBOX.nisbench 1\r\n')
for name in ("LINKS_COURSES", "LINKS_STUDENTS", "DEAD_LETTERS"):
    s.sendall(f"PUB $JS.API.STREAM.DELETE.{prefix}_{name} _INBOX.nisbench 0\r\n\r\n".encode())
    while True:
        line = f.readline()
        if not line:
            sys.exit("NATS closed the connection")
        if line.startswith(b"PING"):
            s.sendall(b"PONG\r\n")
        elif line.startswith(b"MSG"):
            f.read(int(line.split()[-1]) + 2)
            break
        elif line.startswith(b"-ERR"):
            sys.exit(line.decode().strip())
PY
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_services
  if [[ -n $MONGO_STARTED ]]; then
    NIS_MONGO_DIR=$WORK/mongo MONGODB_URI='' "$NIS_ROOT/scripts/mongo.sh" stop >/dev/null 2>&1 \
      || warn "could not stop the private MongoDB-compatible server (see $WORK/mongo)"
  elif [[ -n ${MONGODB_URI:-} ]]; then
    warn "database ${PREFIX}_courses is left on MONGODB_URI (drop it there if it matters)"
  fi
  if [[ -n $DB_CREATED ]]; then
    psql -w -X -q -d "$PG_URL/postgres" -c "drop database if exists \"$DB\" with (force)" >/dev/null \
      || warn "could not drop database $DB"
  fi
  timeout 30 redis-cli -u "$REDIS_URL" --scan --pattern "$PREFIX:*" 2>/dev/null \
    | timeout 30 xargs -r -n 500 redis-cli -u "$REDIS_URL" del >/dev/null 2>&1 \
    || warn "could not delete the Redis keys $PREFIX:*"
  if [[ -n $STREAMS_CREATED ]]; then
    delete_streams || warn "could not delete the JetStream streams ${PREFIX^^}_*"
  fi
  if (( rc == 0 )); then
    rm -rf "$WORK"
  else
    log "logs kept in $WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- helpers

# free_ports N: N distinct free loopback ports.
free_ports() {
  python3 -c '
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))' "$1"
}

# start_service NAME HTTP_ADDR LOG_LEVEL [VAR=value ...]: start BIN_DIR/NAME, wait for /readyz.
start_service() {
  local name=$1 http=$2 level=$3 pid log
  shift 3
  log=$WORK/$name.log
  local loglevel=(-u RUST_LOG)
  [[ $level == default ]] || loglevel=(RUST_LOG="$level")
  env "${loglevel[@]}" NIS_PREFIX="$PREFIX" REDIS_URL="$REDIS_URL" NATS_URL="$NATS_URL" \
    HTTP_ADDR="$http" CACHE_TTL_SECS=3600 SHUTDOWN_GRACE_SECS=5 ${BENCH_HTTP_WORKERS:+HTTP_WORKERS="$BENCH_HTTP_WORKERS"} \
    "$@" "$BIN_DIR/$name" </dev/null >>"$log" 2>&1 9>&- &
  pid=$!
  SERVICE_PIDS+=("$pid")
  if ! wait_for_http "http://$http/readyz" 60 "$pid"; then
    tail -n 30 "$log" >&2 || true
    die "$name did not become ready at http://$http/readyz within 60s"
  fi
}

# create KIND JSON HTTP_ADDR: POST /api/KIND, print the new id.
create() {
  local id
  id=$(curl -fsS --max-time 10 -X POST "http://$3/api/$1" -H 'Content-Type: application/json' -d "$2" \
    | jq -r '.data.id') || die "POST /api/$1 failed"
  [[ -n $id && $id != null ]] || die "POST /api/$1 returned no id"
  echo "$id"
}

# to_ms VALUE: wrk's "850.00us" / "1.23ms" / "1.02s" / "2.00m" in milliseconds.
to_ms() {
  awk -v v="$1" 'BEGIN {
    n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
    f = (u == "us") ? 0.001 : (u == "ms") ? 1 : (u == "s") ? 1000 : (u == "m") ? 60000 : -1
    if (f < 0) { print "NaN"; exit 1 }
    printf "%.3f\n", n * f }'
}

# wrk_run URL DURATION: run wrk; print "REQ_PER_S P99_MS NON_2XX SOCKET_ERRORS".
wrk_run() {
  local out rps p99 non2xx errors secs
  secs=$(seconds "$2")
  out=$(timeout $(( secs + 60 )) \
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"$2" --timeout 5s --latency "$1") || die "wrk failed on $1"
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' <<<"$out")
  errors=$(awk '/Socket errors:/ {gsub(",", ""); print $4 + $6 + $8 + $10}' <<<"$out")
  [[ -n $rps && -n $p99 ]] || { echo "$out" >&2; die "could not read wrk's output"; }
  echo "$rps $(to_ms "$p99") ${non2xx:-0} ${errors:-0}"
}

# median: of the numbers on stdin (one per line).
median() {
  sort -g | awk '{a[NR] = $1} END {
    if (NR == 0) exit 1
    if (NR % 2) print a[(NR + 1) / 2]; else printf "%.3f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

# cache_counts HTTP_ADDR: the get lookups by result from /metrics.
cache_counts() {
  curl -fsS --max-time 5 "http://$1/metrics" | awk '
    /^nis_cache_lookups_total\{/ && /operation="get"/ {
      match($0, /result="[a-z]+"/); r = substr($0, RSTART + 8, RLENGTH - 9); c[r] += $NF }
    END { printf "hit=%d miss=%d error=%d\n", c["hit"], c["miss"], c["error"] }'
}

# ---------------------------------------------------------------- setup

log "label $LABEL, binaries $BIN_DIR, names $PREFIX, work dir $WORK"
log "load: $(uptime)"

psql -w -X -q -d "$PG_URL/postgres" -c "create database \"$DB\"" >/dev/null || die "could not create database $DB"
DB_CREATED=1

if [[ -z ${MONGODB_URI:-} ]]; then
  mkdir -p "$WORK/mongo"
  MONGO_STARTED=1
  MONGODB_URI=$(NIS_MONGO_DIR=$WORK/mongo MONGODB_URI='' "$NIS_ROOT/scripts/mongo.sh" start 9>&-)
fi

STREAMS_CREATED=1
NIS_PREFIX=$PREFIX NATS_URL=$NATS_URL INIT_TIMEOUT_SECS=20 STREAM_MAX_AGE_SECS=3600 \
  timeout 60 "$BIN_DIR/initializer" >"$WORK/initializer.log" 2>&1 \
  || { tail -n 20 "$WORK/initializer.log" >&2; die "the initializer failed"; }

ports=$(free_ports 4)
read -r S_HTTP S_GRPC C_HTTP C_GRPC <<<"$ports"
S_HTTP=127.0.0.1:$S_HTTP S_GRPC=127.0.0.1:$S_GRPC C_HTTP=127.0.0.1:$C_HTTP C_GRPC=127.0.0.1:$C_GRPC

start_all() { # LOG_LEVEL
  start_service students "$S_HTTP" "$1" GRPC_ADDR="$S_GRPC" DATABASE_URL="$PG_URL/$DB" \
    COURSES_GRPC_URL="http://$C_GRPC"
  start_service courses "$C_HTTP" "$1" GRPC_ADDR="$C_GRPC" MONGODB_URI="$MONGODB_URI" \
    MONGODB_DATABASE="${PREFIX}_courses" STUDENTS_GRPC_URL="http://$S_GRPC"
}

# ---------------------------------------------------------------- measure

STUDENT_ID='' COURSE_ID=''
for level in "${LOG_LEVELS[@]}"; do
  log "log level $level: starting students on $S_HTTP and courses on $C_HTTP"
  start_all "$level"
  if [[ -z $STUDENT_ID ]]; then
    STUDENT_ID=$(create students '{"name":"bench","first_name":"Ada","last_name":"Lovelace"}' "$S_HTTP")
    COURSE_ID=$(create courses '{"name":"Algebra","description":"Groups, rings and fields","discipline":"Mathematics","teacher":"Emmy Noether"}' "$C_HTTP")
  fi
  declare -A URL=([students]="http://$S_HTTP/api/students/$STUDENT_ID" [courses]="http://$C_HTTP/api/courses/$COURSE_ID")
  for endpoint in students courses; do
    curl -fsS --max-time 10 -o /dev/null "${URL[$endpoint]}" || die "GET ${URL[$endpoint]} failed"
    if [[ $WARMUP != 0 ]]; then wrk_run "${URL[$endpoint]}" "$WARMUP" >/dev/null; fi
  done
  : >"$WORK/runs"
  for (( n = 1; n <= RUNS; n++ )); do
    for endpoint in students courses; do
      result=$(wrk_run "${URL[$endpoint]}" "$DURATION")
      read -r rps p99 non2xx errors <<<"$result"
      echo "run    $LABEL $level $endpoint $n $rps $p99 $non2xx $errors" | tee -a "$WORK/runs"
      (( non2xx == 0 && errors == 0 )) || warn "$endpoint run $n: $non2xx non-2xx responses, $errors socket errors"
    done
  done
  for endpoint in students courses; do
    rps=$(awk -v e="$endpoint" '$4 == e {print $6}' "$WORK/runs")
    p99=$(awk -v e="$endpoint" '$4 == e {print $7}' "$WORK/runs")
    echo "median $LABEL $level $endpoint $(median <<<"$rps") $(sort -g <<<"$rps" | head -n 1) $(sort -g <<<"$rps" | tail -n 1) $(median <<<"$p99")"
  done
  echo "cache  $LABEL $level students $(cache_counts "$S_HTTP")"
  echo "cache  $LABEL $level courses $(cache_counts "$C_HTTP")"
  stop_services
done
log "load: $(uptime)"
