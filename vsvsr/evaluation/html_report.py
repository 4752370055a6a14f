"""A self-contained HTML comparison report: per-frame Y-PSNR plot and side-by-side crops.

``vsvsr eval --html`` (with ground truth) and ``vsvsr compare --html`` (real clips without it)
write ONE file: the crops are PNG data URIs, the plot is inline SVG, the script and style are
inline, and a Content-Security-Policy forbids every fetch, so the page opens offline and shows
exactly what was measured. Each chosen frame has a thumbnail with the crop marked, the crops of
the input (LR, nearest-neighbour enlarged), bicubic, every model and the ground truth side by
side, and a viewer with a slider between any two of them (click a crop to put it on the right,
shift-click for the left, "swap" to toggle).
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vsvsr.errors import VsvsrError
from vsvsr.evaluation.models import BICUBIC, NO_OPTIONS, RunOptions, Upscaler
from vsvsr.evaluation.showcase import (
    DEFAULT_CROP,
    capture_frames,
    choose_by_psnr,
    choose_evenly,
    crop_box,
)
from vsvsr.utils.atomic import atomic_write_bytes

log = logging.getLogger(__name__)

GROUND_TRUTH = "ground truth"
INPUT = "input"
THUMB_WIDTH = 360  #: px, the frame thumbnail with the crop marked
VIEW_WIDTH = 384  #: px, the slider viewer shows the crop enlarged to about this (integer zoom)
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf")


class ReportError(VsvsrError, ValueError):
    """Frames that cannot be shown together (different sizes)."""


@dataclass
class FrameView:
    """One chosen frame: every image at full size, the LR input, and the per-image Y-PSNR."""

    index: int
    reason: str
    images: dict[str, np.ndarray]  #: label -> (H, W, 3) uint8, in display order
    lr: np.ndarray | None = None  #: the model input (H / scale, W / scale)
    psnr: dict[str, float] = field(default_factory=dict)  #: empty without ground truth
    scale: int = 1

    def __post_init__(self) -> None:
        check_sizes(self.images, f"frame {self.index}")
        if self.lr is not None:
            h, w = next(iter(self.images.values())).shape[:2]
            lh, lw = self.lr.shape[:2]
            if (lh * self.scale, lw * self.scale) != (h, w):
                raise ReportError(f"html report: frame {self.index}: the input is {lw}x{lh}, "
                                  f"which at x{self.scale} is not the outputs' {w}x{h}")


@dataclass
class SequenceView:
    """One sequence of the report."""

    name: str
    description: str
    frames: list[FrameView]
    psnr: dict[str, list[float]] | None = None  #: label -> per-frame Y-PSNR, None without GT
    restarts: list[int] = field(default_factory=list)


def check_sizes(images: Mapping[str, np.ndarray], where: str) -> None:
    """Raise :class:`ReportError` listing every image's size when they differ."""
    sizes = {label: (a.shape[1], a.shape[0]) for label, a in images.items()}
    if len(set(sizes.values())) > 1:
        listed = ", ".join(f"{label} {w}x{h}" for label, (w, h) in sizes.items())
        raise ReportError(f"html report: {where}: the frames have different sizes ({listed}); "
                          "every image compared must have one size")
    bad = [label for label, a in images.items() if a.dtype != np.uint8 or a.ndim != 3
           or a.shape[2] != 3]
    if bad:
        raise ReportError(f"html report: {where}: {', '.join(bad)} not (H, W, 3) uint8 RGB")


# -- images ---------------------------------------------------------------------------------------

def png_data_uri(rgb: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buf, format="PNG", compress_level=6)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _thumbnail(rgb: np.ndarray) -> np.ndarray:
    from PIL import Image

    h, w = rgb.shape[:2]
    if w <= THUMB_WIDTH:
        return rgb
    img = Image.fromarray(rgb).resize((THUMB_WIDTH, max(1, round(h * THUMB_WIDTH / w))),
                                      Image.Resampling.BICUBIC)
    return np.asarray(img)


# -- the plot -----------------------------------------------------------------------------------

def _color(label: str, i: int) -> str:
    return "#888888" if label == BICUBIC else COLORS[i % len(COLORS)]


def psnr_svg(series: Mapping[str, Sequence[float]], marks: Sequence[tuple[int, str]] = (),
             restarts: Sequence[int] = (), *, width: int = 900, height: int = 260) -> str:
    """An inline SVG line plot of per-frame Y-PSNR, chosen frames marked."""
    left, right, top, bottom = 52, 170, 12, 34
    pw, ph = width - left - right, height - top - bottom
    n = max((len(v) for v in series.values()), default=1)
    vals = [x for v in series.values() for x in v]
    lo, hi = (min(vals), max(vals)) if vals else (0.0, 1.0)
    pad = max(0.2, 0.06 * (hi - lo))
    lo, hi = lo - pad, hi + pad

    def px(i: float) -> float:
        return left + (pw * i / (n - 1) if n > 1 else pw / 2)

    def py(v: float) -> float:
        return top + ph * (1.0 - (v - lo) / (hi - lo))

    out = [f'<svg class="plot" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
           'role="img" aria-label="per-frame Y-PSNR">',
           f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="#fff" stroke="#999"/>']
    for k in range(6):  # y grid and ticks
        v = lo + (hi - lo) * k / 5
        y = py(v)
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" '
                   'stroke="#eee"/>')
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{v:.1f}</text>')
    ticks = sorted({int(round(x)) for x in np.linspace(0, n - 1, num=min(n, 8))})
    for t in ticks:
        out.append(f'<text x="{px(t):.1f}" y="{top + ph + 16}" text-anchor="middle">{t}</text>')
    out.append(f'<text x="{left + pw / 2}" y="{height - 2}" text-anchor="middle">frame</text>')
    out.append(f'<text x="12" y="{top + ph / 2}" text-anchor="middle" '
               f'transform="rotate(-90 12 {top + ph / 2})">Y-PSNR (dB)</text>')
    for r in restarts:
        out.append(f'<line x1="{px(r):.1f}" x2="{px(r):.1f}" y1="{top}" y2="{top + ph}" '
                   'stroke="#d62728" stroke-dasharray="4 3"/>')
    for idx, why in marks:
        x = px(idx)
        out.append(f'<line class="mark" x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{top + ph}" '
                   'stroke="#444" stroke-dasharray="1 3"/>')
        end = x > left + 0.85 * pw  # near the right edge: write the label leftwards
        out.append(f'<text x="{x - 3 if end else x + 3:.1f}" y="{top + 11}" class="marklabel" '
                   f'text-anchor="{"end" if end else "start"}">{html.escape(why)}</text>')
    for i, (label, v) in enumerate(series.items()):
        color = _color(label, i)
        dash = ' stroke-dasharray="5 3"' if label == BICUBIC else ""
        pts = " ".join(f"{px(t):.1f},{py(x):.1f}" for t, x in enumerate(v))
        if len(v) == 1:
            out.append(f'<circle cx="{px(0):.1f}" cy="{py(v[0]):.1f}" r="3" fill="{color}"/>')
        out.append(f'<polyline class="series" data-label="{html.escape(label)}" points="{pts}" '
                   f'fill="none" stroke="{color}" stroke-width="1.6"{dash}/>')
        ly = top + 14 + 18 * i
        mean = float(np.mean(v)) if len(v) else float("nan")
        out.append(f'<line x1="{left + pw + 10}" x2="{left + pw + 30}" y1="{ly - 4}" '
                   f'y2="{ly - 4}" stroke="{color}" stroke-width="2"{dash}/>')
        out.append(f'<text x="{left + pw + 34}" y="{ly}">{html.escape(label)} '
                   f'({mean:.2f})</text>')
    out.append("</svg>")
    return "\n".join(out)


# -- the page -----------------------------------------------------------------------------------

STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:16px 24px;color:#222;background:#fafafa}
h1{font-size:20px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 4px;border-top:1px solid #ccc;
padding-top:12px} h3{font-size:14px;margin:16px 0 6px} .meta{color:#555;margin:2px 0}
.plot text{font-size:11px;fill:#333} .plot .marklabel{font-size:10px;fill:#444}
.row{display:flex;gap:16px;align-items:flex-start;flex-wrap:wrap}
.thumb{position:relative;display:inline-block;line-height:0}
.thumb .box{position:absolute;border:2px solid #e00;box-sizing:border-box}
.viewer .stage{position:relative;line-height:0;display:inline-block;cursor:ew-resize}
.viewer img{image-rendering:pixelated} .viewer .over{position:absolute;left:0;top:0}
.viewer .divider{position:absolute;top:0;bottom:0;width:2px;background:#fff;
box-shadow:0 0 2px #000}
.viewer .tags{display:flex;justify-content:space-between;font-size:12px;color:#333}
.viewer .controls{margin-top:4px} .viewer input.split{width:100%}
.crops{display:flex;flex-wrap:wrap;gap:8px;margin-top:8px}
.crops figure{margin:0;cursor:pointer;border:2px solid transparent}
.crops figure.sel-a{border-color:#1f77b4} .crops figure.sel-b{border-color:#ff7f0e}
.crops img{display:block;image-rendering:pixelated}
.crops figcaption{font-size:12px;text-align:center}
.note{color:#666;font-size:12px}
"""

SCRIPT = """
(function () {
  for (const frame of document.querySelectorAll('section.frame')) {
    const viewer = frame.querySelector('.viewer');
    const figs = Array.from(frame.querySelectorAll('.crops figure'));
    const byLabel = new Map(figs.map(f => [f.dataset.label, f]));
    const under = viewer.querySelector('img.under'), over = viewer.querySelector('img.over');
    const selA = viewer.querySelector('select.a'), selB = viewer.querySelector('select.b');
    const split = viewer.querySelector('input.split');
    const divider = viewer.querySelector('.divider');
    const stage = viewer.querySelector('.stage');
    function show() {
      under.src = byLabel.get(selA.value).querySelector('img').src;
      over.src = byLabel.get(selB.value).querySelector('img').src;
      over.style.clipPath = 'inset(0 0 0 ' + split.value + '%)';
      divider.style.left = split.value + '%';
      viewer.querySelector('.tag-a').textContent = '\\u2190 ' + selA.value;
      viewer.querySelector('.tag-b').textContent = selB.value + ' \\u2192';
      for (const f of figs) {
        f.classList.toggle('sel-a', f.dataset.label === selA.value);
        f.classList.toggle('sel-b', f.dataset.label === selB.value);
      }
    }
    for (const f of figs) {
      f.addEventListener('click', ev => {
        (ev.shiftKey ? selA : selB).value = f.dataset.label; show();
      });
    }
    selA.addEventListener('change', show); selB.addEventListener('change', show);
    split.addEventListener('input', show);
    stage.addEventListener('mousemove', ev => {
      if (ev.buttons !== 1) return;
      const r = stage.getBoundingClientRect();
      split.value = Math.round(100 * (ev.clientX - r.left) / r.width); show();
    });
    viewer.querySelector('button.swap').addEventListener('click', () => {
      const a = selA.value; selA.value = selB.value; selB.value = a; show();
    });
    show();
  }
  document.body.classList.add('ready');
})();
"""

CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
       "script-src 'unsafe-inline'")


def _frame_html(seq_i: int, f: FrameView, crop: int) -> str:
    labels = list(f.images)
    ref = f.images.get(BICUBIC)
    models = [a for k, a in f.images.items() if k not in (BICUBIC, GROUND_TRUTH)]
    base = ref if ref is not None else next(iter(f.images.values()))
    x, y, w, h = crop_box(base, models, crop, align=f.scale)
    H, W = base.shape[:2]
    crops: dict[str, np.ndarray] = {}
    if f.lr is not None:
        s = f.scale
        lr_crop = f.lr[y // s:(y + h) // s, x // s:(x + w) // s]
        crops[INPUT] = np.repeat(np.repeat(lr_crop, s, axis=0), s, axis=1)
    for label in labels:
        crops[label] = f.images[label][y:y + h, x:x + w]
    shown = f.images.get(GROUND_TRUTH, f.images[labels[-1]])
    thumb = png_data_uri(_thumbnail(shown))
    box = (f'left:{100 * x / W:.3f}%;top:{100 * y / H:.3f}%;width:{100 * w / W:.3f}%;'
           f'height:{100 * h / H:.3f}%')
    zoom = max(1, VIEW_WIDTH // max(w, 1))
    first_model = next((k for k in labels if k not in (BICUBIC, GROUND_TRUTH)), labels[-1])
    default_a = BICUBIC if BICUBIC in crops else next(iter(crops))

    def options(default: str) -> str:
        return "".join(f'<option{" selected" if k == default else ""}>{html.escape(k)}</option>'
                       for k in crops)

    figs = []
    for label, c in crops.items():
        cap = html.escape(label)
        if label == INPUT:
            cap += f" (LR, x{f.scale} nearest)"
        elif label in f.psnr:
            cap += f" &middot; {f.psnr[label]:.2f} dB"
        figs.append(f'<figure data-label="{html.escape(label)}"><img src="{png_data_uri(c)}" '
                    f'width="{w}" height="{h}" alt="{html.escape(label)} crop">'
                    f'<figcaption>{cap}</figcaption></figure>')
    title = f"frame {f.index} &middot; {html.escape(f.reason)}"
    if f.psnr and first_model in f.psnr:
        title += f" ({html.escape(first_model)} {f.psnr[first_model]:.2f} dB)"
    return f"""
<section class="frame" id="s{seq_i}f{f.index}" data-frame="{f.index}">
<h3>{title}</h3>
<p class="note">crop {w}x{h} at ({x}, {y}) of {W}x{H}: where the models differ most from
bicubic. Drag the slider (or on the image); click a crop to show it on the right, shift-click
for the left.</p>
<div class="row">
<div class="thumb"><img src="{thumb}" width="{min(W, THUMB_WIDTH)}" alt="frame {f.index}">
<div class="box" style="{box}"></div></div>
<div class="viewer"><div class="tags"><span class="tag-a"></span><span class="tag-b"></span></div>
<div class="stage"><img class="under" width="{w * zoom}" height="{h * zoom}" alt="left">
<img class="over" width="{w * zoom}" height="{h * zoom}" alt="right">
<div class="divider"></div></div>
<div class="controls"><input class="split" type="range" min="0" max="100" value="50"><br>
left <select class="a">{options(default_a)}</select>
right <select class="b">{options(first_model)}</select>
<button class="swap" type="button">swap</button></div></div>
</div>
<div class="crops">{"".join(figs)}</div>
</section>"""


def render_html(title: str, meta: Sequence[str], sequences: Sequence[SequenceView], *,
                crop: int = DEFAULT_CROP) -> str:
    """The whole page as a string."""
    from vsvsr import __version__

    parts = [f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title><style>{STYLE}</style></head>
<body><h1>{html.escape(title)}</h1>"""]
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    for line in [*meta, f"vsvsr {__version__}, {stamp}"]:
        parts.append(f'<p class="meta">{html.escape(line)}</p>')
    for i, seq in enumerate(sequences):
        parts.append(f'<section class="sequence" id="s{i}"><h2>{html.escape(seq.name)}</h2>'
                     f'<p class="meta">{html.escape(seq.description)}</p>')
        if seq.psnr:
            parts.append(psnr_svg(seq.psnr, [(f.index, f.reason) for f in seq.frames],
                                  seq.restarts))
        else:
            parts.append('<p class="note">No ground truth: no Y-PSNR; the frames are evenly '
                         'spaced.</p>')
        parts += [_frame_html(i, f, crop) for f in seq.frames]
        parts.append("</section>")
    parts.append(f"<script>{SCRIPT}</script></body></html>\n")
    return "\n".join(parts)


def write_html(path: str | os.PathLike[str], title: str, meta: Sequence[str],
               sequences: Sequence[SequenceView], *, crop: int = DEFAULT_CROP) -> None:
    """Write the page atomically."""
    page = render_html(title, meta, sequences, crop=crop)
    atomic_write_bytes(path, page.encode("utf-8"))
    log.info("html report: %s (%.1f MB)", path, len(page) / 1e6)


# -- from an evaluation, and from a comparison without ground truth -----------------------------

def _reference_label(labels: Sequence[str]) -> str:
    return next((k for k in labels if k != BICUBIC), labels[0])


def eval_report(path: str | os.PathLike[str], results: Sequence[Any],
                upscalers: Sequence[Upscaler], options: RunOptions = NO_OPTIONS, *,
                frames: int = 3, crop: int = DEFAULT_CROP, title: str = "vsvsr eval",
                meta: Sequence[str] = ()) -> None:
    """The report of ``vsvsr eval``: for each :class:`~vsvsr.evaluation.report.SequenceResult`,
    the PSNR plot and the worst/median/best frames by the first model's Y-PSNR (bicubic when
    it is alone), recomputed with :func:`capture_frames`."""
    views = []
    for res in results:
        seq = res.sequence
        labels = [r.label for r in res.runs]
        ref = res.run(_reference_label(labels))
        picks = choose_by_psnr(ref.y_psnr, frames)
        got = capture_frames(upscalers, seq.lr, [i for i, _ in picks], options)
        fviews = []
        for idx, why in picks:
            images = {label: got[label][idx] for label in labels}
            images[GROUND_TRUTH] = seq.hr[idx]
            psnr = {r.label: r.y_psnr[idx] for r in res.runs}
            fviews.append(FrameView(index=idx, reason=why, images=images, lr=seq.lr[idx],
                                    psnr=psnr, scale=seq.scale))
        desc = (f"{seq.source}: {seq.frames} frames, LR {seq.lr_size[0]}x{seq.lr_size[1]} -> "
                f"HR {seq.hr_size[0]}x{seq.hr_size[1]} (x{seq.scale}); LR: "
                f"{seq.info.get('degrade', 'clean (training resize)')}; mean Y-PSNR "
                + ", ".join(f"{r.label} {r.mean_psnr:.2f} dB" for r in res.runs))
        views.append(SequenceView(name=seq.name, description=desc, frames=fviews,
                                  psnr={r.label: r.y_psnr for r in res.runs},
                                  restarts=res.restarts))
    write_html(path, title, list(meta), views, crop=crop)


def compare_report(path: str | os.PathLike[str], name: str, source: str,
                   lr: Sequence[np.ndarray], upscalers: Sequence[Upscaler],
                   options: RunOptions = NO_OPTIONS, *, frames: int = 3,
                   crop: int = DEFAULT_CROP, title: str = "vsvsr compare",
                   meta: Sequence[str] = ()) -> None:
    """The report of ``vsvsr compare``: a real clip (no ground truth) upscaled by bicubic and
    each model, evenly spaced frames."""
    if not lr:
        raise ReportError(f"html report: {source} has no frames")
    check_sizes({f"frame {i}": a for i, a in enumerate(lr)}, source)
    picks = choose_evenly(len(lr), frames)
    got = capture_frames(upscalers, lr, [i for i, _ in picks], options)
    scale = upscalers[0].scale
    fviews = [FrameView(index=idx, reason=why, lr=lr[idx], scale=scale,
                        images={up.label: got[up.label][idx] for up in upscalers})
              for idx, why in picks]
    h, w = lr[0].shape[:2]
    desc = (f"{source}: {len(lr)} frames, {w}x{h} -> {w * scale}x{h * scale} (x{scale}); "
            "the clip itself is the input (no ground truth)")
    write_html(path, title, list(meta), [SequenceView(name=name, description=desc,
                                                      frames=fviews)], crop=crop)
