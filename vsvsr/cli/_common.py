"""Pieces every subcommand shares: logging set-up, common options, small parsers."""

from __future__ import annotations

import argparse
import logging
import sys
from types import ModuleType
from typing import Any

from vsvsr.errors import VsvsrError
from vsvsr.models.registry import DEFAULT_MODEL
from vsvsr.utils.lazy import lazy_import


def configure_logging(verbosity: int) -> None:
    """WARNING by default, INFO with -v, DEBUG with -vv; messages go to stderr."""
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 \
        else logging.DEBUG
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s", force=True)


def add_model_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=DEFAULT_MODEL,
                   help=f"built-in model name or .onnx/.pth file (default {DEFAULT_MODEL})")
    p.add_argument("--backend", default="auto",
                   help="auto, tensorrt, ort-cuda, torch-cuda, openvino, ort or torch "
                        "(default auto)")
    p.add_argument("--threads", type=int, default=0,
                   help="inference threads for CPU backends (default 0: all cores)")
    add_precision_argument(p, "OpenVINO's inference precision: auto = bf16 where the CPU has "
                              "AMX-BF16 or AVX512-BF16, f32 elsewhere; bf16 also runs the "
                              "torch backend in bf16 autocast (auto keeps it the fp32 "
                              "reference)")


#: ``--precision`` values; ``fp32`` (training's name) is the same as ``f32`` (the runtime's).
PRECISION_CHOICES = ("auto", "bf16", "f32")


def precision_arg(text: str) -> str:
    """argparse type: ``auto``, ``bf16`` or ``f32`` (``fp32`` accepted as ``f32``)."""
    value = text.strip().lower()
    value = "f32" if value == "fp32" else value
    if value not in PRECISION_CHOICES:
        raise argparse.ArgumentTypeError(f"unknown precision {text!r}: use auto, bf16 or f32 "
                                         "(= fp32)")
    return value


def add_precision_argument(p: argparse.ArgumentParser | Any, what: str) -> None:
    """The one ``--precision`` option (upscale, demo, farm, eval, overfit): ``what`` it sets."""
    p.add_argument("--precision", type=precision_arg, default="auto", metavar="{auto,bf16,f32}",
                   help=f"{what} (default auto; fp32 = f32)")


def vapoursynth(feature: str) -> ModuleType:
    """Import VapourSynth or raise an error that says how to install it."""
    return lazy_import("vapoursynth", feature)


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def parse_size(text: str) -> tuple[int, int]:
    """``960x540`` -> (960, 540)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad size {text!r}: use WIDTHxHEIGHT, e.g. 960x540") \
            from None
    if w < 8 or h < 8:
        raise argparse.ArgumentTypeError(f"size {text!r} is too small (at least 8x8)")
    return w, h


def parse_sizes(text: str) -> list[tuple[int, int]]:
    """``960x540,160x90`` -> [(960, 540), (160, 90)]."""
    return [parse_size(part) for part in text.split(",") if part.strip()]


def is_vapoursynth_error(exc: BaseException) -> bool:
    """vs.Error, without importing VapourSynth just to check."""
    return type(exc).__name__ == "Error" and type(exc).__module__ == "vapoursynth"


class CommandError(VsvsrError):
    """A wrong command-line combination; printed without a traceback."""
