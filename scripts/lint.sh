#!/usr/bin/env bash
# make lint: formatting check and clippy with warnings as errors.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$NIS_ROOT"

log "cargo fmt --all -- --check"
cargo fmt --all -- --check || die "formatting differs; run 'make fmt'"

log "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings
