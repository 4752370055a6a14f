"""The farm's manifest: the chunk plan, the settings it was made for, and finished chunks.

``WORK_DIR/manifest.json`` is rewritten atomically after every finished chunk, so a driver
that is killed and run again skips what is done. A chunk counts as done only when the
manifest says so *and* its file is there with the recorded size (a worker writes under a
temporary name and renames when complete, so a half-written chunk never has the final name).
A manifest made for other settings is refused, naming what changed, unless ``restart``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vsvsr.errors import VsvsrError
from vsvsr.farm.plan import Chunk
from vsvsr.utils.atomic import atomic_write_bytes

log = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
VERSION = 1


class ManifestError(VsvsrError, ValueError):
    """A manifest that is unreadable or belongs to other settings."""


def settings_hash(settings: dict[str, Any]) -> str:
    """SHA-256 of the settings as canonical JSON (sorted keys)."""
    text = json.dumps(settings, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(kw_only=True)
class ChunkRecord:
    """One chunk in the manifest: its range, its file, and how it was made once done."""

    index: int
    start: int
    end: int
    exact: bool
    file: str  #: name inside the work folder
    done: bool = False
    size: int | None = None  #: bytes of the finished file
    host: str | None = None
    seconds: float | None = None

    @classmethod
    def for_chunk(cls, chunk: Chunk) -> ChunkRecord:
        return cls(index=chunk.index, start=chunk.start, end=chunk.end, exact=chunk.exact,
                   file=f"chunk_{chunk.index:05d}_{chunk.start:07d}-{chunk.end:07d}.mkv")

    def chunk(self) -> Chunk:
        return Chunk(index=self.index, start=self.start, end=self.end, exact=self.exact)


@dataclass(kw_only=True)
class Manifest:
    """The plan and progress of one farm job (one OUT)."""

    work_dir: Path
    settings: dict[str, Any]
    num_frames: int
    source: dict[str, Any] = field(default_factory=dict)  #: the input's facts (SourceInfo)
    chunks: list[ChunkRecord] = field(default_factory=list)

    @property
    def path(self) -> Path:
        return self.work_dir / MANIFEST_NAME

    @property
    def hash(self) -> str:
        return settings_hash(self.settings)

    def chunk_path(self, record: ChunkRecord) -> Path:
        return self.work_dir / record.file

    def is_done(self, record: ChunkRecord) -> bool:
        """Done in the manifest and its file still there with the recorded size."""
        if not record.done:
            return False
        path = self.chunk_path(record)
        return path.is_file() and path.stat().st_size == record.size

    def mark_done(self, index: int, *, host: str, seconds: float) -> None:
        """Record chunk ``index`` as finished (its file must exist) and save the manifest."""
        record = self.chunks[index]
        record.done = True
        record.size = self.chunk_path(record).stat().st_size
        record.host, record.seconds = host, seconds
        self.save()

    def save(self) -> None:
        data = {"version": VERSION, "settings_hash": self.hash, "settings": self.settings,
                "num_frames": self.num_frames, "source": self.source,
                "chunks": [asdict(c) for c in self.chunks]}
        atomic_write_bytes(self.path, json.dumps(data, indent=1, default=str).encode())

    @classmethod
    def load(cls, work_dir: Path) -> Manifest | None:
        """The manifest in ``work_dir``, or None when there is none."""
        path = work_dir / MANIFEST_NAME
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("version") != VERSION:
                raise ValueError(f"version {data.get('version')!r}, expected {VERSION}")
            return cls(work_dir=work_dir, settings=data["settings"],
                       num_frames=int(data["num_frames"]), source=dict(data["source"]),
                       chunks=[ChunkRecord(**c) for c in data["chunks"]])
        except (ValueError, KeyError, TypeError) as exc:
            raise ManifestError(f"{path} is not a farm manifest this version can "
                                f"read ({exc}); pass --restart to start over") from exc

    def check_settings(self, settings: dict[str, Any]) -> None:
        """Refuse to continue with other settings, naming what changed."""
        if settings_hash(settings) == self.hash:
            return
        # Round-trip through JSON so both sides compare alike (tuples vs lists, Paths vs str).
        new = json.loads(json.dumps(settings, default=str))
        keys = sorted(set(new) | set(self.settings))
        changed = [f"{k}: {self.settings.get(k)!r} -> {new.get(k)!r}" for k in keys
                   if self.settings.get(k) != new.get(k)]
        raise ManifestError(
            f"{self.path} was written for other settings ("
            f"{'; '.join(changed) or 'hash differs'}); finished chunks would not match. Run "
            "with the old settings to continue, or pass --restart to start over")
