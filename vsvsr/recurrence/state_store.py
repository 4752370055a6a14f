"""Saved recurrent states (``state_dir=``): let separately run chunks continue exactly.

A state file holds the state *after* frame k, the step number frame k+1 gets, and what it
belongs to: the model's weights hash, scale, LR size and a hash of input frame k (so a state
from another clip is refused, not silently used). Files are named ``state_<k>.vsvsrstate``,
written atomically, and validated on load; a mismatch is an error naming the fix.

Format 2 (compact, lossless): ``MAGIC``, a little-endian uint32 header length, a UTF-8 JSON
header (the fields above, plus the array's dtype and shape), the array's bytes byte-shuffled
(all first bytes of each value, then all second bytes, ...) and deflated with zlib, and last
the SHA-256 of everything before it. The state keeps its own dtype (float32, or float16 where
the backend's state is fp16), so a continued run is bit-identical to an uninterrupted one.
Network states are float32 whose low mantissa bits are noise, so no lossless coding gets far:
34.4 MB -> 27.7 MB for rvsr-x2 at 640x480 (byte shuffle + zlib level 1: 0.84 s to save; level
6: 27.3 MB in 1.42 s; lzma, bz2 or delta coding: at most 3% smaller, several times slower).
Every way a file can be damaged ends in :class:`StateFileError`: the hash covers the whole file
and is checked before anything is parsed, and any parse failure is caught as well. Format 1
files (``.npz`` from vsvsr 0.1) are still read.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import logging
import re
import struct
import zlib
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from vsvsr.errors import StateFileError
from vsvsr.utils.atomic import atomic_write

log = logging.getLogger(__name__)

FORMAT_VERSION = 2
MAGIC = b"VSVSRST\x00"
_HEADER_LEN = struct.Struct("<I")
_DIGEST = 32  #: bytes of the trailing SHA-256
_MAX_HEADER = 1 << 16  #: a header is about 500 bytes; more means a damaged length field
_DTYPES = ("float32", "float16")
_ZLIB_LEVEL = 1  #: measured: level 6 is 1.5% smaller but 1.7x slower to save
_NAME = re.compile(r"^state_(\d{8,})\.vsvsrstate$")


@dataclass(frozen=True)
class StateKey:
    """What a saved state must match to be loaded."""

    model_name: str
    model_sha256: str
    scale: int
    width: int  #: LR width
    height: int  #: LR height
    state_channels: int


def frame_hash(frame: Any) -> str:
    """A short hash of an input frame's samples, to tie a saved state to its clip: the
    model-RGB array, or a native frame of the GPU frame path (its own ``digest``)."""
    if not isinstance(frame, np.ndarray):
        return frame.digest()
    return hashlib.sha256(np.ascontiguousarray(frame).tobytes()).hexdigest()[:32]


class StateStore:
    """A folder of saved states for one (model, clip size) pairing."""

    def __init__(self, directory: str | Path, key: StateKey) -> None:
        self.directory = Path(directory)
        self.key = key
        self.directory.mkdir(parents=True, exist_ok=True)
        # Listed once: the runner asks on every cache miss; our own saves update it.
        self._frames = sorted(int(m.group(1)) for e in self.directory.iterdir()
                              if (m := _NAME.match(e.name)))

    def path(self, k: int) -> Path:
        return self.directory / f"state_{k:08d}.vsvsrstate"

    def latest_before(self, n: int) -> int | None:
        """The largest frame index k < n with a saved state, or None."""
        i = bisect.bisect_left(self._frames, n)
        return self._frames[i - 1] if i > 0 else None

    def save(self, k: int, state: np.ndarray, step: int, input_hash: str) -> Path:
        array = np.ascontiguousarray(np.asarray(state))  # a device state comes to the host here
        if array.dtype.name not in _DTYPES:
            raise StateFileError(f"vsvsr.recurrent: cannot save a {array.dtype} state; "
                                 f"states are {' or '.join(_DTYPES)}")
        meta = {"format": FORMAT_VERSION, "frame": k, "step": step, "input_hash": input_hash,
                "key": asdict(self.key), "dtype": array.dtype.name, "shape": list(array.shape)}
        header = json.dumps(meta).encode()
        shuffled = array.view(np.uint8).reshape(-1, array.itemsize).T.tobytes()
        body = MAGIC + _HEADER_LEN.pack(len(header)) + header + zlib.compress(shuffled, _ZLIB_LEVEL)
        path = self.path(k)
        with atomic_write(path) as fh:
            fh.write(body)
            fh.write(hashlib.sha256(body).digest())
        if k not in self._frames:
            bisect.insort(self._frames, k)
        log.info("vsvsr: saved state after frame %d to %s", k, path)
        return path

    def load(self, k: int, input_hash: str) -> tuple[np.ndarray, int]:
        """Load the state after frame k; returns (state, next step number)."""
        path = self.path(k)
        fix = f"delete {path} (or use a separate state_dir for each model and clip)"
        try:
            meta, state = _read(path)
            saved = StateKey(**meta["key"])
            step, saved_hash = int(meta["step"]), str(meta["input_hash"])
        except StateFileError as exc:
            raise StateFileError(f"vsvsr.recurrent: state file {path} is unreadable ({exc}); "
                                 f"{fix}") from exc
        except Exception as exc:  # any damage the checks above let through: still the clear error
            raise StateFileError(f"vsvsr.recurrent: state file {path} is unreadable or "
                                 f"truncated ({type(exc).__name__}: {exc}); {fix}") from exc
        for field, label in (("model_sha256", "model weights"), ("scale", "scale"),
                             ("width", "width"), ("height", "height"),
                             ("state_channels", "state channels")):
            if getattr(saved, field) != getattr(self.key, field):
                raise StateFileError(
                    f"vsvsr.recurrent: state file {path} belongs to another {label} "
                    f"(saved for model {saved.model_name!r} x{saved.scale} at "
                    f"{saved.width}x{saved.height}; this filter runs {self.key.model_name!r} "
                    f"x{self.key.scale} at {self.key.width}x{self.key.height}); {fix}")
        expected_shape = (1, self.key.state_channels, self.key.height, self.key.width)
        if state.shape != expected_shape:
            raise StateFileError(f"vsvsr.recurrent: state file {path} holds shape {state.shape}, "
                                 f"expected {expected_shape}; {fix}")
        if saved_hash != input_hash:
            raise StateFileError(f"vsvsr.recurrent: state file {path} was saved for another clip "
                                 f"(input frame {k} differs); {fix}")
        if not np.isfinite(state).all():
            raise StateFileError(f"vsvsr.recurrent: state file {path} contains NaN/inf; {fix}")
        return state, step


def _read(path: Path) -> tuple[dict[str, Any], np.ndarray]:
    """(header, state as float32) of a state file; :class:`StateFileError` for a damaged one."""
    data = path.read_bytes()
    if data[:2] == b"PK":
        return _read_format1(path)
    if data[:len(MAGIC)] != MAGIC:
        raise StateFileError("not a vsvsr state file: wrong magic bytes")
    body, digest = data[:-_DIGEST], data[-_DIGEST:]
    if len(data) < len(MAGIC) + _DIGEST or hashlib.sha256(body).digest() != digest:
        raise StateFileError("its SHA-256 does not match: the file is damaged or truncated")
    start = len(MAGIC) + _HEADER_LEN.size
    (size,) = _HEADER_LEN.unpack_from(body, len(MAGIC))
    if size > _MAX_HEADER or len(body) < start + size:
        raise StateFileError("damaged header")
    meta = json.loads(body[start:start + size].decode("utf-8"))
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_VERSION:
        got = meta.get("format") if isinstance(meta, dict) else None
        raise StateFileError(f"format {got!r}, expected {FORMAT_VERSION}")
    if set(meta["key"]) != {f.name for f in fields(StateKey)}:
        raise StateFileError("damaged header: unexpected key fields")
    dtype, shape = meta["dtype"], tuple(int(v) for v in meta["shape"])
    if dtype not in _DTYPES or len(shape) != 4 or min(shape) < 1:
        raise StateFileError(f"damaged header: dtype {dtype!r}, shape {shape}")
    expected = int(np.prod(shape)) * np.dtype(dtype).itemsize
    unz = zlib.decompressobj()
    shuffled = unz.decompress(body[start + size:], expected)
    if len(shuffled) != expected or unz.unconsumed_tail or not unz.eof or unz.unused_data:
        raise StateFileError("the array is truncated or has trailing bytes")
    itemsize = np.dtype(dtype).itemsize
    raw = np.frombuffer(shuffled, np.uint8).reshape(itemsize, -1).T.tobytes()
    state = np.frombuffer(raw, dtype).reshape(shape).astype(np.float32)
    return meta, state


def _read_format1(path: Path) -> tuple[dict[str, Any], np.ndarray]:
    """A format 1 file (``np.savez`` of ``state`` and a JSON ``meta``), from vsvsr 0.1."""
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        state = np.ascontiguousarray(data["state"], dtype=np.float32)
    if not isinstance(meta, dict) or meta.get("format") != 1:
        raise StateFileError("damaged format 1 header")
    return meta, state
