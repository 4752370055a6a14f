"""The job queue: at most ``jobs`` worker processes at once, at most ``queue`` jobs waiting.

The store is the queue (jobs in state ``queued``, oldest first), so waiting jobs survive a
server restart and run when it comes back. A job that was running when the server stopped
cannot be picked up again: it is marked ``interrupted`` and any partial file it left is
removed. Workers are separate processes (``python -m vsvsr.web.worker``: a fresh interpreter,
no inherited threads or VapourSynth core), so a crash or a kill of one never takes the server
down. Cancel is SIGTERM (the worker stops at the next frame and cleans up); a worker that has
not stopped after :data:`CANCEL_GRACE` seconds is killed and its partial file removed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from vsvsr.encode.pipe import partial_glob
from vsvsr.errors import VsvsrError
from vsvsr.web.store import ACTIVE, CANCELLED, FAILED, INTERRUPTED, QUEUED, RUNNING, Job, JobStore

if TYPE_CHECKING:
    from vsvsr.web.paths import Root
    from vsvsr.web.settings import JobSettings

log = logging.getLogger(__name__)

#: Seconds a cancelled worker gets to stop by itself before it is terminated, then killed.
CANCEL_GRACE = 15.0


class QueueFullError(VsvsrError):
    """Every run slot and every queue place is taken (answered with HTTP 429)."""


class JobConflictError(VsvsrError):
    """The output exists (and overwriting was not asked for) or another job writes it."""


class JobStateError(VsvsrError):
    """An action that does not fit the job's state (cancel a finished job, download a failed one)."""


@dataclass
class _Worker:
    process: subprocess.Popen
    cancel_at: float | None = None  #: time.monotonic() of the first cancel

    def cancel(self) -> None:
        if self.cancel_at is None:
            self.cancel_at = time.monotonic()
        if self.process.poll() is None:
            with contextlib.suppress(OSError):
                self.process.terminate()  # SIGTERM: the worker stops at the next frame


def _worker_env() -> dict[str, str]:
    """The server's environment, with this vsvsr first on the path, so the worker runs the
    same code as the server whatever way it was installed or started."""
    import vsvsr

    here = str(Path(vsvsr.__file__).resolve().parents[1])
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": here + (os.pathsep + path if path else "")}


class JobManager:
    """Starts queued jobs in worker processes, reaps them, cancels them."""

    def __init__(self, store: JobStore, root: Root, *, max_running: int = 1,
                 max_queued: int = 4, poll: float = 0.2) -> None:
        self.store, self.root = store, root
        self.max_running, self.max_queued, self.poll = max_running, max_queued, poll
        self._workers: dict[int, _Worker] = {}
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- life cycle ---------------------------------------------------------------------
    def start(self) -> None:
        """Recover from a previous run, then start the scheduling thread."""
        for job in self.store.list(states=(RUNNING,)):
            self._remove_partials(job)
            self.store.finish(job.id, INTERRUPTED, error="the server stopped while this job "
                              "ran; nothing was written (submit it again)")
        self._thread = threading.Thread(target=self._loop, name="vsvsr-jobs", daemon=True)
        self._thread.start()

    def close(self, timeout: float = CANCEL_GRACE) -> None:
        """Stop scheduling; cancel running jobs and wait for them (queued ones stay queued)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        with self._lock:
            workers = dict(self._workers)
        for w in workers.values():
            w.cancel()
        deadline = time.monotonic() + timeout
        for job_id, w in workers.items():
            try:
                w.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                w.process.kill()
                w.process.wait(10)
            w.cancel_at = None  # interrupted by the server, not cancelled by the user
            self._reap(job_id, w, state=INTERRUPTED,
                       why="the server stopped while this job ran; nothing was written")
        with self._lock:
            self._workers.clear()

    # -- requests from the page ---------------------------------------------------------
    def submit(self, settings: JobSettings) -> Job:
        """Queue a job, or raise QueueFullError / JobConflictError / a settings error."""
        opts = settings.upscale_options(self.root)  # every path and name checked now
        assert opts.output is not None
        output = self.root.relative(opts.output)
        with self._lock:
            active = self.store.list(states=ACTIVE)
            if len(active) >= self.max_running + self.max_queued:
                raise QueueFullError(
                    f"the queue is full ({self.max_running} running, {self.max_queued} "
                    "waiting); wait for a job to finish or cancel one")
            if any(j.output == output for j in active):
                raise JobConflictError(f"{output} is already being written by another job")
            if opts.output.exists() and not settings.overwrite:
                raise JobConflictError(f"{output} exists; confirm to replace it")
            job = self.store.add(input=self.root.relative(opts.input), output=output,
                                 options={**settings.to_dict(), "output": output})
        self._wake.set()
        return job

    def cancel(self, job_id: int) -> Job:
        with self._lock:
            job = self.store.get(job_id)
            if job.state == QUEUED:
                self.store.finish(job_id, CANCELLED, only_if=(QUEUED,))
            elif job.state == RUNNING and job_id in self._workers:
                self._workers[job_id].cancel()
                self.store.append_log(job_id, "cancel requested")
            else:
                raise JobStateError(f"job {job_id} is {job.state}; only queued or running "
                                    "jobs can be cancelled")
        self._wake.set()
        return self.store.get(job_id)

    def running(self) -> list[int]:
        with self._lock:
            return list(self._workers)

    # -- scheduling -----------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # keep scheduling whatever one job did
                log.exception("vsvsr serve: job scheduling failed")
            self._wake.wait(self.poll)
            self._wake.clear()

    def tick(self) -> None:
        """Reap finished workers, escalate stuck cancels, start queued jobs."""
        with self._lock:
            for job_id, w in list(self._workers.items()):
                code = w.process.poll()
                if code is not None:
                    self._reap(job_id, w, state=FAILED,
                               why=f"the worker process ended unexpectedly (exit code {code})")
                    del self._workers[job_id]
                elif w.cancel_at is not None and time.monotonic() - w.cancel_at > CANCEL_GRACE:
                    log.warning("vsvsr serve: job %d did not stop after cancel; killing it",
                                job_id)
                    with contextlib.suppress(OSError):
                        w.process.kill()
            while len(self._workers) < self.max_running and not self._stop.is_set():
                job = self.store.next_queued()
                if job is None:
                    break
                self._launch(job)

    def _launch(self, job: Job) -> None:
        self.store.mark_running(job.id, None)
        try:
            proc = subprocess.Popen([sys.executable, "-m", "vsvsr.web.worker",
                                     str(self.store.path), str(self.root.path), str(job.id)],
                                    stdin=subprocess.DEVNULL, env=_worker_env())
        except OSError as exc:
            self.store.finish(job.id, FAILED, error=f"cannot start a worker process: {exc}")
            return
        self.store.mark_running(job.id, proc.pid)
        self._workers[job.id] = _Worker(proc)
        log.info("vsvsr serve: job %d started (pid %s): %s -> %s", job.id, proc.pid, job.input,
                 job.output)

    def _reap(self, job_id: int, w: _Worker, *, state: str, why: str) -> None:
        """After a worker ended: make sure the job has a final state and no partial file."""
        job = self.store.get(job_id)
        if job.state in ACTIVE:
            if w.cancel_at is not None:
                state, why = CANCELLED, "cancelled; nothing was written"
            self.store.finish(job_id, state, error=why)
            self._remove_partials(job)
        elif job.state != "done":
            self._remove_partials(job)

    def _remove_partials(self, job: Job) -> None:
        """Delete temporary files a killed encode left beside the job's output."""
        try:
            out = self.root.new_file(job.output)
        except VsvsrError:
            return
        for tmp in Path(out.parent).glob(partial_glob(out)):
            with contextlib.suppress(OSError):
                tmp.unlink()
                log.info("vsvsr serve: removed the partial file %s", tmp)
