#!/usr/bin/env bash
# Set up gradmod on a fresh machine: a virtual environment in .venv with the CPU
# build of torch 2.13.0 and every optional extra, plus Debian's Fashion-MNIST
# package where apt is available. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
# Installing torch first, pinned, keeps pip from pulling a CUDA build for a range.
.venv/bin/python -m pip install --quiet torch==2.13.0
.venv/bin/python -m pip install --quiet -e '.[dev]'

data=/usr/share/datasets/fashion-mnist
if [ ! -e "$data/train-images-idx3-ubyte.gz" ] && command -v apt-get >/dev/null 2>&1; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq dataset-fashion-mnist >/dev/null
fi
echo "gradmod is set up in .venv (activate with: . .venv/bin/activate)"
