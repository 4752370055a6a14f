"""The fixed in-graph resamplers equal the functions they stand for."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from vsvsr.nets.blocks import BicubicUp, Downscale, bicubic_up  # noqa: E402
from vsvsr.training.degrade import downscale  # noqa: E402


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_bicubic_up_conv_equals_interpolate(scale: int) -> None:
    x = torch.rand(2, 3, 11, 17, generator=torch.Generator().manual_seed(scale))
    torch.testing.assert_close(BicubicUp(scale)(x), bicubic_up(x, scale), atol=3e-6, rtol=0)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_downscale_conv_equals_the_training_degradation(scale: int) -> None:
    x = torch.rand(2, 3, 12 * scale, 16 * scale, generator=torch.Generator().manual_seed(7))
    got, want = Downscale(scale)(x), downscale(x.clone(), scale)
    assert got.shape == want.shape
    b = 2  # away from the border, where edges are repeated instead of renormalized
    torch.testing.assert_close(got[..., b:-b, b:-b], want[..., b:-b, b:-b], atol=1e-6, rtol=0)
    assert float((got - want).abs().max()) < 0.1  # and close at the border too
