"""``vsvsr farm``'s driver: plan the chunks, run them on Ray, join them, report.

1. Look at the input (a Ray task), then find the reset points: frame 0, the user's cuts, and
   with ``scene_detect`` the filter's own scene-change flags (scan tasks over segments).
2. Group scenes into chunks that start at reset points (:mod:`vsvsr.farm.plan`), record the
   plan in the manifest (:mod:`vsvsr.farm.manifest`), or take it from an earlier run's
   manifest made with the same settings.
3. Run one Ray task per unfinished chunk (longest first), each ``vsvsr upscale``'s job on its
   frame range; a killed worker's chunk is retried by Ray; every finished chunk is recorded.
4. Join the chunks with ffmpeg's concat demuxer (no re-encode), muxing in the source's audio.
5. Write a JSON report (chunks, times, fps per worker, retries) and remove the work folder.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vsvsr.cli.upscale import UpscaleOptions, audio_source
from vsvsr.encode.concat import concat_chunks
from vsvsr.errors import VsvsrError
from vsvsr.farm import cluster, tasks
from vsvsr.farm.manifest import MANIFEST_NAME, ChunkRecord, Manifest
from vsvsr.farm.plan import Plan, plan_chunks
from vsvsr.utils.atomic import atomic_write_bytes

log = logging.getLogger(__name__)


class FarmError(VsvsrError):
    """A farm job that cannot run as asked."""


@dataclass(kw_only=True, frozen=True)
class FarmOptions:
    """``vsvsr farm``'s settings on top of ``vsvsr upscale``'s (``job``).

    Attributes:
        job: the upscale job for the whole output (input, output, model, encode, range...).
        chunk_frames: the most frames a chunk holds (a longer scene stays whole unless
            ``job.warmup`` is set).
        work_dir: folder for the manifest and chunk files (default ``OUT.farm`` beside OUT);
            on a cluster, storage every worker and the driver share.
        address: a Ray cluster (``auto``, ``host:6379``, ``ray://host:10001``); None starts a
            local instance.
        num_cpus, num_gpus: the local instance's resources (default: the machine's).
        cpus_per_task, gpus_per_task: what each chunk task reserves (fractional GPUs let several
            chunks share one); ``job.threads`` 0 means ``cpus_per_task`` inference threads.
        retries: how often a chunk whose worker died is retried.
        restart: discard an earlier run's manifest and chunks (needed when settings changed).
        keep_chunks: keep the work folder after joining.
        report: JSON report path (default ``OUT.farm.json`` beside OUT).
        send_chunks: workers send finished chunks to the driver through Ray's object store
            instead of writing them into the work folder (no shared storage for it needed).
        connect_timeout: seconds to wait for ``address`` to answer.
        scan_frames: frames per scene-detection task.
        fault: test hook, see :mod:`vsvsr.farm.tasks` (from ``VSVSR_FARM_FAULT``).
    """

    job: UpscaleOptions
    chunk_frames: int = 1000
    work_dir: Path | None = None
    address: str | None = None
    num_cpus: int | None = None
    num_gpus: int | None = None
    cpus_per_task: float = 1.0
    gpus_per_task: float = 0.0
    retries: int = 3
    restart: bool = False
    keep_chunks: bool = False
    report: Path | None = None
    send_chunks: bool = False
    connect_timeout: float = 30.0
    scan_frames: int = 2000
    fault: str | None = dataclasses.field(
        default_factory=lambda: os.environ.get(tasks.FAULT_ENV) or None)

    def __post_init__(self) -> None:
        j = self.job
        if j.output is None:
            raise FarmError("no OUTPUT file given")
        if j.state_dir is not None:
            raise FarmError("--state-dir is not used by vsvsr farm: its chunks start at reset "
                            "points and need no saved state; drop --state-dir")
        if self.chunk_frames < 1 or self.scan_frames < 1:
            raise FarmError(f"--chunk-frames must be at least 1, got {self.chunk_frames}")
        if self.cpus_per_task <= 0 or self.gpus_per_task < 0:
            raise FarmError("--cpus-per-task must be > 0 and --gpus-per-task >= 0")
        if self.retries < 0:
            raise FarmError(f"--retries must be >= 0, got {self.retries}")
        if self.connect_timeout <= 0:
            raise FarmError("--connect-timeout must be > 0 seconds")
        if self.address is not None and (self.num_cpus is not None or self.num_gpus is not None):
            raise FarmError("--num-cpus/--num-gpus size a local Ray instance; with --address "
                            "the cluster's own resources are used: drop them")

    @property
    def output(self) -> Path:
        assert self.job.output is not None
        return self.job.output

    @property
    def folder(self) -> Path:
        return self.work_dir or self.output.with_name(self.output.name + ".farm")

    @property
    def report_path(self) -> Path:
        return self.report or self.output.with_name(self.output.name + ".farm.json")

    def settings(self) -> dict[str, Any]:
        """Everything that decides the chunks' frames and files: the manifest's hash."""
        from vsvsr.models.registry import resolve_model

        j = self.job
        try:
            st = j.input.stat()
        except OSError as exc:
            raise FarmError(f"input {j.input}: {exc.strerror or exc}") from None
        from vsvsr.encode.pipe import CRF_CODECS, PRESET_CODECS
        from vsvsr.runtime.select import normalize_backend

        files = resolve_model(j.model)
        normalize_backend(j.backend)  # an unknown name fails here, before Ray starts
        enc = j.encode
        return {
            "input": str(j.input.resolve()), "input_size": st.st_size,
            "input_mtime_ns": st.st_mtime_ns, "model": str(j.model),
            "model_sha256": files.sha256, "backend": j.backend, "precision": j.precision,
            "matrix": j.matrix,
            "scene_detect": j.scene_detect, "warmup": j.warmup, "cuts": list(j.cuts),
            "start": j.start, "end": j.end, "chunk_frames": self.chunk_frames,
            # crf and preset only where the codec takes them (ffv1 ignores both)
            "codec": enc.codec, "crf": enc.crf if enc.codec in CRF_CODECS else None,
            "preset": enc.preset if enc.codec in PRESET_CODECS else None, "pix_fmt": enc.pix_fmt,
            "extra_args": list(enc.extra_args), "tag_colors": enc.tag_colors,
        }


@dataclass
class _Timer:
    seconds: dict[str, float] = dataclasses.field(default_factory=dict)

    @contextlib.contextmanager
    def __call__(self, name: str):  # noqa: ANN204
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - t0


def run_farm(opts: FarmOptions) -> dict[str, Any]:
    """Run the whole job (see the module docstring); returns the report."""
    opts = _absolute(opts)
    job, out = opts.job, opts.output
    if out.exists() and not job.overwrite:
        raise FarmError(f"{out} exists; pass -y/--overwrite to replace it")
    if out.resolve() == job.input.resolve():
        raise FarmError("OUTPUT must not be the INPUT file")
    if not job.input.is_file():
        raise FarmError(f"input {job.input} does not exist")
    settings = opts.settings()
    timer = _Timer()
    t_all = time.perf_counter()
    with cluster.ray_session(address=opts.address, num_cpus=opts.num_cpus,
                             num_gpus=opts.num_gpus, timeout=opts.connect_timeout,
                             log_to_driver=log.isEnabledFor(logging.DEBUG)) as (ray, t_ray):
        timer.seconds["ray_start"] = t_ray
        warm, inspect, scan, chunk_fn = cluster.remote_functions(
            ray, cpus=opts.cpus_per_task, gpus=opts.gpus_per_task, retries=opts.retries)
        with timer("prepare"):  # workers import VapourSynth & co. while the input is planned
            warming = [warm.remote() for _ in range(
                cluster.slots(ray, opts.cpus_per_task, opts.gpus_per_task))]
            manifest = _load_or_plan(ray, opts, settings, inspect, scan, timer)
            _get(ray, warming)
        source = tasks.SourceInfo(**manifest.source)
        if job.matrix is None and source.matrix is not None:  # guessed on the worker
            log.warning("vsvsr farm: the input does not say its colour matrix; assuming %s from "
                        "its size, as vsvsr upscale does (pass --matrix to choose)",
                        source.matrix)
        chunk_opts = dataclasses.replace(
            job, matrix=source.matrix,
            threads=job.threads or max(1, round(opts.cpus_per_task)))
        with timer("chunks"):
            results, attempts, skipped = _run_chunks(ray, opts, manifest, chunk_opts, chunk_fn)
        t_stop = time.perf_counter()
    timer.seconds["ray_stop"] = time.perf_counter() - t_stop
    records = manifest.chunks
    total = sum(r.end - r.start for r in records)
    with timer("join"):
        audio = audio_source(job, source.fps_num, source.fps_den, total)
        joined = concat_chunks([manifest.chunk_path(r) for r in records], out, frames=total,
                               settings=job.encode, audio_source=audio, overwrite=job.overwrite)
    timer.seconds["total"] = time.perf_counter() - t_all
    report = _report(opts, manifest, results, attempts, skipped, timer, joined.audio)
    atomic_write_bytes(opts.report_path, json.dumps(report, indent=1).encode())
    if not opts.keep_chunks:
        _remove_work(opts.folder, records)
    return report


def _absolute(opts: FarmOptions) -> FarmOptions:
    """Paths made absolute: Ray workers do not run in the driver's current folder."""
    from vsvsr.models.registry import BUILTIN_MODELS

    job = opts.job
    model = job.model
    if model not in BUILTIN_MODELS and Path(model).is_file():
        model = str(Path(model).resolve())
    assert job.output is not None
    job = dataclasses.replace(job, input=job.input.absolute(), output=job.output.absolute(),
                              model=model)
    return dataclasses.replace(opts, job=job, work_dir=opts.work_dir and opts.work_dir.absolute(),
                               report=opts.report and opts.report.absolute())


def _load_or_plan(ray: Any, opts: FarmOptions, settings: dict[str, Any], inspect: Any,
                  scan: Any, timer: _Timer) -> Manifest:
    """The earlier run's manifest (same settings), or a new plan."""
    folder = opts.folder
    old = Manifest.load(folder) if not opts.restart else None
    if old is not None:
        old.check_settings(settings)
        done = sum(old.is_done(r) for r in old.chunks)
        log.warning("vsvsr farm: continuing %s: %d of %d chunks already done", old.path, done,
                    len(old.chunks))
        _remove_partials(folder)
        return old
    if opts.restart:
        _remove_work(folder, None)
    job = opts.job
    with timer("inspect"):
        source: tasks.SourceInfo = _get(ray, inspect.remote(job))
    end = source.num_frames if job.end is None else job.end
    if job.start >= source.num_frames or end > source.num_frames:
        raise FarmError(f"{job.input} has {source.num_frames} frames; the range --start "
                        f"{job.start} --end {end} is outside it")
    from vsvsr.recurrence.reset_points import check_in_range

    check_in_range(job.cuts, source.num_frames, "--cuts")
    with timer("scene_pass"):
        resets = _reset_points(ray, opts, scan, source, end)
    plan = plan_chunks(resets, job.start, end, opts.chunk_frames, warmup=job.warmup)
    _warn_plan(plan, job.start, end)
    manifest = Manifest(work_dir=folder, settings=settings, num_frames=source.num_frames,
                        source=dataclasses.asdict(source),
                        chunks=[ChunkRecord.for_chunk(c) for c in plan.chunks])
    folder.mkdir(parents=True, exist_ok=True)
    manifest.save()
    return manifest


def _reset_points(ray: Any, opts: FarmOptions, scan: Any, source: tasks.SourceInfo,
                  end: int) -> list[int]:
    from vsvsr.vs.scene import DEFAULT_THRESHOLD

    job = opts.job
    if not job.scene_detect:
        return [0, *job.cuts]
    scan_opts = dataclasses.replace(job, matrix=source.matrix)
    step = opts.scan_frames
    refs = [scan.remote(scan_opts, a, min(end, a + step), DEFAULT_THRESHOLD)
            for a in range(job.start, end, step)]
    found: set[int] = {0}
    for part in _get(ray, refs):
        found.update(part)
    return sorted(found)


def _warn_plan(plan: Plan, start: int, end: int) -> None:
    if len(plan.chunks) == 1 and end - start > 1:
        log.warning("vsvsr farm: frames %d-%d have no reset point to split at, so they are one "
                    "chunk and one worker does all the work; pass --scene-detect or --cuts FILE "
                    "(or --warmup K to split approximately)", start, end - 1)
    for c in plan.approximate:
        log.warning("vsvsr farm: chunk %d (frames %d-%d) starts in mid-scene and is warmed up "
                    "from a fresh state: its first frames are APPROXIMATE", c.index, c.start,
                    c.end - 1)


def _get(ray: Any, refs: Any) -> Any:
    """``ray.get``, with the worker's own error re-raised."""
    try:
        return ray.get(refs)
    except ray.exceptions.RayTaskError as exc:
        raise cluster.unwrap(ray, exc) from None


def _run_chunks(ray: Any, opts: FarmOptions, manifest: Manifest, chunk_opts: UpscaleOptions,
                chunk_fn: Any) -> tuple[dict[int, tasks.ChunkResult], dict[int, int], list[int]]:
    """Run every unfinished chunk; returns (results, starts per chunk, skipped chunks)."""
    from tqdm import tqdm

    todo = [r for r in manifest.chunks if not manifest.is_done(r)]
    skipped = [r.index for r in manifest.chunks if r not in todo]
    total = sum(r.end - r.start for r in manifest.chunks)
    done_frames = total - sum(r.end - r.start for r in todo)
    _remove_partials(opts.folder)
    board = cluster.board_actor(ray)
    pending: dict[Any, ChunkRecord] = {}
    for r in sorted(todo, key=lambda r: r.start - r.end):  # longest first
        job = tasks.ChunkJob(chunk=r.chunk(), opts=chunk_opts, path=manifest.chunk_path(r),
                             send=opts.send_chunks, fault=opts.fault)
        pending[chunk_fn.remote(job, board)] = r
    results: dict[int, tasks.ChunkResult] = {}
    snap: dict[str, Any] = {"attempts": {}}
    with tqdm(total=total, initial=done_frames, unit="frame", desc="vsvsr farm",
              disable=not opts.job.progress, dynamic_ncols=True, file=sys.stderr) as bar:
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
                for ref in ready:
                    record = pending.pop(ref)
                    try:
                        result: tasks.ChunkResult = _get(ray, ref)
                    except ray.exceptions.RayError as exc:  # not our code: the worker died
                        raise FarmError(
                            f"chunk {record.index} (frames {record.start}-{record.end - 1}) "
                            f"failed {opts.retries + 1} times: its worker died ({exc}). Finished "
                            "chunks are kept; run the same command again to continue") from None
                    if result.data is not None:  # sent through Ray: the driver writes it
                        atomic_write_bytes(manifest.chunk_path(record), result.data)
                        result = dataclasses.replace(result, data=None)
                    results[record.index] = result
                    manifest.mark_done(record.index, host=result.host, seconds=result.seconds)
                    done_frames += result.frames
                snap = ray.get(board.snapshot.remote())
                running = sum(n for i, n in snap["frames"].items() if i not in results)
                bar.n = done_frames + running
                bar.set_postfix_str(" ".join(f"{w.split(':')[-1]}:{fps:.1f}fps"
                                             for w, fps in snap["fps"].items()), refresh=False)
                bar.refresh()
        except BaseException:
            for ref in pending:
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)
            raise
        snap = ray.get(board.snapshot.remote())
    with contextlib.suppress(Exception):
        ray.kill(board)
    return results, {int(k): v for k, v in snap["attempts"].items()}, skipped


def _report(opts: FarmOptions, manifest: Manifest, results: dict[int, tasks.ChunkResult],
            attempts: dict[int, int], skipped: list[int], timer: _Timer,
            audio: str) -> dict[str, Any]:
    chunks = []
    workers: dict[str, dict[str, float]] = {}
    for r in manifest.chunks:
        res = results.get(r.index)
        row: dict[str, Any] = {"index": r.index, "start": r.start, "end": r.end,
                               "frames": r.end - r.start, "exact": r.exact,
                               "skipped": r.index in skipped,
                               "attempts": attempts.get(r.index, 0)}
        if res is not None:
            worker = f"{res.host}:{res.pid}"
            row.update(worker=worker, seconds=round(res.seconds, 3),
                       fps=round(res.frames / res.seconds, 3) if res.seconds else None)
            w = workers.setdefault(worker, {"frames": 0, "seconds": 0.0})
            w["frames"] += res.frames
            w["seconds"] += res.seconds
        chunks.append(row)
    for w in workers.values():
        w["fps"] = round(w["frames"] / w["seconds"], 3) if w["seconds"] else 0.0
        w["seconds"] = round(w["seconds"], 3)
    total = sum(c["frames"] for c in chunks)
    run_frames = sum(res.frames for res in results.values())
    return {
        "input": str(opts.job.input), "output": str(opts.output), "frames": total,
        "chunks_total": len(chunks), "chunks_run": len(results), "chunks_skipped": len(skipped),
        "approximate_chunks": [c["index"] for c in chunks if not c["exact"]],
        "retries": sum(max(0, a - 1) for a in attempts.values()),
        "fps": round(run_frames / timer.seconds["chunks"], 3) if run_frames else 0.0,
        "seconds": {k: round(v, 3) for k, v in timer.seconds.items()},
        "audio": audio, "workers": workers, "chunk_list": chunks,
        "settings_hash": manifest.hash,
    }


def _remove_partials(folder: Path) -> None:
    """Half-written chunks of killed workers (temporary names; never joined) and markers."""
    if folder.is_dir():
        for p in folder.glob(".chunk_*.partial.*"):
            with contextlib.suppress(OSError):
                p.unlink()


def _remove_work(folder: Path, records: list[ChunkRecord] | None) -> None:
    """Our files in the work folder (chunks, manifest, markers), then the folder if empty."""
    if not folder.is_dir():
        return
    names = {r.file for r in records} if records is not None else None
    for p in folder.iterdir():
        ours = (p.name.startswith("chunk_") and p.suffix == ".mkv" and
                (names is None or p.name in names)) or p.name == MANIFEST_NAME or \
            p.name.startswith((".chunk_", ".fault_injected_", f".{MANIFEST_NAME}."))
        if ours and p.is_file():
            with contextlib.suppress(OSError):
                p.unlink()
    with contextlib.suppress(OSError):
        folder.rmdir()
