"""Shared fixtures: a small random-weight recurrent model exported like a shipped one."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
sys.path.insert(0, str(TESTS))  # for synth
VENV_BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    """A console script of this interpreter's environment (vspipe, vsvsr)."""
    path = VENV_BIN / name
    return str(path) if path.exists() else name


def make_random_model(path: Path, *, scale: int = 2, seed: int = 0, arch: str = "rvsr",
                      residual: bool = True, residual_std: float = 0.05) -> Path:
    """Export a small network with random weights (residual head included, so the state
    matters; for ``rvsrf`` a random flow too, so warping matters); ``residual=False`` keeps the
    head at zero: a pure bicubic upscaler, for colour tests."""
    import torch

    from plugin_build.export_onnx import export_model
    from vsvsr.models.descriptor import ModelDescriptor
    from vsvsr.nets.arch_registry import ARCHS

    torch.manual_seed(seed)
    config_cls, net_cls = ARCHS[arch]
    sizes = {"rvsr": {"hidden": 4}, "rvsrf": {"hidden": 4, "flow_width": 6}, "sfsr": {},
             "rvsrg": {"hidden": 4, "flow_width": 6, "gate_width": 4, "refine_width": 4}}[arch]
    cfg = config_cls(scale=scale, width=8, blocks=1, **sizes)
    net = net_cls(cfg)
    if residual:
        torch.nn.init.normal_(net.to_residual.weight, std=residual_std)
    if arch == "rvsrf":  # flows of about a pixel
        torch.nn.init.normal_(net.flow.out.weight, std=0.3)
    if arch == "rvsrg":  # flows of about a pixel, an open gate, every fusion path live
        for level in net.flow.nets:
            torch.nn.init.normal_(level[-1].weight, std=0.3)
        torch.nn.init.normal_(net.gate.c3.weight, std=0.3)
        torch.nn.init.zeros_(net.gate.c3.bias)
        torch.nn.init.normal_(net.refine2.weight, std=0.05)
        with torch.no_grad():
            net.bp.fill_(0.3)
            net.head.weight.normal_(0.0, 0.1)
    desc = ModelDescriptor(name=f"random-x{scale}", arch=arch, scale=scale, recurrent=True,
                           state_channels=cfg.state_channels, step_clamp=cfg.step_clamp,
                           config=cfg.to_dict())
    export_model(net, desc, path)
    return path


@pytest.fixture(scope="session")
def random_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight x2 model: ``.onnx`` and ``.pth`` side by side."""
    return make_random_model(tmp_path_factory.mktemp("models") / "random-x2.onnx")


@pytest.fixture(scope="session")
def bicubic_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An x2 model whose residual is zero: flat colour in, the same flat colour out."""
    return make_random_model(tmp_path_factory.mktemp("bicubic") / "bicubic-x2.onnx",
                             residual=False)


@pytest.fixture(scope="session")
def random_flow_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight flow-aligned (``rvsrf``) x2 model."""
    return make_random_model(tmp_path_factory.mktemp("flow") / "random-flow-x2.onnx",
                             arch="rvsrf", seed=2)


@pytest.fixture(scope="session")
def random_gated_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight gated flow-aligned (``rvsrg``) x2 model, every fusion path active."""
    return make_random_model(tmp_path_factory.mktemp("gated") / "random-gated-x2.onnx",
                             arch="rvsrg", seed=3)


@pytest.fixture(scope="session")
def random_model_x4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_random_model(tmp_path_factory.mktemp("models4") / "random-x4.onnx", scale=4, seed=1)


@pytest.fixture(autouse=True)
def _one_torch_thread() -> None:
    """The CI machine has 2 cores; keep tests from oversubscribing them."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
