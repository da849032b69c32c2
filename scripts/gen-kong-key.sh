#!/usr/bin/env bash
# Makes sure .env holds a Kong API key (KONG_API_KEY) for `docker compose up`.
#
#   scripts/gen-kong-key.sh          generate one when .env has none
#   scripts/gen-kong-key.sh --print  the same, then print the key on stdout
#
# A KONG_API_KEY already in .env is never replaced: delete its line to rotate
# the key (docker compose prefers an exported KONG_API_KEY over .env). A new
# key is 64 hex characters from /dev/urandom; a key you set yourself may use
# A-Z a-z 0-9 . _ ~ - (16-128 characters, see kong/render-config.sh). .env is
# git-ignored; a newly created one is readable by its owner only.
#
# Environment: NIS_ENV_FILE (default <repo>/.env).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
env_file=${NIS_ENV_FILE:-$root/.env}
print=false
case ${1:-} in
  "") ;;
  --print) print=true ;;
  *) echo "usage: $0 [--print]" >&2; exit 2 ;;
esac

# The value of KONG_API_KEY in the file, if any (last assignment wins, as in
# bash and docker compose; optional quotes removed).
current_key() {
  [[ -f $env_file ]] || return 0
  sed -n -E 's/^[[:space:]]*(export[[:space:]]+)?KONG_API_KEY=//p' "$env_file" \
    | tail -n 1 | sed -E "s/^[\"']//; s/[\"'][[:space:]]*$//"
}

key=$(current_key)
if [[ -n $key ]]; then
  echo "gen-kong-key: $env_file already has KONG_API_KEY; left as it is" >&2
else
  key=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
  [[ ${#key} -eq 64 ]] || { echo "gen-kong-key: could not read /dev/urandom" >&2; exit 1; }
  if [[ ! -e $env_file ]]; then
    (umask 077 && : >"$env_file")
  elif [[ -s $env_file && $(tail -c 1 "$env_file" | od -An -c | tr -d ' ') != '\n' ]]; then
    echo >>"$env_file"   # the file did not end with a newline
  fi
  {
    echo "# Kong API key for docker compose (scripts/gen-kong-key.sh, $(date -u +%Y-%m-%d))."
    echo "KONG_API_KEY=$key"
  } >>"$env_file"
  echo "gen-kong-key: wrote a new KONG_API_KEY to $env_file" >&2
fi

if $print; then
  echo "$key"
fi
