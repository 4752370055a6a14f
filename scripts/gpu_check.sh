#!/usr/bin/env bash
# The GPU check, for a CUDA machine with no network: the CUDA tests and the benchmark table.
#
#   bash scripts/gpu_check.sh [OUT_DIR]        (default: $OUT, else out/gpu)
#
# Needs python3 with numpy, onnx, onnxruntime, PyTorch (CUDA) and CuPy. VapourSynth is optional
# (the filter's end-to-end GPU test is skipped without it); to bring it, put its wheel in .whl/
# beforehand, on a machine with network, from the repository root:
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     --implementation cp --platform manylinux_2_28_x86_64 -d .whl vapoursynth==81
# Writes: gpu.txt (the card), gpu-tests.log / gpu-tests.xml, gpu-errors.json (measured
# errors), bench.json / bench.md (the table: fps, upload / convert / infer / download, GPU
# memory, the filter end to end on the GPU frame path), bench-ort-cuda.* when onnxruntime has
# CUDA, summary.txt.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT_DIR="${1:-${OUT:-out/gpu}}"
mkdir -p "$OUT_DIR"
PY="${PYTHON:-python3}"
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

if ls .whl/*.whl >/dev/null 2>&1; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/vsvsr-site .whl/*.whl && export PYTHONPATH="$PYTHONPATH:/tmp/vsvsr-site"
fi

{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    "$PY" - <<'EOF'
from vsvsr.runtime.gpu_info import query_gpu
import importlib
print("gpu:", query_gpu())
for m in ("torch", "cupy", "onnxruntime", "onnx", "vapoursynth", "tensorrt"):
    try:
        mod = importlib.import_module(m)
        print(f"{m}: {getattr(mod, '__version__', 'installed')}")
    except Exception as exc:
        print(f"{m}: missing ({type(exc).__name__})")
EOF
} > "$OUT_DIR/gpu.txt" 2>&1
cat "$OUT_DIR/gpu.txt"

export VSVSR_GPU_REPORT="$OUT_DIR/gpu-errors.json"
rm -f "$VSVSR_GPU_REPORT"
"$PY" -m pytest -m gpu -q -p no:cacheprovider -o addopts="-ra" --timeout=600 \
    tests/test_cuda_gpu.py --junitxml="$OUT_DIR/gpu-tests.xml" 2>&1 | tee "$OUT_DIR/gpu-tests.log"
tests_rc=${PIPESTATUS[0]}

# The frame path split (upload / convert / infer / download), GPU memory and the filter end to
# end (vsvsr.recurrent on the GPU frame path, parallel requests) per backend present.
"$PY" scripts/gpu_bench.py --fp32 --out "$OUT_DIR/bench.json" --markdown "$OUT_DIR/bench.md" \
    2>&1 | tee "$OUT_DIR/bench.log"
bench_rc=${PIPESTATUS[0]}
if "$PY" -c "import onnxruntime as o, sys; sys.exit('CUDAExecutionProvider' not in o.get_available_providers())" 2>/dev/null; then
    "$PY" scripts/gpu_bench.py --backend ort-cuda --frames 30 --out "$OUT_DIR/bench-ort-cuda.json" \
        --markdown "$OUT_DIR/bench-ort-cuda.md" 2>&1 | tee "$OUT_DIR/bench-ort-cuda.log"
fi

{
    echo "gpu tests exit code: $tests_rc"
    echo "bench exit code: $bench_rc"
    tail -n 3 "$OUT_DIR/gpu-tests.log"
    cat "$OUT_DIR/bench.md" 2>/dev/null
    cat "$OUT_DIR/bench-ort-cuda.md" 2>/dev/null
} | tee "$OUT_DIR/summary.txt"
exit $(( tests_rc != 0 || bench_rc != 0 ))
