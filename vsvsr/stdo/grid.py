"""The patch grid over an LR frame, in the STDO paper's conventions.

A grid of ``cols x rows`` patches covers the whole LR frame without overlap. When the size does
not divide, patch ``i`` spans ``[i * W // cols, (i + 1) * W // cols)``, so patch sizes differ by
at most one pixel and every pixel belongs to exactly one patch. The same bounds times ``scale``
give the HR patches.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vsvsr.errors import VsvsrError

#: The paper's grids (cols, rows) per scale: 20x10 for x2 and 10x5 for x4 on 1080p sources,
#: i.e. LR patches of 48x54 px either way. x3 is not in the paper; 13x7 keeps ~48x50 px.
DEFAULT_GRIDS = {2: (20, 10), 3: (13, 7), 4: (10, 5)}


class GridError(VsvsrError, ValueError):
    """A grid that does not fit the frame."""


@dataclass(frozen=True)
class PatchGrid:
    """``cols x rows`` patches over an LR frame of ``width x height``."""

    width: int
    height: int
    cols: int
    rows: int

    def __post_init__(self) -> None:
        if self.cols < 1 or self.rows < 1:
            raise GridError(f"patch grid {self.cols}x{self.rows}: need at least 1x1")
        if self.cols > self.width or self.rows > self.height:
            raise GridError(f"patch grid {self.cols}x{self.rows} is finer than the LR frame "
                            f"{self.width}x{self.height}; use a coarser --grid")

    @classmethod
    def default(cls, width: int, height: int, scale: int) -> PatchGrid:
        """The paper's grid for ``scale``, made coarser if the frame is too small for it."""
        cols, rows = DEFAULT_GRIDS.get(scale, DEFAULT_GRIDS[4])
        return cls(width, height, min(cols, width), min(rows, height))

    @property
    def count(self) -> int:
        return self.cols * self.rows

    def xs(self, scale: int = 1) -> np.ndarray:
        """Column bounds, ``cols + 1`` values from 0 to ``width * scale``."""
        return np.array([(i * self.width // self.cols) * scale for i in range(self.cols + 1)])

    def ys(self, scale: int = 1) -> np.ndarray:
        """Row bounds, ``rows + 1`` values from 0 to ``height * scale``."""
        return np.array([(j * self.height // self.rows) * scale for j in range(self.rows + 1)])

    def patch(self, row: int, col: int, scale: int = 1) -> tuple[slice, slice]:
        """(rows, cols) slices of one patch in a frame ``scale`` times the LR size."""
        ys, xs = self.ys(scale), self.xs(scale)
        return slice(int(ys[row]), int(ys[row + 1])), slice(int(xs[col]), int(xs[col + 1]))

    def pixel_map(self, labels: np.ndarray, scale: int = 1) -> np.ndarray:
        """Expand a ``(rows, cols)`` label map to one label per pixel at ``scale`` x LR size."""
        if labels.shape != (self.rows, self.cols):
            raise GridError(f"label map shape {labels.shape} != grid {(self.rows, self.cols)}")
        ry = np.repeat(np.arange(self.rows), np.diff(self.ys(scale)))
        rx = np.repeat(np.arange(self.cols), np.diff(self.xs(scale)))
        return labels[ry[:, None], rx[None, :]]
