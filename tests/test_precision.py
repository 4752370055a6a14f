"""bf16 where the CPU computes it natively, never assumed; fp32 elsewhere."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from vsvsr.training import precision  # noqa: E402
from vsvsr.utils import cpu_features  # noqa: E402

SPR_FLAGS = "fpu vme avx512f avx512_bf16 amx_tile amx_bf16 amx_int8"


def test_flags_come_from_cpuinfo(tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text(f"processor\t: 0\nflags\t\t: {SPR_FLAGS}\n\nprocessor\t: 1\n")
    flags = cpu_features.cpu_flags(str(info))
    assert "amx_bf16" in flags and cpu_features.bf16_flags(flags) == ("amx_bf16", "avx512_bf16")
    assert cpu_features.bf16_flags(frozenset({"avx2", "fma"})) == ()
    assert cpu_features.cpu_flags(str(tmp_path / "none")) == frozenset()


def test_auto_follows_the_cpu_and_explicit_bf16_is_refused_without_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(precision, "has_native_bf16", lambda: False)
    assert precision.resolve_precision("auto") == "fp32"
    with pytest.raises(precision.PrecisionError, match="use precision fp32"):
        precision.resolve_precision("bf16")
    monkeypatch.setattr(precision, "has_native_bf16", lambda: True)
    assert precision.resolve_precision("auto") == "bf16"
    assert precision.resolve_precision("fp32") == "fp32"
    with pytest.raises(ValueError, match="precision must be one of"):
        precision.resolve_precision("fp16")
