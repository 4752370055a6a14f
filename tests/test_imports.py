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


def test_gpu_modules_import_without_their_heavy_packages() -> None:
    """The TensorRT/CUDA modules load (and the CLI lists 'build') with no tensorrt, CuPy or
    PyTorch imported: those come in lazily, with an install hint, when used."""
    code = """
import sys
import plugin_build.trt_build, plugin_build.onnx_fp16, vsvsr.cli.build, vsvsr.cli.main
import vsvsr.runtime.tensorrt_backend, vsvsr.runtime.cuda_buffers, vsvsr.runtime.cuda_device
import vsvsr.runtime.torch_cuda_backend, vsvsr.runtime.color_kernels, vsvsr.runtime.gpu_info
print(*(m in sys.modules for m in ('tensorrt', 'cupy', 'torch')))
"""
    assert run_py(code).split() == ["False", "False", "False"]
