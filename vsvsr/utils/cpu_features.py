"""What the CPU can do fast: detected from the kernel's flags, never assumed.

bf16 pays only where the CPU has native bf16 arithmetic (AMX-BF16 tiles or AVX512-BF16 dot
products, measured in ``docs/models.md``); elsewhere PyTorch and OpenVINO emulate it, slower
than fp32. Training, evaluation and the CPU inference backends all ask this one module.
"""

from __future__ import annotations

import functools
import platform
from pathlib import Path

#: Flags (as in ``/proc/cpuinfo``) that give native bf16 arithmetic.
BF16_FLAGS = ("amx_bf16", "avx512_bf16")


@functools.cache
def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU's feature flags (empty where the kernel does not list them, e.g. not Linux)."""
    try:
        text = Path(cpuinfo).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def bf16_flags(flags: frozenset[str] | None = None) -> tuple[str, ...]:
    """The native-bf16 flags present (``()``: none, bf16 would be emulated)."""
    have = cpu_flags() if flags is None else flags
    return tuple(f for f in BF16_FLAGS if f in have)


def has_native_bf16(flags: frozenset[str] | None = None) -> bool:
    """True where the CPU computes bf16 natively (x86 AMX-BF16 or AVX512-BF16)."""
    return platform.machine().lower() in ("x86_64", "amd64") and bool(bf16_flags(flags))


def describe_bf16(flags: frozenset[str] | None = None) -> str:
    """One line for logs and ``vsvsr info``: which bf16 units, or why there are none."""
    found = bf16_flags(flags)
    if found and platform.machine().lower() in ("x86_64", "amd64"):
        return "native bf16 (" + ", ".join(found) + ")"
    return "no native bf16 (no amx_bf16/avx512_bf16 flag)"
