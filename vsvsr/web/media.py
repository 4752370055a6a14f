"""Clip facts and the on-demand frame preview, computed in the server process.

The preview builds its graph with :func:`vsvsr.cli.upscale.build_graph`, the function the job
itself runs, so the vsvsr half is the very frame the job will hand the encoder: exact, from the
frame's reset point (frame 0, a scene change with scene detection on), whatever frame was asked
for before. The graph of the last few (file, model, settings) is kept, so walking forward along
the timeline reuses the filter's recurrent cursors instead of starting over. The bicubic half is
the antialiased Catmull-Rom upscale the evaluation compares against.
"""

from __future__ import annotations

import base64
import io
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vsvsr.errors import ClipFormatError

if TYPE_CHECKING:
    import vapoursynth as vs

    from vsvsr.cli.upscale import UpscaleOptions

log = logging.getLogger(__name__)

#: Matrix names by ``_Matrix`` (ITU-T H.273), for the facts table.
_MATRIX_NAMES = {0: "rgb", 1: "709", 2: "unspecified", 4: "fcc", 5: "470bg", 6: "170m",
                 7: "240m", 9: "2020ncl", 10: "2020cl"}


def clip_facts(path: Path) -> dict[str, Any]:
    """Size, frames, fps, format, matrix, duration and audio of a video file."""
    from vsvsr.cli.upscale import open_source
    from vsvsr.encode.ffmpeg import audio_streams

    src = open_source(path)
    props = src.get_frame(0).props
    fps = src.fps_num / src.fps_den if src.fps_den else 0.0
    matrix = int(props.get("_Matrix", 2))  # type: ignore[arg-type]
    return {
        "width": src.width, "height": src.height, "frames": src.num_frames,
        "fps": round(fps, 3), "fps_num": src.fps_num, "fps_den": src.fps_den,
        "duration": round(src.num_frames / fps, 3) if fps else None,
        "format": src.format.name if src.format else "variable",
        "matrix": _MATRIX_NAMES.get(matrix, str(matrix)),
        "bytes": path.stat().st_size,
        "audio": [s.codec for s in audio_streams(path)],
    }


def rgb_frame(clip: vs.VideoNode, n: int, matrix: str | None) -> np.ndarray:
    """Frame ``n`` of ``clip`` as (H, W, 3) uint8 RGB; YUV by ``matrix`` when given (the one
    the job assumes for a clip that does not say), else by the frames' ``_Matrix``."""
    import vapoursynth as vs

    if clip.format.color_family == vs.YUV:
        kwargs = {"matrix_in_s": matrix} if matrix else {}
        rgb = clip.resize.Bicubic(format=vs.RGB24, dither_type="none", **kwargs)
    elif clip.format.id != vs.RGB24:
        rgb = clip.resize.Point(format=vs.RGB24, dither_type="none")
    else:
        rgb = clip
    frame = rgb.get_frame(n)
    return np.stack([np.asarray(frame[p]) for p in range(3)], axis=-1)


def png_data_url(image: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


@dataclass
class _Graph:
    out: vs.VideoNode  #: the job's clip (what the encoder gets)
    bicubic: vs.VideoNode
    matrix: str | None
    scale: int


class Previewer:
    """Computes previews one at a time (CPU-bound), keeping the last few graphs."""

    def __init__(self, keep: int = 2) -> None:
        self.keep = keep
        self._graphs: OrderedDict[tuple, _Graph] = OrderedDict()
        self._lock = threading.Lock()

    def _graph(self, opts: UpscaleOptions) -> _Graph:
        from vsvsr.cli.upscale import build_graph, guess_matrix
        from vsvsr.sample.clip import BICUBIC

        st = opts.input.stat()
        key = (str(opts.input), st.st_mtime_ns, st.st_size, str(opts.model), opts.backend,
               opts.matrix, opts.scene_detect)
        graph = self._graphs.get(key)
        if graph is None:
            out, src = build_graph(opts)
            scale = out.width // src.width
            if out.width != src.width * scale:
                raise ClipFormatError(f"vsvsr serve: unexpected output size {out.width}x"
                                      f"{out.height} for {src.width}x{src.height}")
            bicubic = src.resize.Bicubic(src.width * scale, src.height * scale, **BICUBIC)
            graph = _Graph(out, bicubic, opts.matrix or guess_matrix(src), scale)
            self._graphs[key] = graph
            while len(self._graphs) > self.keep:
                self._graphs.popitem(last=False)
        self._graphs.move_to_end(key)
        return graph

    def preview(self, opts: UpscaleOptions, frame: int) -> dict[str, Any]:
        """Frame ``frame`` upscaled by bicubic and by vsvsr, as PNG data URLs, with timings."""
        with self._lock:
            t0 = time.perf_counter()
            graph = self._graph(opts)
            t_graph = time.perf_counter() - t0
            n = graph.out.num_frames
            if not 0 <= frame < n:
                raise ClipFormatError(f"frame {frame} is outside the clip (0 to {n - 1})")
            t0 = time.perf_counter()
            sr = rgb_frame(graph.out, frame, graph.matrix)
            t_sr = time.perf_counter() - t0
            t0 = time.perf_counter()
            bic = rgb_frame(graph.bicubic, frame, graph.matrix)
            t_bic = time.perf_counter() - t0
        return {"frame": frame, "frames": n, "scale": graph.scale,
                "width": sr.shape[1], "height": sr.shape[0],
                "vsvsr": png_data_url(sr), "bicubic": png_data_url(bic),
                "seconds": {"vsvsr": t_sr, "bicubic": t_bic, "graph": t_graph}}
