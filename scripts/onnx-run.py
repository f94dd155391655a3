#!/usr/bin/env python3
"""Runs an ONNX model that `potc export --format onnx` wrote in ONNX Runtime.

    onnx-run.py MODEL.onnx INPUT.npy [MODEL.onnx INPUT.npy ...] [--logits OUT.npy]

INPUT.npy holds the float series, float32 [N, C, L] (the graph's `input`).
Each model is checked by the ONNX checker first. Prints one JSON line per
model: `n`, `logits_sha256` (SHA-256 of the int32 outputs, little-endian,
sample after sample: what `potc run --json` prints for the same data) and
the model's metadata. --logits writes the last model's outputs.
"""
import argparse
import hashlib
import json

import numpy as np
import onnx
import onnxruntime as ort


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pairs", nargs="+", metavar="MODEL.onnx INPUT.npy")
    ap.add_argument("--logits", help="also write the outputs here (.npy)")
    a = ap.parse_args()
    if len(a.pairs) % 2:
        ap.error("give a model and an input file for each run")
    for model, x in zip(a.pairs[::2], a.pairs[1::2]):
        run(model, x, a.logits)


def run(path, input_path, logits):
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    x = np.load(input_path).astype(np.float32)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    s = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    (y,) = s.run(["logits"], {"input": x})
    if y.dtype != np.int32:
        raise SystemExit(f"{path}: the output is {y.dtype}, not int32")
    if logits:
        np.save(logits, y)
    meta = {p.key: p.value for p in model.metadata_props}
    digest = hashlib.sha256(y.astype("<i4").tobytes()).hexdigest()
    print(json.dumps({"n": int(y.shape[0]), "logits_sha256": digest, "metadata": meta}), flush=True)


if __name__ == "__main__":
    main()
