"""Colour conversion for the device path: the NumPy reference against VapourSynth's resize
(CPU). The CUDA kernels are checked against this reference in ``test_cuda_gpu.py``."""

from __future__ import annotations

import numpy as np
import pytest
import vapoursynth as vs

from vsvsr.runtime.color_kernels import FrameFormat, from_model_ref, split_planes, to_model_ref

core = vs.core
W, H = 40, 24
MATRICES = {1: "709", 5: "470bg", 6: "170m", 9: "2020ncl"}


def _yuv_clip(frame: np.ndarray, fmt: FrameFormat, vs_format: int, props: dict) -> vs.VideoNode:
    clip = core.std.BlankClip(width=W, height=H, format=vs_format, length=1)
    planes = split_planes(frame, fmt, W, H)

    def fill(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        out = f.copy()
        for p in range(3):
            np.asarray(out[p])[...] = planes[p]
        for k, v in props.items():
            out.props[k] = v
        return out

    return core.std.ModifyFrame(clip, clip, fill)


def _random_yuv(fmt: FrameFormat, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    lo, hi = (0, (1 << fmt.bits) - 1)
    if not fmt.full_range:  # legal values, so both converters clamp the same way
        k = 1 << (fmt.bits - 8)
        lo, hi = 16 * k, 235 * k
    return rng.integers(lo, hi + 1, fmt.frame_elements(W, H)).astype(fmt.dtype)


@pytest.mark.parametrize("matrix", sorted(MATRICES))
@pytest.mark.parametrize("bits,full", [(8, False), (10, False), (10, True), (16, True)])
def test_yuv444_to_rgb_matches_vapoursynth(matrix: int, bits: int, full: bool) -> None:
    fmt = FrameFormat(yuv=True, bits=bits, matrix=matrix, full_range=full)
    frame = _random_yuv(fmt, seed=bits + matrix)
    vsfmt = core.query_video_format(vs.YUV, vs.INTEGER, bits, 0, 0).id
    clip = _yuv_clip(frame, fmt, vsfmt, {"_Matrix": matrix, "_Range": int(full)})
    rgb = core.resize.Point(clip, format=vs.RGBS, matrix_in=matrix,
                            range_in_s="full" if full else "limited")
    ref = np.stack([np.asarray(rgb.get_frame(0)[p]) for p in range(3)])
    got = to_model_ref(frame, fmt, W, H)[0]
    np.testing.assert_allclose(got, np.clip(ref, 0, 1), atol=2e-5)


@pytest.mark.parametrize("matrix", [1, 9])
@pytest.mark.parametrize("bits,full", [(8, False), (10, False), (12, True)])
def test_rgb_to_yuv444_matches_vapoursynth(matrix: int, bits: int, full: bool) -> None:
    fmt = FrameFormat(yuv=True, bits=bits, matrix=matrix, full_range=full)
    rgb = np.random.default_rng(bits).random((1, 3, H, W), dtype=np.float32)
    clip = core.std.BlankClip(width=W, height=H, format=vs.RGBS, length=1)

    def fill(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        out = f.copy()
        for p in range(3):
            np.asarray(out[p])[...] = rgb[0, p]
        return out

    vsfmt = core.query_video_format(vs.YUV, vs.INTEGER, bits, 0, 0).id
    yuv = core.resize.Point(core.std.ModifyFrame(clip, clip, fill), format=vsfmt, matrix=matrix,
                            range_s="full" if full else "limited")
    f = yuv.get_frame(0)
    ref = np.concatenate([np.asarray(f[p]).reshape(-1) for p in range(3)]).astype(np.int64)
    got = from_model_ref(rgb, fmt).astype(np.int64)
    assert np.abs(got - ref).max() <= 1  # rounding of values within float error of .5


@pytest.mark.parametrize("ssw,ssh", [(1, 1), (1, 0)])
@pytest.mark.parametrize("location", [0, 1, 2])
def test_subsampled_round_trip_and_flat_colour(ssw: int, ssh: int, location: int) -> None:
    fmt = FrameFormat(yuv=True, bits=10, ssw=ssw, ssh=ssh, matrix=1, chroma_location=location)
    # A flat colour survives exactly (the filters are normalized).
    flat = np.full((1, 3, H, W), 0.25, np.float32)
    flat[0, 0] = 0.6
    frame = from_model_ref(flat, fmt)
    y, u, v = split_planes(frame, fmt, W, H)
    assert len(np.unique(y)) == len(np.unique(u)) == len(np.unique(v)) == 1
    np.testing.assert_allclose(to_model_ref(frame, fmt, W, H), flat, atol=2e-3)
    # Smooth content goes round the trip with small error away from the edges (chroma is
    # band-limited; at the edges the clamped filters lose more).
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    smooth = np.stack([0.5 + 0.3 * np.sin(xx / 7), 0.5 + 0.3 * np.cos(yy / 5),
                       0.4 + 0.2 * np.sin((xx + yy) / 9)])[None].astype(np.float32)
    back = to_model_ref(from_model_ref(smooth, fmt), fmt, W, H)
    assert float(np.abs(back - smooth)[..., 2:-2, 2:-2].max()) < 0.015


@pytest.mark.parametrize("location", [0, 1, 2])
def test_subsampled_chroma_is_close_to_vapoursynth(location: int) -> None:
    """4:2:0 up-sampling is bilinear here and bicubic in resize: close on smooth content when
    both place the chroma samples alike (a wrong siting shifts colours by a pixel)."""
    fmt = FrameFormat(yuv=True, bits=8, ssw=1, ssh=1, matrix=1, chroma_location=location)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    smooth = np.stack([0.5 + 0.3 * np.sin(xx / 7), 0.5 + 0.3 * np.cos(yy / 5),
                       0.4 + 0.2 * np.sin((xx + yy) / 9)])[None].astype(np.float32)
    frame = from_model_ref(smooth, fmt)
    clip = _yuv_clip(frame, fmt, vs.YUV420P8, {"_Matrix": 1, "_ChromaLocation": location})
    rgb = core.resize.Bicubic(clip, format=vs.RGBS, matrix_in=1, range_in_s="limited",
                              chromaloc_in=location)
    ref = np.stack([np.asarray(rgb.get_frame(0)[p]) for p in range(3)])
    got = to_model_ref(frame, fmt, W, H)[0]
    inner = (slice(None), slice(2, -2), slice(2, -2))
    err = float(np.abs(got[inner] - np.clip(ref, 0, 1)[inner]).max())
    assert err < 0.01, err


def test_rgb_formats_and_fp16_packing() -> None:
    rgb = np.random.default_rng(0).random((1, 3, H, W), dtype=np.float32)
    for fmt, tol in ((FrameFormat(yuv=False, bits=8), 0.5 / 255),
                     (FrameFormat(yuv=False, bits=16), 0.5 / 65535),
                     (FrameFormat(yuv=False, bits=16, is_float=True), 1e-3),
                     (FrameFormat(yuv=False, bits=32, is_float=True), 0)):
        frame = from_model_ref(rgb, fmt)
        assert frame.dtype == fmt.dtype and frame.size == 3 * W * H
        half = to_model_ref(frame, fmt, W, H, np.float16)
        assert half.dtype == np.float16
        np.testing.assert_allclose(to_model_ref(frame, fmt, W, H), rgb, atol=tol + 1e-7)


def test_unsupported_device_formats_are_refused() -> None:
    with pytest.raises(ValueError, match="matrix 10"):
        FrameFormat(yuv=True, bits=8, matrix=10)
    with pytest.raises(ValueError, match="subsampling"):
        FrameFormat(yuv=True, bits=8, ssw=0, ssh=1)


def _nvrtc():
    """libnvrtc from the pip CUDA packages (PyTorch brings them), or None."""
    import ctypes
    import glob
    import site

    for base in site.getsitepackages():
        for lib in sorted(glob.glob(f"{base}/nvidia/cu*/lib/libnvrtc.so.*")):
            if ".alt." in lib:
                continue
            for builtins in glob.glob(lib.replace("libnvrtc.so", "libnvrtc-builtins.so") + "*"):
                ctypes.CDLL(builtins, mode=ctypes.RTLD_GLOBAL)  # nvrtc dlopens it by name
            include = lib.rsplit("/lib/", 1)[0] + "/include"
            return ctypes.CDLL(lib), include
    return None


def test_cuda_kernels_compile_with_nvrtc() -> None:
    """The kernel source compiles (to PTX, no GPU needed) for every type pair CuPy asks for."""
    import ctypes

    from vsvsr.runtime.color_kernels import CUDA_SOURCE, CupyColorKernels

    found = _nvrtc()
    if found is None:
        pytest.skip("no libnvrtc in the pip CUDA packages")
    lib, include = found
    prog = ctypes.c_void_p()
    assert lib.nvrtcCreateProgram(ctypes.byref(prog), CUDA_SOURCE.encode(), b"k.cu", 0, None, None) == 0
    names = CupyColorKernels.kernel_names()
    for name in names:
        assert lib.nvrtcAddNameExpression(prog, name.encode()) == 0
    opts = [b"-std=c++14", b"-arch=compute_75", f"-I{include}".encode()]
    rc = lib.nvrtcCompileProgram(prog, len(opts), (ctypes.c_char_p * len(opts))(*opts))
    size = ctypes.c_size_t()
    lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
    log = ctypes.create_string_buffer(max(1, size.value))
    lib.nvrtcGetProgramLog(prog, log)
    if rc != 0 and b"libnvrtc-builtins" in log.value:
        pytest.skip("libnvrtc-builtins could not be loaded here")
    assert rc == 0, log.value.decode()
    lowered = ctypes.c_char_p()
    assert all(lib.nvrtcGetLoweredName(prog, n.encode(), ctypes.byref(lowered)) == 0 for n in names)
    assert len(names) == 24
