#!/usr/bin/env bash
# The whole pipeline on one data set, as a user runs it: float training,
# quantization-aware fine-tuning, lowering to the integer program, and the
# JIT on the test set; prints float, fake-quant and integer accuracy side by
# side (the last two are equal by construction, and their logits hashes too).
# Then the hardware hand-off: the report and its plots, test vectors, and the
# exported C compiled with cc, whose output integers must hash the same.
# Usage: scripts/pipeline.sh [MODEL] [TRAIN] [TEST] [QUANT] [FLOAT_EPOCHS] [QAT_EPOCHS] [OUT_DIR]
#   defaults: examples/fcn.pot, the shipped GunPoint data, w4a8, 300, 100, ./pipeline-out
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-examples/fcn.pot}
train=${2:-examples/data/GunPoint_TRAIN.ts}; test=${3:-examples/data/GunPoint_TEST.ts}
quant=${4:-w4a8}; fe=${5:-300}; qe=${6:-100}; out=${7:-pipeline-out}
cargo build --release -q
potc=target/release/potc
mkdir -p "$out"
field() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$1" "$2"; }
echo "1/5 float training ($fe epochs)" >&2
$potc train "$model" --train "$train" --test "$test" -o "$out/float.safetensors" --epochs "$fe" --seed 0 --json >"$out/float.json"
echo "2/5 quantization-aware training ($quant, $qe epochs)" >&2
$potc train "$model" --train "$train" --test "$test" -o "$out/qat.safetensors" --init "$out/float.safetensors" --quant "$quant" --epochs "$qe" --seed 0 --json >"$out/qat.json"
$potc eval "$model" --weights "$out/qat.safetensors" --data "$test" --mode fake-quant --json >"$out/fq.json"
echo "3/5 lowering" >&2
$potc lower "$model" --weights "$out/qat.safetensors" -o "$out/int"
echo "4/5 the integer program in the JIT" >&2
$potc run "$out/int" --data "$test" --engine jit --json >"$out/jit.json"
echo "5/5 hand-off: report, plots, test vectors, C" >&2
$potc report "$out/int" --plot "$out/plots" >"$out/report.txt"
$potc export "$out/int" --format vectors -o "$out/vectors" --data "$test"
$potc export "$out/int" --format c -o "$out/c" --data "$test"
make -s -C "$out/c" >&2
c_sha=$(cd "$out/c" && ./"$(basename "$(ls ./*.h)" .h)" data.txt 2>"c.log" | python3 -c "
import hashlib, struct, sys
print(hashlib.sha256(b''.join(struct.pack('<i', int(v)) for line in sys.stdin for v in line.split())).hexdigest())")
c_acc=$(sed -n 's/^accuracy \([0-9.]*\).*/\1/p' "$out/c/c.log")
printf '%-12s %-10s %s\n' arithmetic accuracy logits_sha256
printf '%-12s %-10.4f %s\n' float "$(field "$out/float.json" test_accuracy)" "-"
printf '%-12s %-10.4f %s\n' fake-quant "$(field "$out/fq.json" accuracy)" "$(field "$out/fq.json" logits_sha256)"
printf '%-12s %-10.4f %s\n' "int (jit)" "$(field "$out/jit.json" accuracy)" "$(field "$out/jit.json" logits_sha256)"
printf '%-12s %-10.4f %s\n' "int (C, cc)" "$c_acc" "$c_sha"
[ "$(field "$out/fq.json" logits_sha256)" = "$(field "$out/jit.json" logits_sha256)" ] || { echo "MISMATCH: integers differ from the simulation" >&2; exit 1; }
[ "$c_sha" = "$(field "$out/jit.json" logits_sha256)" ] || { echo "MISMATCH: the exported C differs from the JIT" >&2; exit 1; }
echo "report: $out/report.txt, plots: $out/plots/, vectors: $out/vectors/, C: $out/c/" >&2
