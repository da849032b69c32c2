#!/bin/sh
# Entry point of the Kong container in docker-compose.yml: puts the API key
# into the declarative config, then starts Kong with the image's own
# entrypoint.
#
# Why a rendering step: Kong 3.x reads a declarative file verbatim (no
# environment substitution), and the key of a key-auth credential is not a
# vault-referenceable field, so "{vault://env/...}" would become the literal
# key. The rendered file lives in /tmp inside the container only.
#
# Usage (container):  render-config.sh kong docker-start
# Usage (checks):     render-config.sh --render-only   (renders and exits)
#
# Environment:
#   KONG_API_KEY          the key (16-128 characters of A-Z a-z 0-9 . _ ~ -)
#   NIS_KONG_TEMPLATE     template path (default: kong.yml beside this script)
#   NIS_KONG_RENDERED     output path   (default: /tmp/kong.yml)
set -eu

here=$(cd "$(dirname "$0")" && pwd)
template=${NIS_KONG_TEMPLATE:-$here/kong.yml}
rendered=${NIS_KONG_RENDERED:-/tmp/kong.yml}

fail() { echo "render-config: $*" >&2; exit 1; }

key=${KONG_API_KEY:-}
[ -n "$key" ] || fail "KONG_API_KEY is not set (scripts/gen-kong-key.sh writes one into .env)"
# A restricted alphabet keeps the key safe in an HTTP header and in the sed
# replacement below (no '/', '&', '\' or newline can reach it).
case $key in
  *[!A-Za-z0-9._~-]*) fail "KONG_API_KEY may only hold A-Z a-z 0-9 . _ ~ -" ;;
esac
[ "${#key}" -ge 16 ] || fail "KONG_API_KEY is too short (16 characters at least)"
[ "${#key}" -le 128 ] || fail "KONG_API_KEY is too long (128 characters at most)"
[ -r "$template" ] || fail "cannot read $template"

umask 077
sed "s/\${KONG_API_KEY}/$key/g" "$template" >"$rendered"
# shellcheck disable=SC2016 # a literal "${" is what we look for
if grep -q '\${' "$rendered"; then
  fail "$rendered still holds a \${...} placeholder"
fi

if [ "${1:-}" = "--render-only" ]; then
  exit 0
fi

# Kong itself never sees the variable, only the rendered file.
unset KONG_API_KEY
export KONG_DECLARATIVE_CONFIG="$rendered"
exec /docker-entrypoint.sh "$@"
