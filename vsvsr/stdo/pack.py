"""The ``.vsvsr`` model pack: everything the overfit filter needs for one video, in one file.

Layout (format version 1)::

    8 bytes   magic  b"VSVSRPAK"
    4 bytes   format version, little-endian uint32 (1)
    8 bytes   header length H, little-endian uint64
    H bytes   header: UTF-8 JSON (below)
    P bytes   payload: the blobs the header points at, back to back

The header holds ``scale``, ``lr_size``/``hr_size`` ([w, h]), ``frames`` (the source's frame
count), ``grid`` ([cols, rows]), ``method`` (``stdo``, ``jstdo``, ``time``, ``general``),
``backbone``, ``receptive_radius`` (LR px of context a model needs, per side),
``source_sha256`` (SHA-256 of the HR source frames as 8-bit RGB), ``training`` (free-form
metadata: chunks, fractions, steps, seconds, PSNRs), ``models`` (per model: name, arch,
config, parameter count, ``offset``/``length`` in the payload and ``sha256``), ``labels``
(``encoding``, ``offset``, ``length``, ``raw_bytes``) and ``payload_length`` /
``payload_sha256`` (the integrity check of everything after the header).

Labels are a (frames, rows, cols) uint8 array of model indices. Encoding ``delta-lzma2``: frame
0 as is, every later frame as its difference from the previous one modulo 256 (mostly zeros:
a patch usually keeps its chunk), then raw LZMA2. The models are ONNX files with one input
``lr`` (1, 3, h, w) and one output ``sr``.

Writing goes through :func:`vsvsr.utils.atomic.atomic_write`; reading checks magic, version,
lengths and hashes, and, when asked, the clip's size, frame count and scale, each failure with
an error that says what to do.
"""

from __future__ import annotations

import hashlib
import json
import lzma
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vsvsr.errors import VsvsrError
from vsvsr.utils.atomic import atomic_write

MAGIC = b"VSVSRPAK"
PACK_VERSION = 1
METHODS = ("stdo", "jstdo", "time", "general")
LABEL_ENCODING = "delta-lzma2"
_PREFIX = struct.Struct("<8sIQ")
_LZMA_FILTERS = [{"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME}]


class PackError(VsvsrError, ValueError):
    """A pack file that is missing, damaged, of another version, or made for another clip."""


@dataclass(frozen=True)
class PackModel:
    """One ONNX model of a pack."""

    name: str
    arch: str
    config: dict[str, Any]
    params: int
    onnx: bytes = field(repr=False)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.onnx).hexdigest()


@dataclass(frozen=True)
class Pack:
    """An overfit model pack in memory (see the module docstring for the file format)."""

    scale: int
    lr_size: tuple[int, int]  #: (width, height)
    frames: int
    grid: tuple[int, int]  #: (cols, rows)
    method: str
    backbone: str
    receptive_radius: int
    models: tuple[PackModel, ...]
    labels: np.ndarray = field(repr=False)  #: (frames, rows, cols) uint8 model indices
    source_sha256: str
    training: dict[str, Any] = field(default_factory=dict)
    version: int = PACK_VERSION

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise PackError(f"pack: unknown method {self.method!r}; one of {', '.join(METHODS)}")
        if self.scale not in (2, 3, 4):
            raise PackError(f"pack: scale must be 2, 3 or 4, got {self.scale}")
        if not self.models:
            raise PackError("pack: no models")
        cols, rows = self.grid
        want = (self.frames, rows, cols)
        if self.labels.shape != want or self.labels.dtype != np.uint8:
            raise PackError(f"pack: label map is {self.labels.dtype}{self.labels.shape}, expected "
                            f"uint8{want} (frames, rows, cols)")
        if self.labels.size and int(self.labels.max()) >= len(self.models):
            raise PackError(f"pack: label {int(self.labels.max())} names a model the pack does "
                            f"not hold (it has {len(self.models)})")

    @property
    def hr_size(self) -> tuple[int, int]:
        return self.lr_size[0] * self.scale, self.lr_size[1] * self.scale

    @property
    def single_model(self) -> bool:
        """One model for every patch (JSTDO, general): the full-frame fast path applies."""
        return len(self.models) == 1

    def model_bytes(self) -> int:
        return sum(len(m.onnx) for m in self.models)

    def describe(self) -> str:
        w, h = self.lr_size
        return (f"{self.method} pack: {len(self.models)} {self.backbone} model(s), x{self.scale}, "
                f"{w}x{h} -> {w * self.scale}x{h * self.scale}, {self.frames} frames, grid "
                f"{self.grid[0]}x{self.grid[1]}")


# -- labels -------------------------------------------------------------------------------------
def encode_labels(labels: np.ndarray) -> bytes:
    """Delta-to-previous-frame (mod 256) then raw LZMA2."""
    lab = np.ascontiguousarray(labels, np.uint8)
    delta = lab.copy()
    delta[1:] = lab[1:] - lab[:-1]  # uint8 arithmetic wraps: a difference modulo 256
    return lzma.compress(delta.tobytes(), format=lzma.FORMAT_RAW, filters=_LZMA_FILTERS)


def decode_labels(blob: bytes, shape: tuple[int, int, int]) -> np.ndarray:
    raw = lzma.decompress(blob, format=lzma.FORMAT_RAW, filters=_LZMA_FILTERS)
    delta = np.frombuffer(raw, np.uint8)
    if delta.size != int(np.prod(shape)):
        raise ValueError(f"{delta.size} labels, expected {int(np.prod(shape))}")
    return np.cumsum(delta.reshape(shape), axis=0, dtype=np.uint64).astype(np.uint8)


# -- writing ------------------------------------------------------------------------------------
def pack_bytes(pack: Pack) -> bytes:
    """The file content of ``pack``."""
    blobs: list[bytes] = []
    offset = 0

    def add(data: bytes) -> dict[str, int]:
        nonlocal offset
        entry = {"offset": offset, "length": len(data)}
        blobs.append(data)
        offset += len(data)
        return entry

    models = [{"name": m.name, "arch": m.arch, "config": m.config, "params": m.params,
               "sha256": m.sha256, **add(m.onnx)} for m in pack.models]
    label_blob = encode_labels(pack.labels)
    labels = {"encoding": LABEL_ENCODING, "raw_bytes": int(pack.labels.size), **add(label_blob)}
    payload = b"".join(blobs)
    header = {
        "format": "vsvsr-overfit-pack", "version": pack.version, "scale": pack.scale,
        "lr_size": list(pack.lr_size), "hr_size": list(pack.hr_size), "frames": pack.frames,
        "grid": list(pack.grid), "method": pack.method, "backbone": pack.backbone,
        "receptive_radius": pack.receptive_radius, "source_sha256": pack.source_sha256,
        "training": pack.training, "models": models, "labels": labels,
        "payload_length": len(payload), "payload_sha256": hashlib.sha256(payload).hexdigest(),
    }
    head = json.dumps(header, sort_keys=True, indent=1).encode()
    return _PREFIX.pack(MAGIC, pack.version, len(head)) + head + payload


def write_pack(pack: Pack, path: str | os.PathLike[str]) -> Path:
    """Write ``pack`` to ``path`` atomically (a crash leaves the old file or none)."""
    out = Path(path)
    data = pack_bytes(pack)
    with atomic_write(out, "wb") as fh:
        fh.write(data)
    return out


def label_bytes_per_frame(pack: Pack) -> float:
    """Compressed label-map bytes per frame (the cost of per-patch selection)."""
    return len(encode_labels(pack.labels)) / pack.frames


# -- reading ------------------------------------------------------------------------------------
def read_header(data: bytes, source: str) -> dict[str, Any]:
    """Check magic, version and lengths; return the header JSON."""
    if len(data) < _PREFIX.size:
        raise PackError(f"{source}: not a vsvsr pack (only {len(data)} bytes); the file is empty "
                        "or truncated: copy it again or re-create it with 'vsvsr overfit'")
    magic, version, head_len = _PREFIX.unpack_from(data)
    if magic != MAGIC:
        raise PackError(f"{source}: not a vsvsr pack (wrong magic bytes); give a .vsvsr file "
                        "written by 'vsvsr overfit'")
    if version != PACK_VERSION:
        fix = "upgrade vsvsr" if version > PACK_VERSION else "re-create it with 'vsvsr overfit'"
        raise PackError(f"{source}: pack format version {version}, but this vsvsr reads version "
                        f"{PACK_VERSION}; {fix}")
    end = _PREFIX.size + head_len
    if end > len(data):
        raise PackError(f"{source}: the file is truncated ({len(data)} bytes, its header alone "
                        f"needs {end}); copy it again or re-create it")
    try:
        header = json.loads(data[_PREFIX.size:end].decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PackError(f"{source}: the pack header is damaged ({exc}); re-create the pack") from exc
    if header.get("version") != version:
        raise PackError(f"{source}: the header says version {header.get('version')!r} but the "
                        f"file prefix says {version}; the pack is damaged")
    header["_payload_start"] = end
    return header


def parse_pack(data: bytes, source: str = "pack") -> Pack:
    """A :class:`Pack` from file bytes, every length and hash checked."""
    header = read_header(data, source)
    start = header.pop("_payload_start")
    payload = data[start:]
    want = int(header["payload_length"])
    if len(payload) < want:
        raise PackError(f"{source}: the file is truncated: its payload has {len(payload)} of "
                        f"{want} bytes; copy it again or re-create it with 'vsvsr overfit'")
    if len(payload) > want:
        raise PackError(f"{source}: {len(payload) - want} unexpected bytes after the payload; "
                        "the file is damaged: copy it again or re-create it")
    if hashlib.sha256(payload).hexdigest() != header["payload_sha256"]:
        raise PackError(f"{source}: the payload does not match its SHA-256 (the file is "
                        "corrupt); copy it again or re-create it with 'vsvsr overfit'")
    try:
        models = []
        for m in header["models"]:
            blob = payload[m["offset"]:m["offset"] + m["length"]]
            models.append(PackModel(name=m["name"], arch=m["arch"], config=dict(m["config"]),
                                    params=int(m["params"]), onnx=bytes(blob)))
            if models[-1].sha256 != m["sha256"]:
                raise PackError(f"{source}: model {m['name']!r} does not match its SHA-256")
        lab = header["labels"]
        if lab["encoding"] != LABEL_ENCODING:
            raise PackError(f"{source}: unknown label encoding {lab['encoding']!r}")
        cols, rows = header["grid"]
        labels = decode_labels(payload[lab["offset"]:lab["offset"] + lab["length"]],
                               (int(header["frames"]), int(rows), int(cols)))
        return Pack(scale=int(header["scale"]), lr_size=tuple(header["lr_size"]),
                    frames=int(header["frames"]), grid=(int(cols), int(rows)),
                    method=header["method"], backbone=header["backbone"],
                    receptive_radius=int(header["receptive_radius"]), models=tuple(models),
                    labels=labels, source_sha256=header["source_sha256"],
                    training=dict(header.get("training", {})), version=int(header["version"]))
    except PackError:
        raise
    except (KeyError, TypeError, ValueError, lzma.LZMAError) as exc:
        raise PackError(f"{source}: the pack is damaged or incomplete ({type(exc).__name__}: "
                        f"{exc}); re-create it with 'vsvsr overfit'") from exc


def read_pack(path: str | os.PathLike[str], *, size: tuple[int, int] | None = None,
              frames: int | None = None, scale: int | None = None,
              func: str = "vsvsr.overfit") -> Pack:
    """Load and validate a pack; ``size`` (LR w, h), ``frames`` and ``scale`` are checked
    against the pack when given (the clip it will be applied to)."""
    p = Path(path)
    if not p.is_file():
        raise PackError(f"{func}: pack file {p} does not exist; make one with "
                        "'vsvsr overfit HR_VIDEO --out video.vsvsr'")
    pack = parse_pack(p.read_bytes(), f"{func}: {p}")
    if scale is not None and scale != pack.scale:
        raise PackError(f"{func}: {p} is a x{pack.scale} pack, not x{scale}; use the pack made "
                        f"with --scale {scale} or drop scale=")
    if size is not None and tuple(size) != tuple(pack.lr_size):
        w, h = pack.lr_size
        raise PackError(f"{func}: {p} was made for a {w}x{h} clip (x{pack.scale} of a "
                        f"{w * pack.scale}x{h * pack.scale} source) but the clip is "
                        f"{size[0]}x{size[1]}; give the clip the pack was made for (the source "
                        f"downscaled by {pack.scale})")
    if frames is not None and frames != pack.frames:
        raise PackError(f"{func}: {p} was made for a clip of {pack.frames} frames but the clip "
                        f"has {frames}; the label map is per frame: trim the clip after the "
                        "filter, not before, or re-create the pack for this clip")
    return pack
