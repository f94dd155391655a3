#!/usr/bin/env bash
# Runs each fuzz target of tests/fuzz.rs for CASES random cases (default
# 1000000) in the `fuzz` profile (release optimisation, potc's overflow
# checks on), one target at a time, after its seed corpus
# (tests/fuzz/corpus/<target>/). Prints each target's count of cases run,
# its rate and its slowest case, then the wall time. A panic, an abort (one
# allocation over 512 MiB aborts), or a case slower than 10 s fails the run;
# the failing input is printed by bolero with the seed that replays it
# (BOLERO_RANDOM_SEED=...).
#
#   scripts/fuzz.sh [CASES] [TARGET...]
#
# Targets: model_text ts tsv npz checkpoint program onnx (default: all).
set -euo pipefail
cd "$(dirname "$0")/.."
cases=${1:-1000000}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(model_text ts tsv npz checkpoint program onnx)
fi
# The `fuzz` profile: release, with potc's overflow checks and debug assertions on.
built=$(cargo test --profile fuzz --locked --test fuzz --no-run 2>&1 | tee /dev/stderr)
bin=$(sed -n 's/^ *Executable tests\/fuzz.rs (\(.*\))$/\1/p' <<<"$built")
[ -x "$bin" ] || { echo "fuzz.sh: no test binary found" >&2; exit 1; }
status=0
log=$(mktemp)
for t in "${targets[@]}"; do
    start=$(date +%s)
    set +e
    BOLERO_RANDOM_ITERATIONS=$cases "$bin" --exact "$t" --test-threads 1 --nocapture >"$log" 2>&1
    code=$?
    set -e
    grep -E "^fuzz target" "$log" || true
    if [ "$code" -ne 0 ]; then
        kept=target/fuzz-$t.log
        cp "$log" "$kept"
        grep -v -E '^ +([0-9]+: |at )' "$log" | tail -n 40
        echo "$t: the whole output is in $kept"
        status=1
    fi
    echo "$t: exit $code, $(($(date +%s) - start)) s wall"
done
rm -f "$log"
exit $status
