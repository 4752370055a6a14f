"""Client paths, confined to the served root.

The page only ever sends paths relative to ``--root`` in POSIX form. Anything absolute, with a
``..`` or empty component, a backslash or a NUL is refused before touching the file system;
what is left is resolved (symlinks followed) and must still lie inside the resolved root, so a
symlink that points outside is refused too. Names starting with a dot are ours (the job store,
temporary uploads, partial encodes) and are neither listed nor accepted.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from vsvsr.errors import VsvsrError

#: What the file browser lists as a video (bestsource opens many more; these are the usual).
VIDEO_SUFFIXES = frozenset({".mkv", ".mp4", ".mov", ".webm", ".avi", ".m4v", ".ts", ".m2ts",
                            ".mts", ".mpg", ".mpeg", ".wmv", ".flv", ".y4m", ".nut", ".ogv"})
#: Containers a job may write (the extension picks ffmpeg's muxer).
OUTPUT_SUFFIXES = frozenset({".mkv", ".mp4", ".mov", ".webm"})
_NAME = re.compile(r"^[^/\\\x00-\x1f]{1,255}$")


class PathError(VsvsrError, ValueError):
    """A client path that is not a plain relative path inside the root."""


@dataclass(frozen=True)
class Entry:
    """One row of the file browser."""

    name: str
    path: str  #: relative to the root, POSIX form
    kind: str  #: "dir" or "video"
    size: int


class Root:
    """The folder ``vsvsr serve`` exposes; every path the client names goes through here."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        path = Path(folder).expanduser()
        if not path.is_dir():
            raise PathError(f"vsvsr serve: --root {folder} is not a folder; create it or pick "
                            "another")
        self.path = path.resolve()

    def check_name(self, name: str) -> str:
        """A single file name from the client (an upload's, an output's), or PathError."""
        if not _NAME.match(name) or name in (".", "..") or name.startswith("."):
            raise PathError(f"bad file name {name!r}: use a plain name without slashes that "
                            "does not start with a dot")
        return name

    def resolve(self, rel: str, *, must_exist: bool = True) -> Path:
        """The real path of ``rel`` (relative to the root), refused unless it stays inside."""
        if not isinstance(rel, str) or "\x00" in rel or "\\" in rel:
            raise PathError(f"bad path {rel!r}: give a path relative to the served folder, "
                            "with / between parts")
        pure = PurePosixPath(rel)
        if pure.is_absolute() or rel.startswith("~"):
            raise PathError(f"absolute path {rel!r} refused: paths are relative to the served "
                            "folder")
        parts = [p for p in rel.split("/") if p not in ("", ".")]
        if any(p == ".." for p in parts):
            raise PathError(f"path {rel!r} refused: '..' is not allowed")
        if any(p.startswith(".") for p in parts):
            raise PathError(f"path {rel!r} refused: names starting with '.' are not served")
        real = self.path.joinpath(*parts).resolve()
        if not real.is_relative_to(self.path):
            raise PathError(f"path {rel!r} refused: it leads outside the served folder "
                            "(a symbolic link?)")
        if must_exist and not real.exists():
            raise PathError(f"{rel!r} does not exist in the served folder")
        return real

    def file(self, rel: str) -> Path:
        """An existing regular file inside the root."""
        real = self.resolve(rel)
        if not real.is_file():
            raise PathError(f"{rel!r} is not a file")
        return real

    def folder(self, rel: str) -> Path:
        """An existing folder inside the root ("" is the root)."""
        real = self.resolve(rel)
        if not real.is_dir():
            raise PathError(f"{rel!r} is not a folder")
        return real

    def new_file(self, rel: str, *, suffixes: frozenset[str] | None = None) -> Path:
        """Where to write ``rel``: its folder must exist inside the root; the file may exist
        (the caller decides about overwriting) but must then be a regular file inside."""
        parent, _, name = rel.rpartition("/")
        self.check_name(name)
        if suffixes is not None and Path(name).suffix.lower() not in suffixes:
            raise PathError(f"{name!r}: the extension must be one of "
                            f"{', '.join(sorted(suffixes))}")
        target = self.folder(parent) / name
        if target.is_symlink() or target.exists():
            real = self.resolve(rel)
            if not real.is_file():
                raise PathError(f"{rel!r} exists and is not a file")
            return real
        return target

    def relative(self, path: Path) -> str:
        """``path`` (inside the root) as the client sees it."""
        return path.resolve().relative_to(self.path).as_posix()

    def listing(self, rel: str = "") -> list[Entry]:
        """Sub-folders and videos of ``rel``, folders first; links leading outside are left out."""
        folder = self.folder(rel)
        out: list[Entry] = []
        for child in sorted(folder.iterdir(), key=lambda p: p.name.lower()):
            if child.name.startswith("."):
                continue
            real = child.resolve()
            if not real.is_relative_to(self.path):
                continue
            child_rel = (PurePosixPath(rel) / child.name).as_posix() if rel else child.name
            if real.is_dir():
                out.append(Entry(child.name, child_rel, "dir", 0))
            elif real.is_file() and child.suffix.lower() in VIDEO_SUFFIXES:
                out.append(Entry(child.name, child_rel, "video", real.stat().st_size))
        out.sort(key=lambda e: e.kind != "dir")
        return out
