#!/usr/bin/env bash
# Create .venv with Python 3.12 and install vsvsr with the given extras (default: dev).
# Idempotent: re-running only installs what changed. Everything comes from PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
extras=${1:-dev}
py=$(bash scripts/find_python.sh)
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))'; then
  rm -rf .venv
  "$py" -m venv .venv
fi
stamp=.venv/.vsvsr-installed-$extras
if [ ! -f "$stamp" ] || [ setup.py -nt "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e ".[$extras]"
  touch "$stamp"
fi
.venv/bin/python -c 'import vapoursynth, onnxruntime; print("vsvsr setup: ok,", vapoursynth.core.version_number() if hasattr(vapoursynth.core, "version_number") else "", "python", __import__("sys").version.split()[0])'
