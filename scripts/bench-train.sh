#!/usr/bin/env bash
# Training throughput of potc beside PyTorch eager (the anchor), in one run:
# FCN, GunPoint, batch 16, the same epochs and threads, alternating the two
# tools ROUNDS times; prints each run's samples/s (median over the epochs after
# the first, the rule both tools use), peak memory, and the median ratio.
#   scripts/bench-train.sh [ROUNDS] [EPOCHS] [THREADS]
# The anchor needs /tmp/anchors (see ../shared/anchors/README.md); without it
# only potc's half is measured.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}; epochs=${2:-6}; threads=${3:-2}
data=examples/data; anchor=../shared/anchors/fcn_anchor.py; py=/tmp/anchors/bin/python
cargo build --release -q
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
field() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$1" "$2"; }
peak() { awk '/Maximum resident/ {printf "%.0f MiB", $6/1024}' "$1"; }
for r in $(seq "$rounds"); do
  /usr/bin/time -v target/release/potc train examples/fcn.pot --train $data/GunPoint_TRAIN.ts \
    --test $data/GunPoint_TEST.ts -o "$tmp/p.safetensors" --epochs "$epochs" --batch-size 16 \
    --threads "$threads" --json >"$tmp/potc.json" 2>"$tmp/potc.time"
  p=$(field "$tmp/potc.json" samples_per_second)
  line="round $r: potc $(printf %.0f "$p") samples/s ($(peak "$tmp/potc.time"))"
  if [ -x "$py" ] && [ -f "$anchor" ]; then
    /usr/bin/time -v "$py" -W ignore "$anchor" train --train $data/GunPoint_TRAIN.ts --test $data/GunPoint_TEST.ts \
      --epochs "$epochs" --batch-size 16 --threads "$threads" --json >"$tmp/torch.json" 2>"$tmp/torch.time"
    t=$(field "$tmp/torch.json" samples_per_second)
    line="$line  pytorch $(printf %.0f "$t") samples/s ($(peak "$tmp/torch.time"))  ratio $(python3 -c "print(f'{$p/$t:.2f}')")"
    echo "$p $t" >>"$tmp/pairs"
  fi
  echo "$line"
done
if [ -f "$tmp/pairs" ]; then
  python3 - "$tmp/pairs" <<'PY'
import statistics, sys
pairs = [tuple(map(float, l.split())) for l in open(sys.argv[1])]
p, t = statistics.median(a for a, _ in pairs), statistics.median(b for _, b in pairs)
print(f"median: potc {p:.0f} samples/s, pytorch {t:.0f} samples/s, ratio {p / t:.2f}")
PY
fi
