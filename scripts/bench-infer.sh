#!/usr/bin/env bash
# Inference speed of the lowered FCN (potc's JIT) beside the ONNX Runtime
# anchor (../shared/anchors/fcn_anchor.py infer: ORT float and int8 QDQ), in
# one run, alternating rounds, at input lengths 24, 150 and 427, 2 threads:
# batch-1 latency and batch-64 samples/s, medians over the rounds, and potc's
# ratios to ORT int8 and ORT float.
# Usage: scripts/bench-infer.sh [ROUNDS] [THREADS]   (defaults: 3 2)
# Needs the anchors' venv (see ../shared/anchors/README.md): PY=/tmp/anchors/bin/python.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}; threads=${2:-2}
py=${PY:-/tmp/anchors/bin/python}
anchor=../shared/anchors/fcn_anchor.py
cargo build --release -q
potc=target/release/potc
w=$(mktemp -d); trap 'rm -rf "$w"' EXIT
field() { python3 -c "import json,sys; d=json.load(open(sys.argv[1]))
for k in sys.argv[2].split('.'): d=d[k]
print(d)" "$1" "$2"; }
median() { python3 -c "import sys,statistics; print(statistics.median(float(v) for v in sys.argv[1:]))" "$@"; }
# Every figure belongs to the CPU it ran on: name it, with potc's kernels.
cpu=$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//')
fam=$(grep -m1 'cpu family' /proc/cpuinfo 2>/dev/null | cut -d: -f2 | tr -d ' ')
model=$(grep -m1 '^model[[:space:]]*:' /proc/cpuinfo 2>/dev/null | cut -d: -f2 | tr -d ' ')
echo "CPU: ${cpu:-unknown} (family ${fam:-?}, model ${model:-?}), $(nproc) cores; $threads threads, $rounds rounds"
printf '%-5s %-12s %14s %16s\n' L engine "b1 latency us" "b64 samples/s"
for L in 24 150 427; do
  # A random two-class data set of length L: the weights do not change the
  # work, so the program is lowered from calibrated, untrained weights.
  python3 -c "import random,sys; random.seed(0); L=int(sys.argv[1])
print('\n'.join(str(1+i%2)+'\t'+'\t'.join(f'{random.gauss(0,1):.4f}' for _ in range(L)) for i in range(16)))" "$L" >"$w/d.tsv"
  $potc train examples/fcn.pot --train "$w/d.tsv" --test "$w/d.tsv" -o "$w/q.st" --quant w4a8 --epochs 0 --json >/dev/null 2>&1
  rm -rf "$w/int"; $potc lower examples/fcn.pot --weights "$w/q.st" -o "$w/int" 2>/dev/null
  p1=(); p64=(); i1=(); i64=(); f1=(); f64=()
  for r in $(seq "$rounds"); do
    $potc bench "$w/int" --batch 1 --threads "$threads" --json >"$w/b1.json"
    $potc bench "$w/int" --batch 64 --threads "$threads" --json >"$w/b64.json"
    $py -W ignore $anchor infer --length "$L" --threads "$threads" --json >"$w/a.json" 2>/dev/null
    p1+=("$(field "$w/b1.json" latency_us_median)"); p64+=("$(field "$w/b64.json" samples_per_second)")
    i1+=("$(field "$w/a.json" ort_int8.latency_us_median)"); i64+=("$(field "$w/a.json" ort_int8.samples_per_second)")
    f1+=("$(field "$w/a.json" ort_float.latency_us_median)"); f64+=("$(field "$w/a.json" ort_float.samples_per_second)")
  done
  echo "      potc kernels: $(field "$w/b1.json" kernels)"
  P1=$(median "${p1[@]}"); P64=$(median "${p64[@]}"); I1=$(median "${i1[@]}"); I64=$(median "${i64[@]}")
  F1=$(median "${f1[@]}"); F64=$(median "${f64[@]}")
  printf '%-5s %-12s %14.1f %16.0f\n' "$L" "potc jit" "$P1" "$P64" "$L" "ort int8" "$I1" "$I64" "$L" "ort float" "$F1" "$F64"
  python3 -c "import sys; p1,p64,i1,i64,f1,f64=map(float,sys.argv[1:])
print(f'      potc/int8: latency {i1/p1:.2f}x, throughput {p64/i64:.2f}x;  potc/float: latency {f1/p1:.2f}x, throughput {p64/f64:.2f}x')" \
    "$P1" "$P64" "$I1" "$I64" "$F1" "$F64"
done
