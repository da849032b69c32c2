#!/usr/bin/env bash
# make bench: the services against a bare baseline in one run (docs/benchmarks.md).
#
#   make bench                     # or: bash scripts/bench.sh
#
# Builds release binaries (the services, the initializer and the bench crate), then starts,
# against the local PostgreSQL, Redis and NATS (and a MongoDB-compatible server from
# scripts/mongo.sh unless MONGODB_URI is set), each under its own names (bench_<random>: a
# PostgreSQL database, a Redis key prefix, JetStream streams), all removed at the end:
#   - students and courses with their default configuration;
#   - a second pair whose Redis is a closed port (the database path: a Redis outage must not
#     fail a read, so every read goes to the database; writes it refuses, so its entities are
#     made through a one-shot replica of the same stores that reaches Redis);
#   - bench-baseline, the ceiling: actix-web routes that only GET the same bytes from Redis,
#     only select the same row from PostgreSQL, or return a pre-serialized body;
#   - two more students replicas of the main pair with traces on (OpenTelemetry, sampler
#     ratio 0.1): one exporting to bench-otlp-sink, a local OTLP endpoint that only counts the
#     spans, one to a closed port (a collector that is down); their cached read is compared
#     with the same read untraced.
# It seeds data, then runs every case BENCH_ROUNDS times, interleaved (round 1 of every case,
# then round 2, ...): HTTP cases with wrk (-t2 -c10, --latency; a read case starts from a
# filled cache), gRPC cases with bench-grpc (the tonic client) and with h2load (nghttp2's,
# a C client as light as wrk). After each round it waits until every link change
# is applied on the other side, then times link changes under a wrk load
# (bench-propagation). Any failed request fails the run. RSS of each
# service idle and after the load, and the stripped sizes of the release binaries, complete
# the results (JSON lines), which bench-report turns into a Markdown table (stdout and
# docs/benchmarks.md) and a chart (docs/benchmarks.png).
#
# Environment (default):
#   BENCH_ROUNDS       rounds of every case (3)
#   BENCH_DURATION     seconds per measured run (10)
#   BENCH_WARMUP       seconds of unmeasured load per case before round 1 (2; 0 skips it)
#   BENCH_CONNECTIONS  wrk -c and bench-grpc --connections (10)
#   BENCH_THREADS      wrk -t (2)
#   BENCH_SAMPLES      link changes timed per round for the propagation (200)
#   BENCH_OUT          the Markdown file to write (docs/benchmarks.md; "-" writes none)
#   BENCH_PG_URL       PostgreSQL server, no database (postgres://postgres@127.0.0.1:5432)
#   REDIS_URL          (redis://127.0.0.1:6379)
#   NATS_URL           (nats://127.0.0.1:4222)
#   MONGODB_URI        (unset: a private server via scripts/mongo.sh)
# All servers must be on loopback. Needs wrk and h2load (installed from Debian when missing), curl, jq,
# psql, redis-cli, python3. Progress goes to stderr.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cd "$NIS_ROOT"

ROUNDS=${BENCH_ROUNDS:-3}
DURATION=${BENCH_DURATION:-10}
WARMUP=${BENCH_WARMUP:-2}
CONNECTIONS=${BENCH_CONNECTIONS:-10}
THREADS=${BENCH_THREADS:-2}
SAMPLES=${BENCH_SAMPLES:-200}
OUT=${BENCH_OUT:-docs/benchmarks.md}
PG_URL=${BENCH_PG_URL:-postgres://postgres@127.0.0.1:5432}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
NATS_URL=${NATS_URL:-nats://127.0.0.1:4222}
# The NATS of the production line (the project's own when the local one is older).
if is_local_default "$NATS_URL" 4222; then
  nis_lock
  ensure_nats 4222
  nis_unlock
  NATS_URL=$NIS_NATS_URL
fi
for n in "$ROUNDS" "$DURATION" "$CONNECTIONS" "$THREADS" "$SAMPLES"; do
  [[ $n =~ ^[1-9][0-9]*$ ]] || die "BENCH_ROUNDS, _DURATION, _CONNECTIONS, _THREADS, _SAMPLES must be positive numbers"
done
[[ $WARMUP =~ ^[0-9]+$ ]] || die "BENCH_WARMUP must be a number of seconds"

# Only loopback servers: this is a local measurement and must not load anything else.
for url in "$PG_URL" "$REDIS_URL" "$NATS_URL" ${MONGODB_URI:+"$MONGODB_URI"}; do
  hp=$(url_hostport "$url")
  case ${hp%:*} in
    127.0.0.1 | localhost | '[::1]') ;;
    *) die "not a loopback server: ${hp%:*} (from one of BENCH_PG_URL, REDIS_URL, NATS_URL, MONGODB_URI)" ;;
  esac
done

command -v wrk >/dev/null || apt_install wrk
command -v h2load >/dev/null || apt_install nghttp2-client
for tool in curl jq psql redis-cli python3 strip; do
  command -v "$tool" >/dev/null || die "$tool is missing"
done

log "cargo build --release -p students -p courses -p initializer -p bench"
cargo build --release -p students -p courses -p initializer -p bench >&2
BIN_DIR=$(target_dir)/release

PREFIX=bench_$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')
DB=$PREFIX
# The database-path pair runs on names of its own: sharing the main pair's databases and
# streams, it would apply link changes without being able to invalidate the Redis entries
# the main pair reads.
PREFIX2=${PREFIX}d
DB2=$PREFIX2
# The reconciliation case's pair: 200,000 pairs of its own.
PREFIX3=${PREFIX}r
DB3=$PREFIX3
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

# delete_streams PREFIX: its JetStream streams (with their consumers), over the NATS protocol.
delete_streams() {
  local hp
  hp=$(url_hostport "$NATS_URL")
  timeout 20 python3 - "${hp%:*}" "${hp##*:}" "${1^^}" <<'PY'
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
    warn "databases ${PREFIX}_courses, ${PREFIX2}_courses and ${PREFIX3}_courses are left on MONGODB_URI (drop them there if it matters)"
  fi
  if [[ -n $DB_CREATED ]]; then
    for db in "$DB" "$DB2" "$DB3"; do
      psql -w -X -q -d "$PG_URL/postgres" -c "drop database if exists \"$db\" with (force)" >/dev/null \
        || warn "could not drop database $db"
    done
  fi
  timeout 30 redis-cli -u "$REDIS_URL" --scan --pattern "$PREFIX:*" 2>/dev/null \
    | timeout 30 xargs -r -n 500 redis-cli -u "$REDIS_URL" del >/dev/null 2>&1 \
    || warn "could not delete the Redis keys $PREFIX:*"
  if [[ -n $STREAMS_CREATED ]]; then
    for prefix in "$PREFIX" "$PREFIX2" "$PREFIX3"; do
      delete_streams "$prefix" || warn "could not delete the JetStream streams ${prefix^^}_*"
    done
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

# start LOG_NAME HTTP_ADDR PROGRAM [VAR=value ...]: start a service (release build) with the
# names of this run and the given settings, otherwise its defaults; wait until /healthz
# answers. Its pid is left in STARTED.
start() {
  local name=$1 http=$2 program=$3
  shift 3
  env -u RUST_LOG -u HTTP_WORKERS NIS_PREFIX="$PREFIX" NATS_URL="$NATS_URL" HTTP_ADDR="$http" "$@" \
    "$BIN_DIR/$program" </dev/null >>"$WORK/$name.log" 2>&1 9>&- &
  STARTED=$!
  SERVICE_PIDS+=("$STARTED")
  if ! wait_for_http "http://$http/healthz" 60 "$STARTED"; then
    tail -n 30 "$WORK/$name.log" >&2 || true
    die "$name did not answer http://$http/healthz within 60s"
  fi
}

# api METHOD URL [JSON]: one API call; prints the body, fails on a non-2xx answer.
api() {
  curl -fsS --max-time 10 -X "$1" "$2" -H 'Content-Type: application/json' ${3:+-d "$3"} \
    || die "$1 $2 failed"
}

# to_ms VALUE: wrk's "850.00us" / "1.23ms" / "1.02s" / "2.00m" in milliseconds.
to_ms() {
  awk -v v="$1" 'BEGIN {
    n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
    f = (u == "us") ? 0.001 : (u == "ms") ? 1 : (u == "s") ? 1000 : (u == "m") ? 60000 : -1
    if (f < 0) { print "NaN"; exit 1 }
    printf "%.3f\n", n * f }'
}

# wrk_run SECONDS URL [LUA]: run wrk; print "REQ_PER_S P50_MS P99_MS BAD" (BAD: non-2xx
# answers plus socket errors; a case with any is reported and fails the run).
wrk_run() {
  local out rps p50 p99 non2xx errors
  out=$(timeout $(( $1 + 60 )) wrk -t"$THREADS" -c"$CONNECTIONS" -d"$1s" --timeout 5s --latency \
    ${3:+-s "$3"} "$2") || die "wrk failed on $2"
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' <<<"$out")
  errors=$(awk '/Socket errors:/ {gsub(",", ""); print $4 + $6 + $8 + $10}' <<<"$out")
  [[ -n $rps && -n $p99 ]] || { echo "$out" >&2; die "could not read wrk's output"; }
  echo "$rps $(to_ms "$p50") $(to_ms "$p99") $(( ${non2xx:-0} + ${errors:-0} ))"
}

# h2load_run SECONDS URL BODY: run h2load (nghttp2's HTTP/2 load tool, C like wrk, so the
# client costs the shared cores about what wrk does) posting the gRPC frame BODY to URL, one
# stream per connection; print "REQ_PER_S P50_MS P99_MS BAD". h2load sees HTTP statuses, not
# gRPC's trailers: an answer is counted bad unless it is a 2xx that carried a message (a gRPC
# error is a 200 with no data frame).
h2load_run() {
  local out log=$WORK/h2load.log rps done_ ok data
  out=$(timeout $(( $1 + 60 )) h2load -c"$CONNECTIONS" -m1 -t1 -D "$1" \
    -H 'content-type: application/grpc' -H 'te: trailers' -d "$3" --log-file="$log" "$2") \
    || die "h2load failed on $2"
  rps=$(awk '/^finished in/ {gsub(",", ""); print $4}' <<<"$out")
  done_=$(awk '/^requests:/ {print $2}' <<<"$out")
  ok=$(awk '/^status codes:/ {print $3}' <<<"$out")
  data=$(awk '/^traffic:/ {gsub(/[()]/, "", $12); print $12}' <<<"$out")
  [[ -n $rps && -n $done_ && -n $ok && -n $data ]] || { echo "$out" >&2; die "could not read h2load's output"; }
  (( data >= ok * 10 )) || ok=0
  # The log has one line per request: start time, status, microseconds to the answer.
  sort -n -k3 "$log" | awk -v bad=$(( done_ - ok )) -v rps="$rps" \
    '{ t[NR] = $3 } END { printf "%s %.3f %.3f %d\n", rps, t[int(NR * 0.5) + 1] / 1000, t[int(NR * 0.99) + 1] / 1000, bad }'
}

# grpc_frame FILE ID: the gRPC frame of a Get request for ID (GetStudentRequest and
# GetCourseRequest are both `string id = 1`).
grpc_frame() {
  python3 - "$1" "$2" <<'PY'
import struct, sys
path, id_ = sys.argv[1], sys.argv[2].encode()
message = b"\x0a" + bytes([len(id_)]) + id_
open(path, "wb").write(b"\x00" + struct.pack(">I", len(message)) + message)
PY
}

# rss_kb PID: resident set size in kB.
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# lua NAME METHOD PATH BODY [IDS [NAMES [LINKS]]]: a wrk script. Request n goes to PATH
# followed by the i-th of IDS (space-separated; none: PATH alone), i = n mod their number,
# with BODY in which @NAME@ is the i-th of NAMES, @N@ a token unique to the request
# (students' full names are unique), and @IDS@ alternately ["the i-th of LINKS"] and []
# on successive visits of the same id (always [] without LINKS). Spreading the writes over
# many entities is what clients do; all on one would measure lock waits.
lua() {
  local file=$WORK/$1.lua
  lua_list() { local x out=""; for x in $1; do out+="\"$x\", "; done; echo "{ $out}"; }
  cat >"$file" <<LUA
local method, path, body = "$2", "$3", [==[$4]==]
local ids, names, links = $(lua_list "${5:-}"), $(lua_list "${6:-}"), $(lua_list "${7:-}")
local headers = { ["Content-Type"] = "application/json" }
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
local n = 0
request = function()
  n = n + 1
  local count = math.max(#ids, 1)
  local i = (n % count) + 1
  -- At most 15 characters: names are 3 to 20 characters long.
  local token = string.format("%x-%d-%x", os.time() % 1048576, tid or 0, n)
  local linked = "[]"
  if #links > 0 and math.floor(n / count) % 2 == 0 then linked = '["' .. links[i] .. '"]' end
  local b = body:gsub("@N@", token):gsub("@NAME@", names[i] or ""):gsub("@IDS@", linked)
  return wrk.format(method, path .. (ids[i] or ""), headers, b)
end
LUA
  echo "$file"
}

# result JSON: one line of the results file.
result() { echo "$1" >>"$RESULTS"; }

# meta KEY VALUE: a fact of the run, listed at the top of the report.
meta() { result "$(jq -nc --arg k "$1" --arg v "$2" '{kind: "meta", key: $k, value: $v}')"; }

# ---------------------------------------------------------------- setup

RESULTS=$WORK/results.jsonl
log "names $PREFIX, work dir $WORK; load: $(uptime)"

DB_CREATED=1
for db in "$DB" "$DB2" "$DB3"; do
  psql -w -X -q -d "$PG_URL/postgres" -c "create database \"$db\"" >/dev/null || die "could not create database $db"
done
if [[ -z ${MONGODB_URI:-} ]]; then
  mkdir -p "$WORK/mongo"
  MONGO_STARTED=1
  MONGODB_URI=$(NIS_MONGO_DIR=$WORK/mongo MONGODB_URI='' "$NIS_ROOT/scripts/mongo.sh" start 9>&-)
fi
STREAMS_CREATED=1
for prefix in "$PREFIX" "$PREFIX2" "$PREFIX3"; do
  NIS_PREFIX=$prefix NATS_URL=$NATS_URL INIT_TIMEOUT_SECS=20 STREAM_MAX_AGE_SECS=3600 \
    timeout 60 "$BIN_DIR/initializer" >>"$WORK/initializer.log" 2>&1 \
    || { tail -n 20 "$WORK/initializer.log" >&2; die "the initializer failed"; }
done

read -r -a P <<<"$(free_ports 17)"
S=127.0.0.1:${P[0]} C=127.0.0.1:${P[1]} SN=127.0.0.1:${P[2]} CN=127.0.0.1:${P[3]} BASE=127.0.0.1:${P[4]}
S_GRPC=127.0.0.1:${P[5]} C_GRPC=127.0.0.1:${P[6]}
# The database-path pair's gRPC addresses (only its own peer calls them).
SN_GRPC=127.0.0.1:${P[7]} CN_GRPC=127.0.0.1:${P[8]}
# The traced replicas, the local OTLP endpoint, and a port where no collector listens.
ST=127.0.0.1:${P[9]} SX=127.0.0.1:${P[10]} OTLP=127.0.0.1:${P[11]} NO_OTLP=127.0.0.1:${P[12]}
ST_GRPC=127.0.0.1:${P[13]} SX_GRPC=127.0.0.1:${P[14]}
# The one-shot replica that makes the database-path pair's entities (its HTTP and gRPC).
SEED=127.0.0.1:${P[15]} SEED_GRPC=127.0.0.1:${P[16]}
students_env=(DATABASE_URL="$PG_URL/$DB")
courses_env=(MONGODB_URI="$MONGODB_URI" MONGODB_DATABASE="${PREFIX}_courses")
# A closed port: every cache call fails at once, the services read from their databases.
NO_REDIS=redis://127.0.0.1:1

start students "$S" students GRPC_ADDR="$S_GRPC" REDIS_URL="$REDIS_URL" \
  COURSES_GRPC_URL="http://$C_GRPC" "${students_env[@]}"
S_PID=$STARTED
start courses "$C" courses GRPC_ADDR="$C_GRPC" REDIS_URL="$REDIS_URL" \
  STUDENTS_GRPC_URL="http://$S_GRPC" "${courses_env[@]}"
C_PID=$STARTED
start students-db-path "$SN" students GRPC_ADDR="$SN_GRPC" REDIS_URL="$NO_REDIS" NIS_PREFIX="$PREFIX2" \
  COURSES_GRPC_URL="http://$CN_GRPC" DATABASE_URL="$PG_URL/$DB2"
start courses-db-path "$CN" courses GRPC_ADDR="$CN_GRPC" REDIS_URL="$NO_REDIS" NIS_PREFIX="$PREFIX2" \
  STUDENTS_GRPC_URL="http://$SN_GRPC" MONGODB_URI="$MONGODB_URI" MONGODB_DATABASE="${PREFIX2}_courses"
"$BIN_DIR/bench-otlp-sink" --listen "$OTLP" </dev/null >>"$WORK/otlp-sink.log" 2>>"$WORK/otlp-sink.err" 9>&- &
OTLP_PID=$!
SERVICE_PIDS+=("$OTLP_PID")
traced_env=(OTEL_TRACES_SAMPLER=parentbased_traceidratio OTEL_TRACES_SAMPLER_ARG=0.1)
start students-traced "$ST" students GRPC_ADDR="$ST_GRPC" REDIS_URL="$REDIS_URL" \
  COURSES_GRPC_URL="http://$C_GRPC" "${students_env[@]}" "${traced_env[@]}" \
  OTEL_EXPORTER_OTLP_ENDPOINT="http://$OTLP"
start students-traced-down "$SX" students GRPC_ADDR="$SX_GRPC" REDIS_URL="$REDIS_URL" \
  COURSES_GRPC_URL="http://$C_GRPC" "${students_env[@]}" "${traced_env[@]}" \
  OTEL_EXPORTER_OTLP_ENDPOINT="http://$NO_OTLP"
wait_for_http "http://$S/readyz" 60 "$S_PID" || die "students not ready"
wait_for_http "http://$C/readyz" 60 "$C_PID" || die "courses not ready"
IDLE_S=$(rss_kb "$S_PID") IDLE_C=$(rss_kb "$C_PID")

log "seeding"
STUDENT='{"name":"bench","first_name":"Ada","last_name":"Lovelace"}'
COURSE='{"name":"Algebra","description":"Groups, rings and fields","discipline":"Mathematics","teacher":"Emmy Noether"}'
SID=$(api POST "http://$S/api/students" "$STUDENT" | jq -r .data.id)
CID=$(api POST "http://$C/api/courses" "$COURSE" | jq -r .data.id)
S_IDS=() S_NAMES=() C_IDS=()
for i in $(seq 60); do
  S_NAMES+=("bench-$i")
  S_IDS+=("$(api POST "http://$S/api/students" "{\"name\":\"bench-$i\",\"first_name\":\"Ada\",\"last_name\":\"Lovelace\"}" | jq -r .data.id)")
  C_IDS+=("$(api POST "http://$C/api/courses" "$COURSE" | jq -r .data.id)")
done
# The entities the database-path pair reads. That pair refuses writes (no write can fence a
# cache it cannot reach; docs/behaviour.md §6): each is made through a replica of the same
# store that reaches Redis, started for that alone.
seed_db_path() { # seed_db_path PROGRAM PATH BODY ENV...: prints the new entity's id
  local program=$1 path=$2 body=$3 id
  shift 3
  start "$program-db-seed" "$SEED" "$program" GRPC_ADDR="$SEED_GRPC" REDIS_URL="$REDIS_URL" \
    NIS_PREFIX="$PREFIX2" "$@" >&2
  id=$(api POST "http://$SEED$path" "$body" | jq -r .data.id)
  kill -s TERM "$STARTED" 2>/dev/null || true
  wait "$STARTED" 2>/dev/null || true
  echo "$id"
}
SID2=$(seed_db_path students /api/students "$STUDENT" COURSES_GRPC_URL="http://$CN_GRPC" \
  DATABASE_URL="$PG_URL/$DB2")
CID2=$(seed_db_path courses /api/courses "$COURSE" STUDENTS_GRPC_URL="http://$SN_GRPC" \
  MONGODB_URI="$MONGODB_URI" MONGODB_DATABASE="${PREFIX2}_courses")
# SID attends CID: the cross queries have one entity to ask the other service for.
api PUT "http://$S/api/students/$SID" "${STUDENT%\}},\"course_ids\":[\"$CID\"]}" >/dev/null
deadline=$(( $(date +%s) + 30 ))
until api GET "http://$C/api/courses/$CID" | jq -e --arg s "$SID" '.data.student_ids | index($s)' >/dev/null; do
  (( $(date +%s) < deadline )) || die "the link $SID -> $CID did not reach courses within 30s"
  sleep 0.1
done
# The baseline serves the same bytes as the cached GET from Redis, and the row the database
# path reads.
api GET "http://$S/api/students/$SID" >"$WORK/student.json"
BASE_KEY=$PREFIX:baseline:student
redis-cli -u "$REDIS_URL" -x set "$BASE_KEY" <"$WORK/student.json" >/dev/null
"$BIN_DIR/bench-baseline" --listen "$BASE" --redis-url "$REDIS_URL" --database-url "$PG_URL/$DB2" \
  </dev/null >>"$WORK/baseline.log" 2>&1 9>&- &
SERVICE_PIDS+=("$!")
wait_for_http "http://$BASE/static" 60 "$!" || die "bench-baseline did not start (see $WORK/baseline.log)"

# ---------------------------------------------------------------- cases

# One case per index: its name, transport, how it runs (wrk URL [LUA] | grpc KIND ID |
# h2load URL FRAME), the
# baseline route it is compared to ("" for none); the baseline cases name themselves.
NAMES=() TRANSPORTS=() RUNS=() BASELINES=() BASELINE_NAMES=()
case_() { NAMES+=("$1") TRANSPORTS+=("$2") BASELINES+=("$3") BASELINE_NAMES+=("$4") RUNS+=("$5"); }

case_ "baseline: Redis GET" http "" redis "wrk http://$BASE/redis/$BASE_KEY"
case_ "baseline: PostgreSQL select" http "" pg "wrk http://$BASE/pg/students/$SID2"
case_ "baseline: static body" http "" static "wrk http://$BASE/static"
case_ "students GET /{id} (cached)" http redis "" "wrk http://$S/api/students/$SID"
# Right after the untraced read they are compared with, so that all three meet the same load.
case_ "students GET /{id} (cached), traced (ratio 0.1)" http "students GET /{id} (cached)" "" \
  "wrk http://$ST/api/students/$SID"
case_ "students GET /{id} (cached), traced, collector down" http "students GET /{id} (cached)" "" \
  "wrk http://$SX/api/students/$SID"
case_ "courses GET /{id} (cached)" http redis "" "wrk http://$C/api/courses/$CID"
case_ "students Get (cached)" grpc redis "" "grpc $S_GRPC students $SID"
case_ "courses Get (cached)" grpc redis "" "grpc $C_GRPC courses $CID"
grpc_frame "$WORK/get-student.grpc" "$SID"
grpc_frame "$WORK/get-course.grpc" "$CID"
case_ "students Get (cached), h2load" grpc redis "" "h2load http://$S_GRPC/nis.v1.StudentService/GetStudent $WORK/get-student.grpc"
case_ "courses Get (cached), h2load" grpc redis "" "h2load http://$C_GRPC/nis.v1.CourseService/GetCourse $WORK/get-course.grpc"
case_ "students list of 50 (cached)" http redis "" "wrk http://$S/api/students?limit=50"
case_ "courses list of 50 (cached)" http redis "" "wrk http://$C/api/courses?limit=50"
case_ "students GET /{id}/courses (cross)" http "" "" "wrk http://$S/api/students/$SID/courses"
case_ "courses GET /{id}/students (cross)" http "" "" "wrk http://$C/api/courses/$CID/students"
case_ "students GET /{id} (database path)" http pg "" "wrk http://$SN/api/students/$SID2"
case_ "courses GET /{id} (database path)" http "" "" "wrk http://$CN/api/courses/$CID2"
S_PUT='{"name":"@NAME@","first_name":"Ada","last_name":"Lovelace","course_ids":@IDS@}'
C_PUT='{"name":"Algebra","description":"Groups, rings and fields","discipline":"Mathematics","teacher":"Emmy Noether","student_ids":@IDS@}'
case_ "students POST" http "" "" "wrk http://$S $(lua s-post POST /api/students '{"name":"b@N@","first_name":"Ada","last_name":"Lovelace"}')"
case_ "courses POST" http "" "" "wrk http://$C $(lua c-post POST /api/courses "$COURSE")"
case_ "students PUT, no link change" http "" "" "wrk http://$S $(lua s-put PUT /api/students/ "$S_PUT" "${S_IDS[*]}" "${S_NAMES[*]}")"
case_ "students PUT, link changes" http "" "" "wrk http://$S $(lua s-put-links PUT /api/students/ "$S_PUT" "${S_IDS[*]}" "${S_NAMES[*]}" "${C_IDS[*]}")"
case_ "courses PUT, no link change" http "" "" "wrk http://$C $(lua c-put PUT /api/courses/ "$C_PUT" "${C_IDS[*]}")"
case_ "courses PUT, link changes" http "" "" "wrk http://$C $(lua c-put-links PUT /api/courses/ "$C_PUT" "${C_IDS[*]}" "" "${S_IDS[*]}")"

# measure INDEX SECONDS: run case INDEX for SECONDS; print "REQ_PER_S P50_MS P99_MS BAD".
measure() {
  local run grpc
  read -r -a run <<<"${RUNS[$1]}"
  case ${run[0]} in
    wrk)
      # A read case starts from a filled cache: the writes of the previous cases made every
      # list stale, and ten connections missing at once would measure the store's scan.
      if [[ -z ${run[2]:-} ]]; then
        curl -fsS --max-time 120 -o /dev/null "${run[1]}" || die "GET ${run[1]} failed"
      fi
      wrk_run "$2" "${run[1]}" "${run[2]:-}" ;;
    grpc)
      grpc=$(timeout $(( $2 + 60 )) "$BIN_DIR/bench-grpc" --url "http://${run[1]}" --kind "${run[2]}" \
        --id "${run[3]}" --connections "$CONNECTIONS" --duration-secs "$2" --warmup-secs 0) \
        || die "bench-grpc failed on ${NAMES[$1]}"
      jq -r '"\(.rps) \(.p50_ms // -1) \(.p99_ms // -1) \(.errors)"' <<<"$grpc" ;;
    h2load) h2load_run "$2" "${run[1]}" "${run[2]}" ;;
  esac
}

# metric_sum NAME FILTER ADDR...: the sum of the samples of metric NAME whose labels match the
# regular expression FILTER, over the /metrics of every ADDR.
metric_sum() {
  local name=$1 filter=$2 addr
  shift 2
  for addr in "$@"; do curl -fsS --max-time 5 "http://$addr/metrics" || die "GET $addr/metrics failed"; done \
    | awk -v n="$name" -v f="$filter" 'index($0, n) == 1 && $0 ~ f { s += $NF } END { printf "%d\n", s }'
}

# settle: wait until every link change recorded so far has been published and applied on the
# other side (outboxes empty; as many final outcomes consumed as events published), so that
# the next cases and the propagation are not measured behind a backlog; logs how long that
# took.
settle() {
  local started=$SECONDS deadline=$(( SECONDS + 1800 )) final='outcome="(applied|duplicate|compensated|dead_lettered)"'
  local pending s_pub c_pub s_done c_done
  while :; do
    pending=$(metric_sum nis_outbox_pending '' "$S" "$C")
    s_pub=$(metric_sum nis_events_published_total '' "$S" "$ST" "$SX")
    c_pub=$(metric_sum nis_events_published_total '' "$C")
    s_done=$(metric_sum nis_events_consumed_total "$final" "$S" "$ST" "$SX")
    c_done=$(metric_sum nis_events_consumed_total "$final" "$C")
    (( pending == 0 && c_done >= s_pub && s_done >= c_pub )) && break
    (( SECONDS < deadline )) || die "the link changes were not all applied within 1800s ($pending pending; courses applied $c_done of $s_pub; students $s_done of $c_pub)"
    sleep 1
  done
  log "every link change applied on the other side (waited $(( SECONDS - started ))s)"
}

# propagation ROUND: link changes timed while wrk loads the cached student GET.
propagation() {
  local load out
  wrk -t1 -c"$CONNECTIONS" -d600s "http://$S/api/students/$SID" >/dev/null 2>&1 &
  load=$!
  out=$(timeout 600 "$BIN_DIR/bench-propagation" --students "http://$S" --courses "http://$C" \
    --samples "$SAMPLES" --timeout-ms 5000) || { kill "$load" 2>/dev/null; die "bench-propagation failed"; }
  kill "$load" 2>/dev/null || true
  wait "$load" 2>/dev/null || true
  result "$(jq -c --argjson r "$1" '{kind: "propagation", round: $r} + .' <<<"$out")"
  log "propagation round $1: $(jq -c . <<<"$out")"
}

# ---------------------------------------------------------------- measure

if (( WARMUP > 0 )); then
  log "warm-up: ${WARMUP}s of each case"
  for i in "${!NAMES[@]}"; do measure "$i" "$WARMUP" >/dev/null || die "${NAMES[$i]} failed"; done
  settle
fi
failed=0
for (( round = 1; round <= ROUNDS; round++ )); do
  for i in "${!NAMES[@]}"; do
    measured=$(measure "$i" "$DURATION") || die "${NAMES[$i]} could not be measured"
    read -r rps p50 p99 bad <<<"$measured"
    log "round $round: ${NAMES[$i]}: $rps req/s, p99 $p99 ms${bad:+, $bad bad answers}"
    if (( bad > 0 )); then
      warn "${NAMES[$i]}: $bad non-2xx answers or socket errors"
      failed=1
    fi
    result "$(jq -nc --arg case "${NAMES[$i]}" --arg t "${TRANSPORTS[$i]}" --argjson r "$round" \
      --argjson rps "$rps" --argjson p50 "$p50" --argjson p99 "$p99" --arg b "${BASELINES[$i]}" \
      --arg bn "${BASELINE_NAMES[$i]}" \
      '{kind: "load", case: $case, transport: $t, round: $r, rps: $rps, p50_ms: $p50, p99_ms: $p99,
        baseline: (if $b == "" then null else $b end)} + (if $bn == "" then {} else {baseline_name: $bn} end)')"
  done
  settle
  propagation "$round"
done

# ---------------------------------------------------------------- the rest of the results

# The traced replicas' spans: how many reached the local endpoint (those still batched when it
# stops are not counted), and how many the replica whose collector is down counted as dropped.
sink_lost=$(metric_sum nis_trace_spans_dropped_total '' "$ST")
down_dropped=$(metric_sum nis_trace_spans_dropped_total '' "$SX")
kill -s TERM "$OTLP_PID" 2>/dev/null || true
wait "$OTLP_PID" 2>/dev/null || true
received=$(jq -r '.spans' "$WORK/otlp-sink.log" 2>/dev/null | tail -n1)
meta traces "ratio 0.1: ${received:-no} spans received by the local OTLP endpoint (${sink_lost} dropped); with the collector down, ${down_dropped} spans counted dropped"
if [[ ! ${received:-0} =~ ^[1-9][0-9]*$ ]] || (( down_dropped == 0 )); then
  warn "the traced replicas exported nothing, or the one without a collector dropped nothing (see $WORK/students-traced*.log)"
  failed=1
fi

result "$(jq -nc --argjson i "$IDLE_S" --argjson a "$(rss_kb "$S_PID")" '{kind: "rss", service: "students", idle_kb: $i, after_kb: $a}')"
result "$(jq -nc --argjson i "$IDLE_C" --argjson a "$(rss_kb "$C_PID")" '{kind: "rss", service: "courses", idle_kb: $i, after_kb: $a}')"
for b in students courses initializer; do
  strip -o "$WORK/$b.stripped" "$BIN_DIR/$b"
  result "$(jq -nc --arg b "$b" --argjson s "$(stat -c %s "$WORK/$b.stripped")" '{kind: "size", binary: $b, stripped_bytes: $s}')"
done
# ---------------------------------------------------------------- reconciliation

# A third pair over 20,000 students, 4,000 courses and 200,000 linked pairs written straight
# into its stores (bench-reconcile seed), with periodic runs off; `students reconcile` runs
# over agreeing sides, then with 1 % of the pairs made to disagree (half each way), then once
# more. Each run records what it printed and the peak RSS of both services and of the command.
stop_services
R_FIXTURE=(--database-url "$PG_URL/$DB3" --mongodb-uri "$MONGODB_URI" --mongodb-database "${PREFIX3}_courses")
r_env=(NIS_PREFIX="$PREFIX3" NATS_URL="$NATS_URL" REDIS_URL="$REDIS_URL" LOG_FORMAT=json)
env "${r_env[@]}" DATABASE_URL="$PG_URL/$DB3" "$BIN_DIR/students" migrate >>"$WORK/reconcile.log" 2>&1 \
  || die "students migrate failed (see $WORK/reconcile.log)"
env "${r_env[@]}" MONGODB_URI="$MONGODB_URI" MONGODB_DATABASE="${PREFIX3}_courses" "$BIN_DIR/courses" migrate \
  >>"$WORK/reconcile.log" 2>&1 || die "courses migrate failed (see $WORK/reconcile.log)"
log "reconcile: seeding 20,000 students, 4,000 courses, 200,000 pairs"
"$BIN_DIR/bench-reconcile" seed "${R_FIXTURE[@]}" 2>>"$WORK/reconcile.log" || die "bench-reconcile seed failed"
read -r -a RP <<<"$(free_ports 4)"
R_S=127.0.0.1:${RP[0]} R_C=127.0.0.1:${RP[1]} R_S_GRPC=127.0.0.1:${RP[2]} R_C_GRPC=127.0.0.1:${RP[3]}
PREFIX=$PREFIX3 start students-reconcile "$R_S" students GRPC_ADDR="$R_S_GRPC" REDIS_URL="$REDIS_URL" \
  COURSES_GRPC_URL="http://$R_C_GRPC" DATABASE_URL="$PG_URL/$DB3" RECONCILE_INTERVAL_SECS=0
R_S_PID=$STARTED
PREFIX=$PREFIX3 start courses-reconcile "$R_C" courses GRPC_ADDR="$R_C_GRPC" REDIS_URL="$REDIS_URL" \
  STUDENTS_GRPC_URL="http://$R_S_GRPC" MONGODB_URI="$MONGODB_URI" MONGODB_DATABASE="${PREFIX3}_courses" \
  RECONCILE_INTERVAL_SECS=0
R_C_PID=$STARTED
wait_for_http "http://$R_S/readyz" 60 "$R_S_PID" || die "students (reconcile) not ready"
wait_for_http "http://$R_C/readyz" 60 "$R_C_PID" || die "courses (reconcile) not ready"

# reconcile_run CASE: `students reconcile` against the pair, sampling the peak RSS of the
# services and of the command every 50 ms; one result line.
reconcile_run() {
  local out=$WORK/reconcile-run.txt pid peak_s=0 peak_c=0 peak_r=0 kb
  env "${r_env[@]}" DATABASE_URL="$PG_URL/$DB3" COURSES_GRPC_URL="http://$R_C_GRPC" RECONCILE_GRACE_SECS=0 \
    "$BIN_DIR/students" reconcile >"$out" 2>>"$WORK/reconcile.log" &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    kb=$(rss_kb "$R_S_PID"); (( kb > peak_s )) && peak_s=$kb
    kb=$(rss_kb "$R_C_PID"); (( kb > peak_c )) && peak_c=$kb
    kb=$(rss_kb "$pid" 2>/dev/null || echo 0); (( ${kb:-0} > peak_r )) && peak_r=$kb
    sleep 0.05
  done
  wait "$pid" || { cat "$out" >&2; die "students reconcile failed ($1)"; }
  # The run's figures, from its JSON log line (the report after it is text).
  result "$(grep '^{' "$out" | jq -c --arg c "$1" --argjson s "$peak_s" --argjson co "$peak_c" --argjson r "$peak_r" \
    'select(.fields.pairs != null) | .fields | {kind: "reconcile", case: $c, pairs, buckets: .buckets_differed,
      here: .repaired_here, peer: .repaired_peer, bytes: .bytes_exchanged, seconds: .duration_s,
      students_kb: $s, courses_kb: $co, command_kb: $r}')"
  log "reconcile ($1): $(grep -v '^{' "$out" | tr -s ' ' | tr '\n' ';')"
}
reconcile_run "200,000 agreeing pairs"
"$BIN_DIR/bench-reconcile" disagree "${R_FIXTURE[@]}" --pairs 2000 2>>"$WORK/reconcile.log" \
  || die "bench-reconcile disagree failed"
reconcile_run "2,000 of them disagreeing (1 %)"
reconcile_run "after the repair"
stop_services

meta date "$(date -u '+%Y-%m-%d %H:%M UTC')"
meta machine "$(nproc) cores ($(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)), $(awk '/^MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo) RAM; load tool on the same cores"
meta versions "$(rustc --version | cut -d' ' -f1-2); $(wrk --version 2>&1 | head -n1 | cut -d' ' -f1-2); PostgreSQL $(psql -w -X -tA -d "$PG_URL/postgres" -c 'show server_version' | cut -d' ' -f1); Redis $(redis-cli -u "$REDIS_URL" info server | awk -F: '/^redis_version/ {print $2}' | tr -d '\r'); MongoDB: $(if [[ -n $MONGO_STARTED ]]; then echo 'the MongoDB-compatible test server of scripts/mongo.sh'; else echo 'the server of MONGODB_URI'; fi)"
meta command "make bench (BENCH_ROUNDS=$ROUNDS BENCH_DURATION=$DURATION BENCH_CONNECTIONS=$CONNECTIONS BENCH_THREADS=$THREADS BENCH_SAMPLES=$SAMPLES)"
log "load: $(uptime)"

# ---------------------------------------------------------------- report

stop_services
report=$WORK/report.md
png=docs/benchmarks.png
[[ $OUT == - ]] && png=$WORK/benchmarks.png
"$BIN_DIR/bench-report" --results "$RESULTS" --png "$png" >"$report" || die "bench-report failed"
cat "$report"
if [[ $OUT != - ]]; then
  {
    echo "# Benchmarks"
    echo
    echo "Produced by \`make bench\` (scripts/bench.sh; what it starts and measures is described at"
    echo "its top). Reproduce with \`make bench\` on a machine with the servers \`make up\` uses; the"
    echo "figures below are from one run, on the machine it names. Each load case ran"
    echo "$ROUNDS times for ${DURATION} s at $CONNECTIONS connections, interleaved with the other cases;"
    echo "the ratio compares its median throughput with the median of its baseline route, the"
    echo "bare actix-web server doing only the same Redis GET or PostgreSQL select. Where the"
    echo "time goes, and what was changed because of it: [performance.md](performance.md)."
    echo
    echo "![throughput and p99 per case](benchmarks.png)"
    echo
    sed '1{/^# /d}' "$report"
  } >"$OUT"
  log "wrote $OUT and $png"
fi
cp "$RESULTS" "${TMPDIR:-/tmp}/nis-bench-results.jsonl"
log "raw results: ${TMPDIR:-/tmp}/nis-bench-results.jsonl"
(( failed == 0 )) || die "some cases had failed requests (see the warnings above)"
