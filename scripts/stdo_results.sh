#!/usr/bin/env bash
# Everything behind the tables of docs/stdo.md, on 2 cores (two jobs of one thread each):
#   1. the general ESPCN models (x4 and x2), unless shipped already;
#   2. packs for every method on the two real clips and one long synthetic clip (x4);
#   3. filter fps and the vs-mlrt side by side (when its plugin is installed, see below);
#   4. the tables (runs/stdo/tables.md) and the heat map (docs/stdo-heatmap.png).
# vs-mlrt stays out of the project's environment:
#   .venv/bin/pip install --no-deps --target /tmp/mlrt-bench vapoursynth-mlrt-ort
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
OUT=${OUT:-runs/stdo}
GENERAL_MINUTES=${GENERAL_MINUTES:-3.5}
REAL=${VSVSR_SHARED_DATA:-../shared/data}/real  # the shared data beside the repository
LONG="long:$REAL/realbasicvsr_demo_000/00000000.png:200:256x144"
MLRT=${MLRT:-/tmp/mlrt-bench/vapoursynth/plugins/ort/libvsort.so}
export OMP_NUM_THREADS=1
mkdir -p "$OUT"

for s in 4 2; do
  if [ ! -f "vsvsr/models/weights/general-espcn-x$s.pth" ]; then
    $PY -m vsvsr.stdo.general --scale "$s" --minutes "$GENERAL_MINUTES" --threads 1 \
      > "$OUT/general-x$s.log" 2>&1 &
  fi
done
wait

common=(--scale 4 --out "$OUT" --threads 1 --no-progress)
( $PY scripts/stdo_results.py train --clip "$REAL/realbasicvsr_demo_000" "${common[@]}" &&
  $PY scripts/stdo_results.py train --clip "$REAL/realbasicvsr_demo_000" --epochs 100 \
    --tag=-e100 "${common[@]}" &&
  $PY scripts/stdo_results.py train --clip "$REAL/basicvsrpp_demo_000" --scale 2 --out "$OUT" \
    --threads 1 --no-progress ) > "$OUT/train-realbasicvsr.log" 2>&1 &
( $PY scripts/stdo_results.py train --clip "$REAL/basicvsrpp_demo_000" "${common[@]}" &&
  $PY scripts/stdo_results.py train --clip "$LONG" --epochs 20 "${common[@]}" ) \
  > "$OUT/train-basicvsrpp-long.log" 2>&1 &
wait

# WDSR-s on the small clip, with its own 3-minute general model (not shipped)
if [ ! -f "$OUT/general-wdsr-s-x4.pth" ]; then
  $PY -m vsvsr.stdo.general --scale 4 --backbone wdsr-s --minutes "$GENERAL_MINUTES" --threads 1 \
    --out "$OUT/general-wdsr-s-x4.pth" > "$OUT/general-wdsr-s-x4.log" 2>&1
fi
$PY scripts/stdo_results.py train --clip "$REAL/basicvsrpp_demo_000" --backbone wdsr-s \
  --general "$OUT/general-wdsr-s-x4.pth" --tag=-wdsr-s "${common[@]}" > "$OUT/train-wdsr.log" 2>&1

mlrt=()
[ -f "$MLRT" ] && mlrt=(--mlrt-plugin "$MLRT")
OMP_NUM_THREADS=2 $PY scripts/stdo_results.py fps --clip "$REAL/realbasicvsr_demo_000" \
  --scale 4 --out "$OUT" --threads 0 --vs-threads 2 --rounds 3 "${mlrt[@]}" > "$OUT/fps.log" 2>&1
OMP_NUM_THREADS=2 $PY scripts/stdo_results.py fps --clip "$REAL/basicvsrpp_demo_000" --tag=-wdsr-s \
  --scale 4 --out "$OUT" --threads 0 --vs-threads 2 --rounds 3 "${mlrt[@]}" > "$OUT/fps-wdsr.log" 2>&1
$PY scripts/stdo_results.py report --out "$OUT" --md "$OUT/tables.md" \
  --heatmap docs/stdo-heatmap.png --heatmap-clip "$REAL/realbasicvsr_demo_000"
