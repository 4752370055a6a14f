#!/usr/bin/env bash
# Print the path of a Python 3.12 interpreter: PATH first, then pyenv's versions.
# VapourSynth >= 74 (we use R81) needs exactly this minor version's ABI range (>= 3.12).
set -euo pipefail
ok() { "$1" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 12) else 1)' 2>/dev/null; }
for cand in "${PYTHON:-}" python3.12 python3 python; do
  [ -n "$cand" ] || continue
  p=$(command -v "$cand" 2>/dev/null) || continue
  if ok "$p"; then echo "$p"; exit 0; fi
done
for root in "${PYENV_ROOT:-$HOME/.pyenv}" /root/.pyenv /usr/local/pyenv; do
  for p in "$root"/versions/3.12*/bin/python3.12; do
    if [ -x "$p" ] && ok "$p"; then echo "$p"; exit 0; fi
  done
done
for p in /usr/bin/python3.12 /usr/local/bin/python3.12 /opt/python*/bin/python3.12; do
  if [ -x "$p" ] && ok "$p"; then echo "$p"; exit 0; fi
done
echo "vsvsr setup: no Python 3.12 found (looked on PATH and in pyenv's versions)." >&2
echo "Install one (e.g. 'pyenv install 3.12', or your distribution's python3.12 package)," >&2
echo "or point to it with PYTHON=/path/to/python3.12." >&2
exit 1
