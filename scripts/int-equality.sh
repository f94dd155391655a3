#!/usr/bin/env bash
# Integer program == fake-quant simulation, bit for bit, on every shared data
# set: for each (model, data set) trains briefly (float, then QAT), lowers,
# runs the integer interpreter on the whole test set, and compares
# `logits_sha256` with `potc eval --mode fake-quant`, and the JIT's and the
# exported C's (compiled with cc). ONNX Runtime's on the ONNX export:
# `POTC_ONNX_ALL=1 cargo test --release --test export_onnx`.
# Usage: scripts/int-equality.sh [FLOAT_EPOCHS] [QUANT]   (defaults: 3 w4a8)
# FLAGS="--apot-weights" (say) adds flags to the QAT run.
set -euo pipefail
cd "$(dirname "$0")/.."
epochs=${1:-3}; quant=${2:-w4a8}
data=${DATA:-../shared/data}
cargo build --release -q
potc=target/release/potc
w=$(mktemp -d); trap 'rm -rf "$w"' EXIT
field() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$1" "$2"; }
printf '%-22s %-18s %6s %9s %9s  %s\n' model data n fq_acc int_acc "sha equal (interp, jit, c)"
fail=0
for pair in fcn:GunPoint fcn:ItalyPowerDemand resnet:GunPoint resnet:ItalyPowerDemand \
            tiny:ItalyPowerDemand tiny:GunPoint fcn_basicmotions:BasicMotions basicmotions:BasicMotions; do
  m=${pair%%:*}; d=${pair##*:}
  tr=$data/$d/${d}_TRAIN.ts; te=$data/$d/${d}_TEST.ts
  [ -f "$tr" ] || { echo "skip $pair: no $tr"; continue; }
  $potc train examples/$m.pot --train "$tr" --test "$te" -o "$w/f.st" --epochs "$epochs" --seed 0 --json >/dev/null 2>&1
  $potc train examples/$m.pot --train "$tr" --test "$te" -o "$w/q.st" --init "$w/f.st" --quant "$quant" ${FLAGS:-} --epochs 1 --seed 0 --json >/dev/null 2>&1
  $potc eval examples/$m.pot --weights "$w/q.st" --data "$te" --mode fake-quant --json >"$w/fq.json" 2>/dev/null
  $potc lower examples/$m.pot --weights "$w/q.st" -o "$w/int" 2>/dev/null
  $potc run "$w/int" --data "$te" --engine interp --json >"$w/int.json" 2>/dev/null
  $potc run "$w/int" --data "$te" --engine jit --json >"$w/jit.json" 2>/dev/null
  a=$(field "$w/fq.json" logits_sha256); b=$(field "$w/int.json" logits_sha256)
  c=$(field "$w/jit.json" logits_sha256)
  $potc export "$w/int" --format c -o "$w/c" --data "$te" 2>/dev/null
  make -s -C "$w/c" >/dev/null
  ( cd "$w/c" && ./"$(basename "$(ls *.h)" .h)" data.txt 2>/dev/null ) >"$w/c.txt"
  cc_sha=$(python3 -c "import hashlib,struct,sys; v=[int(t) for t in open(sys.argv[1]).read().split()]; print(hashlib.sha256(struct.pack('<%di' % len(v), *v)).hexdigest())" "$w/c.txt")
  shas="$b $c $cc_sha"
  eq=yes; for s in $shas; do [ "$a" = "$s" ] || { eq=NO; fail=1; }; done
  printf '%-22s %-18s %6s %9.4f %9.4f  %s\n' "$m" "$d" "$(field "$w/int.json" n)" \
    "$(field "$w/fq.json" accuracy)" "$(field "$w/int.json" accuracy)" "$eq"
  rm -rf "$w/int" "$w/c" "$w"/*.st "$w"/*.json "$w/c.txt"
done
exit $fail
