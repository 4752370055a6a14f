"""Training precision: bf16 autocast + channels_last where the CPU has native bf16, else fp32.

Weights, optimizer state and losses stay fp32 (autocast only lowers the convolutions), so a
bf16 run checkpoints, resumes and exports exactly like an fp32 one. channels_last matters:
without it oneDNN reorders every bf16 activation and the speed-up disappears
(``../shared/notes/cpu-amx.md``; measured side by side in ``docs/models.md``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from vsvsr.utils.cpu_features import describe_bf16, has_native_bf16

PRECISIONS = ("auto", "bf16", "fp32")
#: The runtime's name for fp32 (OpenVINO's ``f32``): the same precision, accepted everywhere so
#: one ``--precision`` option means one thing on every path (``vsvsr eval``, ``overfit``).
ALIASES = {"f32": "fp32"}


class PrecisionError(ValueError):
    """A precision that this machine cannot run fast (bf16 without native bf16 units)."""


def resolve_precision(requested: str) -> str:
    """``auto`` -> ``bf16`` with native bf16, else ``fp32``; an explicit ``bf16`` is refused on a
    CPU that would only emulate it (a silent 3x slow-down is worse than an error)."""
    requested = ALIASES.get(requested, requested)
    if requested not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {requested!r}")
    if requested == "auto":
        return "bf16" if has_native_bf16() else "fp32"
    if requested == "bf16" and not has_native_bf16():
        raise PrecisionError(f"precision bf16 asked for, but this CPU has {describe_bf16()}; "
                             "use precision fp32 (or auto)")
    return requested


@contextlib.contextmanager
def autocast(precision: str) -> Iterator[None]:
    """Run the enclosed forward pass in ``precision`` (a resolved one: ``bf16`` or ``fp32``)."""
    if precision == "bf16":
        with torch.autocast("cpu", dtype=torch.bfloat16):
            yield
    else:
        yield


def memory_format(precision: str) -> torch.memory_format:
    """channels_last for bf16 (what AMX kernels want), the default layout for fp32."""
    return torch.channels_last if precision == "bf16" else torch.contiguous_format
