"""Explicit list of network architectures, for loading checkpoints by their ``arch`` name."""

from __future__ import annotations

from typing import Any

from torch import nn

from vsvsr.errors import ModelFileError
from vsvsr.nets.rvsr_arch import RVSRConfig, RVSRNet

ARCHS: dict[str, tuple[type, type[nn.Module]]] = {"rvsr": (RVSRConfig, RVSRNet)}


def build_net(arch: str, config: dict[str, Any]) -> nn.Module:
    """Instantiate architecture ``arch`` with ``config`` (untrained weights)."""
    if arch not in ARCHS:
        raise ModelFileError(f"unknown architecture {arch!r}; known: {', '.join(sorted(ARCHS))}")
    config_cls, net_cls = ARCHS[arch]
    return net_cls(config_cls(**config))
