#!/usr/bin/env bash
# Schema-driven fuzzing of a running service's HTTP API with schemathesis, from the OpenAPI
# document the service serves itself.
#
#   scripts/fuzz.sh ensure                        create the virtualenv once; prints its path
#   scripts/fuzz.sh run BASE_URL KIND [quick|long]
#       KIND is students or courses. Downloads BASE_URL/api/KIND/openapi.json, validates it
#       with openapi-spec-validator, then runs schemathesis on it against BASE_URL: positive
#       and negative data, the phases examples, coverage, fuzzing and stateful (the document's
#       links and the ones schemathesis infers), every check, seed 42, no example database.
#       quick: 25 examples per operation (a few seconds per service, for `make test`);
#       long:  1000 examples per operation and stateful scenario (minutes, for a human).
#       Exits non-zero if the document is invalid or schemathesis reports anything; prints the
#       number of requests sent per operation and phase.
#
# Environment:
#   NIS_FUZZ_VENV        the virtualenv (default ${XDG_CACHE_HOME:-~/.cache}/nis/fuzz-venv),
#                        rebuilt when scripts/fuzz/requirements.txt changes
#   NIS_FUZZ_REPORT_DIR  where each run writes openapi.json, events.ndjson (every request and
#                        response), junit.xml and requests.txt, in a folder KIND-BUDGET
#                        emptied first (default .run/fuzz)
#   NIS_FUZZ_SEED        seed (default 42)
#   NIS_FUZZ_MAX_EXAMPLES, NIS_FUZZ_WORKERS  override the budget's examples / workers (1)
#   NIS_PYTHON           python to create the virtualenv with (default python3)
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

fuzz_dir=$NIS_ROOT/scripts/fuzz
requirements=$fuzz_dir/requirements.txt
venv=${NIS_FUZZ_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/nis/fuzz-venv}
python=${NIS_PYTHON:-python3}

usage() {
  echo "usage: $0 ensure | run BASE_URL students|courses [quick|long]" >&2
  exit 2
}

# ensure_venv: create the virtualenv with the pinned packages once. The marker carries a hash
# of requirements.txt, so a changed file rebuilds it; a half-made venv has no marker and is
# thrown away and redone. The lock keeps two runs at once (the suites of both services) from
# building it twice.
ensure_venv() {
  local stamp t0
  stamp=$(sha256sum "$requirements" | cut -c1-16)
  mkdir -p "$(dirname "$venv")"
  exec 8>"$venv.lock"
  flock -w 600 8 || die "could not lock $venv.lock within 600s"
  if [[ ! -f $venv/.nis-ready-$stamp ]]; then
    t0=$SECONDS
    log "creating $venv with schemathesis (first time only)"
    rm -rf "$venv"
    if ! "$python" -m venv "$venv" 8>&- >&2; then
      # Debian's python3 needs python3-venv for `-m venv`.
      rm -rf "$venv"
      apt_install python3-venv
      "$python" -m venv "$venv" 8>&- >&2
    fi
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$requirements" 8>&- >&2 \
      || die "pip install -r $requirements failed"
    [[ -x $venv/bin/st && -x $venv/bin/openapi-spec-validator ]] \
      || die "the install left no st or openapi-spec-validator in $venv/bin"
    touch "$venv/.nis-ready-$stamp"
    log "fuzz venv ready in $((SECONDS - t0))s"
  fi
  exec 8>&-
}

# summarize EVENTS DOCUMENT: the requests schemathesis sent, per operation and phase, from
# its NDJSON event log (every recorded test case with its interactions). Methods the document
# does not declare on a path are the coverage phase's probes for 405.
summarize() {
  "$venv/bin/python" - "$1" "$2" <<'PY'
import collections, json, sys

events, document = sys.argv[1], sys.argv[2]
paths = json.load(open(document, encoding="utf-8")).get("paths", {})
phases = ["examples", "coverage", "fuzzing", "stateful"]
counts = collections.defaultdict(collections.Counter)
modes = collections.defaultdict(collections.Counter)
elapsed = 0.0
with open(events, encoding="utf-8") as lines:
    for line in lines:
        event = json.loads(line)
        if "EngineFinished" in event:
            elapsed = event["EngineFinished"].get("running_time") or 0.0
        finished = event.get("ScenarioFinished")
        if not finished or not finished.get("recorder"):
            continue
        recorder = finished["recorder"]
        interactions = recorder.get("interactions") or {}
        for case_id, node in (recorder.get("cases") or {}).items():
            case = node["value"]
            sent = 1 if case_id in interactions else 0
            if not sent:
                continue
            meta = case.get("meta") or {}
            phase = (meta.get("phase") or {}).get("name") or finished.get("phase", "?")
            phase = {"stateful_testing": "stateful"}.get(phase, phase)
            method = case["method"].upper()
            declared = method.lower() in paths.get(case["path"], {})
            label = f"{method} {case['path']}" + ("" if declared else "  (undeclared method)")
            counts[label][phase] += sent
            modes[label][(meta.get("generation") or {}).get("mode", "?")] += sent

width = max([len(label) for label in counts] + [9])
print(f"requests sent per operation (run time {elapsed:.1f}s):")
print(f"  {'operation':<{width}} " + " ".join(f"{p:>8}" for p in phases) + f" {'total':>7}  positive/negative")
total = collections.Counter()
for label in sorted(counts, key=lambda l: (l.endswith(")"), l.split()[1], l)):
    row = counts[label]
    total.update(row)
    print(f"  {label:<{width}} " + " ".join(f"{row[p]:>8}" for p in phases)
          + f" {sum(row.values()):>7}  {modes[label]['positive']}/{modes[label]['negative']}")
print(f"  {'all':<{width}} " + " ".join(f"{total[p]:>8}" for p in phases) + f" {sum(total.values()):>7}")
PY
}

run() {
  (( $# >= 2 && $# <= 3 )) || usage
  local base=${1%/} kind=$2 budget=${3:-quick} examples dir rc=0 t0
  case $kind in students | courses) ;; *) usage ;; esac
  case $budget in
    quick) examples=25 ;;
    long) examples=1000 ;;
    *) usage ;;
  esac
  examples=${NIS_FUZZ_MAX_EXAMPLES:-$examples}
  ensure_venv

  dir=${NIS_FUZZ_REPORT_DIR:-$NIS_RUN_DIR/fuzz}/$kind-$budget
  rm -rf "$dir"
  mkdir -p "$dir"
  log "fuzz $kind ($budget): $base/api/$kind/openapi.json (reports in $dir)"
  curl -fsS --max-time 10 -o "$dir/openapi.json" "$base/api/$kind/openapi.json" \
    || die "could not download $base/api/$kind/openapi.json"
  "$venv/bin/openapi-spec-validator" --validation-errors all --subschema-errors all "$dir/openapi.json" \
    || die "$kind: the OpenAPI document is not valid (openapi-spec-validator, above)"

  # The validated file is what schemathesis reads, so both judge the same document.
  t0=$SECONDS
  "$venv/bin/st" --config-file "$fuzz_dir/schemathesis.toml" run "$dir/openapi.json" \
    --url "$base" \
    --phases examples,coverage,fuzzing,stateful \
    --mode all \
    --checks all \
    --continue-on-failure \
    --max-examples "$examples" \
    --seed "${NIS_FUZZ_SEED:-42}" \
    --generation-database none \
    --workers "${NIS_FUZZ_WORKERS:-1}" \
    --request-timeout 10 \
    --report ndjson,junit \
    --report-ndjson-path "$dir/events.ndjson" \
    --report-junit-path "$dir/junit.xml" \
    --no-color \
    || rc=$?
  if [[ -s $dir/events.ndjson ]]; then
    summarize "$dir/events.ndjson" "$dir/openapi.json" | tee "$dir/requests.txt"
  fi
  if (( rc != 0 )); then
    log "fuzz $kind ($budget): schemathesis reported problems (exit $rc, $((SECONDS - t0))s; details above, every request in $dir/events.ndjson)"
    return "$rc"
  fi
  log "fuzz $kind ($budget): no problem found in $((SECONDS - t0))s"
}

case ${1:-} in
  ensure)
    (( $# == 1 )) || usage
    ensure_venv
    echo "$venv"
    ;;
  run) shift; run "$@" ;;
  *) usage ;;
esac
