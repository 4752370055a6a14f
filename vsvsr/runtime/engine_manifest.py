"""The JSON manifest beside each engine, and finding the engine that fits this machine.

``X.engine`` is always accompanied by ``X.json``: the :class:`EngineKey` it was built with,
the engine file's SHA-256 and size, and how it was built (GPU name, driver and compute
capability as information). The runtime finds an engine only through its manifest and refuses
one that does not fit this machine and model (:meth:`EngineKey.fit_problems`), saying what
differs and how to rebuild. Manifests of format 1 (keys with GPU name and driver, vsvsr before
the key change) are refused with the command that rebuilds the engine.
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

MANIFEST_FORMAT = 2
ENGINE_SUFFIX = ".engine"
MANIFEST_SUFFIX = ".json"


class EngineNotFoundError(VsvsrError, FileNotFoundError):
    """No engine for this model, size and machine in the engine folder."""


class EngineMismatchError(VsvsrError, ValueError):
    """An engine built for another model, shape, TensorRT or GPU target."""


class StaleManifestError(EngineMismatchError):
    """A manifest written by an older vsvsr whose engine keys this one no longer reads."""


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
            if data.get("format", 0) < MANIFEST_FORMAT:
                raise StaleManifestError(
                    f"{p}: this engine was built by an older vsvsr (manifest format "
                    f"{data.get('format', 0)}, whose keys tied engines to the NVIDIA driver and "
                    f"GPU name); rebuild it with: {_old_rebuild_hint(data.get('key', {}))}")
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
    hw = f" --hw-compat {key.hw_compat}" if key.hw_compat != "none" else ""
    return (f"vsvsr build --model {key.model_name} {size} --precision {key.precision} "
            f"--opt-level {key.opt_level}{hw}")


def _old_rebuild_hint(key: dict[str, Any]) -> str:
    """The build command for an engine of an older manifest format (best effort)."""
    try:
        lo, opt, hi = key["profile"]["lr"]
        size = f"--size {opt[3]}x{opt[2]}"
        if lo != hi:
            size += f" --min-size {lo[3]}x{lo[2]} --max-size {hi[3]}x{hi[2]}"
        hw = f" --hw-compat {key['hw_compat']}" if key.get("hw_compat", "none") != "none" else ""
        return (f"vsvsr build --model {key['model_name']} {size} --precision "
                f"{key.get('precision', 'fp16')} --opt-level {key.get('opt_level', 3)}{hw}")
    except (KeyError, TypeError, ValueError, IndexError):
        return "vsvsr build --model MODEL --size WxH"


def verify_engine(manifest_path: str | Path, want: EngineKey, *,
                  check_hash: bool = True) -> tuple[Path, EngineManifest]:
    """Check that the engine of ``manifest_path`` is the one ``want`` describes.

    Raises:
        EngineMismatchError: naming every difference, the engine file and the rebuild command.
    """
    mpath = Path(manifest_path)
    man = EngineManifest.read(mpath)
    engine = mpath.parent / man.engine_file
    diffs = man.key.fit_problems(want)
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
    """The engine in ``engine_dir`` that fits ``want`` (see :meth:`EngineKey.fit_problems`).

    The engine named by ``want`` itself comes first; otherwise a fitting engine of another
    name (a dynamic engine whose range holds the size, a hardware-compatible one, another
    optimization level), static profiles before dynamic ones.

    Raises:
        EngineNotFoundError: none fits; the message lists the nearest engines there (same
            model, or built by an older vsvsr) and what differs, and gives the build command.
    """
    folder = Path(engine_dir)
    _, mpath = paths_for(folder, want)
    if mpath.is_file():
        try:
            return verify_engine(mpath, want)
        except StaleManifestError:
            pass  # reported with the others below
    near: list[str] = []
    fitting: list[tuple[bool, Path]] = []
    for other in sorted(folder.glob(f"*{MANIFEST_SUFFIX}")) if folder.is_dir() else []:
        try:
            man = EngineManifest.read(other)
        except StaleManifestError as exc:
            log.warning("%s", exc)
            near.append(str(exc))
            continue
        except EngineMismatchError as exc:
            log.warning("%s", exc)
            continue
        problems = man.key.fit_problems(want)
        if not problems:
            lo, _, hi = man.key.lr_sizes
            fitting.append((lo != hi, other))
        elif man.key.model_name == want.model_name or man.key.model_sha256 == want.model_sha256:
            near.append(f"{man.engine_file} ({'; '.join(problems)})")
    if fitting:
        return verify_engine(min(fitting)[1], want)
    msg = (f"no TensorRT engine for model {want.model_name!r} at {want.size_label} "
           f"({want.precision}, TensorRT {want.trt_version}, {want.target}) in {folder}")
    if near:
        msg += "; engines there that do not fit: " + " | ".join(near[:4])
    raise EngineNotFoundError(msg + f". Build one with: {rebuild_hint(want)} --out {folder}")
