"""Ray for the farm: connect (or start a local instance), the remote tasks, a progress board.

Ray is imported lazily (``pip install 'vsvsr[cluster]'``). A local instance is started with
the machine's cores and GPUs (or the numbers given) and shut down at the end; a Ray that is
already initialised in this process (tests, notebooks) is used as it is and left running. An
``--address`` that does not answer is reported within ``timeout`` seconds.
"""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from vsvsr.errors import VsvsrError
from vsvsr.farm import tasks
from vsvsr.utils.lazy import lazy_import

log = logging.getLogger(__name__)


class ClusterError(VsvsrError, ConnectionError):
    """The Ray cluster cannot be reached or started."""


def ray_module() -> ModuleType:
    return lazy_import("ray", "vsvsr farm (distributed upscaling on Ray)")


def _host_port(address: str) -> tuple[str, int] | None:
    """``host:port`` of an explicit address (``ray://`` or a GCS address), else None."""
    m = re.fullmatch(r"(?:ray://)?\[?([^\]\s/]+?)\]?:(\d+)/?", address)
    return (m.group(1), int(m.group(2))) if m else None


def _check_reachable(address: str, timeout: float) -> None:
    hp = _host_port(address)
    if hp is None:
        return
    try:
        with socket.create_connection(hp, timeout=timeout):
            pass
    except OSError as exc:
        raise ClusterError(
            f"the Ray cluster at {address} does not answer ({exc}); start it there "
            "with 'ray start --head' (port 6379 by default, 10001 for ray://), check the host "
            "name and the firewall, or drop --address to use this machine only") from None


@contextlib.contextmanager
def ray_session(*, address: str | None, num_cpus: int | None = None,
                num_gpus: int | None = None, timeout: float = 30.0,
                log_to_driver: bool = False) -> Iterator[tuple[ModuleType, float]]:
    """Yield ``(ray, seconds it took to start or connect)``; shut down what we started."""
    ray = ray_module()
    if address is not None:
        _check_reachable(address, timeout)
    if ray.is_initialized():
        yield ray, 0.0
        return
    t0 = time.perf_counter()
    if address is None:
        ray.init(num_cpus=num_cpus, num_gpus=num_gpus, include_dashboard=False,
                 log_to_driver=log_to_driver, logging_level=logging.WARNING)
    else:
        _init_with_timeout(ray, address, timeout, log_to_driver)
    started = time.perf_counter() - t0
    log.info("vsvsr farm: Ray %s in %.1f s: %s", "started" if address is None else "connected",
             started, ray.cluster_resources())
    try:
        yield ray, started
    finally:
        ray.shutdown()


def _init_with_timeout(ray: ModuleType, address: str, timeout: float,
                       log_to_driver: bool) -> None:
    """``ray.init(address)`` on a daemon thread, given up after ``timeout`` seconds."""
    outcome: dict[str, BaseException | None] = {}

    def connect() -> None:
        try:
            ray.init(address=address, log_to_driver=log_to_driver, logging_level=logging.WARNING)
            outcome["error"] = None
        except BaseException as exc:  # noqa: BLE001  (handed to the caller below)
            outcome["error"] = exc

    thread = threading.Thread(target=connect, daemon=True, name="vsvsr-ray-connect")
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise ClusterError(f"the Ray cluster at {address} does not answer within {timeout:g} s "
                           "(--connect-timeout); is 'ray start --head' running there, with the "
                           "same Ray and Python versions as here?")
    if outcome.get("error") is not None:
        raise ClusterError(f"cannot connect to the Ray cluster at {address}: "
                           f"{outcome['error']}") from outcome["error"]


@dataclass
class Board:
    """Progress of every chunk as the workers report it (held by a Ray actor)."""

    frames: dict[int, int] = field(default_factory=dict)  #: chunk -> frames written
    attempts: dict[int, int] = field(default_factory=dict)  #: chunk -> starts
    started_at: dict[int, float] = field(default_factory=dict)
    ended_at: dict[int, float] = field(default_factory=dict)
    worker: dict[int, str] = field(default_factory=dict)  #: chunk -> "host:pid"

    def started(self, index: int, worker: str) -> None:
        self.attempts[index] = self.attempts.get(index, 0) + 1
        self.frames[index] = 0  # a retried chunk starts over
        self.started_at[index] = time.time()
        self.ended_at.pop(index, None)
        self.worker[index] = worker

    def finished(self, index: int, frames: int) -> None:
        self.frames[index] = frames
        self.ended_at[index] = time.time()

    def advanced(self, index: int, frames: int) -> None:
        self.frames[index] = frames

    def snapshot(self) -> dict[str, Any]:
        """Frames and starts per chunk, and each worker's fps on its latest chunk."""
        now = time.time()
        fps: dict[str, float] = {}
        for i, t0 in sorted(self.started_at.items(), key=lambda kv: kv[1]):
            seconds = self.ended_at.get(i, now) - t0
            fps[self.worker[i]] = self.frames.get(i, 0) / seconds if seconds > 0 else 0.0
        return {"frames": dict(self.frames), "attempts": dict(self.attempts), "fps": fps}


def board_actor(ray: ModuleType) -> Any:
    """A Ray actor holding a :class:`Board` (no CPU reserved)."""
    return ray.remote(num_cpus=0)(Board).remote()


class _Reporter:
    """Worker side: tell the board about progress, at most every ``interval`` seconds."""

    def __init__(self, board: Any, index: int, interval: float = 0.25) -> None:
        self.board, self.index, self.interval = board, index, interval
        self.last = 0.0

    def __call__(self, frames: int) -> None:
        now = time.monotonic()
        if now - self.last >= self.interval:
            self.last = now
            self.board.advanced.remote(self.index, frames)


def chunk_task(job: tasks.ChunkJob, board: Any) -> tasks.ChunkResult:
    """The Ray task body for one chunk."""
    import os

    import ray

    # Waited for, so that a worker dying right after still counts as an attempt.
    ray.get(board.started.remote(job.chunk.index, f"{tasks.host()}:{os.getpid()}"))
    result = tasks.run_chunk(job, _Reporter(board, job.chunk.index))
    board.finished.remote(job.chunk.index, result.frames)
    return result


def remote_functions(ray: ModuleType, *, cpus: float, gpus: float,
                     retries: int) -> tuple[Any, Any, Any, Any]:
    """(warm_up, inspect, scan, chunk) as Ray remote functions with these resources.

    Only worker deaths are retried (``max_retries``); an error raised by our code (a missing
    file, a bad setting) is deterministic and would fail again, so it is not. Inspection and
    the scene scan decode on the CPU and reserve no GPU.
    """
    opts = {"num_cpus": cpus, "num_gpus": gpus, "max_retries": retries,
            "retry_exceptions": False}
    cpu_only = {**opts, "num_gpus": 0}
    warm = ray.remote(**opts)(tasks.warm_up)
    inspect = ray.remote(**cpu_only)(tasks.inspect_source)
    scan = ray.remote(**cpu_only)(tasks.scan_resets)
    chunk = ray.remote(**opts)(chunk_task)
    return warm, inspect, scan, chunk


def slots(ray: ModuleType, cpus: float, gpus: float) -> int:
    """How many chunk tasks the cluster can run at once with these resources; a request no
    node could meet is refused here (Ray would wait for it forever)."""
    res = ray.cluster_resources()
    have_cpu, have_gpu = res.get("CPU", 0.0), res.get("GPU", 0.0)
    if gpus > 0 and have_gpu < gpus:
        raise ClusterError(f"--gpus-per-task {gpus:g} but the Ray cluster has "
                           f"{have_gpu:g} GPUs; drop --gpus-per-task to run on the CPU, or add "
                           "machines with GPUs")
    if have_cpu < cpus:
        raise ClusterError(f"--cpus-per-task {cpus:g} but the Ray cluster has {have_cpu:g} CPUs; "
                           "ask for fewer")
    n = int(have_cpu // cpus)
    if gpus > 0:
        n = min(n, int(have_gpu // gpus))
    return max(1, n)


def unwrap(ray: ModuleType, exc: BaseException) -> BaseException:
    """The worker's own error inside a ``RayTaskError``, when there is one."""
    if isinstance(exc, ray.exceptions.RayTaskError):
        cause = exc.cause
        if isinstance(cause, BaseException):
            return cause
    return exc
