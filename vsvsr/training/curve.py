"""The learning curve of a run: one CSV row per log interval, in the run's folder.

Why a file and not only the log: the curve is what decides whether more minutes of a recipe
pay (a plateau says change the recipe), and it has to survive sessions, resumes and crashes.
Rows after the checkpoint a run resumes from are dropped, so a crash never leaves the curve
with steps the weights do not have.
"""

from __future__ import annotations

import csv
from pathlib import Path

#: the file's name inside the run folder
CURVE_NAME = "metrics.csv"
FIELDS = ("iteration", "minutes", "loss", "psnr", "bicubic_psnr", "gain", "lr", "alive")


class CurveLog:
    """Appends rows of :data:`FIELDS` to ``path``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def keep_until(self, iteration: int) -> None:
        """Drop the rows past ``iteration`` (0: start afresh): where the weights are."""
        rows = [r for r in read_curve(self.path) if int(r["iteration"]) <= iteration]
        if not rows and not self.path.exists():
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with tmp.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, FIELDS)
            writer.writeheader()
            writer.writerows({k: r[k] for k in FIELDS} for r in rows)
        tmp.replace(self.path)

    def append(self, **row: float) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        new = not self.path.exists()
        with self.path.open("a", newline="") as fh:
            writer = csv.DictWriter(fh, FIELDS)
            if new:
                writer.writeheader()
            writer.writerow({k: f"{row[k]:.6g}" for k in FIELDS})


def read_curve(path: str | Path) -> list[dict[str, float]]:
    """The rows of a curve file ([] when there is none)."""
    p = Path(path)
    if not p.is_file():
        return []
    with p.open(newline="") as fh:
        return [{k: float(v) for k, v in r.items()} for r in csv.DictReader(fh)]
