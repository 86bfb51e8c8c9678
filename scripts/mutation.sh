#!/usr/bin/env bash
# Mutation testing: gremlins (pinned in tools/go.mod) makes small edits to the
# code, one at a time (a flipped comparison, a changed operator, ...), and runs
# the package's tests against each; a mutant no test notices "lived". Runs
# with the real backend servers up, as scripts/test.sh starts them, so that
# the backend packages' tests run instead of skipping.
#
#   scripts/mutation.sh                      every package below
#   scripts/mutation.sh selector cluster     some of them
#
# Prints, per package, the mutants killed, lived, timed out and not covered,
# the test efficacy (killed / (killed + lived)) and the mutator coverage
# (covered / all), and keeps gremlins' JSON in $MUTATION_OUT (default
# ./mutation-out). Slow (a backend package's suite runs once per mutant:
# an hour and more for all of them on 2 cores), so it is not part of CI.
# docs/testing.md records the figures and every surviving mutant.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/backends.sh
trap stop_backends EXIT

packages=("$@")
[ ${#packages[@]} -gt 0 ] || packages=(selector cluster remote cluster/etcd cluster/consul cluster/zookeeper cluster/nacos cluster/kubernetes)
out="${MUTATION_OUT:-$PWD/mutation-out}"
mkdir -p "$out"

GREMLINS_VERSION=$(cd tools && go list -m -f '{{.Version}}' github.com/go-gremlins/gremlins)
GREMLINS="$HERD_CACHE/bin/gremlins-$GREMLINS_VERSION"
if [ ! -x "$GREMLINS" ]; then
  log "building gremlins $GREMLINS_VERSION from tools/go.mod"
  (cd tools && go build -o "$GREMLINS" github.com/go-gremlins/gremlins/cmd/gremlins)
fi

start_test_backends
export CI=true # a test whose server is missing fails rather than skips
# -failfast: a mutant is killed by its first failing test; the rest of a
# backend suite (tens of seconds against real servers) need not run.
# -count=1: gremlins times each mutant against its first run of the suite,
# and a result Go took from its test cache (0.4 s for remote's 5.5 s suite)
# made every slower mutant "time out".
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-failfast -count=1"

for pkg in "${packages[@]}"; do
  log "mutating ./$pkg"
  # -E '/': only the package's own files, not its subpackages' (their names
  # carry a directory). One worker and a generous timeout: the machine is
  # small and noisy, and a slow run must not pass for a killed mutant.
  "$GREMLINS" unleash --workers 1 --timeout-coefficient 8 -E '/' \
    -o "$out/${pkg//\//_}.json" "./$pkg" >"$out/${pkg//\//_}.log" 2>&1 || true
done

python3 - "$out" "${packages[@]}" <<'PY'
import json, sys
out, pkgs = sys.argv[1], sys.argv[2:]
print(f"\n{'package':22} {'killed':>6} {'lived':>5} {'t/out':>5} {'n/cov':>5} {'efficacy':>8} {'coverage':>8}")
for p in pkgs:
    try:
        d = json.load(open(f"{out}/{p.replace('/', '_')}.json"))
    except (OSError, ValueError) as e:
        print(f"{p:22} no result: {e}")
        continue
    timed = sum(1 for f in d["files"] for m in f["mutations"] if m["status"] == "TIMED OUT")
    print(f"{p:22} {d['mutants_killed']:>6} {d['mutants_lived']:>5} {timed:>5} {d['mutants_not_covered']:>5} {d['test_efficacy']:>7.2f}% {d['mutations_coverage']:>7.2f}%")
print("\nsurviving mutants:")
for p in pkgs:
    try:
        d = json.load(open(f"{out}/{p.replace('/', '_')}.json"))
    except (OSError, ValueError):
        continue
    for f in d["files"]:
        for m in f["mutations"]:
            if m["status"] == "LIVED":
                print(f"  {p}/{f['file_name']}:{m['line']}:{m['column']} {m['type']}")
PY
