"""The stateless overfit backbones: ONNX export equals PyTorch, and the declared receptive
radius really bounds each output pixel's context (patch mode relies on it)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vsvsr.models.descriptor import ModelDescriptor
from vsvsr.nets.arch_registry import STATELESS, build_net
from vsvsr.stdo.export import export_stateless


def random_net(arch: str, scale: int) -> torch.nn.Module:
    torch.manual_seed(0)
    net = build_net(arch, {"scale": scale})
    for p in net.parameters():  # every layer non-zero, the zero-initialised heads included
        torch.nn.init.normal_(p, std=0.1)
    return net.eval()


@pytest.mark.parametrize("arch", STATELESS)
@pytest.mark.parametrize("scale", [2, 4])
def test_onnx_equals_pytorch(arch, scale) -> None:
    import onnxruntime as ort

    net = random_net(arch, scale)
    desc = ModelDescriptor(name="t", arch=arch, scale=scale, recurrent=False,
                           config=net.config.to_dict())
    sess = ort.InferenceSession(export_stateless(net, desc), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(1).random((1, 3, 19, 23), dtype=np.float32)
    (got,) = sess.run(["sr"], {"lr": x})
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    assert got.shape == (1, 3, 19 * scale, 23 * scale)
    np.testing.assert_allclose(got, want, atol=1e-5 * float(np.abs(want).max()), rtol=0)


@pytest.mark.parametrize("arch", STATELESS)
def test_receptive_radius_bounds_the_context(arch) -> None:
    scale = 2
    net = random_net(arch, scale)
    r = net.config.receptive_radius
    size = 2 * r + 21
    x = torch.rand(1, 3, size, size)
    y = x.clone()
    c = size // 2
    y[0, :, c, c] += 0.5
    with torch.no_grad():
        diff = (net(x) - net(y)).abs().amax(dim=1)[0] > 0
    ys, xs = np.nonzero(diff.numpy())
    # LR pixel of each changed HR pixel: never farther than r from the poked one
    reach = max(np.abs(ys // scale - c).max(), np.abs(xs // scale - c).max())
    assert reach <= r
    assert reach >= r - 1  # and the radius is not a gross overestimate
