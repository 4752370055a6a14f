"""The explicit registry of built-in models and the resolution of a ``model=`` argument."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from vsvsr.errors import ModelFileError, UnknownModelError

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


@dataclass(frozen=True)
class ModelEntry:
    """A built-in model: its name, a one-line description and its files in ``weights/``."""

    name: str
    description: str

    @property
    def onnx(self) -> Path:
        return WEIGHTS_DIR / f"{self.name}.onnx"

    @property
    def pth(self) -> Path:
        return WEIGHTS_DIR / f"{self.name}.pth"


class ModelRegistry:
    """An explicit, ordered list of built-in models; no folder scanning."""

    def __init__(self, entries: tuple[ModelEntry, ...]) -> None:
        self._entries = {e.name: e for e in entries}

    def names(self) -> list[str]:
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def get(self, name: str) -> ModelEntry:
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownModelError(
                f"unknown model {name!r}: built-in models are {', '.join(self.names())}") from None


BUILTIN_MODELS = ModelRegistry((
    ModelEntry("rvsr-x2", "recurrent x2, flow-free, step-conditioned, PI-BPTT (CPU-trained)"),
    ModelEntry("rvsr-x4", "recurrent x4, flow-aligned with a gated blend of the past (rvsrg), "
               "PI-BPTT, bf16 on the CPU (recipe 2)"),
))
DEFAULT_MODEL = "rvsr-x2"


@dataclass(frozen=True)
class ModelFiles:
    """Where one model's files are: ONNX for ORT/TensorRT, ``.pth`` for PyTorch."""

    name: str
    onnx: Path | None
    pth: Path | None
    #: the file the user passed (None for a built-in name); the other one is its sibling
    given: Path | None = None

    @property
    def sibling(self) -> Path | None:
        """The file found beside the one the user passed (same name, other suffix), if any."""
        if self.given is None:
            return None
        return self.pth if self.given == self.onnx else self.onnx

    @property
    def sha256(self) -> str:
        """Hash of the ONNX file (or the .pth when there is no ONNX): identifies the weights."""
        path = self.onnx or self.pth
        assert path is not None  # resolve_model never builds one without a file
        return file_sha256(path)


@cache
def _sha256_cached(path: str, mtime_ns: int, size: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file, cached per (path, mtime, size)."""
    st = os.stat(path)
    return _sha256_cached(os.fspath(path), st.st_mtime_ns, st.st_size)


def resolve_model(model: str | os.PathLike[str]) -> ModelFiles:
    """Turn a built-in name or a file path into :class:`ModelFiles`."""
    if isinstance(model, str) and model in BUILTIN_MODELS:
        entry = BUILTIN_MODELS.get(model)
        onnx = entry.onnx if entry.onnx.is_file() else None
        pth = entry.pth if entry.pth.is_file() else None
        if onnx is None and pth is None:
            raise ModelFileError(f"built-in model {model!r} has no files in {WEIGHTS_DIR}; the "
                                 "installation is incomplete: reinstall vsvsr")
        return ModelFiles(model, onnx, pth)
    path = Path(model)
    if path.is_file():
        if path.suffix == ".onnx":
            sibling = path.with_suffix(".pth")
            return ModelFiles(path.stem, path, sibling if sibling.is_file() else None, given=path)
        if path.suffix == ".pth":
            sibling = path.with_suffix(".onnx")
            return ModelFiles(path.stem, sibling if sibling.is_file() else None, path, given=path)
        raise ModelFileError(f"{path}: unknown model file type {path.suffix!r}; "
                             "vsvsr reads .onnx (any backend) and .pth (PyTorch backend)")
    if isinstance(model, str) and (os.sep in model or model.endswith((".onnx", ".pth"))):
        raise ModelFileError(f"model file {model} does not exist; check the path")
    raise UnknownModelError(
        f"unknown model {str(model)!r}: built-in models are {', '.join(BUILTIN_MODELS.names())}; "
        "or pass the path of a vsvsr .onnx or .pth model file")
