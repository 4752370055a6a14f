"""Export a recurrent vsvsr network to ONNX with named I/O and check it against PyTorch.

The ONNX file carries the model descriptor in its metadata, so the runtime needs nothing else.
Opset 17 keeps the graph within what TensorRT 10 parses (Resize cubic, DepthToSpace, Tanh).
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vsvsr.models.descriptor import ONNX_METADATA_KEY, ModelDescriptor
from vsvsr.utils.atomic import atomic_write_bytes
from vsvsr.utils.lazy import lazy_import

log = logging.getLogger(__name__)

OPSET = 17


@dataclass(kw_only=True, frozen=True)
class ExportCheck:
    """Max absolute differences between PyTorch and ONNX Runtime on one set of inputs."""

    sr_max_abs: float
    state_max_abs: float

    @property
    def worst(self) -> float:
        return max(self.sr_max_abs, self.state_max_abs)


def export_recurrent(net, descriptor: ModelDescriptor, out_path: str | Path) -> Path:
    """Export ``net`` (an eval-mode RVSR-like module) to ``out_path`` atomically.

    Height and width are dynamic; the batch is fixed at 1 (the filter runs one frame a step).
    """
    torch = lazy_import("torch", "ONNX export")
    onnx = lazy_import("onnx", "ONNX export")
    net = net.eval()
    h, w = 24, 32
    lr = torch.rand(1, 3, h, w)
    state = torch.zeros(1, descriptor.state_channels, h, w)
    step = torch.zeros(1, 1, 1, 1)
    dyn = {"lr": {2: "h", 3: "w"}, "lr_prev": {2: "h", 3: "w"}, "state": {2: "h", 3: "w"},
           "sr": {2: "sh", 3: "sw"}, "state_out": {2: "h", 3: "w"}}
    buf = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(
            net, (lr, lr, state, step), buf, input_names=["lr", "lr_prev", "state", "step"],
            output_names=["sr", "state_out"], dynamic_axes=dyn, opset_version=OPSET, dynamo=False,
        )
    model = onnx.load_from_string(buf.getvalue())
    for output in model.graph.output:
        # The batch is 1 by design, but ONNX shape inference loses it behind ops whose output
        # shape it cannot compute symbolically (Pad, Slice, the Reshapes of pixel-unshuffle):
        # declare it, so the output shapes TensorRT and the check see are the true ones.
        output.type.tensor_type.shape.dim[0].dim_value = 1
    entry = model.metadata_props.add()
    entry.key = ONNX_METADATA_KEY
    entry.value = descriptor.to_json()
    model.producer_name = "vsvsr"
    onnx.checker.check_model(model)
    out = Path(out_path)
    atomic_write_bytes(out, model.SerializeToString())
    log.info("exported %s to %s", descriptor.name, out)
    return out


def check_against_torch(net, onnx_path: str | Path, lr: np.ndarray, lr_prev: np.ndarray,
                        state: np.ndarray, step: float) -> ExportCheck:
    """Run the same inputs through PyTorch and ONNX Runtime; return the max abs differences."""
    torch = lazy_import("torch", "export check")
    ort = lazy_import("onnxruntime", "export check")
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    feeds = {"lr": lr, "lr_prev": lr_prev, "state": state,
             "step": np.full((1, 1, 1, 1), step, np.float32)}
    o_sr, o_state = sess.run(["sr", "state_out"], feeds)
    with torch.no_grad():
        t_sr, t_state = net.eval()(*(torch.from_numpy(v) for v in feeds.values()))
    return ExportCheck(sr_max_abs=float(np.abs(o_sr - t_sr.numpy()).max()),
                       state_max_abs=float(np.abs(o_state - t_state.numpy()).max()))


def save_pth(net, descriptor: ModelDescriptor, out_path: str | Path) -> Path:
    """Write the PyTorch model file the torch backend loads (descriptor, arch, config, weights)."""
    torch = lazy_import("torch", "saving a model file")
    buf = io.BytesIO()
    torch.save({"descriptor": descriptor.to_json(), "arch": descriptor.arch,
                "config": dict(descriptor.config),
                "state_dict": {k: v.detach().cpu() for k, v in net.state_dict().items()}}, buf)
    out = Path(out_path)
    atomic_write_bytes(out, buf.getvalue())
    return out


def export_model(net, descriptor: ModelDescriptor, onnx_path: str | Path) -> tuple[Path, Path]:
    """Write both model files: ``X.onnx`` (every backend) and ``X.pth`` (PyTorch) beside it."""
    onnx_path = Path(onnx_path)
    return export_recurrent(net, descriptor, onnx_path), save_pth(net, descriptor,
                                                                  onnx_path.with_suffix(".pth"))
