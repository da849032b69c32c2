#!/usr/bin/env bash
# make chaos [SEED=n] [DURATION=secs]: build release binaries, then run one bounded, seeded
# fault campaign against two replicas of each service (docs/chaos.md). The campaign starts its
# own NATS and Redis on free ports and makes (and drops) its own databases; PostgreSQL is
# NIS_TEST_POSTGRES_URL (default 127.0.0.1:5432, started when missing), MongoDB is
# NIS_TEST_MONGODB_URI or MONGODB_URI, else a private MongoDB-compatible server started here
# and stopped at exit. Without SEED a seed is drawn from the clock (printed, for replays).
# Exit status: the campaign's (0 all checks passed, 1 a check failed, 2 it could not run).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$NIS_ROOT"

load_dotenv "$NIS_ROOT/.env"

SEED=${SEED:-$(( $(date +%s) % 1000000 ))}
DURATION=${DURATION:-180}
[[ $SEED =~ ^[0-9]+$ ]] || die "SEED must be a whole number (got '$SEED')"
if ! [[ $DURATION =~ ^[0-9]+$ ]] || (( DURATION == 0 )); then
  die "DURATION must be a whole number of seconds (got '$DURATION')"
fi

: "${NIS_TEST_POSTGRES_URL:=postgres://postgres@127.0.0.1:5432}"   # no database
export NIS_TEST_POSTGRES_URL

# The campaign runs nats-server (of the release production runs) and redis-server itself,
# on free ports.
NIS_NATS_SERVER=$(nats_server_bin)
export NIS_NATS_SERVER
command -v redis-server >/dev/null || apt_install redis-server

nis_lock
if is_local_default "$NIS_TEST_POSTGRES_URL" 5432; then
  ensure_postgres 5432
else
  check_reachable PostgreSQL "$NIS_TEST_POSTGRES_URL"
fi
nis_unlock

NIS_TEST_MONGODB_URI=${NIS_TEST_MONGODB_URI:-${MONGODB_URI:-}}
if [[ -z $NIS_TEST_MONGODB_URI ]]; then
  export NIS_MONGO_DIR=$NIS_RUN_DIR/chaos-mongo
  mkdir -p "$NIS_MONGO_DIR"
  stop_mongo() { MONGODB_URI='' "$NIS_ROOT/scripts/mongo.sh" stop >/dev/null 2>&1 || true; }
  trap stop_mongo EXIT
  NIS_TEST_MONGODB_URI=$(MONGODB_URI='' "$NIS_ROOT/scripts/mongo.sh" start)
fi
export NIS_TEST_MONGODB_URI

log "cargo build --release -p students -p courses -p initializer -p chaos"
cargo build --release -p students -p courses -p initializer -p chaos
bin=$(target_dir)/release
run_dir=$NIS_RUN_DIR/chaos/seed-$SEED

log "chaos --seed $SEED --duration $DURATION (logs: ${run_dir#"$NIS_ROOT"/})"
"$bin/chaos" --seed "$SEED" --duration "$DURATION" --bin-dir "$bin" --run-dir "$run_dir"
