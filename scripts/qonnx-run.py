#!/usr/bin/env python3
"""Runs QONNX models that `potc export --format qonnx` wrote in the qonnx
package's executor.

    qonnx-run.py MODEL.onnx INPUT.npy [MODEL.onnx INPUT.npy ...]

INPUT.npy holds the float series, float32 [N, C, L]; N must be the model's
batch size. Each model is checked by the ONNX checker first. Prints one JSON line per model: `n` and `logits_sha256`, the
SHA-256 of the float32 outputs (little-endian, sample after sample), which
equal the fake-quant logits.
"""
import argparse
import hashlib
import json

import numpy as np
import onnx
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_onnx
from qonnx.transformation.infer_shapes import InferShapes


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pairs", nargs="+", metavar="MODEL.onnx INPUT.npy")
    a = ap.parse_args()
    if len(a.pairs) % 2:
        ap.error("give a model and an input file for each run")
    for path, input_path in zip(a.pairs[::2], a.pairs[1::2]):
        onnx.checker.check_model(onnx.load(path))
        model = ModelWrapper(path).transform(InferShapes())
        x = np.load(input_path).astype(np.float32)
        y = execute_onnx(model, {"input": x})["logits"]
        digest = hashlib.sha256(np.asarray(y, dtype="<f4").tobytes()).hexdigest()
        print(json.dumps({"n": int(y.shape[0]), "logits_sha256": digest}), flush=True)


if __name__ == "__main__":
    main()
