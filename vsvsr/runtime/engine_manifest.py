"""The JSON manifest beside each engine, and finding the engine that fits this machine.

``X.engine`` is always accompanied by ``X.json``: the :class:`EngineKey` it was built with,
the engine file's SHA-256 and size, and how it was built. The runtime finds an engine only
through its manifest and refuses one whose key differs from what this machine and model need,
saying what differs and how to rebuild.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vsvsr.errors import VsvsrError
from vsvsr.models.registry import file_sha256
from vsvsr.runtime.engine_key import EngineKey
from vsvsr.utils.atomic import atomic_write_bytes

log = logging.getLogger(__name__)

MANIFEST_FORMAT = 1
ENGINE_SUFFIX = ".engine"
MANIFEST_SUFFIX = ".json"


class EngineNotFoundError(VsvsrError, FileNotFoundError):
    """No engine for this model, size and machine in the engine folder."""


class EngineMismatchError(VsvsrError, ValueError):
    """An engine built for another model, shape, TensorRT, GPU or driver."""


@dataclass(kw_only=True, frozen=True)
class EngineManifest:
    """What ``X.json`` says about ``X.engine``."""

    key: EngineKey
    engine_file: str  #: file name, in the manifest's folder
    engine_sha256: str
    engine_bytes: int
    created: str = ""
    build_seconds: float = 0.0
    #: Engine I/O as TensorRT reports it: name, mode ("input"/"output"), dtype, shape.
    io: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  #: vsvsr version, ONNX path, trtexec line
    format: int = MANIFEST_FORMAT

    def to_json(self) -> str:
        data = {"format": self.format, "key": self.key.to_dict(), "engine_file": self.engine_file,
                "engine_sha256": self.engine_sha256, "engine_bytes": self.engine_bytes,
                "created": self.created, "build_seconds": self.build_seconds, "io": self.io,
                "extra": self.extra}
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    @classmethod
    def read(cls, path: str | Path) -> EngineManifest:
        p = Path(path)
        try:
            data = json.loads(p.read_text())
            if data.get("format", 0) > MANIFEST_FORMAT:
                raise EngineMismatchError(f"{p}: manifest format {data['format']} is newer than "
                                          "this vsvsr reads; upgrade vsvsr or rebuild the engine")
            return cls(key=EngineKey.from_dict(data["key"]), engine_file=data["engine_file"],
                       engine_sha256=data["engine_sha256"], engine_bytes=data["engine_bytes"],
                       created=data.get("created", ""), build_seconds=data.get("build_seconds", 0.0),
                       io=data.get("io", []), extra=data.get("extra", {}),
                       format=data.get("format", MANIFEST_FORMAT))
        except EngineMismatchError:
            raise
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise EngineMismatchError(f"{p}: unreadable engine manifest ({exc}); delete it and "
                                      "its engine, then rebuild with 'vsvsr build'") from exc


def paths_for(engine_dir: str | Path, key: EngineKey) -> tuple[Path, Path]:
    """(engine path, manifest path) for ``key`` in ``engine_dir``."""
    folder, stem = Path(engine_dir), key.file_stem()  # the stem has dots: no with_suffix
    return folder / (stem + ENGINE_SUFFIX), folder / (stem + MANIFEST_SUFFIX)


def write_manifest(manifest_path: Path, engine_path: Path, key: EngineKey, *,
                   build_seconds: float, io: list[dict[str, Any]],
                   extra: dict[str, Any]) -> EngineManifest:
    """Write the manifest of a finished engine atomically (after the engine itself)."""
    man = EngineManifest(key=key, engine_file=engine_path.name,
                         engine_sha256=file_sha256(engine_path),
                         engine_bytes=engine_path.stat().st_size,
                         created=dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                         build_seconds=round(build_seconds, 3), io=io, extra=extra)
    atomic_write_bytes(manifest_path, man.to_json().encode())
    return man


def rebuild_hint(key: EngineKey) -> str:
    lo, opt, hi = key.lr_sizes
    size = f"--size {opt[0]}x{opt[1]}"
    if lo != hi:
        size += f" --min-size {lo[0]}x{lo[1]} --max-size {hi[0]}x{hi[1]}"
    return (f"vsvsr build --model {key.model_name} {size} --precision {key.precision} "
            f"--opt-level {key.opt_level}")


def verify_engine(manifest_path: str | Path, want: EngineKey, *,
                  check_hash: bool = True) -> tuple[Path, EngineManifest]:
    """Check that the engine of ``manifest_path`` is the one ``want`` describes.

    Raises:
        EngineMismatchError: naming every difference, the engine file and the rebuild command.
    """
    mpath = Path(manifest_path)
    man = EngineManifest.read(mpath)
    engine = mpath.parent / man.engine_file
    diffs = man.key.mismatches(want)
    if diffs:
        raise EngineMismatchError(
            f"engine {engine} does not fit here: " + "; ".join(diffs)
            + f". Rebuild it on this machine with: {rebuild_hint(want)}")
    if not engine.is_file():
        raise EngineMismatchError(f"{mpath} names {man.engine_file}, which is missing; "
                                  f"rebuild it with: {rebuild_hint(want)}")
    if check_hash and file_sha256(engine) != man.engine_sha256:
        raise EngineMismatchError(f"{engine} does not match its manifest's SHA-256 (a partial "
                                  f"copy or a corrupt file); rebuild it with: {rebuild_hint(want)}")
    return engine, man


def manifest_of(engine_path: str | Path) -> Path:
    """``X.engine`` -> ``X.json``; an explicit ``.json`` is returned as is."""
    p = Path(engine_path)
    if p.suffix == MANIFEST_SUFFIX:
        return p
    return p.with_name(p.name.removesuffix(ENGINE_SUFFIX) + MANIFEST_SUFFIX)


def find_engine(engine_dir: str | Path, want: EngineKey) -> tuple[Path, EngineManifest]:
    """The engine in ``engine_dir`` whose key is ``want``.

    Raises:
        EngineNotFoundError: none matches; the message lists the nearest engines there (same
            model) and what differs, and gives the build command.
    """
    folder = Path(engine_dir)
    _, mpath = paths_for(folder, want)
    if mpath.is_file():
        return verify_engine(mpath, want)
    near: list[str] = []
    for other in sorted(folder.glob(f"*{MANIFEST_SUFFIX}")) if folder.is_dir() else []:
        try:
            man = EngineManifest.read(other)
        except EngineMismatchError as exc:
            log.warning("%s", exc)
            continue
        if man.key == want:  # renamed but intact
            return verify_engine(other, want)
        if man.key.model_name == want.model_name or man.key.model_sha256 == want.model_sha256:
            near.append(f"{man.engine_file} ({'; '.join(man.key.mismatches(want))})")
    msg = (f"no TensorRT engine for model {want.model_name!r} at {want.size_label} "
           f"({want.precision}, TensorRT {want.trt_version}, {want.gpu_name}) in {folder}")
    if near:
        msg += "; engines there that do not fit: " + " | ".join(near[:4])
    raise EngineNotFoundError(msg + f". Build one with: {rebuild_hint(want)} --out {folder}")
