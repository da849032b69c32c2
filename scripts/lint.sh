#!/usr/bin/env bash
# make lint: formatting check, clippy with warnings as errors, and shellcheck on every
# shell script of the project (installed from Debian when missing).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$NIS_ROOT"

log "cargo fmt --all -- --check"
cargo fmt --all -- --check || die "formatting differs; run 'make fmt'"

log "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

command -v shellcheck >/dev/null || apt_install shellcheck
log "shellcheck scripts/*.sh k8s/install.sh"
shellcheck -x scripts/*.sh k8s/install.sh
