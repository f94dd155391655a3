#!/usr/bin/env bash
# The Python environment the export tests run ONNX Runtime, the qonnx
# executor and the ONNX checker in: a virtual environment in target/pyenv
# with the pinned packages of scripts/requirements.txt. Run it once before `cargo test`; it is quick
# when the environment is already there. The tests use target/pyenv, or the
# interpreter POTC_PYTHON names.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x target/pyenv/bin/python ] || "${PYTHON:-python3}" -m venv target/pyenv
target/pyenv/bin/python -m pip install -q --disable-pip-version-check -r scripts/requirements.txt
target/pyenv/bin/python -c "import onnx, onnxruntime, qonnx; print('target/pyenv: onnx', onnx.__version__, '/ onnxruntime', onnxruntime.__version__, '/ qonnx')"
