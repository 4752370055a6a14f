"""ONNX -> TensorRT engine, one small step at a time.

:func:`build_engines` is what ``vsvsr build`` and the runtime's build-on-first-use call:

1. resolve the model and get a validated ONNX (:mod:`plugin_build.onnx_check`; a ``.pth``-only
   model is exported first), written into ``OUT/onnx/`` in any case;
2. without TensorRT or a GPU: say so, and print the equivalent ``trtexec`` command line;
3. per size: the :class:`EngineKey` names the engine; under a file lock, reuse an engine whose
   manifest matches, else build (:func:`build_plan`), write the engine to a temporary file and
   rename it, then the manifest beside it. The timing cache, shared by all builds for the same
   TensorRT and GPU, is merged and rewritten under its own lock.

Precision: TensorRT 10.0-10.11 gets ``BuilderFlag.FP16``/``BF16`` and fp16 I/O tensors;
TensorRT 10.12+ (which deprecated those) and 11 (which removed them) build a strongly typed
network from an ONNX converted to fp16 (:mod:`plugin_build.onnx_fp16`).
"""

from __future__ import annotations

import contextlib
import logging
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from plugin_build.onnx_check import check_onnx
from vsvsr.errors import ModelFileError, VsvsrError
from vsvsr.models.descriptor import ModelDescriptor
from vsvsr.models.registry import ModelFiles, file_sha256, resolve_model
from vsvsr.runtime.engine_key import BuildOptions, BuildOptionsError, EngineKey, trt_major
from vsvsr.runtime.engine_manifest import EngineManifest, EngineMismatchError, paths_for, write_manifest
from vsvsr.runtime.gpu_info import GpuInfo, query_gpu
from vsvsr.runtime.trt_common import ErrorWindow, is_strongly_typed_only, tensorrt_version, trt_logger
from vsvsr.utils.atomic import atomic_write_bytes
from vsvsr.utils.file_lock import file_lock

log = logging.getLogger(__name__)

#: Float I/O tensors that an fp16 engine takes and gives in fp16 (half the bytes to move);
#: ``step`` stays fp32 (it counts frames and would overflow fp16).
FP16_IO = ("lr", "lr_prev", "state", "sr", "state_out")


class TrtBuildError(VsvsrError, RuntimeError):
    """TensorRT refused the network or failed to build it; the message has its errors."""


@dataclass(kw_only=True, frozen=True)
class EngineBuild:
    """One engine: where it is, its key, and whether this call built it or found it."""

    engine: Path
    manifest: Path
    key: EngineKey
    built: bool
    seconds: float


@dataclass(kw_only=True)
class BuildReport:
    """What ``vsvsr build`` did for one model."""

    model: str
    onnx: Path  #: the validated ONNX written to OUT/onnx/
    engines: list[EngineBuild] = field(default_factory=list)
    #: Why no engine was built (no TensorRT, no GPU); empty when engines were built.
    unavailable: str = ""
    trtexec: list[str] = field(default_factory=list)


# -- 1. the validated ONNX ----------------------------------------------------------------------
def resolve_build_targets(model: str) -> list[ModelFiles]:
    """The models ``--model`` names; an overfit pack (``.vsvsr``) expands to its members
    (stateless: one ``lr`` input, see ``model_input_shapes``)."""
    from vsvsr.stdo.members import is_pack_path, member_files

    if is_pack_path(model):
        return member_files(model)
    return [resolve_model(model)]


def validated_onnx(files: ModelFiles, out_dir: Path) -> tuple[Path, ModelDescriptor, str]:
    """Check the model's ONNX (exporting a ``.pth``-only model first) and copy it to
    ``out_dir/onnx/NAME-HASH.onnx``; returns (that path, descriptor, source SHA-256)."""
    source = files.onnx
    if source is None:
        source = _export_pth(files, out_dir)
    report = check_onnx(source)
    if not report.ok:
        raise ModelFileError(f"{source} is not ready for TensorRT: " + "; ".join(report.problems))
    assert report.descriptor is not None  # check_onnx requires it
    sha = file_sha256(source)
    dest = out_dir / "onnx" / f"{files.name}-{sha[:12]}.onnx"
    if not dest.is_file() or file_sha256(dest) != sha:
        atomic_write_bytes(dest, source.read_bytes())
    return dest, report.descriptor, sha


def _export_pth(files: ModelFiles, out_dir: Path) -> Path:
    from plugin_build.export_onnx import export_recurrent
    from vsvsr.runtime.torch_backend import TorchEngine

    assert files.pth is not None
    engine = TorchEngine(files.pth)
    return export_recurrent(engine._net, engine.descriptor, out_dir / "onnx" / f"{files.name}.onnx")


# -- 2. trtexec, for machines where we cannot build --------------------------------------------
def _shape_arg(shapes: dict[str, tuple[int, ...]]) -> str:
    return ",".join(f"{n}:{'x'.join(map(str, s))}" for n, s in shapes.items())


def trtexec_command(onnx_path: Path, key: EngineKey, engine_path: Path,
                    timing_cache: Path | None = None) -> list[str]:
    """The ``trtexec`` line that builds the same engine as :func:`build_plan`.

    ``onnx_path`` is the ONNX the build parses (for a strongly typed fp16 build, the
    converted ``-fp16.onnx``, see :func:`network_onnx`). Strongly typed: ``--stronglyTyped``
    on TensorRT 10.12+ (trtexec 11 has no ``--fp16`` and treats ``--stronglyTyped`` as a
    deprecated no-op, so it is left out there); otherwise ``--fp16``/``--bf16`` with fp16 I/O.
    """
    lo = {n: tuple(v[0]) for n, v in key.profile.items() if n != "step"}
    opt = {n: tuple(v[1]) for n, v in key.profile.items() if n != "step"}
    hi = {n: tuple(v[2]) for n, v in key.profile.items() if n != "step"}
    cmd = ["trtexec", f"--onnx={onnx_path}", f"--saveEngine={engine_path}",
           f"--minShapes={_shape_arg(lo)}", f"--optShapes={_shape_arg(opt)}",
           f"--maxShapes={_shape_arg(hi)}", f"--builderOptimizationLevel={key.opt_level}"]
    if key.strongly_typed:
        if trt_major(key.trt_version) < 11:
            cmd.append("--stronglyTyped")
    elif key.precision == "fp16":
        cmd.append("--fp16")
        fmts = {"lr": "fp16:chw", "lr_prev": "fp16:chw", "state": "fp16:chw", "step": "fp32:chw"}
        cmd.append("--inputIOFormats=" + ",".join(fmts[n] for n in key.profile))
        outputs = 2 if "state" in key.profile else 1  # recurrent: sr, state_out; packs: sr
        cmd.append("--outputIOFormats=" + ",".join(["fp16:chw"] * outputs))
    elif key.precision == "bf16":
        cmd.append("--bf16")
    if key.hw_compat != "none":
        cmd.append("--hardwareCompatibilityLevel="
                   + {"ampere-plus": "ampere+", "same-compute-capability": "sameComputeCapability"}
                   [key.hw_compat])
    if timing_cache is not None:
        cmd.append(f"--timingCacheFile={timing_cache}")
    return cmd


# -- 3. the build -----------------------------------------------------------------------------
def build_plan(trt: ModuleType, onnx_bytes: bytes, key: EngineKey, options: BuildOptions,
               timing_cache: bytes = b"") -> tuple[bytes, bytes, list[dict[str, Any]]]:
    """Build one serialized engine; returns (plan, updated timing cache, engine I/O).

    Raises:
        TrtBuildError: with every ONNX parser error, or TensorRT's logged errors.
    """
    logger = trt_logger(trt)
    window = ErrorWindow(logger)
    builder = trt.Builder(logger)
    flags = 0
    if key.strongly_typed:  # bit 0 on TensorRT 11, where it is ignored (always strongly typed)
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)  # explicit batch is implicit since TensorRT 10
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_bytes):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise TrtBuildError(f"TensorRT's ONNX parser rejected {key.model_name} "
                            f"({len(errors)} error(s)): " + " | ".join(errors))
    config = builder.create_builder_config()
    if options.workspace_mib is not None:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, options.workspace_mib << 20)
    config.builder_optimization_level = options.opt_level
    if options.hw_compat == "ampere-plus":
        config.hardware_compatibility_level = trt.HardwareCompatibilityLevel.AMPERE_PLUS
    elif options.hw_compat == "same-compute-capability":
        level = getattr(trt.HardwareCompatibilityLevel, "SAME_COMPUTE_CAPABILITY", None)
        if level is None:
            raise BuildOptionsError(f"TensorRT {key.trt_version} has no same-compute-capability "
                                    "hardware compatibility; use --hw-compat ampere-plus or none")
        config.hardware_compatibility_level = level
    if not key.strongly_typed:  # TensorRT 10.0-10.11 only (deprecated from 10.12)
        if options.precision == "fp16":
            config.set_flag(trt.BuilderFlag.FP16)
            for t in _io_tensors(network):
                if t.name in FP16_IO:
                    t.dtype = trt.DataType.HALF
        elif options.precision == "bf16":
            config.set_flag(trt.BuilderFlag.BF16)
    _add_profile(builder, network, config, key, window)
    cache = config.create_timing_cache(timing_cache)
    if not config.set_timing_cache(cache, ignore_mismatch=False):
        # Another TensorRT's or GPU's cache: build with a fresh one, which then replaces it.
        log.warning("%s: the timing cache does not match this TensorRT/GPU (%s); building "
                    "with a fresh one", key.model_name, window.text())
        cache = config.create_timing_cache(b"")
        if not config.set_timing_cache(cache, ignore_mismatch=False):
            raise TrtBuildError("TensorRT refused an empty timing cache: " + window.text())
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise TrtBuildError(f"TensorRT could not build {key.model_name} at {key.size_label}: "
                            + window.text())
    io = [{"name": t.name, "mode": "input" if i < network.num_inputs else "output",
           "dtype": str(t.dtype).split(".")[-1], "shape": list(t.shape)}
          for i, t in enumerate(_io_tensors(network))]
    return bytes(memoryview(plan)), bytes(memoryview(cache.serialize())), io


def _add_profile(builder: Any, network: Any, config: Any, key: EngineKey,
                 window: ErrorWindow) -> None:
    """One optimization profile covering every input (as Polygraphy fills it), or none for
    a network without dynamic inputs (TensorRT refuses an empty profile with -1)."""
    inputs = [network.get_input(i) for i in range(network.num_inputs)]
    if not any(-1 in tuple(t.shape) for t in inputs):
        return
    profile = builder.create_optimization_profile()
    for t in inputs:
        static = tuple(t.shape)
        if t.name in key.profile:
            lo, opt, hi = (tuple(v) for v in key.profile[t.name])
        elif -1 in static:
            raise TrtBuildError(f"{key.model_name}: input {t.name!r} is dynamic but vsvsr has "
                                f"no shape for it (it knows {sorted(key.profile)})")
        else:
            lo = opt = hi = static
        try:
            profile.set_shape(t.name, lo, opt, hi)
        except RuntimeError as exc:  # TensorRT's binding raises on inconsistent shapes
            raise TrtBuildError(f"{key.model_name}: TensorRT refused the profile {lo} / {opt} / "
                                f"{hi} of input {t.name!r} ({exc})") from exc
    if config.add_optimization_profile(profile) < 0:
        raise TrtBuildError(f"{key.model_name}: TensorRT refused the optimization profile "
                            f"({window.text()})")


def _io_tensors(network: Any) -> list[Any]:
    return [network.get_input(i) for i in range(network.num_inputs)] + \
           [network.get_output(i) for i in range(network.num_outputs)]


def timing_cache_path(out_dir: Path, trt_version: str, gpu: GpuInfo) -> Path:
    """One timing cache per TensorRT version and GPU (it is invalid anywhere else)."""
    return out_dir / f"timing_trt{trt_version}_{gpu.slug}_{gpu.sm}.cache"


def network_onnx(onnx_path: Path, key: EngineKey) -> Path:
    """The ONNX TensorRT parses: the model's own, or its fp16 conversion (written beside it,
    once) for a strongly typed fp16 build."""
    if not key.strongly_typed or key.precision == "fp32":
        return onnx_path
    if key.precision == "bf16":
        raise BuildOptionsError("bf16 with a strongly typed build (TensorRT 10.12+ and 11) is "
                                "not supported yet; use --precision fp16 or fp32")
    from plugin_build.onnx_fp16 import convert_to_fp16

    fp16_path = onnx_path.with_name(onnx_path.stem + "-fp16.onnx")
    if not fp16_path.is_file():
        convert_to_fp16(onnx_path, fp16_path, keep_fp32_io=("step",))
    return fp16_path


def build_one(trt: ModuleType, onnx_path: Path, key: EngineKey, options: BuildOptions,
              out_dir: Path, *, gpu: GpuInfo, echo: Callable[[str], None] = print,
              lock_timeout: float = 3600.0) -> EngineBuild:
    """Build (or reuse) the engine for ``key`` in ``out_dir``, race-free and atomically."""
    engine_path, manifest_path = paths_for(out_dir, key)
    lock = engine_path.with_name(engine_path.name + ".lock")
    with file_lock(lock, timeout=lock_timeout, on_wait=lambda m: echo(f"vsvsr build: {m}")):
        if manifest_path.is_file():
            try:
                man = EngineManifest.read(manifest_path)
                if man.key == key and engine_path.is_file() and \
                        file_sha256(engine_path) == man.engine_sha256:
                    echo(f"vsvsr build: {engine_path.name} is up to date")
                    return EngineBuild(engine=engine_path, manifest=manifest_path, key=key,
                                       built=False, seconds=0.0)
            except EngineMismatchError as exc:
                log.warning("%s; rebuilding", exc)
        _remove_stale_temps(engine_path)
        echo(f"vsvsr build: building {engine_path.name} (TensorRT {key.trt_version}, "
             f"{gpu.name}) ...")
        t0 = time.perf_counter()
        cache_path = timing_cache_path(out_dir, key.trt_version, gpu)
        old_cache = cache_path.read_bytes() if cache_path.is_file() else b""
        parsed = network_onnx(onnx_path, key)
        plan, cache, io = build_plan(trt, parsed.read_bytes(), key, options, old_cache)
        seconds = time.perf_counter() - t0
        # A crash before this rename leaves no engine; before the manifest, an engine that is
        # never used (found only through its manifest) and is rebuilt next time.
        atomic_write_bytes(engine_path, plan)
        write_manifest(manifest_path, engine_path, key, build_seconds=seconds, io=io,
                       extra={"onnx": str(parsed), "trtexec": shlex.join(
                           trtexec_command(parsed, key, engine_path, cache_path)),
                              "built_on": {"gpu": gpu.name, "compute_capability":
                                           gpu.compute_capability, "driver": gpu.driver}})
        _merge_timing_cache(trt, cache_path, cache)
        echo(f"vsvsr build: wrote {engine_path} ({len(plan) / 1e6:.1f} MB, {seconds:.1f} s)")
        return EngineBuild(engine=engine_path, manifest=manifest_path, key=key, built=True,
                           seconds=seconds)


def _remove_stale_temps(engine_path: Path) -> None:
    """Temporary files a killed build left (only ever touched while holding the lock)."""
    for stale in engine_path.parent.glob(f".{engine_path.name}.*.tmp"):
        with contextlib.suppress(OSError):
            stale.unlink()


def _merge_timing_cache(trt: ModuleType, path: Path, new: bytes) -> None:
    """Rewrite the shared timing cache with this build's entries added, under its own lock."""
    with file_lock(path.with_name(path.name + ".lock")):
        config = trt.Builder(trt_logger(trt)).create_builder_config()
        merged = config.create_timing_cache(new)
        if path.is_file():
            merged.combine(config.create_timing_cache(path.read_bytes()), True)
        atomic_write_bytes(path, bytes(memoryview(merged.serialize())))


def _environment() -> tuple[ModuleType | None, GpuInfo | None, str]:
    """(tensorrt or None, GPU or None, why not) for this machine."""
    import importlib

    try:
        trt = importlib.import_module("tensorrt")
    except ImportError:
        return None, query_gpu(), ("TensorRT is not installed here (pip install "
                                   "'vsvsr[tensorrt]' on a machine with an NVIDIA GPU)")
    gpu = query_gpu()
    if gpu is None:
        return trt, None, "no NVIDIA GPU / CUDA driver is visible here"
    return trt, gpu, ""


def check_sizes(descriptor: ModelDescriptor, options: BuildOptions) -> None:
    m = descriptor.size_multiple
    for w, h in options.sizes + tuple(s for s in (options.min_size, options.max_size) if s):
        if w % m or h % m:
            raise BuildOptionsError(f"model {descriptor.name!r} needs sizes divisible by {m}; "
                                    f"{w}x{h} is not")
    if descriptor.fixed_size is not None and any(s != descriptor.fixed_size for s in options.sizes):
        fw, fh = descriptor.fixed_size
        raise BuildOptionsError(f"model {descriptor.name!r} only takes {fw}x{fh}")


def build_engines(model: str, options: BuildOptions, out_dir: str | Path, *,
                  echo: Callable[[str], None] = print,
                  gpu: GpuInfo | None = None) -> list[BuildReport]:
    """``vsvsr build``: engines for ``model`` (or, without TensorRT/GPU, the ONNX + trtexec)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    trt, found_gpu, why = _environment()
    gpu = gpu or found_gpu
    reports = []
    for files in resolve_build_targets(model):
        onnx_path, desc, sha = validated_onnx(files, out)
        check_sizes(desc, options)
        report = BuildReport(model=files.name, onnx=onnx_path)
        echo(f"vsvsr build: {files.name}: ONNX checked for TensorRT, written to {onnx_path}")
        if trt is None or gpu is None:
            _no_build_here(report, desc, sha, options, onnx_path, out, gpu, why, echo)
            reports.append(report)
            continue
        for profile in options.profiles():
            key = EngineKey.make(descriptor=desc, model_sha256=sha, profile=profile,
                                 options=options, trt_version=tensorrt_version(trt), gpu=gpu,
                                 strongly_typed=is_strongly_typed_only(trt))
            report.engines.append(build_one(trt, onnx_path, key, options, out, gpu=gpu,
                                            echo=echo))
        reports.append(report)
    return reports


#: The TensorRT versions whose trtexec lines differ: weakly typed (--fp16) up to 10.11,
#: strongly typed from 10.12 (the converted ONNX; trtexec 11 has no --fp16).
_TRTEXEC_VERSIONS = (("TensorRT 10.0-10.11", "10.11", False), ("TensorRT 10.12+", "10.12", True),
                     ("TensorRT 11", "11.0", True))


def _no_build_here(report: BuildReport, desc: ModelDescriptor, sha: str, options: BuildOptions,
                   onnx_path: Path, out: Path, gpu: GpuInfo | None, why: str,
                   echo: Callable[[str], None]) -> None:
    """Without TensorRT or a GPU: the trtexec lines that build the same engines, per
    TensorRT version (the strongly typed ones name the converted fp16 ONNX, written here)."""
    target = gpu or GpuInfo(name="unknown GPU", compute_capability="0.0", driver="unknown")
    report.unavailable = why
    echo(f"vsvsr build: cannot build engines here: {why}.")
    echo("vsvsr build: on a machine with TensorRT, this builds the same engine(s):")
    for label, version, strongly in _TRTEXEC_VERSIONS:
        if strongly and options.precision == "bf16":
            continue  # not supported strongly typed (network_onnx says so at build time)
        lines = []
        for profile in options.profiles():
            key = EngineKey.make(descriptor=desc, model_sha256=sha, profile=profile,
                                 options=options, trt_version=version, gpu=target,
                                 strongly_typed=strongly)
            engine_path, _ = paths_for(out, key)
            lines.append(shlex.join(trtexec_command(network_onnx(onnx_path, key), key,
                                                    engine_path)))
        echo(f"  {label}:")
        for line in lines:
            echo("    " + line)
        report.trtexec.extend(lines)
