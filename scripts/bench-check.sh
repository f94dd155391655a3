#!/usr/bin/env bash
# End-to-end latency of `potc check examples/fcn.pot` (release): the median
# wall time of N runs of the whole process, start-up included.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-200}
cargo build --release -q
python3 - "$n" <<'PY'
import statistics, subprocess, sys, time
n = int(sys.argv[1])
times = []
for _ in range(n):
    t = time.perf_counter()
    subprocess.run(["target/release/potc", "check", "examples/fcn.pot"], check=True, stdout=subprocess.DEVNULL)
    times.append((time.perf_counter() - t) * 1e3)
times.sort()
print(f"potc check examples/fcn.pot: median {statistics.median(times):.2f} ms, "
      f"p90 {times[int(0.9 * n)]:.2f} ms over {n} runs (target < 10 ms)")
PY
