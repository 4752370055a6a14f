"""A pack's models as ordinary ONNX files, for tools that take model files (``vsvsr build``).

The members are written once per pack content to ``TMPDIR/vsvsr-packs/<payload hash>/`` and
returned as :class:`~vsvsr.models.registry.ModelFiles` named ``<pack stem>-<member>``.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from vsvsr.models.registry import ModelFiles
from vsvsr.stdo.pack import read_pack
from vsvsr.utils.atomic import atomic_write_bytes


def is_pack_path(model: str | os.PathLike[str]) -> bool:
    return str(model).endswith(".vsvsr")


def member_files(path: str | os.PathLike[str], cache: Path | None = None) -> list[ModelFiles]:
    """Write the pack's ONNX members (if not there yet) and return them as model files."""
    p = Path(path)
    pack = read_pack(p, func="vsvsr build")
    digest = hashlib.sha256(b"".join(m.sha256.encode() for m in pack.models)).hexdigest()[:16]
    folder = (cache or Path(tempfile.gettempdir()) / "vsvsr-packs") / digest
    out = []
    for m in pack.models:
        name = f"{p.stem}-{m.name}"
        onnx = folder / f"{name}.onnx"
        if not onnx.is_file() or onnx.read_bytes() != m.onnx:
            atomic_write_bytes(onnx, m.onnx)
        out.append(ModelFiles(name, onnx, None))
    return out
