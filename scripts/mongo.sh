#!/usr/bin/env bash
# A MongoDB-compatible server for tests and `make up` on machines where
# MongoDB can't be installed (see shared TESTING.md): SecantusDB, a Python
# server speaking the MongoDB wire protocol, in a virtualenv outside the
# source tree. Never used when MONGODB_URI is set, nor in containers.
#
#   scripts/mongo.sh start   start it (once) and print its URI on stdout
#   scripts/mongo.sh stop    stop it (by pid)
#   scripts/mongo.sh status  print the URI if running, else exit 1
#
# Environment:
#   MONGODB_URI        if set, `start` just prints it and starts nothing
#   NIS_MONGO_DIR      where mongo.pid / mongo.uri / mongo.log go (default .run)
#   NIS_MONGO_PORT     port to listen on (default: a free one)
#   NIS_SECANTUS_VENV  the virtualenv (default ${XDG_CACHE_HOME:-~/.cache}/nis/secantus-venv)
#   NIS_PYTHON         python to create it with (default python3)
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

dir=${NIS_MONGO_DIR:-$NIS_RUN_DIR}
pidfile=$dir/mongo.pid urifile=$dir/mongo.uri logfile=$dir/mongo.log
venv=${NIS_SECANTUS_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/nis/secantus-venv}
python=${NIS_PYTHON:-python3}

# ensure_venv: create the virtualenv with SecantusDB once. A marker file
# says the install finished; a half-made venv is thrown away and redone.
ensure_venv() {
  mkdir -p "$(dirname "$venv")"
  exec 8>"$venv.lock"
  flock -w 600 8 || die "could not lock $venv.lock"
  if [[ ! -f $venv/.nis-ready || ! -x $venv/bin/secantusd-py ]]; then
    local t0=$SECONDS
    log "creating $venv with SecantusDB (first time only)"
    rm -rf "$venv"
    if ! "$python" -m venv "$venv" 8>&-; then
      # Debian's python3 needs python3-venv for `-m venv`.
      rm -rf "$venv"
      apt_install python3-venv
      "$python" -m venv "$venv" 8>&-
    fi
    "$venv/bin/pip" install -q --disable-pip-version-check SecantusDB 8>&- \
      || die "pip install SecantusDB failed"
    [[ -x $venv/bin/secantusd-py ]] || die "SecantusDB installed no secantusd-py in $venv/bin"
    touch "$venv/.nis-ready"
    log "venv ready in $((SECONDS - t0))s"
  fi
  exec 8>&-
}

free_port() {
  "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start() {
  if [[ -n ${MONGODB_URI:-} ]]; then
    echo "$MONGODB_URI"
    return 0
  fi
  mkdir -p "$dir"
  exec 9>"$dir/mongo.lock"
  flock -w 600 9 || die "could not lock $dir/mongo.lock"
  local pid port uri attempt
  if pid=$(pidfile_alive "$pidfile") && [[ -s $urifile ]]; then
    log "mongo: already running (pid $pid)"
    cat "$urifile"
    return 0
  fi
  ensure_venv
  # A free port can be taken between picking and binding: retry a few times.
  for attempt in 1 2 3; do
    port=${NIS_MONGO_PORT:-$(free_port)}
    log "mongo: starting secantusd-py on 127.0.0.1:$port (log: $logfile)"
    printf '\n==== %s starting secantusd-py on port %s\n' "$(date -Is)" "$port" >>"$logfile"
    setsid "$venv/bin/secantusd-py" --host 127.0.0.1 --port "$port" --storage-path :memory: \
      </dev/null >>"$logfile" 2>&1 9>&- &
    pid=$!
    record_pid "$pidfile" "$pid" TERM
    if wait_for_tcp 127.0.0.1 "$port" 60 "$pid"; then
      uri="mongodb://127.0.0.1:$port/?directConnection=true"
      echo "$uri" >"$urifile"
      log "mongo: ready at $uri"
      echo "$uri"
      return 0
    fi
    stop_pidfile "$pidfile" 5
    [[ -z ${NIS_MONGO_PORT:-} ]] || break
    log "mongo: attempt $attempt failed"
  done
  tail -n 20 "$logfile" >&2 || true
  die "mongo: secantusd-py did not start (see $logfile)"
}

stop() {
  stop_pidfile "$pidfile" 15
  rm -f "$urifile"
}

status() {
  pidfile_alive "$pidfile" >/dev/null && [[ -s $urifile ]] || return 1
  cat "$urifile"
}

case ${1:-} in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
