"""An inter-process file lock (``fcntl.flock``), so two builds of one engine never race.

The kernel releases a ``flock`` when its holder dies, so a crashed build never leaves a stale
lock behind; the lock file itself stays (deleting it would let a third process lock a new
inode while a second still holds the old one).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from vsvsr.errors import VsvsrError

log = logging.getLogger(__name__)


class LockTimeoutError(VsvsrError, TimeoutError):
    """Another process held the lock for longer than we were willing to wait."""


@contextlib.contextmanager
def file_lock(path: str | os.PathLike[str], *, timeout: float = 3600.0, poll: float = 0.2,
              on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if needed) for the ``with`` block.

    Args:
        timeout: seconds to wait for another holder before :class:`LockTimeoutError`.
        poll: seconds between tries while waiting.
        on_wait: called once with a message when the lock is busy (e.g. to tell the user).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(target, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        deadline = time.monotonic() + timeout
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
            if not told:
                holder = _read_holder(target)
                msg = f"waiting for {target} (held by {holder or 'another process'})"
                log.info("%s", msg)
                if on_wait is not None:
                    on_wait(msg)
                told = True
            if time.monotonic() >= deadline:
                raise LockTimeoutError(
                    f"{target} is still locked after {timeout:.0f} s (held by "
                    f"{_read_holder(target) or 'another process'}); wait for that build to "
                    "finish, or stop it")
            time.sleep(poll)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}\n".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _read_holder(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""
