"""Real-video training data: clips cut from video files and folders of frames.

:mod:`vsvsr.training.sequences` fakes videos by moving a camera over still photos; this module
reads real footage instead. Sources are found once (:func:`find_sequences`), decoded once into
memory as uint8 at the "HR" resolution (:func:`load_sequence`, shrunk by ``presize`` with the
same :func:`~vsvsr.training.degrade.downscale` as the photos, so noise and compression artefacts
are hidden and both kinds of data agree on what "sharp" means), and then
:class:`VideoClipSampler` cuts random windows of consecutive frames out of them without touching
the disk again. :class:`MixedSampler` draws each batch from one of several samplers, e.g. photos
and real videos, with fixed odds.

Every sampler draws all of its randomness from its own ``torch.Generator`` and exposes it through
``state_dict()``/``load_state_dict()`` (a flat ``dict[str, Tensor]``, which is what the
checkpoint stores), so a resumed run draws the same batches as an uninterrupted one.
"""

from __future__ import annotations

import io
import logging
import re
import subprocess
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Protocol

import numpy as np
import torch

from vsvsr.encode.ffmpeg import FfmpegError, find_ffmpeg
from vsvsr.training.config import TemporalConfig
from vsvsr.training.degrade import downscale, make_lr
from vsvsr.training.degrade_cache import DegradeCache
from vsvsr.training.degrade_ranges import DegradeConfig
from vsvsr.training.sequences import IMAGE_SUFFIXES
from vsvsr.training.video_cache import CachedSequence, as_tensor, cached_sequence
from vsvsr.utils.cache_dir import user_cache_dir

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".avi", ".webm", ".y4m", ".m4v", ".mpg", ".mpeg",
                  ".ts", ".m2ts", ".vob", ".flv", ".wmv")
#: Frames are shrunk in chunks of about this many source pixels, bounding the float32 working
#: memory (4 bytes x 3 channels x this, i.e. about 200 MB) whatever the video's length.
CHUNK_PIXELS = 16_000_000


class Sampler(Protocol):
    """What the trainer needs from a source of (LR, HR) batches."""

    scale: int
    crop: int
    length: int
    batch: int

    def sample(self) -> tuple[torch.Tensor, torch.Tensor]: ...

    def state_dict(self) -> dict[str, torch.Tensor]: ...

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None: ...


# -- finding sources ------------------------------------------------------------------------------
def _natural_key(path: Path) -> list[int | str]:
    """Sort key that puts ``frame_2.png`` before ``frame_10.png`` (numbers compared as numbers)."""
    return [int(part) if part.isdigit() else part.lower()
            for part in re.split(r"(\d+)", path.name)]


def _frame_files(folder: Path) -> list[Path]:
    """The image frames directly inside ``folder``, in natural (frame-number) order."""
    return sorted((p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                   and not p.name.startswith(".")), key=_natural_key)


def _is_video(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES and not path.name.startswith(".")


def find_sequences(paths: Iterable[str | Path]) -> list[Path]:
    """Resolve training-video arguments into a list of sequences (video files or frame folders).

    Each path may be:

    * a video file (suffix in :data:`VIDEO_SUFFIXES`): one sequence;
    * a folder holding png/jpg frames directly: one sequence, its frames in natural order
      (anything else in that folder is ignored);
    * a folder of such frame folders and/or video files: each is one sequence. Only one level
      is searched, so a collection stays predictable; children come in natural name order.

    Duplicates (the same file or folder reached twice) are kept once, at their first place.

    Raises:
        FileNotFoundError: a path does not exist.
        ValueError: a file that is not a video, or a folder with neither frames nor videos
            (directly or one level down).
    """
    found: list[Path] = []
    seen: set[Path] = set()

    def add(p: Path) -> None:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            found.append(p)

    for arg in paths:
        path = Path(arg)
        if not path.exists():
            raise FileNotFoundError(f"find_sequences: {path} does not exist; give a video file, a "
                                    "folder of png/jpg frames or a folder of those")
        if path.is_file():
            if not _is_video(path):
                raise ValueError(f"find_sequences: {path} is not a video file; expected one of "
                                 f"{', '.join(VIDEO_SUFFIXES)} (or a folder of png/jpg frames)")
            add(path)
            continue
        if _frame_files(path):
            add(path)
            continue
        before = len(found)
        for child in sorted(path.iterdir(), key=_natural_key):
            if _is_video(child):
                add(child)
            elif child.is_dir() and not child.name.startswith("."):
                if _frame_files(child):
                    add(child)
                else:
                    log.info("find_sequences: skipping %s (no png/jpg frames in it)", child)
        if len(found) == before:
            raise ValueError(
                f"find_sequences: {path} holds no training video: expected png/jpg frames in it, "
                f"or video files ({', '.join(VIDEO_SUFFIXES)}) or frame folders directly inside it")
    return found


# -- loading --------------------------------------------------------------------------------------
def _shrink(frames: np.ndarray, presize: int) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> uint8 (N, 3, H // presize, W // presize), exactly as ``load_photo``."""
    h, w = (frames.shape[1] // presize) * presize, (frames.shape[2] // presize) * presize
    x = torch.from_numpy(np.ascontiguousarray(frames[:, :h, :w])).permute(0, 3, 1, 2)
    x = downscale(x.float().div_(255.0), presize)
    return x.mul_(255.0).round_().to(torch.uint8)


def _chunk_frames(h: int, w: int) -> int:
    return max(1, CHUNK_PIXELS // max(1, h * w))


def _check_size(path: Path, h: int, w: int, presize: int) -> None:
    if h < presize or w < presize:
        raise ValueError(f"load_sequence: {path} is {w}x{h}, smaller than presize {presize}; "
                         "use a smaller presize or drop this source")


def _load_frames(folder: Path, presize: int, max_frames: int | None) -> torch.Tensor:
    from PIL import Image  # a runtime dependency; imported here to keep import time low

    files = _frame_files(folder)
    if not files:
        raise ValueError(f"load_sequence: {folder} holds no png/jpg frames")
    if max_frames is not None:
        files = files[:max_frames]
    out: list[torch.Tensor] = []
    pending: list[np.ndarray] = []
    size: tuple[int, int] | None = None
    step = 1
    for f in files:
        with Image.open(f) as img:
            arr = np.asarray(img.convert("RGB"))
        if size is None:
            size = arr.shape[:2]
            _check_size(folder, *size, presize)
            step = _chunk_frames(*size)
        elif arr.shape[:2] != size:
            raise ValueError(f"load_sequence: {f} is {arr.shape[1]}x{arr.shape[0]} but the frames "
                             f"before it in {folder} are {size[1]}x{size[0]}; a sequence needs "
                             "one frame size")
        pending.append(arr)
        if len(pending) == step:
            out.append(_shrink(np.stack(pending), presize))
            pending = []
    if pending:
        out.append(_shrink(np.stack(pending), presize))
    return torch.cat(out)


def _tail(fh: IO[bytes], lines: int = 8) -> str:
    fh.seek(0)
    text = fh.read().decode("utf-8", "replace").strip().splitlines()
    return " | ".join(text[-lines:]) or "(no message)"


#: Keep every decoded frame once, in order: without this, the rawvideo muxer makes ffmpeg
#: duplicate or drop frames of variable-frame-rate files to a constant rate. ``-fps_mode`` is
#: ffmpeg >= 5.1 (7+ dropped the older ``-vsync``), so the older spelling is the fallback.
_SYNC_FLAGS = (("-fps_mode", "passthrough"), ("-vsync", "passthrough"))


def _ffmpeg_cmd(exe: str, path: Path, sync: Sequence[str]) -> list[str]:
    """Decode the first video stream of ``path``, no audio/subtitles/data, every frame once."""
    return [exe, "-hide_banner", "-nostdin", "-loglevel", "error", "-i", str(path),
            "-map", "0:v:0", "-an", "-sn", "-dn", *sync]


def _probe_video(exe: str, path: Path) -> tuple[int, int, tuple[str, ...]]:
    """(height, width) of the frames the rgb24 pipe will deliver, and the sync flags to use.

    The first frame is decoded to PNG through the very same command line as the frame pipe
    (same stream, same autorotation, same scaler), so its size is by construction the size of
    the raw frames. Parsing ``ffmpeg -i``'s banner would miss rotation metadata and depends on
    its wording; this also proves the file decodes before the long read starts.
    """
    from PIL import Image

    msg: list[str] = []
    for sync in _SYNC_FLAGS:
        cmd = [*_ffmpeg_cmd(exe, path, sync), "-frames:v", "1", "-f", "image2pipe", "-vcodec", "png",
               "-"]
        try:
            proc = subprocess.run(cmd, capture_output=True, timeout=300, check=False)
        except OSError as exc:
            raise FfmpegError(f"load_sequence: cannot run ffmpeg ({exe}): {exc}") from exc
        if proc.returncode == 0 and proc.stdout:
            with Image.open(io.BytesIO(proc.stdout)) as img:
                w, h = img.size
            return h, w, sync
        msg = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-8:]
        if not any(sync[0].lstrip("-") in line for line in msg):  # a real decode failure, not the option
            break
    if any("matches no streams" in line for line in msg):
        raise FfmpegError(f"load_sequence: {path} has no video stream; give a video file or a "
                          "folder of png/jpg frames")
    raise FfmpegError(f"load_sequence: ffmpeg could not decode a video frame from {path}: "
                      f"{' | '.join(msg) or 'no video stream'}")


def _read_exact(stream: IO[bytes], n: int) -> tuple[bytearray, int]:
    """Read up to ``n`` bytes (fewer only at end of stream) into a fresh, writable buffer."""
    buf = bytearray(n)
    view, got = memoryview(buf), 0
    while got < n:
        k = stream.readinto(view[got:])  # type: ignore[attr-defined]
        if not k:
            break
        got += k
    return buf, got


def _iter_video(exe: str, path: Path, h: int, w: int, sync: Sequence[str], chunk: int,
                max_frames: int | None) -> Iterator[np.ndarray]:
    """Decoded frames of ``path`` as uint8 (N, h, w, 3) chunks of at most ``chunk`` frames."""
    cmd = _ffmpeg_cmd(exe, path, sync)
    if max_frames is not None:
        cmd += ["-frames:v", str(max_frames)]
    cmd += ["-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    frame_bytes = h * w * 3
    with tempfile.TemporaryFile() as err:  # a file, not a pipe: ffmpeg can never block on it
        try:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err)
        except OSError as exc:
            raise FfmpegError(f"load_sequence: cannot run ffmpeg ({exe}): {exc}") from exc
        assert proc.stdout is not None
        try:
            while True:
                data, got = _read_exact(proc.stdout, chunk * frame_bytes)
                n, rest = divmod(got, frame_bytes)
                if n:
                    yield np.frombuffer(data, np.uint8, count=n * frame_bytes).reshape(n, h, w, 3)
                if got < chunk * frame_bytes:
                    if rest:
                        proc.wait()
                        raise FfmpegError(f"load_sequence: ffmpeg stopped mid-frame reading {path}: "
                                          f"{_tail(err)}")
                    break
            if proc.wait() != 0:
                raise FfmpegError(f"load_sequence: ffmpeg failed decoding {path} "
                                  f"(exit {proc.returncode}): {_tail(err)}")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()


def load_sequence(path: str | Path, *, presize: int, max_frames: int | None) -> torch.Tensor:
    """Read one sequence (video file or frame folder) as uint8 (T, 3, H, W).

    Frames are shrunk by ``presize`` with :func:`~vsvsr.training.degrade.downscale` after
    cropping to a multiple of it, exactly like :func:`~vsvsr.training.sequences.load_photo`;
    this runs in chunks of about :data:`CHUNK_PIXELS` source pixels, so the peak memory is one
    chunk plus twice the shrunk result (the chunks and their concatenation). Videos are decoded
    to rgb24 by the ffmpeg of :func:`~vsvsr.encode.ffmpeg.find_ffmpeg`, whose scaler picks the
    YUV->RGB matrix (from the colour tags where it honours them, else BT.601); a wrong pick only
    tints the colours slightly, and LR and HR both come from the same RGB, so pairs stay
    consistent either way. The frame size comes from decoding the first frame (see
    :func:`_probe_video`), not from parsing ffmpeg's banner.

    Args:
        path: a video file or a folder of png/jpg frames (see :func:`find_sequences`).
        presize: integer shrink factor applied before anything else (1 keeps the size).
        max_frames: keep only the first this many frames (``None``: all).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: bad arguments, no frames, frames of differing size or smaller than presize.
        MissingDependencyError: no ffmpeg binary (for video files only).
        FfmpegError: ffmpeg cannot run or cannot decode the video.
    """
    src = Path(path)
    if presize < 1:
        raise ValueError(f"load_sequence: presize must be >= 1, got {presize}")
    if max_frames is not None and max_frames < 1:
        raise ValueError(f"load_sequence: max_frames must be >= 1 or None, got {max_frames}")
    if not src.exists():
        raise FileNotFoundError(f"load_sequence: {src} does not exist")
    if src.is_dir():
        return _load_frames(src, presize, max_frames)
    exe = find_ffmpeg()
    h, w, sync = _probe_video(exe, src)
    _check_size(src, h, w, presize)
    chunks = [_shrink(c, presize)
              for c in _iter_video(exe, src, h, w, sync, _chunk_frames(h, w), max_frames)]
    if not chunks:
        raise FfmpegError(f"load_sequence: ffmpeg decoded no frames from {src}")
    return torch.cat(chunks)


def load_sequences(paths: Iterable[str | Path], *, presize: int,
                   max_frames: int | None) -> list[torch.Tensor]:
    """Find (:func:`find_sequences`) and load every sequence into memory, logging the total."""
    found = find_sequences(paths)
    seqs = [load_sequence(p, presize=presize, max_frames=max_frames) for p in found]
    frames = sum(s.shape[0] for s in seqs)
    mpix = sum(s.shape[0] * s.shape[2] * s.shape[3] for s in seqs) / 1e6
    log.info("loaded %d video sequences, %d frames (%.1f Mpx after /%d)", len(seqs), frames, mpix,
             presize)
    return seqs


def cached_sequences(paths: Iterable[str | Path], *, presize: int,
                     exclude: Iterable[str] = ()) -> list[CachedSequence]:
    """Every sequence under ``paths`` (:func:`find_sequences`) but those named in ``exclude``
    (the validation split), from the decode-once cache (:mod:`~vsvsr.training.video_cache`)."""
    skip = set(exclude)
    found = find_sequences(paths)
    unknown = skip - {p.name for p in found}
    if unknown:
        raise ValueError(f"cached_sequences: video_exclude names {sorted(unknown)}, which are not "
                         f"among the training videos ({', '.join(p.name for p in found)})")
    seqs = [cached_sequence(p, presize=presize) for p in found if p.name not in skip]
    frames = sum(s.frames.shape[0] for s in seqs)
    log.info("%d video sequences (%d held out), %d frames, %d shot cuts, %.2f GB cached (/%d)",
             len(seqs), len(skip), frames, sum(len(s.cuts) for s in seqs),
             sum(s.nbytes for s in seqs) / 1e9, presize)
    return seqs


# -- sampling -------------------------------------------------------------------------------------
class VideoClipSampler:
    """Draws batches of (LR, HR) clips cut from real video sequences (in memory or cached).

    A clip is ``length`` frames from one shot of one sequence with one random ``crop * scale``
    square crop at a fixed position. Temporal augmentation (``temporal``): a frame stride above
    1 (faster motion), a freeze of a few frames (a static stretch), playback reversed; then the
    spatial flips and transpose of :class:`~vsvsr.training.sequences.SequenceSampler`. LR frames
    are made from the HR ones with :func:`~vsvsr.training.degrade.make_lr`. A window never spans
    a shot cut.

    Args:
        sequences: uint8 (T, 3, H, W) videos at HR resolution: tensors (one shot each), or
            :class:`~vsvsr.training.video_cache.CachedSequence` (memory-mapped, with their cuts).
        scale: SR factor.
        crop: LR crop size; HR clips are ``crop * scale`` square.
        length: frames per clip.
        batch: clips per batch.
        seed: seed of the sampler's own generator.
        temporal: the temporal augmentation (default: :class:`TemporalConfig`'s).
        degrade: real-world degradation ranges (None: the clean ``make_lr``). Every usable shot
            is then degraded whole ``degrade.variants`` times before training
            (:func:`~vsvsr.training.degrade_video.predegrade_shots`, cached), HR crops sit on
            multiples of ``scale``, and each window's LR is cut from a random variant at the
            HR crop / ``scale``, with the same frame indices, flips and reversal as the HR.
            The HR target stays the clean frames.
        degrade_cache: where the variants are stored (default: ``degrade/`` in the user cache
            folder, beside the decoded videos).
        workers: shots degraded at once when variants are missing.

    Shots shorter than a window and sequences smaller than the HR crop are skipped (logged). A
    shot is picked with probability proportional to its window positions x area, i.e. every
    source pixel is about equally likely to be trained on.
    """

    def __init__(self, sequences: Sequence[torch.Tensor | CachedSequence], *, scale: int,
                 crop: int, length: int, batch: int, seed: int,
                 temporal: TemporalConfig | None = None, degrade: DegradeConfig | None = None,
                 degrade_cache: DegradeCache | None = None, workers: int = 1) -> None:
        for name, value in (("scale", scale), ("crop", crop), ("length", length), ("batch", batch)):
            if value < 1:
                raise ValueError(f"VideoClipSampler: {name} must be >= 1, got {value}")
        frames_list: list[np.ndarray | torch.Tensor] = []
        shots_list: list[list[tuple[int, int]]] = []
        for i, s in enumerate(sequences):
            frames = s.frames if isinstance(s, CachedSequence) else s
            if frames.ndim != 4 or frames.shape[1] != 3 or frames.dtype not in (torch.uint8,
                                                                                 np.uint8):
                raise ValueError(f"VideoClipSampler: sequence {i} must be uint8 (T, 3, H, W), got "
                                 f"{frames.dtype} {tuple(frames.shape)}")
            frames_list.append(frames)
            shots_list.append(s.shots if isinstance(s, CachedSequence) else [(0, frames.shape[0])])
        self.scale, self.crop, self.length, self.batch = scale, crop, length, batch
        self.temporal = temporal or TemporalConfig()
        self.hr_size = need = crop * scale
        #: (sequence index, shot start, shot end) of every usable shot
        self.shots = [(i, a, b) for i, (f, shots) in enumerate(zip(frames_list, shots_list,
                                                                  strict=True))
                      if min(f.shape[2:]) >= need for a, b in shots if b - a >= length]
        self.frames = frames_list
        if not self.shots:
            raise ValueError(
                f"VideoClipSampler: none of {len(sequences)} sequences has a shot of {length} "
                f"frames or more at {need}x{need} px or more (crop {crop} x scale {scale}); use "
                "longer or larger videos, a shorter clip length, a smaller crop or a smaller "
                "presize")
        used = {i for i, _, _ in self.shots}
        if len(used) < len(sequences):
            log.info("skipping %d of %d sequences without a shot of %d frames at %d px",
                     len(sequences) - len(used), len(sequences), length, need)
        self.generator = torch.Generator().manual_seed(seed)
        #: per shot of :attr:`shots`, its degraded LR variants (None: clean ``make_lr``)
        self.variants: list[list[np.ndarray]] | None = None
        if degrade is not None:
            from vsvsr.training.degrade_video import predegrade_shots

            keys = [(s.key or None) if isinstance(s, CachedSequence) else None for s in sequences]
            cache = degrade_cache or DegradeCache(user_cache_dir("degrade"))
            self.variants = predegrade_shots(self.frames, self.shots, keys, degrade, scale=scale,
                                             cache=cache, workers=workers)

    # -- state --------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.generator.set_state(state["generator"])

    # -- sampling -----------------------------------------------------------------------------
    def _randint(self, high: int) -> int:
        """Uniform in [0, high)."""
        return int(torch.randint(high, (1,), generator=self.generator))

    def _chance(self, p: float) -> bool:
        return bool(torch.rand(1, generator=self.generator) < p)

    def _coin(self) -> bool:
        return self._chance(0.5)

    def _increments(self) -> list[int]:
        """Frame-index steps of one window: the stride, with zeros where the picture freezes."""
        tc, n = self.temporal, self.length
        stride = 2 + self._randint(tc.max_stride - 1) if (tc.max_stride > 1
                                                          and self._chance(tc.p_stride)) else 1
        inc = [0] + [stride] * (n - 1)
        if n > 2 and self._chance(tc.p_hold):
            start = 1 + self._randint(n - 2)
            span = 1 + self._randint(n - start)
            inc[start:start + span] = [0] * len(inc[start:start + span])
        return inc

    def window_weights(self, span: int) -> torch.Tensor:
        """Odds of each shot in :attr:`shots` for a window of ``span`` frames: its window
        positions x its frame area (0 where the window does not fit)."""
        return torch.tensor([float(max(b - a - span + 1, 0) * self.frames[i].shape[2]
                                   * self.frames[i].shape[3]) for i, a, b in self.shots],
                            dtype=torch.float64)

    def _pick(self, span: int) -> tuple[int, int] | None:
        """(shot index in :attr:`shots`, first frame) of a window of ``span`` frames, or None."""
        weights = self.window_weights(span)
        if float(weights.sum()) <= 0:
            return None
        k = int(torch.multinomial(weights, 1, generator=self.generator))
        _, a, b = self.shots[k]
        return k, a + self._randint(b - a - span + 1)

    def _clip(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One HR clip (T, 3, crop*scale, crop*scale), float [0, 1], and its degraded LR
        (T, 3, crop, crop) when there are variants (else None: the caller makes it)."""
        inc = self._increments()
        picked = self._pick(sum(inc) + 1)
        if picked is None:  # no shot long enough for this stride: plain consecutive frames
            inc = [0] + [1] * (self.length - 1)
            picked = self._pick(self.length)
            assert picked is not None  # every listed shot holds `length` frames
        k, t0 = picked
        i, a, _ = self.shots[k]
        seq = self.frames[i]
        h, w = seq.shape[2:]
        q, s, c = self.hr_size, self.scale, self.crop
        if self.variants is None:
            y0, x0 = self._randint(h - q + 1), self._randint(w - q + 1)
        else:  # on the LR grid, so the LR crop is exactly the HR crop / scale
            yl, xl = self._randint(h // s - c + 1), self._randint(w // s - c + 1)
            y0, x0 = yl * s, xl * s
        idx = np.cumsum(inc) + t0
        lo, hi = int(idx[0]), int(idx[-1]) + 1
        pick = torch.from_numpy(idx - lo)
        window = seq[lo:hi, :, y0:y0 + q, x0:x0 + q]
        window = window if isinstance(window, torch.Tensor) else as_tensor(window)
        clips = [window[pick].float().div_(255.0)]
        if self.variants is not None:
            shot = self.variants[k]
            variant = shot[self._randint(len(shot))]
            lwin = as_tensor(variant[lo - a:hi - a, yl:yl + c, xl:xl + c]).permute(0, 3, 1, 2)
            clips.append(lwin[pick].float().div_(255.0))
        # free augmentations that keep it a valid video: flips, transpose, time reversal;
        # drawn once and applied alike to the HR and its LR
        ops = (self._coin(), self._coin(), self._coin(), self._chance(self.temporal.p_reverse))
        for n, x in enumerate(clips):
            if ops[0]:
                x = x.flip(-1)
            if ops[1]:
                x = x.flip(-2)
            if ops[2]:
                x = x.transpose(-1, -2)
            if ops[3]:
                x = x.flip(0)
            clips[n] = x.contiguous()
        return clips[0], clips[1] if len(clips) > 1 else None

    def sample(self) -> tuple[torch.Tensor, torch.Tensor]:
        """One batch: LR (B, T, 3, crop, crop) and HR (B, T, 3, crop*s, crop*s), float [0, 1]."""
        pairs = [self._clip() for _ in range(self.batch)]
        hr = torch.stack([p[0] for p in pairs])
        if self.variants is None:
            return make_lr(hr, self.scale), hr
        return torch.stack([p[1] for p in pairs]), hr  # type: ignore[misc]


class MixedSampler:
    """Draws each batch from one of several samplers, picked at random with fixed weights.

    All children must agree on ``scale``, ``crop``, ``length`` and ``batch`` (so every batch has
    the same shape). The pick uses the mixer's own generator; each child keeps its own, and
    :meth:`state_dict` holds all of them (flat keys ``generator`` and ``children.<i>.<key>``).

    Args:
        samplers: the sources, e.g. a ``SequenceSampler`` and a :class:`VideoClipSampler`.
        weights: relative odds of each sampler (non-negative, not all zero).
        seed: seed of the mixer's generator.
    """

    def __init__(self, samplers: Sequence[Sampler], weights: Sequence[float], *, seed: int) -> None:
        if not samplers:
            raise ValueError("MixedSampler: no samplers given")
        if len(weights) != len(samplers):
            raise ValueError(f"MixedSampler: {len(samplers)} samplers but {len(weights)} weights; "
                             "give one weight per sampler")
        w = torch.tensor([float(x) for x in weights], dtype=torch.float64)
        if not bool(torch.isfinite(w).all()) or bool((w < 0).any()) or float(w.sum()) <= 0:
            raise ValueError(f"MixedSampler: weights must be finite, >= 0 and not all 0, got "
                             f"{list(weights)}")
        first = samplers[0]
        for i, s in enumerate(samplers[1:], 1):
            for attr in ("scale", "crop", "length", "batch"):
                if getattr(s, attr) != getattr(first, attr):
                    raise ValueError(
                        f"MixedSampler: sampler {i} has {attr}={getattr(s, attr)} but sampler 0 has "
                        f"{attr}={getattr(first, attr)}; build all samplers with the same "
                        "scale, crop, length and batch")
        self.samplers = list(samplers)
        self.scale, self.crop, self.length, self.batch = first.scale, first.crop, first.length, first.batch
        self.weights = w / w.sum()
        self.generator = torch.Generator().manual_seed(seed)

    def state_dict(self) -> dict[str, torch.Tensor]:
        state = {"generator": self.generator.get_state()}
        for i, s in enumerate(self.samplers):
            state.update({f"children.{i}.{k}": v for k, v in s.state_dict().items()})
        return state

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        children: list[dict[str, torch.Tensor]] = [{} for _ in self.samplers]
        for key, value in state.items():
            if key == "generator":
                continue
            m = re.fullmatch(r"children\.(\d+)\.(.+)", key)
            if m is None or int(m.group(1)) >= len(self.samplers):
                raise ValueError(f"MixedSampler.load_state_dict: unexpected key {key!r}; the state "
                                 f"was saved from another mix (this one has {len(self.samplers)} "
                                 "samplers)")
            children[int(m.group(1))][m.group(2)] = value
        if "generator" not in state or any(not c for c in children):
            raise ValueError(f"MixedSampler.load_state_dict: state lacks the mixer's or a child's "
                             f"generator; expected {len(self.samplers)} children")
        self.generator.set_state(state["generator"])
        for s, c in zip(self.samplers, children, strict=True):
            s.load_state_dict(c)

    def sample(self) -> tuple[torch.Tensor, torch.Tensor]:
        """One batch from a sampler picked by ``weights``."""
        idx = int(torch.multinomial(self.weights, 1, generator=self.generator))
        return self.samplers[idx].sample()
