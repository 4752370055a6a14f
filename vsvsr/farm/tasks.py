"""What a farm worker runs: look at the input, find reset points, encode one chunk.

Plain functions over picklable dataclasses; :mod:`vsvsr.farm.cluster` wraps them as Ray tasks.
A chunk is ``vsvsr upscale``'s own job (:func:`vsvsr.cli.upscale.upscale`) with ``start``/
``end`` set, no audio and the chunk file as output, so the farm and the single-process command
share one code path; the output appears under its final name only when complete.

Errors name the worker's host, since on a cluster the problem (a path that is not shared, a
missing package) is usually that machine's.

Test hook (not part of the CLI): ``VSVSR_FARM_FAULT=exit:CHUNK:FRAMES`` in the driver's
environment makes the worker of chunk CHUNK exit abruptly (``os._exit``) after writing FRAMES
frames, once (a marker file in the work folder remembers it), to exercise Ray's task retries.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import socket
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vsvsr.cli.upscale import UpscaleOptions
from vsvsr.errors import VsvsrError
from vsvsr.farm.plan import Chunk

log = logging.getLogger(__name__)

FAULT_ENV = "VSVSR_FARM_FAULT"


class WorkerError(VsvsrError, RuntimeError):
    """A chunk or scan failed on a worker; the message names the host."""


@dataclass(kw_only=True, frozen=True)
class SourceInfo:
    """What the driver needs to know about the input to plan the job."""

    num_frames: int
    fps_num: int
    fps_den: int
    width: int
    height: int
    matrix: str | None  #: the matrix every chunk must use (given, or guessed once)


@dataclass(kw_only=True, frozen=True)
class ChunkJob:
    """Encode ``chunk`` of ``opts.input`` into ``path`` with ``opts``'s settings."""

    chunk: Chunk
    opts: UpscaleOptions
    path: Path
    send: bool = False  #: return the file's bytes (no shared work folder) instead of writing it
    fault: str | None = None  #: the test hook above, forwarded from the driver


@dataclass(kw_only=True, frozen=True)
class ChunkResult:
    index: int
    frames: int
    seconds: float
    host: str
    pid: int
    data: bytes | None = None  #: the encoded chunk, when the job asked to send it



def host() -> str:
    return socket.gethostname()


def _check_shared(path: Path, what: str) -> None:
    if not path.exists():
        raise WorkerError(f"worker {host()} cannot open the {what} {path}: no such file on that "
                          "machine. Every worker must see it at the same path (shared storage, "
                          "or a copy at that path; see docs/cluster.md)")


def _on_worker[T](what: str, fn: Callable[[], T]) -> T:
    """Run ``fn``, re-raising vsvsr's and VapourSynth's errors with the host named."""
    try:
        return fn()
    except WorkerError:
        raise
    except VsvsrError as exc:
        raise WorkerError(f"worker {host()}, {what}: {exc}") from None
    except Exception as exc:
        if type(exc).__module__ == "vapoursynth":
            raise WorkerError(f"worker {host()}, {what}: VapourSynth error: {exc}") from None
        raise


def warm_up() -> str:
    """Import what a chunk needs (VapourSynth, the filter, ONNX Runtime) in this worker, so
    that the chunks' time is the work itself; returns ``host:pid``."""
    import importlib

    import vsvsr.vs.recurrent_filter  # noqa: F401

    for name in ("onnxruntime", "tqdm"):
        try:
            importlib.import_module(name)
        except ImportError:  # the chunk itself will say what is missing
            pass
    return f"{host()}:{os.getpid()}"


def inspect_source(opts: UpscaleOptions) -> SourceInfo:
    """Frame count, rate and size of the input, and the matrix to use (guessed once here)."""
    from vsvsr.cli.upscale import guess_matrix, open_source

    _check_shared(opts.input, "input")

    def run() -> SourceInfo:
        src = open_source(opts.input)
        return SourceInfo(num_frames=src.num_frames, fps_num=src.fps_num, fps_den=src.fps_den,
                          width=src.width, height=src.height,
                          matrix=opts.matrix or guess_matrix(src))

    return _on_worker(f"reading {opts.input}", run)


def scan_resets(opts: UpscaleOptions, start: int, end: int, threshold: float | None) -> list[int]:
    """Reset points in ``[start, end)``: the filter's own flags (built-in detector with
    ``threshold``, ``_SceneChangePrev``, ``opts.cuts``), from the same graph it builds."""
    from vsvsr.cli.upscale import open_source
    from vsvsr.vs import formats, scene

    _check_shared(opts.input, "input")

    def run() -> list[int]:
        src = scene.mark_scene_changes(open_source(opts.input), opts.cuts)
        info = formats.inspect_clip(src, "vsvsr farm", opts.matrix)
        rgb = formats.to_model_rgb(src, info)
        if threshold is not None:
            rgb = scene.add_scene_diff(rgb)
        return scene.find_scene_changes(rgb, threshold, start, end)

    return _on_worker(f"scanning frames {start}-{end - 1} for scene changes", run)


def run_chunk(job: ChunkJob, on_frame: Callable[[int], None] | None = None) -> ChunkResult:
    """Encode one chunk through ``vsvsr upscale``'s job; see the module docstring."""
    from vsvsr.cli.upscale import upscale

    _check_shared(job.opts.input, "input")
    c = job.chunk
    with contextlib.ExitStack() as stack:
        if job.send:  # encode into a private folder on this machine, send the bytes back
            path = Path(stack.enter_context(tempfile.TemporaryDirectory(
                prefix="vsvsr-farm-"))) / job.path.name
        else:
            _check_shared(job.path.parent, "chunk folder")
            path = job.path
        opts = dataclasses.replace(
            job.opts, start=c.start, end=c.end, output=path, overwrite=True, progress=False,
            encode=dataclasses.replace(job.opts.encode, audio="none"))
        hook = _fault_hook(job, on_frame)
        t0 = time.perf_counter()
        result = _on_worker(f"chunk {c.index} (frames {c.start}-{c.end - 1})",
                            lambda: upscale(opts, on_frame=_frames_only(hook)))
        assert result.frames == c.frames
        return ChunkResult(index=c.index, frames=c.frames, seconds=time.perf_counter() - t0,
                           host=host(), pid=os.getpid(),
                           data=path.read_bytes() if job.send else None)


def _frames_only(hook: Callable[[int], None] | None) -> Callable[[int, int], None] | None:
    """Adapt a frames-written callback to ``upscale``'s ``on_frame(frames_written, total)``."""
    if hook is None:
        return None
    return lambda done, _total: hook(done)


def _fault_hook(job: ChunkJob,
                on_frame: Callable[[int], None] | None) -> Callable[[int], None] | None:
    """``on_frame``, plus the injected fault when ``job.fault`` targets this chunk."""
    if not job.fault:
        return on_frame
    kind, chunk, frames = job.fault.split(":")
    marker = job.path.parent / f".fault_injected_{chunk}"
    if kind != "exit" or int(chunk) != job.chunk.index or marker.exists():
        return on_frame

    def hook(n: int) -> None:
        if on_frame is not None:
            on_frame(n)
        if n >= int(frames):
            marker.touch()
            log.warning("vsvsr farm: injected fault: worker exits during chunk %s", chunk)
            os._exit(1)

    return hook
