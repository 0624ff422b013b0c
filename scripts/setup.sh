#!/usr/bin/env bash
# Set up gradmod on a fresh machine: a virtual environment in .venv with torch
# 2.13.0 and every optional extra, plus Debian's Fashion-MNIST package where apt
# is available. Safe to run again.
#
# Which torch build pip installs depends on the index: stock PyPI serves the
# CUDA build on Linux. Set TORCH_INDEX_URL (for example to
# https://download.pytorch.org/whl/cpu) to install torch from another index.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
# Installing torch first, pinned, keeps the extras from pulling another torch.
if [ -n "${TORCH_INDEX_URL:-}" ]; then
    .venv/bin/python -m pip install --quiet --index-url "$TORCH_INDEX_URL" torch==2.13.0
else
    .venv/bin/python -m pip install --quiet torch==2.13.0
fi
.venv/bin/python -m pip install --quiet -e '.[dev]'

data=/usr/share/datasets/fashion-mnist
if [ ! -e "$data/train-images-idx3-ubyte.gz" ] && command -v apt-get >/dev/null 2>&1; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq dataset-fashion-mnist >/dev/null
fi
echo "gradmod is set up in .venv (activate with: . .venv/bin/activate)"
