#!/usr/bin/env bash
# Training throughput of potc beside the anchors, in one run: FCN, GunPoint,
# batch 16, the same epochs and threads, alternating the tools ROUNDS times.
# Each run reports samples/s as the median over the epochs after the first
# (the rule every tool here uses) and its peak memory.
#   scripts/bench-train.sh [ROUNDS] [EPOCHS] [THREADS] [float|qat]
# float: potc float vs PyTorch eager float.
# qat:   potc --quant w4a8 vs Brevitas w4a8 (power-of-two scales) and PyTorch float;
#        batch norm folded first as the Brevitas script does (BN=fold-sim to change).
# The anchors need /tmp/anchors (see ../shared/anchors/README.md); without it
# only potc's half is measured.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}; epochs=${2:-20}; threads=${3:-2}; mode=${4:-float}
data=examples/data; anchor=../shared/anchors/fcn_anchor.py; py=/tmp/anchors/bin/python
cargo build --release -q
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
field() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$1" "$2"; }
peak() { awk '/Maximum resident/ {printf "%.0f MiB", $6/1024}' "$1"; }
common=(--train $data/GunPoint_TRAIN.ts --test $data/GunPoint_TEST.ts --epochs "$epochs" --batch-size 16 --threads "$threads" --json)
run() { # name, command...
  local name=$1; shift
  /usr/bin/time -v "$@" >"$tmp/$name.json" 2>"$tmp/$name.time"
  local sps; sps=$(field "$tmp/$name.json" samples_per_second)
  printf '  %-14s %6.0f samples/s  %s\n' "$name" "$sps" "$(peak "$tmp/$name.time")"
  echo "$sps" >>"$tmp/$name.all"
}
potc_extra=(); [ "$mode" = qat ] && potc_extra=(--quant w4a8 --bn "${BN:-fold-then-qat}")
have_anchor=0; [ -x "$py" ] && [ -f "$anchor" ] && have_anchor=1
for r in $(seq "$rounds"); do
  echo "round $r"
  run potc target/release/potc train examples/fcn.pot -o "$tmp/p.safetensors" "${common[@]}" "${potc_extra[@]}"
  if [ $have_anchor = 1 ]; then
    [ "$mode" = qat ] && run brevitas "$py" -W ignore "$anchor" train "${common[@]}" --mode brevitas --wbits 4 --abits 8
    run pytorch "$py" -W ignore "$anchor" train "${common[@]}"
  fi
done
python3 - "$tmp" <<'PY'
import os, statistics, sys
d = sys.argv[1]
med = {n[:-4]: statistics.median(float(l) for l in open(os.path.join(d, n))) for n in os.listdir(d) if n.endswith(".all")}
line = ", ".join(f"{k} {v:.0f}" for k, v in sorted(med.items()))
print(f"median samples/s: {line}")
for k in ("pytorch", "brevitas"):
    if k in med:
        print(f"potc / {k}: {med['potc'] / med[k]:.2f}")
PY
