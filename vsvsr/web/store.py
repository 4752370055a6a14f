"""The job store: one SQLite file (standard library), shared by the server and its workers.

Jobs, their progress and their logs live here, so the page shows the same list after a reload
and after the server restarts. Every call opens its own short connection (WAL mode, a busy
timeout): the server's threads and the worker processes write without sharing a handle.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

#: Job states; the last four are final.
QUEUED, RUNNING, DONE, FAILED, CANCELLED, INTERRUPTED = (
    "queued", "running", "done", "failed", "cancelled", "interrupted")
ACTIVE = (QUEUED, RUNNING)
FINAL = (DONE, FAILED, CANCELLED, INTERRUPTED)
_LOG_LIMIT = 20_000  #: characters of log kept per job (the tail)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created REAL NOT NULL,
    state TEXT NOT NULL,
    input TEXT NOT NULL,
    output TEXT NOT NULL,
    options TEXT NOT NULL,
    frames_done INTEGER NOT NULL DEFAULT 0,
    frames_total INTEGER NOT NULL DEFAULT 0,
    fps REAL NOT NULL DEFAULT 0,
    eta REAL,
    started REAL,
    finished REAL,
    error TEXT NOT NULL DEFAULT '',
    log TEXT NOT NULL DEFAULT '',
    pid INTEGER
);
"""


@dataclass(frozen=True)
class Job:
    """One row of the store, as the page receives it."""

    id: int
    created: float
    state: str
    input: str  #: relative to the served root
    output: str  #: relative to the served root
    options: dict[str, Any]
    frames_done: int
    frames_total: int
    fps: float
    eta: float | None
    started: float | None
    finished: float | None
    error: str
    log: str
    pid: int | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class JobStore:
    """Jobs in ``path`` (created on first use)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._db() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        with closing(sqlite3.connect(self.path, timeout=30)) as db, db:
            db.row_factory = sqlite3.Row
            yield db

    @staticmethod
    def _job(row: sqlite3.Row) -> Job:
        data = dict(row)
        data["options"] = json.loads(data["options"])
        return Job(**data)

    def add(self, *, input: str, output: str, options: dict[str, Any]) -> Job:
        with self._db() as db:
            cur = db.execute("INSERT INTO jobs (created, state, input, output, options) "
                             "VALUES (?, ?, ?, ?, ?)",
                             (time.time(), QUEUED, input, output, json.dumps(options)))
            job_id = cur.lastrowid
        assert job_id is not None
        return self.get(job_id)

    def get(self, job_id: int) -> Job:
        with self._db() as db:
            row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise KeyError(job_id)
        return self._job(row)

    def list(self, *, states: tuple[str, ...] | None = None) -> list[Job]:
        """Jobs, newest first (only ``states`` when given)."""
        query, args = "SELECT * FROM jobs", ()
        if states:
            query += f" WHERE state IN ({','.join('?' * len(states))})"
            args = states
        with self._db() as db:
            rows = db.execute(query + " ORDER BY id DESC", args).fetchall()
        return [self._job(r) for r in rows]

    def next_queued(self) -> Job | None:
        with self._db() as db:
            row = db.execute("SELECT * FROM jobs WHERE state = ? ORDER BY id LIMIT 1",
                             (QUEUED,)).fetchone()
        return None if row is None else self._job(row)

    def mark_running(self, job_id: int, pid: int | None) -> None:
        with self._db() as db:
            db.execute("UPDATE jobs SET state = ?, started = ?, pid = ? WHERE id = ?",
                       (RUNNING, time.time(), pid, job_id))

    def progress(self, job_id: int, done: int, total: int, fps: float,
                 eta: float | None) -> None:
        with self._db() as db:
            db.execute("UPDATE jobs SET frames_done = ?, frames_total = ?, fps = ?, eta = ? "
                       "WHERE id = ?", (done, total, fps, eta, job_id))

    def append_log(self, job_id: int, text: str) -> None:
        line = text.rstrip("\n") + "\n"
        with self._db() as db:
            db.execute("UPDATE jobs SET log = substr(log || ?, -?) WHERE id = ?",
                       (line, _LOG_LIMIT, job_id))

    def finish(self, job_id: int, state: str, *, error: str = "",
               only_if: tuple[str, ...] = ACTIVE) -> bool:
        """Set a final state (only from one of ``only_if``); False when it already had one."""
        if state not in FINAL:
            raise ValueError(f"not a final state: {state}")
        with self._db() as db:
            cur = db.execute(
                f"UPDATE jobs SET state = ?, finished = ?, error = ?, eta = NULL "
                f"WHERE id = ? AND state IN ({','.join('?' * len(only_if))})",
                (state, time.time(), error, job_id, *only_if))
            return cur.rowcount == 1
