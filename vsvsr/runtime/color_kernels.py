"""Colour conversion on the device: the source frame's planes -> model RGB, model RGB -> the
output format's planes, so a frame crosses the PCIe bus once each way in its own format
(10-bit YUV 4:2:0 at 4K is 4x fewer bytes than RGBS).

Frames live in one device buffer per frame, planes packed one after the other (Y, U, V or R,
G, B; chroma planes at the subsampled size). The model side is planar ``(1, 3, H, W)`` in the
engine's dtype (fp32 or fp16: the fp16 packing happens here).

Maths (shared by the CUDA kernels and the NumPy reference, :func:`to_model_ref` and
:func:`from_model_ref`, computed in float32):

- range: limited ``Y' = (Y - 16k) / 219k``, ``C' = (C - 128k) / 224k`` with ``k = 2^(bits-8)``;
  full ``Y' = Y / (2^bits - 1)``, ``C' = (C - 2^(bits-1)) / (2^bits - 1)`` (as zimg);
- matrix: ``R = Y + 2(1-Kr) Cr``, ``B = Y + 2(1-Kb) Cb``, ``G = (Y - Kr R - Kb B) / Kg``;
- chroma up-sampling: bilinear at the chroma siting (``_ChromaLocation``); down-sampling: a
  triangle filter two chroma samples wide centred on the siting (zimg's bilinear);
- RGB clamped to [0, 1] on the way in and out; integers rounded to nearest, ties to even.

The CPU filter path converts with VapourSynth's resize (bicubic chroma), so YUV 4:2:0/4:2:2
output of the GPU path differs from it by the chroma filter; 4:4:4 and RGB agree to rounding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

#: (Kr, Kb) by VapourSynth ``_Matrix`` number.
MATRIX_COEFFS = {1: (0.2126, 0.0722), 4: (0.30, 0.11), 5: (0.299, 0.114), 6: (0.299, 0.114),
                 7: (0.212, 0.087), 9: (0.2627, 0.0593)}
#: Chroma sample position in luma pixels (x, y) by ``_ChromaLocation`` (0 = left, MPEG-2).
CHROMA_SITING = {0: (0.0, 0.5), 1: (0.5, 0.5), 2: (0.0, 0.0), 3: (0.5, 0.0), 4: (0.0, 1.0),
                 5: (0.5, 1.0)}


@dataclass(kw_only=True, frozen=True)
class FrameFormat:
    """A frame format as the device sees it."""

    yuv: bool
    bits: int  #: bits per sample (8-16 integer; 16 or 32 float)
    is_float: bool = False
    ssw: int = 0  #: log2 horizontal chroma subsampling (YUV only)
    ssh: int = 0  #: log2 vertical chroma subsampling
    matrix: int = 1  #: VapourSynth ``_Matrix`` (YUV only)
    full_range: bool = False  #: YUV only; RGB is always full range
    chroma_location: int = 0

    def __post_init__(self) -> None:
        if self.yuv and (self.is_float or not 8 <= self.bits <= 16):
            raise ValueError("YUV frames on the device are 8-16 bit integer")
        if self.yuv and self.matrix not in MATRIX_COEFFS:
            raise ValueError(f"matrix {self.matrix} has no device kernel; use 709, 170m, "
                             "470bg, 240m, fcc or 2020ncl (or the CPU backends)")
        if self.ssw not in (0, 1) or self.ssh not in (0, 1) or (self.ssh and not self.ssw):
            raise ValueError("chroma subsampling must be 4:4:4, 4:2:2 or 4:2:0")
        if self.chroma_location not in CHROMA_SITING:
            raise ValueError(f"unknown chroma location {self.chroma_location}")

    @property
    def dtype(self) -> np.dtype:
        if self.is_float:
            return np.dtype(np.float16 if self.bits == 16 else np.float32)
        return np.dtype(np.uint8 if self.bits <= 8 else np.uint16)

    def plane_sizes(self, width: int, height: int) -> list[tuple[int, int]]:
        """(height, width) of each plane."""
        if not self.yuv:
            return [(height, width)] * 3
        cw, ch = (width + (1 << self.ssw) - 1) >> self.ssw, (height + (1 << self.ssh) - 1) >> self.ssh
        return [(height, width), (ch, cw), (ch, cw)]

    def frame_elements(self, width: int, height: int) -> int:
        return sum(h * w for h, w in self.plane_sizes(width, height))

    def constants(self) -> dict[str, float]:
        """Offsets and scales of the range conversion, and the matrix; shared by all kernels."""
        if self.is_float:
            return {"yo": 0.0, "ys": 1.0, "co": 0.0, "cs": 1.0, "kr": 0.0, "kb": 0.0, "vmax": 1.0}
        vmax = float((1 << self.bits) - 1)
        if not self.yuv:
            return {"yo": 0.0, "ys": vmax, "co": 0.0, "cs": vmax, "kr": 0.0, "kb": 0.0, "vmax": vmax}
        kr, kb = MATRIX_COEFFS[self.matrix]
        if self.full_range:
            return {"yo": 0.0, "ys": vmax, "co": float(1 << (self.bits - 1)), "cs": vmax,
                    "kr": kr, "kb": kb, "vmax": vmax}
        k = float(1 << (self.bits - 8))
        return {"yo": 16 * k, "ys": 219 * k, "co": 128 * k, "cs": 224 * k, "kr": kr, "kb": kb,
                "vmax": vmax}


# -- NumPy reference -------------------------------------------------------------------------------
def split_planes(frame: np.ndarray, fmt: FrameFormat, width: int, height: int) -> list[np.ndarray]:
    """Views of the packed planes of a flat frame buffer."""
    out, offset = [], 0
    for h, w in fmt.plane_sizes(width, height):
        out.append(frame[offset:offset + h * w].reshape(h, w))
        offset += h * w
    return out


def _upsample(plane: np.ndarray, width: int, height: int, fmt: FrameFormat) -> np.ndarray:
    """Bilinear chroma up-sampling at the chroma siting, in float32, edges clamped."""
    cx, cy = CHROMA_SITING[fmt.chroma_location]
    p = plane.astype(np.float32)
    if fmt.ssw:
        fx = (np.arange(width, dtype=np.float32) - np.float32(cx)) * np.float32(0.5)
        x0 = np.floor(fx)
        a = (fx - x0).astype(np.float32)
        i0 = np.clip(x0.astype(np.int64), 0, p.shape[1] - 1)
        i1 = np.clip(x0.astype(np.int64) + 1, 0, p.shape[1] - 1)
        p = p[:, i0] * (np.float32(1) - a) + p[:, i1] * a
    if fmt.ssh:
        fy = (np.arange(height, dtype=np.float32) - np.float32(cy)) * np.float32(0.5)
        y0 = np.floor(fy)
        b = (fy - y0).astype(np.float32)[:, None]
        j0 = np.clip(y0.astype(np.int64), 0, p.shape[0] - 1)
        j1 = np.clip(y0.astype(np.int64) + 1, 0, p.shape[0] - 1)
        p = p[j0, :] * (np.float32(1) - b) + p[j1, :] * b
    return p.astype(np.float32)


def to_model_ref(frame: np.ndarray, fmt: FrameFormat, width: int, height: int,
                 out_dtype: Any = np.float32) -> np.ndarray:
    """A packed source frame -> model input ``(1, 3, H, W)`` RGB in [0, 1]."""
    c = {k: np.float32(v) for k, v in fmt.constants().items()}
    planes = split_planes(frame, fmt, width, height)
    if fmt.yuv:
        y = (planes[0].astype(np.float32) - c["yo"]) / c["ys"]
        u = (_upsample(planes[1], width, height, fmt) - c["co"]) / c["cs"]
        v = (_upsample(planes[2], width, height, fmt) - c["co"]) / c["cs"]
        kr, kb = c["kr"], c["kb"]
        r = y + np.float32(2) * (np.float32(1) - kr) * v
        b = y + np.float32(2) * (np.float32(1) - kb) * u
        g = (y - kr * r - kb * b) / (np.float32(1) - kr - kb)
        rgb = np.stack([r, g, b])
    else:
        rgb = np.stack([(p.astype(np.float32) - c["yo"]) / c["ys"] for p in planes])
    return np.clip(rgb, 0, 1)[None].astype(out_dtype)


def _quantize(x: np.ndarray, offset: np.float32, scale: np.float32, fmt: FrameFormat) -> np.ndarray:
    if fmt.is_float:
        return x.astype(fmt.dtype)
    q = np.rint(offset + x * scale)
    return np.clip(q, 0, (1 << fmt.bits) - 1).astype(fmt.dtype)


def _downsample_weights(n_out: int, n_in: int, siting: float, sub: int) -> np.ndarray:
    """(n_out, n_in) triangle-filter matrix, two chroma samples wide, edges clamped."""
    m = np.zeros((n_out, n_in), np.float32)
    if not sub:
        np.fill_diagonal(m, 1)
        return m
    for i in range(n_out):
        pos = 2 * i + siting
        base = int(np.floor(pos))
        taps = range(base - 1, base + 3)
        ws = [max(0.0, 1.0 - abs(t - pos) / 2.0) for t in taps]
        total = sum(ws)
        for t, w in zip(taps, ws, strict=True):
            m[i, min(max(t, 0), n_in - 1)] += np.float32(w / total)
    return m


def from_model_ref(rgb: np.ndarray, fmt: FrameFormat) -> np.ndarray:
    """Model output ``(1, 3, H, W)`` -> a packed frame of ``fmt`` (flat array)."""
    _, _, height, width = rgb.shape
    x = np.clip(rgb[0].astype(np.float32), 0, 1)
    c = {k: np.float32(v) for k, v in fmt.constants().items()}
    if not fmt.yuv:
        planes = [_quantize(p, c["yo"], c["ys"], fmt) for p in x]
        return np.concatenate([p.reshape(-1) for p in planes])
    kr, kb = c["kr"], c["kb"]
    kg = np.float32(1) - kr - kb
    r, g, b = x
    y = kr * r + kg * g + kb * b
    u = (b - y) / (np.float32(2) * (np.float32(1) - kb))
    v = (r - y) / (np.float32(2) * (np.float32(1) - kr))
    (ch, cw) = fmt.plane_sizes(width, height)[1]
    cx, cy = CHROMA_SITING[fmt.chroma_location]
    wx = _downsample_weights(cw, width, cx, fmt.ssw)
    wy = _downsample_weights(ch, height, cy, fmt.ssh)
    u, v = (wy @ p @ wx.T for p in (u, v))
    planes = [_quantize(y, c["yo"], c["ys"], fmt), _quantize(u, c["co"], c["cs"], fmt),
              _quantize(v, c["co"], c["cs"], fmt)]
    return np.concatenate([p.reshape(-1) for p in planes])


class NumpyColorKernels:
    """The reference as a device's kernels (the fake CUDA device of the tests uses it)."""

    def __init__(self, *, view_fn: Any, enqueue_fn: Any, handle_fn: Any, ptr_fn: Any) -> None:
        self._view, self._enqueue, self._handle, self._ptr = view_fn, enqueue_fn, handle_fn, ptr_fn

    def to_model(self, src: Any, dst: Any, fmt: FrameFormat, width: int, height: int,
                 stream: Any) -> None:
        s = (self._ptr(src), (fmt.frame_elements(width, height),), fmt.dtype)
        d = (self._ptr(dst), (1, 3, height, width), dst.dtype)
        self._enqueue(self._handle(stream), lambda: np.copyto(
            self._view(*d), to_model_ref(self._view(*s), fmt, width, height, d[2])))

    def from_model(self, src: Any, dst: Any, fmt: FrameFormat, width: int, height: int,
                   stream: Any) -> None:
        s = (self._ptr(src), (1, 3, height, width), src.dtype)
        d = (self._ptr(dst), (fmt.frame_elements(width, height),), fmt.dtype)
        self._enqueue(self._handle(stream), lambda: np.copyto(
            self._view(*d), from_model_ref(self._view(*s), fmt)))


# -- CUDA -------------------------------------------------------------------------------------------
CUDA_SOURCE = r"""
#include <cuda_fp16.h>

template<typename T> __device__ __forceinline__ float ld(const T* p, int i) { return (float)p[i]; }
template<> __device__ __forceinline__ float ld<__half>(const __half* p, int i) { return __half2float(p[i]); }
template<typename T> __device__ __forceinline__ void st(T* p, int i, float v) { p[i] = (T)v; }
template<> __device__ __forceinline__ void st<__half>(__half* p, int i, float v) {
    p[i] = __float2half_rn(v);
}
__device__ __forceinline__ float clamp01(float v) { return fminf(fmaxf(v, 0.f), 1.f); }

template<typename T>
__device__ float chroma_at(const T* c, int cw, int ch, int x, int y, int ssw, int ssh,
                           float sx, float sy) {
    float fx = ssw ? ((float)x - sx) * 0.5f : (float)x;
    float fy = ssh ? ((float)y - sy) * 0.5f : (float)y;
    float x0f = floorf(fx), y0f = floorf(fy);
    float a = fx - x0f, b = fy - y0f;
    int x0 = min(max((int)x0f, 0), cw - 1), x1 = min(max((int)x0f + 1, 0), cw - 1);
    int y0 = min(max((int)y0f, 0), ch - 1), y1 = min(max((int)y0f + 1, 0), ch - 1);
    float top = ld(c, y0 * cw + x0) * (1.f - a) + ld(c, y0 * cw + x1) * a;
    float bot = ld(c, y1 * cw + x0) * (1.f - a) + ld(c, y1 * cw + x1) * a;
    return ssh ? top * (1.f - b) + bot * b : top;
}

// Source frame (packed planes) -> model input (1, 3, h, w).
template<typename TI, typename TO>
__global__ void to_model(const TI* src, TO* dst, int w, int h, int cw, int ch, int yuv,
                         int ssw, int ssh, float sx, float sy, float yo, float ys, float co,
                         float cs, float kr, float kb) {
    int x = blockIdx.x * blockDim.x + threadIdx.x, y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= w || y >= h) return;
    int n = w * h, i = y * w + x;
    float r, g, b;
    if (yuv) {
        const TI* U = src + n; const TI* V = U + cw * ch;
        float Y = (ld(src, i) - yo) / ys;
        float u = (chroma_at(U, cw, ch, x, y, ssw, ssh, sx, sy) - co) / cs;
        float v = (chroma_at(V, cw, ch, x, y, ssw, ssh, sx, sy) - co) / cs;
        r = Y + 2.f * (1.f - kr) * v;
        b = Y + 2.f * (1.f - kb) * u;
        g = (Y - kr * r - kb * b) / (1.f - kr - kb);
    } else {
        r = (ld(src, i) - yo) / ys; g = (ld(src, n + i) - yo) / ys; b = (ld(src, 2 * n + i) - yo) / ys;
    }
    st(dst, i, clamp01(r)); st(dst, n + i, clamp01(g)); st(dst, 2 * n + i, clamp01(b));
}

__device__ __forceinline__ float quant(float x, float off, float scale, float vmax, int is_float) {
    if (is_float) return x;
    return fminf(fmaxf(rintf(off + x * scale), 0.f), vmax);
}

// Model output (1, 3, h, w) -> luma (or R, G, B) planes of the output frame.
template<typename TI, typename TO>
__global__ void from_model_main(const TI* src, TO* dst, int w, int h, int yuv, float yo, float ys,
                                float kr, float kb, float vmax, int is_float) {
    int x = blockIdx.x * blockDim.x + threadIdx.x, y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= w || y >= h) return;
    int n = w * h, i = y * w + x;
    float r = clamp01(ld(src, i)), g = clamp01(ld(src, n + i)), b = clamp01(ld(src, 2 * n + i));
    if (yuv) {
        st(dst, i, quant(kr * r + (1.f - kr - kb) * g + kb * b, yo, ys, vmax, is_float));
    } else {
        st(dst, i, quant(r, yo, ys, vmax, is_float));
        st(dst, n + i, quant(g, yo, ys, vmax, is_float));
        st(dst, 2 * n + i, quant(b, yo, ys, vmax, is_float));
    }
}

__device__ __forceinline__ void tap_weights(int i, int sub, float siting, int n_in, int* t, float* wt) {
    if (!sub) { t[0] = i; wt[0] = 1.f; for (int k = 1; k < 4; ++k) { t[k] = i; wt[k] = 0.f; } return; }
    float pos = 2.f * i + siting;
    int base = (int)floorf(pos);
    float total = 0.f;
    for (int k = 0; k < 4; ++k) {
        int tt = base - 1 + k;
        wt[k] = fmaxf(0.f, 1.f - fabsf((float)tt - pos) * 0.5f);
        total += wt[k];
        t[k] = min(max(tt, 0), n_in - 1);
    }
    for (int k = 0; k < 4; ++k) wt[k] /= total;
}

// Model output -> the two chroma planes, one thread per chroma sample.
template<typename TI, typename TO>
__global__ void from_model_chroma(const TI* src, TO* dst, int w, int h, int cw, int ch, int ssw,
                                  int ssh, float sx, float sy, float co, float cs, float kr,
                                  float kb, float vmax) {
    int x = blockIdx.x * blockDim.x + threadIdx.x, y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= cw || y >= ch) return;
    int n = w * h;
    int tx[4], ty[4]; float wx[4], wy[4];
    tap_weights(x, ssw, sx, w, tx, wx);
    tap_weights(y, ssh, sy, h, ty, wy);
    float u = 0.f, v = 0.f, kg = 1.f - kr - kb;
    for (int j = 0; j < 4; ++j) {
        if (wy[j] == 0.f) continue;
        float ur = 0.f, vr = 0.f;
        for (int k = 0; k < 4; ++k) {
            if (wx[k] == 0.f) continue;
            int i = ty[j] * w + tx[k];
            float r = clamp01(ld(src, i)), g = clamp01(ld(src, n + i)), b = clamp01(ld(src, 2 * n + i));
            float Y = kr * r + kg * g + kb * b;
            ur += wx[k] * ((b - Y) / (2.f * (1.f - kb)));
            vr += wx[k] * ((r - Y) / (2.f * (1.f - kr)));
        }
        u += wy[j] * ur; v += wy[j] * vr;
    }
    TO* U = dst + n; TO* V = U + cw * ch;
    st(U, y * cw + x, quant(u, co, cs, vmax, 0));
    st(V, y * cw + x, quant(v, co, cs, vmax, 0));
}
"""

_CTYPES = {np.dtype(np.uint8): "unsigned char", np.dtype(np.uint16): "unsigned short",
           np.dtype(np.float16): "__half", np.dtype(np.float32): "float"}


class CupyColorKernels:
    """The kernels above, compiled once by CuPy (NVRTC) for every type pair used."""

    BLOCK = (32, 8)

    def __init__(self, cp: Any) -> None:
        self.cp = cp
        self._module = cp.RawModule(code=CUDA_SOURCE, options=("-std=c++14",),
                                    name_expressions=self.kernel_names())

    @staticmethod
    def kernel_names() -> list[str]:
        """Every template instance used: (sample type, model type) in both directions."""
        names = []
        for sample in _CTYPES.values():
            for model in ("float", "__half"):
                names.append(f"to_model<{sample}, {model}>")
                names.append(f"from_model_main<{model}, {sample}>")
                names.append(f"from_model_chroma<{model}, {sample}>")
        return names

    def _fn(self, name: str) -> Any:
        return self._module.get_function(name)

    def _grid(self, w: int, h: int) -> tuple[int, int]:
        bx, by = self.BLOCK
        return ((w + bx - 1) // bx, (h + by - 1) // by)

    def to_model(self, src: Any, dst: Any, fmt: FrameFormat, width: int, height: int,
                 stream: Any) -> None:
        np_ = np
        c = fmt.constants()
        (ch, cw) = fmt.plane_sizes(width, height)[1]
        sx, sy = CHROMA_SITING[fmt.chroma_location]
        fn = self._fn(f"to_model<{_CTYPES[fmt.dtype]}, {_CTYPES[np_.dtype(dst.dtype)]}>")
        f32 = np_.float32
        with stream:
            fn(self._grid(width, height), self.BLOCK,
               (src, dst, np_.int32(width), np_.int32(height), np_.int32(cw), np_.int32(ch),
                np_.int32(fmt.yuv), np_.int32(fmt.ssw), np_.int32(fmt.ssh), f32(sx), f32(sy),
                f32(c["yo"]), f32(c["ys"]), f32(c["co"]), f32(c["cs"]), f32(c["kr"]), f32(c["kb"])))

    def from_model(self, src: Any, dst: Any, fmt: FrameFormat, width: int, height: int,
                   stream: Any) -> None:
        c = fmt.constants()
        f32, i32 = np.float32, np.int32
        ti, to = _CTYPES[np.dtype(src.dtype)], _CTYPES[fmt.dtype]
        with stream:
            self._fn(f"from_model_main<{ti}, {to}>")(
                self._grid(width, height), self.BLOCK,
                (src, dst, i32(width), i32(height), i32(fmt.yuv), f32(c["yo"]), f32(c["ys"]),
                 f32(c["kr"]), f32(c["kb"]), f32(c["vmax"]), i32(fmt.is_float)))
            if fmt.yuv:
                (ch, cw) = fmt.plane_sizes(width, height)[1]
                sx, sy = CHROMA_SITING[fmt.chroma_location]
                self._fn(f"from_model_chroma<{ti}, {to}>")(
                    self._grid(cw, ch), self.BLOCK,
                    (src, dst, i32(width), i32(height), i32(cw), i32(ch), i32(fmt.ssw),
                     i32(fmt.ssh), f32(sx), f32(sy), f32(c["co"]), f32(c["cs"]), f32(c["kr"]),
                     f32(c["kb"]), f32(c["vmax"])))
