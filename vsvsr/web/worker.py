"""What runs in a job's worker process (``python -m vsvsr.web.worker DB ROOT JOB``):
``vsvsr upscale``'s own :func:`upscale`, reporting progress and log lines into the job store
and stopping cleanly when asked.

Cancel is SIGTERM from the server: the handler only sets a flag; the progress callback raises
:class:`JobCancelled` at the next frame, and :func:`~vsvsr.encode.pipe.encode_clip` then stops
ffmpeg and removes its temporary file exactly as it does on Ctrl-C, so a cancelled job leaves
no partial output. A plain process (not ``multiprocessing``) so that nothing depends on how
the server's own main module was started.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
import traceback
from collections.abc import Sequence

from vsvsr.web.store import CANCELLED, DONE, FAILED, INTERRUPTED, JobStore

#: Seconds between progress writes to the store (the last frame is always written).
PROGRESS_EVERY = 0.25


class JobCancelled(Exception):
    """Raised from the progress callback when the page asked to cancel."""


class _StoreLogHandler(logging.Handler):
    """Log records of the worker go into the job's log on the page."""

    def __init__(self, store: JobStore, job_id: int) -> None:
        super().__init__(logging.INFO)
        self.store, self.job_id = store, job_id
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.store.append_log(self.job_id, self.format(record))
        except Exception:  # logging must never raise
            self.handleError(record)


class Progress:
    """The ``on_frame`` callback: frames, fps and ETA into the store; cancel at the next frame."""

    def __init__(self, store: JobStore, job_id: int, cancel: threading.Event | None) -> None:
        self.store, self.job_id, self.cancel = store, job_id, cancel
        self.t0 = time.perf_counter()
        self.last = 0.0

    def __call__(self, done: int, total: int) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise JobCancelled
        now = time.perf_counter()
        if done == 0:
            self.t0 = now  # time from the first frame request, not from opening the source
        if done and done != total and now - self.last < PROGRESS_EVERY:
            return
        self.last = now
        elapsed = now - self.t0
        fps = done / elapsed if done and elapsed > 0 else 0.0
        eta = (total - done) / fps if fps > 0 else None
        self.store.progress(self.job_id, done, total, fps, eta)


def run_job(db_path: str, root: str, job_id: int, cancel: threading.Event | None = None) -> None:
    """Run job ``job_id`` of the store at ``db_path`` to a final state; ``cancel`` stops it."""
    from vsvsr.cli._common import is_vapoursynth_error
    from vsvsr.cli.upscale import upscale
    from vsvsr.errors import VsvsrError
    from vsvsr.web.paths import Root
    from vsvsr.web.settings import JobSettings

    store = JobStore(db_path)
    handler = _StoreLogHandler(store, job_id)
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(logging.INFO)
    try:
        job = store.get(job_id)
        opts = JobSettings(**job.options).upscale_options(Root(root))
        result = upscale(opts, on_frame=Progress(store, job_id, cancel))
        store.append_log(job_id, f"wrote {job.output}: {result.frames} frames in "
                                 f"{result.seconds:.1f} s ({result.fps:.2f} fps), "
                                 f"audio: {result.audio}")
        store.finish(job_id, DONE)
    except JobCancelled:
        store.append_log(job_id, "cancelled; nothing was written")
        store.finish(job_id, CANCELLED)
    except KeyboardInterrupt:  # Ctrl-C on the server's terminal reaches its workers too
        store.finish(job_id, INTERRUPTED, error="interrupted; nothing was written")
    except Exception as exc:
        if isinstance(exc, VsvsrError) or is_vapoursynth_error(exc):
            error = str(exc)
        else:
            error = "".join(traceback.format_exception(exc)).strip()
        store.append_log(job_id, f"failed: {error}")
        store.finish(job_id, FAILED, error=error)
    finally:
        logging.getLogger().removeHandler(handler)


def main(argv: Sequence[str] | None = None) -> int:
    """The worker process: SIGTERM cancels, then :func:`run_job`."""
    db_path, root, job_id = list(sys.argv[1:] if argv is None else argv)
    cancel = threading.Event()
    signal.signal(signal.SIGTERM, lambda _sig, _frame: cancel.set())
    run_job(db_path, root, int(job_id), cancel)
    return 0


if __name__ == "__main__":
    sys.exit(main())
