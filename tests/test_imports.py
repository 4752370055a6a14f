"""The runtime path needs no PyTorch, and ``import vsvsr`` has no side effects."""

from __future__ import annotations

import subprocess
import sys

import synth  # noqa: F401  (tests/ on sys.path for the subprocess below too)


def run_py(code: str) -> str:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_import_vsvsr_is_light() -> None:
    out = run_py("import sys, vsvsr; print('vapoursynth' in sys.modules, 'torch' in sys.modules)")
    assert out.split() == ["False", "False"]


def test_filter_on_ort_never_imports_torch(random_model) -> None:
    code = f"""
import sys
sys.path.insert(0, {str(synth.__file__.rsplit('/', 1)[0])!r})
import synth, vsvsr
out = vsvsr.recurrent(synth.array_clip(synth.make_frames(3, 16, 16)), {str(random_model)!r}, "auto")
out.get_frame(2)
print('torch' in sys.modules, 'onnxruntime' in sys.modules)
"""
    assert run_py(code).split() == ["False", "True"]
