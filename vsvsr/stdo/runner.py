"""Per-patch model selection on NumPy frames: the overfit filter's work, without VapourSynth.

Two exact ways to give every patch its own model without seams:

* ``full``: run each model that frame ``n`` uses on the *whole* frame, then copy each patch
  from its model's output. Every pixel sees its real neighbourhood, as in training. A
  single-model pack (JSTDO, general) is one plain full-frame run.
* ``patch``: run each patch alone on an LR crop grown by the model's receptive radius (clipped
  at the frame edge, where the full-frame run pads the same way), and keep the patch's centre.
  Mathematically the same output (floating point may differ in the last bits); it does less
  arithmetic when a frame uses many models, but pays one model call per patch.
* ``box``: the most used model on the whole frame; every other model once, on the bounding
  box of its patches grown by the receptive radius. One call per model like ``full``, less
  arithmetic when a model's patches cluster (exact for the same reason as ``patch``).

The models run on ONNX Runtime (``ort``, ``ort-cuda``) or OpenVINO (``openvino``, the CPU
default where it is installed: :mod:`vsvsr.runtime.openvino_backend`). Only NumPy and those
are imported (the filter path never loads PyTorch).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from vsvsr.errors import BackendUnavailableError
from vsvsr.stdo.grid import PatchGrid
from vsvsr.stdo.pack import Pack
from vsvsr.utils.lazy import lazy_import

log = logging.getLogger(__name__)

BACKENDS = ("ort", "ort-cuda", "openvino")
ALIASES = {"ort-cpu": "ort", "onnxruntime": "ort", "ov": "openvino", "openvino-cpu": "openvino"}
MODES = ("full", "patch", "box")


def _ort() -> Any:
    return lazy_import("onnxruntime", "the overfit filter (ONNX Runtime)")


def _openvino_status() -> tuple[bool, str]:
    from vsvsr.runtime.select import backend_status

    st = next(s for s in backend_status() if s.name == "openvino")
    return st.available, st.detail


def pick_backend(backend: str, func: str = "vsvsr.overfit") -> str:
    """``auto`` -> ``ort-cuda`` when onnxruntime has CUDA, else ``openvino`` when it is
    installed, else ``ort``."""
    name = ALIASES.get(backend.lower(), backend.lower())
    if name == "openvino" or (name == "auto" and not _has_ort_cuda()):
        ok, why = _openvino_status()
        if ok:
            return "openvino"
        if name == "openvino":
            raise BackendUnavailableError(f"{func}: backend 'openvino' is not available here: "
                                          f"{why}; or use backend='ort'")
        log.info("%s: OpenVINO not used (%s); ONNX Runtime instead", func, why)
    providers = _ort().get_available_providers()
    if name == "auto":
        return "ort-cuda" if "CUDAExecutionProvider" in providers else "ort"
    if name not in BACKENDS:
        raise BackendUnavailableError(
            f"{func}: backend {backend!r} cannot run overfit packs; use 'auto', 'openvino', "
            "'ort' or 'ort-cuda' (the pack's ONNX models run on OpenVINO or ONNX Runtime)")
    if name == "ort-cuda" and "CUDAExecutionProvider" not in providers:
        raise BackendUnavailableError(f"{func}: backend 'ort-cuda' needs onnxruntime-gpu and a "
                                      "CUDA GPU; install onnxruntime-gpu or use backend='ort'")
    return name


def _has_ort_cuda() -> bool:
    try:
        return "CUDAExecutionProvider" in _ort().get_available_providers()
    except ImportError:
        return False


def open_session(onnx: bytes, *, backend: str = "ort", threads: int = 0) -> Any:
    """An ONNX Runtime session over in-memory ONNX bytes (options as the recurrent filter's)."""
    ort = _ort()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    providers = (["CUDAExecutionProvider", "CPUExecutionProvider"] if backend == "ort-cuda"
                 else ["CPUExecutionProvider"])
    return ort.InferenceSession(onnx, sess_options=opts, providers=providers)


class PackRunner:
    """Upscale frame ``n`` of the pack's clip with the models its label map picks.

    Stateless: the output of frame ``n`` depends only on the LR frame ``n`` and ``labels[n]``,
    so any request order gives the same frames. ONNX Runtime sessions and OpenVINO engines
    (one infer request per stream) may be run from several threads at once.

    Args:
        threads: inference threads per frame (0: the backend's default, every core).
        streams: frames run at once (OpenVINO compiles that many CPU streams, with
            ``threads`` each; ONNX Runtime sessions take concurrent calls as they are).
        precision: OpenVINO's inference precision (``auto``, ``bf16``, ``f32``).
    """

    def __init__(self, pack: Pack, backend: str = "auto", *, threads: int = 0,
                 mode: str = "full", streams: int = 1, precision: str = "auto") -> None:
        if mode not in MODES:
            raise ValueError(f"PackRunner: mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.pack = pack
        self.mode = mode
        self.backend = pick_backend(backend)
        from vsvsr.runtime.select import check_precision

        check_precision(precision, self.backend, ("openvino",))
        self.scale = pack.scale
        w, h = pack.lr_size
        self.grid = PatchGrid(w, h, *pack.grid)
        self.precision = "f32"
        if self.backend == "openvino":
            from vsvsr.runtime.openvino_backend import OpenVinoEngine, OvSettings

            settings = OvSettings(precision=precision, threads=threads * streams,
                                  streams=streams)
            engines = [OpenVinoEngine(m.onnx, size=(w, h), settings=settings,
                                      source=f"pack model {m.name!r}") for m in pack.models]
            self.precision = engines[0].precision
            self._models: list[Any] = engines
            self._runs = [lambda lr, e=e: e.run({"lr": lr})["sr"] for e in engines]
        else:
            sessions = [open_session(m.onnx, backend=self.backend, threads=threads)
                        for m in pack.models]
            self._models = sessions
            self._runs = [lambda lr, s=s: s.run(["sr"], {"lr": lr})[0] for s in sessions]
        self._ys, self._xs = self.grid.ys(), self.grid.xs()

    def close(self) -> None:
        for m in self._models:
            if hasattr(m, "close"):
                m.close()
        self._models, self._runs = [], []

    def run_model(self, k: int, lr: np.ndarray) -> np.ndarray:
        """Model ``k`` on a (1, 3, h, w) float32 array."""
        return self._runs[k](lr)

    def upscale(self, lr: np.ndarray, n: int) -> np.ndarray:
        """(1, 3, H, W) float32 LR frame ``n`` -> (1, 3, sH, sW) float32 (not clamped)."""
        labels = self.pack.labels[n]
        used = np.unique(labels)
        if used.size == 1:  # JSTDO/general packs, or a frame all in one chunk
            return self.run_model(int(used[0]), lr)
        if self.mode == "patch":
            return self._patches(lr, labels)
        return self._full(lr, labels, used, box=self.mode == "box")

    def _full(self, lr: np.ndarray, labels: np.ndarray, used: np.ndarray, *,
              box: bool) -> np.ndarray:
        s, m = self.scale, self.pack.receptive_radius
        _, _, h, w = lr.shape
        # the most used model's output becomes the frame; the others overwrite their patches
        counts = [(int((labels == k).sum()), int(k)) for k in used]
        base = max(counts)[1]
        out = self.run_model(base, lr)
        for k in used:
            if k == base:
                continue
            rows, cols = np.nonzero(labels == k)
            y0, x0 = 0, 0
            if box:  # the bounding box of k's patches plus context, clipped to the frame
                y0 = max(0, int(self._ys[rows.min()]) - m)
                y1 = min(h, int(self._ys[rows.max() + 1]) + m)
                x0 = max(0, int(self._xs[cols.min()]) - m)
                x1 = min(w, int(self._xs[cols.max() + 1]) + m)
                sr = self.run_model(int(k), np.ascontiguousarray(lr[:, :, y0:y1, x0:x1]))
            else:
                sr = self.run_model(int(k), lr)
            for r, c in zip(rows, cols, strict=True):
                ys, ye = self._ys[r] * s, self._ys[r + 1] * s
                xs, xe = self._xs[c] * s, self._xs[c + 1] * s
                out[:, :, ys:ye, xs:xe] = sr[:, :, ys - y0 * s:ye - y0 * s, xs - x0 * s:xe - x0 * s]
        return out

    def _patches(self, lr: np.ndarray, labels: np.ndarray) -> np.ndarray:
        s, m = self.scale, self.pack.receptive_radius
        _, _, h, w = lr.shape
        out = np.empty((1, 3, h * s, w * s), np.float32)
        for r in range(self.grid.rows):
            for c in range(self.grid.cols):
                y0, y1, x0, x1 = self._ys[r], self._ys[r + 1], self._xs[c], self._xs[c + 1]
                cy0, cy1 = max(0, y0 - m), min(h, y1 + m)
                cx0, cx1 = max(0, x0 - m), min(w, x1 + m)
                crop = np.ascontiguousarray(lr[:, :, cy0:cy1, cx0:cx1])
                sr = self.run_model(int(labels[r, c]), crop)
                out[:, :, y0 * s:y1 * s, x0 * s:x1 * s] = \
                    sr[:, :, (y0 - cy0) * s:(y1 - cy0) * s, (x0 - cx0) * s:(x1 - cx0) * s]
        return out
