"""vsvsr: temporally stable video super-resolution for VapourSynth.

``import vsvsr`` is cheap: the filters import VapourSynth and the runtime on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["__version__", "overfit", "recurrent"]

if TYPE_CHECKING:
    import vapoursynth as vs


def recurrent(clip: vs.VideoNode, *args: Any, **kwargs: Any) -> vs.VideoNode:
    """Recurrent super-resolution; see :func:`vsvsr.vs.recurrent_filter.recurrent`."""
    from vsvsr.vs.recurrent_filter import recurrent as _recurrent

    return _recurrent(clip, *args, **kwargs)


def overfit(clip: vs.VideoNode, *args: Any, **kwargs: Any) -> vs.VideoNode:
    """Per-patch overfit (STDO/JSTDO) super-resolution; see :func:`vsvsr.vs.overfit_filter.overfit`."""
    from vsvsr.vs.overfit_filter import overfit as _overfit

    return _overfit(clip, *args, **kwargs)
