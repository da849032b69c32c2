#!/usr/bin/env bash
# make test: make sure PostgreSQL, Redis and NATS run (starting what is
# missing) and schemathesis is installed (scripts/fuzz.sh), check formatting
# and clippy, then run every test with nextest.
# Tests get the servers from NIS_TEST_* (each test makes its own database,
# key prefix and stream prefix); set them in the environment or .env to use
# other servers. Exits non-zero on any failure.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$NIS_ROOT"

load_dotenv "$NIS_ROOT/.env"

: "${NIS_TEST_POSTGRES_URL:=postgres://postgres@127.0.0.1:5432}"   # no database
: "${NIS_TEST_REDIS_URL:=redis://127.0.0.1:6379}"
: "${NIS_TEST_NATS_URL:=nats://127.0.0.1:4222}"
export NIS_TEST_POSTGRES_URL NIS_TEST_REDIS_URL NIS_TEST_NATS_URL

nis_lock
ensure_servers_for "$NIS_TEST_POSTGRES_URL" "$NIS_TEST_REDIS_URL" "$NIS_TEST_NATS_URL"
export NIS_TEST_NATS_URL=$NIS_NATS_URL
# The chaos test runs a private NATS: the same release.
NIS_NATS_SERVER=$(nats_server_bin)
export NIS_NATS_SERVER
nis_unlock   # tests take a while; let `make up/down` run meanwhile

# Databases left behind by tests that panicked before their cleanup (names: <stem>_test_<32 hex>).
psql -w -X -tA -d "$NIS_TEST_POSTGRES_URL/postgres" \
  -c "select datname from pg_database where datname ~ '^[a-z]+_test_[0-9a-f]{32}$'" 2>/dev/null \
  | while read -r db; do
      if [[ -n $db ]]; then
        psql -w -X -q -d "$NIS_TEST_POSTGRES_URL/postgres" -c "drop database if exists \"$db\" with (force)" || true
      fi
    done

# MongoDB for the courses tests: the given server, else a private MongoDB-compatible test
# server (scripts/mongo.sh) that is stopped when the tests end.
if [[ -z ${NIS_TEST_MONGODB_URI:-} ]]; then
  export NIS_MONGO_DIR=$NIS_RUN_DIR/test-mongo
  mkdir -p "$NIS_MONGO_DIR"
  trap 'MONGODB_URI="" "$NIS_ROOT/scripts/mongo.sh" stop >/dev/null 2>&1 || true' EXIT
  NIS_TEST_MONGODB_URI=$(MONGODB_URI='' "$NIS_ROOT/scripts/mongo.sh" start)
fi
export NIS_TEST_MONGODB_URI

"$NIS_ROOT/scripts/lint.sh"
bash "$NIS_ROOT/scripts/deploy-checks.sh"   # also installs prometheus, which e2e's monitoring test runs
export NIS_TEST_PROMETHEUS=${NIS_TEST_PROMETHEUS:-$(command -v prometheus)}
"$NIS_ROOT/scripts/fuzz.sh" ensure >/dev/null   # schemathesis, which e2e's fuzz test runs

if ! cargo nextest --version >/dev/null 2>&1; then
  log "cargo-nextest missing: cargo install --locked cargo-nextest"
  cargo install --locked cargo-nextest
fi

cargo build --workspace --bins   # the binaries the chaos test starts (docs/chaos.md)
log "cargo nextest run --workspace --no-fail-fast"
cargo nextest run --workspace --no-fail-fast
