"""A stateless single-frame network -> ONNX bytes with input ``lr`` and output ``sr``."""

from __future__ import annotations

import io

from vsvsr.models.descriptor import ONNX_METADATA_KEY, ModelDescriptor
from vsvsr.utils.lazy import lazy_import

OPSET = 17


def export_stateless(net, descriptor: ModelDescriptor) -> bytes:  # noqa: ANN001
    """ONNX of ``net`` (dynamic height and width, batch 1) with ``descriptor`` in its metadata."""
    torch = lazy_import("torch", "ONNX export")
    onnx = lazy_import("onnx", "ONNX export")
    net = net.eval()
    buf = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(net, (torch.rand(1, 3, 24, 32),), buf, input_names=["lr"],
                          output_names=["sr"], opset_version=OPSET, dynamo=False,
                          dynamic_axes={"lr": {2: "h", 3: "w"}, "sr": {2: "sh", 3: "sw"}})
    model = onnx.load_from_string(buf.getvalue())
    entry = model.metadata_props.add()
    entry.key = ONNX_METADATA_KEY
    entry.value = descriptor.to_json()
    model.producer_name = "vsvsr"
    onnx.checker.check_model(model)
    return model.SerializeToString()


def count_params(net) -> int:  # noqa: ANN001
    return sum(int(p.numel()) for p in net.parameters())
