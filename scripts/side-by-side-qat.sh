#!/usr/bin/env bash
# potc QAT beside Brevitas (the anchor, power-of-two "fixed point" quantizers)
# from the same float weights, on the same data, for the same epochs and
# learning rate; float fine-tunes of the same length as the fair baseline.
#   scripts/side-by-side-qat.sh [FLOAT_EPOCHS] [QAT_EPOCHS] [SPEC]
# Needs /tmp/anchors (see ../shared/anchors/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
float=${1:-300}; qat=${2:-100}; spec=${3:-w4a8}
wbits=${spec#w}; wbits=${wbits%a*}; abits=${spec#*a}
py=/tmp/anchors/bin/python; anchor=../shared/anchors/fcn_anchor.py; data=../shared/data
cargo build --release -q
p=target/release/potc
out=${OUT:-$(mktemp -d)}
field() { python3 -c "import json,sys; print(f\"{100*json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])[sys.argv[2]]:.1f}\")" "$1" "$2"; }
echo "| data set | float $float | +$qat float: potc | +$qat float: PyTorch | $spec: potc | $spec: Brevitas |"
echo "|---|---|---|---|---|---|"
for pair in GunPoint:fcn ItalyPowerDemand:fcn BasicMotions:fcn_basicmotions; do
  ds=${pair%%:*}; model=examples/${pair##*:}.pot
  tr=$data/$ds/${ds}_TRAIN.ts; te=$data/$ds/${ds}_TEST.ts
  common=(--train "$tr" --test "$te" --threads 2 --seed 0 --json)
  f=$out/$ds-fcn-float.safetensors
  [ -f "$f" ] || $p train "$model" "${common[@]}" -o "$f" --epochs "$float" --schedule plateau >"$out/$ds-fcn-float.json" 2>/dev/null
  $py scripts/potc-to-torch.py "$f" "$out/$ds.pt"
  $p train "$model" "${common[@]}" -o "$out/$ds-fine.safetensors" --epochs "$qat" --lr 1e-4 --init "$f" >"$out/$ds-fine.json" 2>/dev/null
  $py -W ignore "$anchor" train "${common[@]}" --epochs "$qat" --lr 1e-4 --init "$out/$ds.pt" >"$out/$ds-torch.json" 2>/dev/null
  $p train "$model" "${common[@]}" -o "$out/$ds-q.safetensors" --epochs "$qat" --lr 1e-4 --quant "$spec" --init "$f" >/dev/null 2>&1
  $p eval "$model" --weights "$out/$ds-q.safetensors" --data "$te" --mode fake-quant --json >"$out/$ds-q.json"
  $py -W ignore "$anchor" train "${common[@]}" --epochs "$qat" --lr 1e-4 --mode brevitas --wbits "$wbits" --abits "$abits" \
    --init "$out/$ds.pt" >"$out/$ds-brevitas.json" 2>/dev/null
  echo "| $ds | $(field "$out/$ds-fcn-float.json" test_accuracy) | $(field "$out/$ds-fine.json" test_accuracy) |" \
       "$(field "$out/$ds-torch.json" test_accuracy) | $(field "$out/$ds-q.json" accuracy) | $(field "$out/$ds-brevitas.json" test_accuracy) |"
done
