#!/usr/bin/env bash
# Accuracy of one recipe on every data set in ../shared/data, seeds 0..SEEDS-1:
# a float run of FLOAT epochs with potc's defaults, then FINE epochs more from
# it in float (the equal-budget baseline) and under each quantization, all
# with default flags (no per-data-set tuning). Prints the median over the
# seeds of each cell as a Markdown table; every run's JSON stays in $OUT.
# With ANCHORS=/path/to/venv/bin/python (see ../shared/anchors/README.md) it
# adds Brevitas w4a8 fine-tuned from the same float weights.
#   scripts/accuracy-suite.sh [FLOAT_EPOCHS] [FINE_EPOCHS] [SEEDS] [MODEL...]
# MODEL is a template in examples/ (default: fcn); its input shape and
# class count are set from each data set's header.
# SETS="A B ..." picks the data sets and their order (default: all, by name).
# With OUT=DIR the runs go to DIR, and a run whose JSON is already there is
# not repeated: an interrupted suite resumes where it stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
float=${1:-300}; fine=${2:-100}; seeds=${3:-3}; shift $(( $# < 3 ? $# : 3 )) || true
models=("${@:-fcn}"); models=(${models[@]})
data=../shared/data
cargo build --release -q
out=${OUT:-$(mktemp -d)}
mkdir -p "$out"
# A copy, so rebuilding potc while the suite runs changes nothing under it.
p=$out/potc
[ -x "$p" ] || cp target/release/potc "$p"
echo "runs in $out" >&2
quant_cells=(w8a8 w4a8 "w4a8 pot" "w4a8 apot" w2a8)
cells=(float "float+$fine" "${quant_cells[@]}")
[ -n "${ANCHORS:-}" ] && cells+=("Brevitas w4a8")

# The template with the data set's channels, length and classes.
model_for() {
  local template=$1 train=$2
  local length classes channels
  length=$(grep -m1 -i '^@seriesLength' "$train" | awk '{print $2}')
  classes=$(grep -m1 -i '^@classLabel' "$train" | awk '{print NF - 2}')
  channels=$(awk '/^@data/ { getline; print split($0, a, ":") - 1; exit }' "$train")
  sed -e "s/(%x: \[[0-9]*, [0-9]*\])/(%x: [$channels, $length])/" \
      -e "s/out_features = [0-9]*/out_features = $classes/" "$template"
}
field() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$1" "$2"; }
median() { python3 -c "import sys,statistics as s; v=[float(x) for x in sys.argv[1:]]; print(f'{100*s.median(v):.1f}' if v else '-')" "$@"; }

echo "| data set (model) | $(printf '%s | ' "${cells[@]}")"
echo "|---|$(printf -- '---|%.0s' "${cells[@]}")"
# Runs "$@" with standard output to $1's JSON unless that JSON is already whole.
run_to() {
  local json=$1; shift
  python3 -c "import json,sys; json.load(open(sys.argv[1]))" "$json" 2>/dev/null && return 0
  "$@" >"$json.part" && mv "$json.part" "$json"
}
sets=${SETS:-$(cd "$data" && ls -d */ | tr -d /)}
for ds in $sets; do
  dir=$data/$ds; tr=$dir/${ds}_TRAIN.ts; te=$dir/${ds}_TEST.ts
  [ -f "$tr" ] || { echo "no data set $ds in $data" >&2; exit 1; }
  for name in "${models[@]}"; do
    m=$out/$ds-$name.pot; model_for "examples/$name.pot" "$tr" >"$m"
    declare -A got=()
    for seed in $(seq 0 $((seeds - 1))); do
      r=$out/$ds-$name-s$seed
      common=(--train "$tr" --test "$te" --threads 2 --seed "$seed" --json)
      run_to "$r-float.json" $p train "$m" "${common[@]}" -o "$r-float.safetensors" --epochs "$float" 2>>"$r-float.log"
      got[float]+=" $(field "$r-float.json" test_accuracy)"
      run_to "$r-fine.json" $p train "$m" "${common[@]}" -o "$r-fine.safetensors" --epochs "$fine" --init "$r-float.safetensors" 2>>"$r-fine.log"
      got["float+$fine"]+=" $(field "$r-fine.json" test_accuracy)"
      for cell in "${quant_cells[@]}"; do
        # "w4a8 pot" is --quant w4a8 --pot-weights.
        spec=${cell%% *}; flags=(); [ "$cell" != "$spec" ] && flags=("--${cell#* }-weights")
        q=$r-${cell// /-}
        run_to "$q.train.json" $p train "$m" "${common[@]}" -o "$q.safetensors" --epochs "$fine" --quant "$spec" "${flags[@]}" \
          --init "$r-float.safetensors" 2>>"$q.log"
        run_to "$q.json" $p eval "$m" --weights "$q.safetensors" --data "$te" --mode fake-quant --json 2>>"$q.log"
        got[$cell]+=" $(field "$q.json" accuracy)"
      done
      if [ -n "${ANCHORS:-}" ]; then
        # The anchor is the FCN itself: it runs only for the fcn template.
        [ "$name" = fcn ] || continue
        [ -f "$r.pt" ] || "$ANCHORS" scripts/potc-to-torch.py "$r-float.safetensors" "$r.pt"
        run_to "$r-brevitas.json" "$ANCHORS" -W ignore ../shared/anchors/fcn_anchor.py train "${common[@]}" \
          --epochs "$fine" --lr 1e-4 --init "$r.pt" --mode brevitas --wbits 4 --abits 8 2>/dev/null
        got["Brevitas w4a8"]+=" $(field "$r-brevitas.json" test_accuracy)"
      fi
    done
    row="| $ds ($name) |"
    for c in "${cells[@]}"; do row="$row $(median ${got[$c]:-}) |"; done
    echo "$row"
    unset got
  done
done
