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
# What a pip install needs too (README, "Install with pip"): vspipe finds its Python through a
# per-user config keyed by this venv's libvsscript path ('vapoursynth config'), and the README's
# pipe lines call .venv/bin/ffmpeg (a link to imageio-ffmpeg's binary). vsvsr doctor checks
# vspipe, ffmpeg, backends and models, makes both fixes when needed and says what it did.
.venv/bin/vsvsr doctor
