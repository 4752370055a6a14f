"""What the page may ask for, checked before anything runs, and the server's own settings.

:class:`JobSettings` is the page's form; :meth:`JobSettings.upscale_options` turns it into the
:class:`~vsvsr.cli.upscale.UpscaleOptions` that ``vsvsr upscale`` itself runs, with every path
resolved inside the served root (the worker resolves them again, on its side).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from vsvsr.errors import VsvsrError
from vsvsr.models.registry import BUILTIN_MODELS, DEFAULT_MODEL
from vsvsr.runtime.select import BACKENDS
from vsvsr.web.paths import OUTPUT_SUFFIXES, Root

log = logging.getLogger(__name__)

#: Encoders offered on the page (all in the ffmpeg imageio-ffmpeg ships); ffv1 is lossless.
CODECS = ("libx264", "libx265", "libvpx-vp9", "libsvtav1", "ffv1")
PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower",
           "veryslow")
MATRICES = ("709", "170m", "470bg", "2020ncl", "240m", "fcc")
MODEL_SUFFIXES = (".onnx", ".pth")


class SettingsError(VsvsrError, ValueError):
    """A form value the server refuses; the message names the field and the fix."""


@dataclass(kw_only=True, frozen=True)
class JobSettings:
    """One upscale job as the page describes it; paths are relative to the served root.

    Attributes:
        input: the video to upscale.
        output: the file to write (.mkv, .mp4, .mov or .webm); never replaced unless
            ``overwrite``.
        model: a built-in model name, or a ``.onnx``/``.pth`` file inside the root.
        backend: ``auto`` or one of :data:`vsvsr.runtime.select.BACKENDS`.
        scene_detect: restart the recurrence at hard cuts.
        codec, crf, preset: the encoder and its quality (crf and preset where the codec
            takes them).
        matrix: the input's YUV matrix when it does not say (None: guessed from the size).
        overwrite: replace an existing ``output``.
    """

    input: str
    output: str = ""
    model: str = DEFAULT_MODEL
    backend: str = "auto"
    scene_detect: bool = False
    codec: str = "libx264"
    crf: float = 18.0
    preset: str = "medium"
    matrix: str | None = None
    overwrite: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.input, str) or not self.input:
            raise SettingsError("input: choose a video first")
        if not isinstance(self.output, str):
            raise SettingsError("output: must be a file name")
        if not isinstance(self.model, str) or not self.model:
            raise SettingsError("model: choose a model")
        if self.backend != "auto" and self.backend not in BACKENDS:
            raise SettingsError(f"backend {self.backend!r}: use auto or one of "
                                f"{', '.join(BACKENDS)}")
        if self.codec not in CODECS:
            raise SettingsError(f"codec {self.codec!r}: use one of {', '.join(CODECS)}")
        if isinstance(self.crf, bool) or not isinstance(self.crf, int | float) \
                or not 0 <= self.crf <= 63:
            raise SettingsError(f"crf {self.crf!r}: use a number from 0 to 63 (lower is better)")
        if self.preset not in PRESETS:
            raise SettingsError(f"preset {self.preset!r}: use one of {', '.join(PRESETS)}")
        if self.matrix is not None and self.matrix not in MATRICES:
            raise SettingsError(f"matrix {self.matrix!r}: use one of {', '.join(MATRICES)}, "
                                "or leave it empty to guess from the size")
        for name in ("scene_detect", "overwrite"):
            if not isinstance(getattr(self, name), bool):
                raise SettingsError(f"{name}: must be true or false")

    @classmethod
    def from_json(cls, data: Any) -> JobSettings:
        """From the page's JSON body; unknown fields are an error (a typo is not ignored)."""
        if not isinstance(data, dict):
            raise SettingsError("the request body must be a JSON object")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise SettingsError(f"unknown field(s) {', '.join(unknown)}; known: "
                                f"{', '.join(sorted(known))}")
        if "crf" in data and isinstance(data["crf"], str):
            try:
                data = {**data, "crf": float(data["crf"])}
            except ValueError:
                raise SettingsError(f"crf {data['crf']!r}: use a number") from None
        if data.get("matrix") == "":
            data = {**data, "matrix": None}
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def model_arg(self, root: Root) -> str:
        """The model as :func:`vsvsr.recurrent` takes it: a built-in name, or a real path."""
        if self.model in BUILTIN_MODELS:
            return self.model
        if not self.model.lower().endswith(MODEL_SUFFIXES):
            raise SettingsError(f"model {self.model!r} is not built in ("
                                f"{', '.join(BUILTIN_MODELS.names())}) and not a .onnx/.pth "
                                "file in the served folder")
        return str(root.file(self.model))

    def upscale_options(self, root: Root, *, with_output: bool = True):  # noqa: ANN201
        """The :class:`~vsvsr.cli.upscale.UpscaleOptions` of this job (paths resolved)."""
        from vsvsr.cli.upscale import UpscaleOptions
        from vsvsr.encode.pipe import EncodeSettings

        src = root.file(self.input)
        out: Path | None = None
        if with_output:
            if not self.output:
                raise SettingsError("output: give a file name for the result")
            out = root.new_file(self.output, suffixes=OUTPUT_SUFFIXES)
            if out == src:
                raise SettingsError("output: must not be the input file")
        encode = EncodeSettings(codec=self.codec, crf=self.crf, preset=self.preset,
                                audio="auto")
        return UpscaleOptions(input=src, output=out, model=self.model_arg(root),
                              backend=self.backend, matrix=self.matrix,
                              scene_detect=self.scene_detect, encode=encode,
                              overwrite=self.overwrite, progress=False)


@dataclass(kw_only=True, frozen=True)
class ServeSettings:
    """``vsvsr serve``'s options.

    Attributes:
        root: the only folder the page can see and write into.
        host, port: where to listen (127.0.0.1 unless asked otherwise).
        jobs: upscale jobs that run at once (each in its own worker process).
        queue: jobs that may wait beyond those; more get a 429 answer.
        max_upload: largest upload accepted, in bytes.
        db: the job store (default: ``.vsvsr-serve.sqlite`` in the root).
    """

    root: Path
    host: str = "127.0.0.1"
    port: int = 8765
    jobs: int = 1
    queue: int = 4
    max_upload: int = 2 * 1024**3
    db: Path | None = None

    def __post_init__(self) -> None:
        if self.jobs < 1:
            raise SettingsError(f"vsvsr serve: --jobs must be at least 1, got {self.jobs}")
        if self.queue < 0:
            raise SettingsError(f"vsvsr serve: --queue must be >= 0, got {self.queue}")
        if self.max_upload < 1:
            raise SettingsError(f"vsvsr serve: --max-upload must be positive, got "
                                f"{self.max_upload}")
        if not 0 <= self.port <= 65535:
            raise SettingsError(f"vsvsr serve: --port {self.port} is not a TCP port")

    @property
    def db_path(self) -> Path:
        return self.db if self.db is not None else Path(self.root) / ".vsvsr-serve.sqlite"
