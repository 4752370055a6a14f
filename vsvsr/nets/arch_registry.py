"""Explicit list of network architectures, for loading checkpoints by their ``arch`` name."""

from __future__ import annotations

from typing import Any

from torch import nn

from vsvsr.errors import ModelFileError
from vsvsr.nets.espcn_arch import ESPCNConfig, ESPCNNet
from vsvsr.nets.rvsr_arch import RVSRConfig, RVSRNet
from vsvsr.nets.rvsrf_arch import RVSRFConfig, RVSRFNet
from vsvsr.nets.rvsrg_arch import RVSRGConfig, RVSRGNet
from vsvsr.nets.sfsr_arch import SFSRConfig, SFSRNet
from vsvsr.nets.wdsr_arch import WDSRSConfig, WDSRSNet

#: name -> (config dataclass, network). "rvsr": flow-free recurrent; "rvsrf": flow-aligned
#: recurrent; "rvsrg": flow-aligned recurrent with a gated blend of the aligned past (the
#: design whose past is used quickly); "sfsr": the single-frame control; "espcn", "wdsr-s":
#: the stateless overfit (STDO) backbones, which take ``lr`` alone (:data:`STATELESS`).
ARCHS: dict[str, tuple[type, type[nn.Module]]] = {
    "rvsr": (RVSRConfig, RVSRNet),
    "rvsrf": (RVSRFConfig, RVSRFNet),
    "rvsrg": (RVSRGConfig, RVSRGNet),
    "sfsr": (SFSRConfig, SFSRNet),
    "espcn": (ESPCNConfig, ESPCNNet),
    "wdsr-s": (WDSRSConfig, WDSRSNet),
}
#: Architectures whose forward is ``sr = net(lr)`` (no previous frame, state or step).
STATELESS = ("espcn", "wdsr-s")


def arch_config(arch: str, config: dict[str, Any]) -> Any:
    """The config dataclass of architecture ``arch`` built from a plain dict."""
    if arch not in ARCHS:
        raise ModelFileError(f"unknown architecture {arch!r}; known: {', '.join(sorted(ARCHS))}")
    return ARCHS[arch][0](**config)


def build_net(arch: str, config: dict[str, Any] | Any) -> nn.Module:
    """Instantiate architecture ``arch`` with ``config`` (a dict or its dataclass; untrained)."""
    cfg = arch_config(arch, config) if isinstance(config, dict) else config
    return ARCHS[arch][1](cfg)


def arch_name(config: Any) -> str:
    """The registry name of a config dataclass instance."""
    for name, (cfg_cls, _) in ARCHS.items():
        if type(config) is cfg_cls:
            return name
    raise ModelFileError(f"no registered architecture has config type {type(config).__name__}")
