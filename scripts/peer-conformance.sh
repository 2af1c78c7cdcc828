#!/usr/bin/env bash
# The outside conformance check of `make test`: stac-api-validator (the offline harness in
# ../shared/peer) against `mqs demo`, every class the gateway declares, every demo collection.
#
#   scripts/peer-conformance.sh              (from the repository root; `make test` runs it)
#
# MQS_PEER_DIR   the harness (default: ../shared/peer beside the clone; absent: skipped, exit 0)
# PEER_VENV      the harness's venv (default: .venv/peer; created once by its setup.sh, reused)
# Exit status 1 when any class fails for any collection; the demo is always stopped.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
peer="${MQS_PEER_DIR:-$root/../shared/peer}"
py="$root/.venv/bin/python"
mqs="$root/.venv/bin/mqs"

if [ ! -x "$peer/validate.sh" ]; then
  echo "peer conformance: skipped (no harness at $peer; set MQS_PEER_DIR to run it)"
  exit 0
fi
peer="$(cd "$peer" && pwd)"
export PEER_VENV="${PEER_VENV:-$root/.venv/peer}"
export PEER_OFFLINE_QUIET=1

if "$PEER_VENV/bin/python" -c "import stac_api_validator, pystac_client" 2>/dev/null; then
  echo "peer conformance: reusing $PEER_VENV"
else
  start=$(date +%s)
  bash "$peer/setup.sh" 2>&1 | grep -v "^WARNING: Location" || true
  "$PEER_VENV/bin/python" -c "import stac_api_validator" \
    || { echo "peer conformance: setup of $PEER_VENV failed"; exit 1; }
  echo "peer conformance: harness set up in $(( $(date +%s) - start )) s ($PEER_VENV)"
fi

port="$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
url="http://127.0.0.1:$port/"
log="$(mktemp -t mqs-peer-demo.XXXXXX)"
"$mqs" demo --host 127.0.0.1 --port "$port" >"$log" 2>&1 &
demo=$!
cleanup() {
  kill "$demo" 2>/dev/null || true
  wait "$demo" 2>/dev/null || true
  rm -f "$log"
}
trap cleanup EXIT

# Wait (up to 60 s) until the demo answers, then list its collections.
collections="$("$py" - "$url" "$demo" <<'EOF'
import json, os, sys, time, urllib.request
url, pid = sys.argv[1], int(sys.argv[2])
for _ in range(240):
    try:
        with urllib.request.urlopen(url + "collections", timeout=5) as r:
            print(" ".join(c["id"] for c in json.load(r)["collections"]))
            sys.exit(0)
    except OSError:
        try:
            os.kill(pid, 0)
        except OSError:
            sys.exit("the demo exited")
        time.sleep(0.25)
sys.exit("the demo did not answer within 60 s")
EOF
)" || { echo "peer conformance: mqs demo did not start:"; tail -20 "$log"; exit 1; }

echo "peer conformance: mqs demo on $url, collections: $collections"
# Every class for a representative Sentinel-1 and Sentinel-2 collection (item-schemas there
# checks the items of every collection); the classes that run then, less item-schemas, for the
# others. MQS_PEER_ALL=1: every class for every collection (slower; for releases).
full="sentinel-1-grd sentinel-2-l2a"
passed=0 failed=0 bad="" classes="" first="" rest=""
for c in $collections; do
  if [[ " $full " == *" $c "* ]]; then first="$first $c"; else rest="$rest $c"; fi
done
for cid in $first $rest; do
  start=$(date +%s)
  select=()
  if [[ " $full " != *" $cid "* && -z "${MQS_PEER_ALL:-}" && -n "$classes" ]]; then
    for cls in $classes; do
      if [ "$cls" != item-schemas ]; then select+=(--conformance "$cls"); fi
    done
  fi
  set +e
  out="$(bash "$peer/validate.sh" "$url" "$cid" "${select[@]}" 2>&1)"
  rc=$?
  set -e
  if [ -z "$classes" ]; then  # the classes a full run validated (those the gateway declares)
    classes="$(printf '%s\n' "$out" | sed -n 's/^== \([^:]*\): .*/\1/p' | tr '\n' ' ')"
  fi
  summary="$(printf '%s\n' "$out" | tail -1)"
  if [[ "$summary" =~ ^validate:\ ([0-9]+)\ passed,\ ([0-9]+)\ failed ]]; then
    passed=$((passed + BASH_REMATCH[1])) failed=$((failed + BASH_REMATCH[2]))
  else
    failed=$((failed + 1))
  fi
  if [ "$rc" -ne 0 ]; then
    bad="$bad $cid"
    printf '%s\n' "$out"  # the whole report of a failing collection
  else
    printf '%s\n' "$out" | grep -E '^== ' | sed "s/^/  [$cid] /"
  fi
  echo "  [$cid] $summary ($(( $(date +%s) - start )) s)"
done
echo "peer conformance: collection-search is not checked by stac-api-validator;" \
  "tests/test_collection_search.py covers it"
echo "validate: $passed passed, $failed failed (mqs demo: every declared class for" \
  "$full and every class but item-schemas for the others)"
if [ -n "$bad" ]; then
  echo "peer conformance: FAILED for:$bad"
  exit 1
fi
