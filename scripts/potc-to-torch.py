"""Converts a potc float checkpoint of the FCN (examples/fcn.pot naming) into a
PyTorch state dict for ../shared/anchors/fcn_anchor.py --init, so that potc and
the anchors start QAT from the same float weights.

    python scripts/potc-to-torch.py fcn.safetensors fcn.pt
"""
import json, struct, sys

import numpy as np
import torch


def read_safetensors(path):
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    body = raw[8 + n :]
    out = {}
    for name, info in header.items():
        if name == "__metadata__" or info["dtype"] != "F32":
            continue
        a, b = info["data_offsets"]
        out[name] = np.frombuffer(body[a:b], dtype="<f4").reshape(info["shape"]).copy()
    return out


# potc value names in examples/fcn.pot -> the anchor's FCN modules.
LAYERS = {"c1": "conv1", "c2": "conv2", "c3": "conv3", "b1": "bn1", "b2": "bn2", "b3": "bn3", "logits": "fc"}
SLOTS = {"w": "weight", "b": "bias", "gamma": "weight", "beta": "bias", "mean": "running_mean", "var": "running_var"}


def main(src, dst):
    state = {}
    for name, value in read_safetensors(src).items():
        layer, _, slot = name.partition(".")
        if layer in LAYERS and slot in SLOTS:
            state[f"{LAYERS[layer]}.{SLOTS[slot]}"] = torch.from_numpy(value)
    for bn in ("bn1", "bn2", "bn3"):
        state[f"{bn}.num_batches_tracked"] = torch.tensor(0)
    torch.save(state, dst)


if __name__ == "__main__":
    main(*sys.argv[1:3])
