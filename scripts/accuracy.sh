#!/usr/bin/env bash
# Accuracy of float vs quantization-aware training at equal total epochs, on
# the shared UCR/UEA sets: a float run of FLOAT epochs, then FINE epochs more
# either in float (the fair baseline) or under each --quant spec, all from the
# same float weights. Prints a Markdown table.
#   scripts/accuracy.sh [FLOAT_EPOCHS] [FINE_EPOCHS] [SEED] [SPECS...]
set -euo pipefail
cd "$(dirname "$0")/.."
float=${1:-300}; fine=${2:-100}; seed=${3:-0}; shift $(( $# < 3 ? $# : 3 )) || true
specs=("${@:-w8a8 w4a8 w2a8}"); specs=(${specs[@]})
data=../shared/data
cargo build --release -q
p=target/release/potc
out=${OUT:-$(mktemp -d)}
acc() { python3 -c "import json,sys; print(f\"{100*json.load(open(sys.argv[1]))[sys.argv[2]]:.1f}\")" "$1" "$2"; }
echo "| data set (model) | float $float | float $float+$fine | $(printf '%s | ' "${specs[@]}")"
echo "|---|---|---|$(printf -- '---|%.0s' "${specs[@]}")"
for pair in GunPoint:fcn ItalyPowerDemand:fcn BasicMotions:basicmotions; do
  ds=${pair%%:*}; model=examples/${pair##*:}.pot
  tr=$data/$ds/${ds}_TRAIN.ts; te=$data/$ds/${ds}_TEST.ts
  common=(--train "$tr" --test "$te" --threads 2 --seed "$seed" --json)
  $p train "$model" "${common[@]}" -o "$out/$ds-float.safetensors" --epochs "$float" --schedule plateau >"$out/$ds-float.json" 2>/dev/null
  $p train "$model" "${common[@]}" -o "$out/$ds-fine.safetensors" --epochs "$fine" --lr 1e-4 --init "$out/$ds-float.safetensors" >"$out/$ds-fine.json" 2>/dev/null
  row="| $ds (${pair##*:}) | $(acc "$out/$ds-float.json" test_accuracy) | $(acc "$out/$ds-fine.json" test_accuracy) |"
  for q in "${specs[@]}"; do
    $p train "$model" "${common[@]}" -o "$out/$ds-$q.safetensors" --epochs "$fine" --lr 1e-4 --quant "$q" --init "$out/$ds-float.safetensors" >/dev/null 2>&1
    $p eval "$model" --weights "$out/$ds-$q.safetensors" --data "$te" --mode fake-quant --json >"$out/$ds-$q.json"
    row="$row $(acc "$out/$ds-$q.json" accuracy) |"
  done
  echo "$row"
done
