"""Scene-change flags: ``_SceneChangePrev`` from the clip, or a core-only built-in detector.

The built-in detector compares each frame's luma with the previous frame's (``PlaneStats``
on a quarter-size copy); a mean absolute difference above the threshold marks a cut. It needs
no plugin, so it works on every install; ``vapoursynth-scenechange`` (``scd.Detect``) is more
careful and sets ``_SceneChangePrev`` itself.
"""

from __future__ import annotations

import vapoursynth as vs

_STATS_PREFIX = "VSVSRScene"
SCENE_DIFF_PROP = _STATS_PREFIX + "Diff"  #: what PlaneStats names the difference
DEFAULT_THRESHOLD = 0.15


def add_scene_diff(rgb: vs.VideoNode) -> vs.VideoNode:
    """Attach ``VSVSRSceneDiff`` (mean |luma_n - luma_{n-1}|, 0 on frame 0) to an RGBS clip."""
    w = max(16, (rgb.width // 4) & ~1)
    h = max(16, (rgb.height // 4) & ~1)
    luma = rgb.resize.Bilinear(w, h, format=vs.GRAYS, matrix_s="709")
    prev = luma[0] + luma[:-1] if luma.num_frames > 1 else luma
    stats = luma.std.PlaneStats(prev, prop=_STATS_PREFIX)
    return rgb.std.CopyFrameProps(stats, props=[SCENE_DIFF_PROP])


def is_scene_change(props: vs.FrameProps, threshold: float | None) -> bool:
    """True when the frame starts a new scene by the clip's flag or the built-in detector."""
    if int(props.get("_SceneChangePrev", 0)):
        return True
    return threshold is not None and float(props.get(SCENE_DIFF_PROP, 0.0)) > threshold


def mark_scene_changes(clip: vs.VideoNode, frames: tuple[int, ...]) -> vs.VideoNode:
    """``clip`` with ``_SceneChangePrev = 1`` on ``frames`` (a user's cut list), so the filter
    restarts its recurrence there. ``frames`` must be increasing and inside the clip."""
    if not frames:
        return clip
    parts: list[vs.VideoNode] = []
    prev = 0
    for n in frames:
        if n > prev:
            parts.append(clip[prev:n])
        parts.append(clip[n].std.SetFrameProps(_SceneChangePrev=1))
        prev = n + 1
    if prev < clip.num_frames:
        parts.append(clip[prev:])
    return vs.core.std.Splice(parts) if len(parts) > 1 else parts[0]


def find_scene_changes(rgb: vs.VideoNode, threshold: float | None, start: int = 0,
                       end: int | None = None) -> list[int]:
    """The frames in ``[start, end)`` where the filter restarts its recurrence (frame 0 included).

    ``rgb`` must be the filter's own model-input clip (``formats.to_model_rgb``, and
    :func:`add_scene_diff` when ``threshold`` is set), so the flags are exactly the ones
    :func:`is_scene_change` gives the runner. Frames are decoded with look-ahead.
    """
    end = rgb.num_frames if end is None else end
    found = [0] if start == 0 else []
    for n, frame in enumerate(rgb[start:end].frames(close=True), start):
        if n and is_scene_change(frame.props, threshold):
            found.append(n)
    return found
