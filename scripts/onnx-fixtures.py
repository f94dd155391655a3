"""Builds the ONNX test fixtures in tests/fixtures/onnx/.

Small PyTorch 1-D models (Conv1d / BatchNorm / pooling / Linear, eval mode,
float32, input [batch, channels, length]) are exported with BOTH PyTorch ONNX
exporters:

  * torchscript: torch.onnx.export(..., dynamo=False), opset 17, input "x",
    output "logits", dynamic batch dimension ("batch");
  * dynamo:      torch.onnx.export(..., dynamo=True), the exporter's default
    opset, fixed batch 1, everything in one file (no external data).

For every model and exporter it writes

  tests/fixtures/onnx/<model>.<exporter>.onnx
  tests/fixtures/onnx/<model>.<exporter>.json

where the JSON holds {"model", "exporter", "opset", "input_shape": [C, L],
"op_types": sorted unique ONNX op types in the graph, "reference":
"onnxruntime" or "pytorch", "inputs": 4 samples of C*L floats
(channel-major), "outputs": the reference's logits for each sample run alone
with batch 1}. The reference is ONNX Runtime (CPUExecutionProvider) except for
the files in PYTORCH_REFERENCE, which ONNX Runtime refuses to run; those get
PyTorch's outputs.

With default settings both exporters fold BatchNorm into the Conv weights, so
for the models in BN_VARIANTS (fcn, resnet_block) it also writes <model>_bn
variants (same weights, same inputs) that keep the BatchNormalization nodes:
torchscript with do_constant_folding=False, dynamo with optimize=False.

The Rust tests read these files, so `cargo test` needs no Python; the
fixtures are committed.

Needs:   pip install torch onnx onnxscript onnxruntime
Run:     python3 scripts/onnx-fixtures.py
         (from anywhere; it writes into tests/fixtures/onnx relative to the
         repository root, found from this script's own path)

Deterministic: every model and its inputs come from fixed seeds, so re-running
gives the same weights, inputs and outputs.
"""
import json
import logging
import os
import sys
import warnings

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torch.nn as nn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "onnx")
N_SAMPLES = 4
TORCHSCRIPT_OPSET = 17


# ---------------------------------------------------------------- models


class Fcn(nn.Module):
    """The FCN of Wang et al. (2017), small: 16/32/16 filters, kernels 8/5/3."""

    def __init__(self, in_ch=1, classes=2):
        super().__init__()
        self.conv1 = nn.Conv1d(in_ch, 16, 8, padding="same")
        self.bn1 = nn.BatchNorm1d(16)
        self.conv2 = nn.Conv1d(16, 32, 5, padding="same")
        self.bn2 = nn.BatchNorm1d(32)
        self.conv3 = nn.Conv1d(32, 16, 3, padding="same")
        self.bn3 = nn.BatchNorm1d(16)
        self.fc = nn.Linear(16, classes)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(self.bn2(self.conv2(x)))
        x = torch.relu(self.bn3(self.conv3(x)))
        return self.fc(x.mean(dim=2))


class ResnetBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv1d(3, 8, 7, padding=3)
        self.bn1 = nn.BatchNorm1d(8)
        self.conv2 = nn.Conv1d(8, 8, 5, padding=2)
        self.bn2 = nn.BatchNorm1d(8)
        self.conv3 = nn.Conv1d(8, 8, 3, padding=1)
        self.bn3 = nn.BatchNorm1d(8)
        self.short = nn.Conv1d(3, 8, 1)
        self.bn_short = nn.BatchNorm1d(8)
        self.pool = nn.AdaptiveAvgPool1d(1)
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        y = torch.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        s = self.bn_short(self.short(x))
        y = torch.relu(y + s)
        return self.fc(self.pool(y).flatten(1))


class MaxpoolLinear(nn.Module):
    def __init__(self, in_ch=2, length=40):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv1d(in_ch, 6, 3, bias=False),
            nn.ReLU(),
            nn.MaxPool1d(2),
            nn.Conv1d(6, 6, 3, stride=2, dilation=1),
            nn.ReLU(),
            nn.AvgPool1d(2),
        )
        # The length after the feature stack: 40 -> 38 -> 19 -> 9 -> 4.
        with torch.no_grad():
            l_out = self.features(torch.zeros(1, in_ch, length)).shape[-1]
        self.l_out = l_out
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(0.3),
            nn.Linear(6 * l_out, 5),
            nn.ReLU(),
            nn.Linear(5, 3),
        )

    def forward(self, x):
        return self.head(self.features(x))


class Depthwise(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv1d(4, 8, 5, groups=4, padding=2)
        self.bn1 = nn.BatchNorm1d(8)
        self.conv2 = nn.Conv1d(8, 8, 3, groups=8, dilation=2, padding=2)
        self.conv3 = nn.Conv1d(8, 4, 1)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(self.conv2(x))
        x = self.conv3(x)
        return self.fc(x.mean(dim=-1))


class SameEven(nn.Module):
    def __init__(self, length=50):
        super().__init__()
        # Even kernel with padding="same": PyTorch pads 3 left, 4 right.
        self.conv1 = nn.Conv1d(2, 4, 8, padding="same")
        self.bn1 = nn.BatchNorm1d(4)
        # Dilated even kernel: effective size 7, pads 3 and 3.
        self.conv2 = nn.Conv1d(4, 4, 4, padding="same", dilation=2)
        self.fc = nn.Linear(4 * length, 3)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(self.conv2(x))
        return self.fc(torch.flatten(x, 1))


class PooledView(nn.Module):
    """Exported with a symbolic length: `x.view(x.size(0), -1)` after
    adaptive pooling makes the TorchScript-based exporter write the
    Shape / Gather / Unsqueeze / Concat arithmetic an importer must fold."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(2, 4, 5, padding="same")
        self.bn = nn.BatchNorm1d(4)
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        x = torch.relu(self.bn(self.conv(x)))
        x = nn.functional.adaptive_avg_pool1d(x, 1)
        return self.fc(x.view(x.size(0), -1))


# name -> (constructor, (C, L), seed)
MODELS = [
    ("fcn", lambda: Fcn(), (1, 150), 1001),
    ("resnet_block", lambda: ResnetBlock(), (3, 64), 1002),
    ("maxpool_linear", lambda: MaxpoolLinear(), (2, 40), 1003),
    ("depthwise", lambda: Depthwise(), (4, 32), 1004),
    ("same_even", lambda: SameEven(), (2, 50), 1005),
    ("pooled_view", lambda: PooledView(), (2, 50), 1006),
]

# Models exported with a symbolic length as well as batch (the importer needs
# `--length`; the tests give it the JSON's input length).
DYNAMIC_LENGTH = {"pooled_view"}


def build(ctor, seed):
    """Default PyTorch init under a fixed seed, then "trained-looking" BN stats."""
    torch.manual_seed(seed)
    model = ctor()
    g = torch.Generator().manual_seed(seed + 50_000)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm1d):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.5)
                m.running_var.copy_(torch.rand(n, generator=g) * 1.5 + 0.5)
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.randn(n, generator=g) * 0.2)
    return model.eval().float()


def make_inputs(shape, seed, name):
    g = torch.Generator().manual_seed(seed + 100_000)
    x = torch.randn(N_SAMPLES, *shape, generator=g, dtype=torch.float32)
    if name == "fcn":
        # Look like UCR series: smooth and z-normalized per sample.
        x = torch.cumsum(x, dim=-1)
        x = (x - x.mean(dim=-1, keepdim=True)) / x.std(dim=-1, keepdim=True)
    return x.contiguous()


# -------------------------------------------------------------- exporting


def export_torchscript(model, example, path, keep_bn=False, dynamic_length=False):
    # keep_bn: no constant folding, so the BatchNormalization nodes are not
    # folded into the Conv weights. The model stays in eval mode, so each BN is
    # the inference form (1 output, training_mode=0).
    torch.onnx.export(
        model,
        (example,),
        path,
        dynamo=False,
        opset_version=TORCHSCRIPT_OPSET,
        input_names=["x"],
        output_names=["logits"],
        dynamic_axes={"x": {0: "batch", 2: "length"} if dynamic_length else {0: "batch"},
                      "logits": {0: "batch"}},
        do_constant_folding=not keep_bn,
    )


def export_dynamo(model, example, path, keep_bn=False, dynamic_length=False):
    # keep_bn: optimize=False, so the exporter's optimizer does not fold the
    # BatchNormalization nodes into the Conv weights (the graph then keeps
    # some extra Constant / Pad / Reshape nodes too).
    shapes = None
    if dynamic_length:
        shapes = ({0: torch.export.Dim("batch"), 2: torch.export.Dim("length", min=8)},)
    prog = torch.onnx.export(
        model,
        (example,),
        dynamo=True,
        dynamic_shapes=shapes,
        optimize=not keep_bn,
        input_names=["x"],
        output_names=["logits"],
        external_data=False,
        verbose=False,
    )
    prog.save(path, external_data=False)
    # Make sure nothing went to a side file: load everything and re-save whole.
    m = onnx.load(path, load_external_data=True)
    # The exporter records each node's Python stack trace (this script's
    # absolute path and line numbers); drop it so the files depend on neither.
    for node in m.graph.node:
        keep = [p for p in node.metadata_props if p.key != "pkg.torch.onnx.stack_trace"]
        del node.metadata_props[:]
        node.metadata_props.extend(keep)
    onnx.save(m, path, save_as_external_data=False)


EXPORTERS = [("torchscript", export_torchscript), ("dynamo", export_dynamo)]

# Extra fixtures of a model (same weights, same inputs) exported so that the
# BatchNormalization nodes stay in the graph: base model -> variant name.
BN_VARIANTS = {"fcn": "fcn_bn", "resnet_block": "resnet_block_bn"}

# Fixtures that ONNX Runtime refuses to run although they pass the ONNX
# checker: their JSON holds PyTorch's outputs instead ("reference": "pytorch").
# same_even.torchscript: Conv with auto_pad=SAME_UPPER and dilations=[2],
# "Dilation not supported for AutoPadType::SAME_UPPER".
PYTORCH_REFERENCE = {"same_even.torchscript"}


def opset_of(m):
    for imp in m.opset_import:
        if imp.domain in ("", "ai.onnx"):
            return int(imp.version)
    raise ValueError("no default-domain opset import")


def op_types(m):
    ops = set()

    def walk(graph):
        for node in graph.node:
            ops.add(node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}.{node.op_type}")
            for attr in node.attribute:
                if attr.g is not None and attr.HasField("g"):
                    walk(attr.g)
                for sub in attr.graphs:
                    walk(sub)

    walk(m.graph)
    for f in m.functions:
        for node in f.node:
            ops.add(node.op_type)
    return sorted(ops)


def run_ort(path, x, batch_dynamic):
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    (inp,) = sess.get_inputs()
    outs = [sess.run(None, {inp.name: x[i : i + 1].numpy()})[0][0] for i in range(len(x))]
    outs = np.stack(outs).astype(np.float32)
    if batch_dynamic:
        whole = sess.run(None, {inp.name: x.numpy()})[0]
        diff = float(np.max(np.abs(whole - outs)))
        if not np.allclose(whole, outs, rtol=1e-5, atol=1e-5):
            raise AssertionError(f"{path}: batch {len(x)} differs from batch 1 by {diff}")
        print(f"    batch {len(x)} == batch 1 (max diff {diff:.2e})")
    return outs


def run_torch(model, x):
    """PyTorch's logits for each sample run alone with batch 1."""
    with torch.no_grad():
        outs = [model(x[i : i + 1])[0].numpy() for i in range(len(x))]
    return np.stack(outs).astype(np.float32)


def bn_nodes(m):
    """The BatchNormalization nodes of the main graph; each must be the inference form."""
    nodes = [n for n in m.graph.node if n.op_type == "BatchNormalization"]
    for n in nodes:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
        if len(n.output) != 1 or attrs.get("training_mode", 0) != 0:
            raise AssertionError(f"BatchNormalization {n.name} is not the inference form: "
                                 f"{len(n.output)} outputs, training_mode={attrs.get('training_mode')}")
    return nodes


def main():
    os.makedirs(OUT, exist_ok=True)
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)  # the dynamo exporter's torchvision notes
    print(f"torch {torch.__version__}, onnx {onnx.__version__}, onnxruntime {ort.__version__}")
    print(f"writing into {OUT}")
    skipped = []
    total = 0
    for name, ctor, shape, seed in MODELS:
        model = build(ctor, seed)
        x = make_inputs(shape, seed, name)
        with torch.no_grad():
            ref = model(x).numpy()
        params = sum(p.numel() for p in model.parameters())
        print(f"{name}: input {list(shape)}, {params} params")
        jobs = [(name, exporter, export, False) for exporter, export in EXPORTERS]
        if name in BN_VARIANTS:
            jobs += [(BN_VARIANTS[name], exporter, export, True) for exporter, export in EXPORTERS]
        for fixture, exporter, export, keep_bn in jobs:
            stem = os.path.join(OUT, f"{fixture}.{exporter}")
            onnx_path = stem + ".onnx"
            reference = "onnxruntime"
            try:
                export(model, x[:1], onnx_path, keep_bn=keep_bn,
                       dynamic_length=name in DYNAMIC_LENGTH)
                m = onnx.load(onnx_path)
                onnx.checker.check_model(m, full_check=True)
                ops = op_types(m)
                opset = opset_of(m)
                n_bn = len(bn_nodes(m))
                if keep_bn and n_bn == 0:
                    raise AssertionError(f"{onnx_path}: no BatchNormalization node")
                if keep_bn:
                    print(f"    {n_bn} BatchNormalization nodes kept")
                try:
                    dynamic = exporter == "torchscript" or name in DYNAMIC_LENGTH
                    out = run_ort(onnx_path, x, batch_dynamic=dynamic)
                except Exception as e:
                    # ONNX Runtime may refuse a valid model (e.g. Conv with
                    # auto_pad SAME_UPPER and dilation > 1).
                    if f"{fixture}.{exporter}" not in PYTORCH_REFERENCE:
                        raise
                    print(f"    ONNX Runtime refuses it ({type(e).__name__}: "
                          f"{str(e).splitlines()[0] if str(e) else ''}); using PyTorch's outputs")
                    out = run_torch(model, x)
                    reference = "pytorch"
                else:
                    if f"{fixture}.{exporter}" in PYTORCH_REFERENCE:
                        print(f"    NOTE: ONNX Runtime now runs {fixture}.{exporter}; "
                              "update PYTORCH_REFERENCE and the README")
            except Exception as e:  # report and go on with the others
                reason = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
                print(f"  SKIP {fixture}.{exporter}: {reason}")
                skipped.append((f"{fixture}.{exporter}", reason))
                for p in (onnx_path, stem + ".json"):
                    if os.path.exists(p):
                        os.remove(p)
                continue
            diff = float(np.max(np.abs(out - ref)))
            if not np.allclose(out, ref, rtol=1e-4, atol=1e-4):
                raise AssertionError(f"{onnx_path}: {reference} (batch 1) differs from PyTorch (batch {len(x)}) by {diff}")
            record = {
                "model": fixture,
                "exporter": exporter,
                "opset": opset,
                "input_shape": list(shape),
                "op_types": ops,
                "reference": reference,
                "inputs": [[float(v) for v in s.reshape(-1).tolist()] for s in x.numpy()],
                "outputs": [[float(v) for v in o.tolist()] for o in out],
            }
            with open(stem + ".json", "w") as f:
                json.dump(record, f)
                f.write("\n")
            for p in (onnx_path, stem + ".json"):
                size = os.path.getsize(p)
                total += size
                print(f"  {os.path.relpath(p, ROOT)}: {size} bytes")
            print(f"    opset {opset}, {reference} vs torch max diff {diff:.2e}, ops: {' '.join(ops)}")
    print(f"total {total} bytes")
    if skipped:
        print("skipped:")
        for what, why in skipped:
            print(f"  {what}: {why}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
