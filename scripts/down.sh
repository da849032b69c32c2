#!/usr/bin/env bash
# make down: stop what `make up` (and `make test`) started, and nothing else:
# first the services (.run/*.pid), then the servers the scripts started
# themselves (.run/servers/*.pid). Servers that were already running stay up.
# Idempotent: with nothing running it just says so.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

nis_lock
shopt -s nullglob
stopped=0

# Services: SIGTERM, up to 15 s to exit, then SIGKILL.
for pidfile in "$NIS_RUN_DIR"/*.pid; do
  [[ $(basename "$pidfile") == mongo.pid ]] && continue   # below, with its URI
  pidfile_alive "$pidfile" >/dev/null && stopped=$((stopped + 1))
  stop_pidfile "$pidfile" 15
done

# The MongoDB-compatible test server, if mongo.sh started one.
if [[ -f $NIS_RUN_DIR/mongo.pid ]]; then
  pidfile_alive "$NIS_RUN_DIR/mongo.pid" >/dev/null && stopped=$((stopped + 1))
  "$NIS_ROOT/scripts/mongo.sh" stop
fi

# Servers these scripts started (each pidfile names its graceful signal).
for pidfile in "$NIS_SERVERS_DIR"/*.pid; do
  pidfile_alive "$pidfile" >/dev/null && stopped=$((stopped + 1))
  stop_pidfile "$pidfile" 30
done

if (( stopped == 0 )); then
  log "nothing to stop"
else
  log "stopped $stopped process(es)"
fi
