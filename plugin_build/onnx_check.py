"""Is this ONNX file a valid vsvsr model that TensorRT will parse?

Checked before any build (and by the tests for every shipped model, on machines without
TensorRT): the ONNX checker passes; the opset is one TensorRT 10 reads well (16-19 when
GridSample is present: it needs 16, and opset 20 renamed its modes, which one TensorRT release
mis-read); every operator is in TensorRT's ONNX parser (no deformable convolution or other
plugin-only op); GridSample is 4-D; the recurrent I/O names, ranks and dtypes are right; and
the vsvsr descriptor is in the metadata.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vsvsr.errors import ModelFileError
from vsvsr.models.descriptor import ONNX_METADATA_KEY, ModelDescriptor
from vsvsr.utils.lazy import lazy_import

#: Operators of the default ONNX domain that TensorRT 10's ONNX parser imports natively
#: (onnx-tensorrt ``docs/operators.md``), restricted to the ones an image network plausibly
#: uses. Anything else would need a plugin.
TRT_OPS = frozenset("""
Abs Acos Acosh Add And ArgMax ArgMin Asin Asinh Atan Atanh AveragePool BatchNormalization
Cast Ceil Celu Clip Concat Constant ConstantOfShape Conv ConvTranspose Cos Cosh CumSum
DepthToSpace DequantizeLinear Div Dropout Einsum Elu Equal Erf Exp Expand Flatten Floor Gather
GatherElements GatherND Gelu Gemm GlobalAveragePool GlobalMaxPool Greater GreaterOrEqual
GridSample GroupNormalization HardSigmoid HardSwish Identity If InstanceNormalization
LayerNormalization LeakyRelu Less LessOrEqual Log LogSoftmax MatMul Max MaxPool Mean Min Mod
Mul Neg Not Or Pad ParametricSoftplus Pow PRelu QuantizeLinear Range Reciprocal ReduceL1
ReduceL2 ReduceLogSumExp ReduceMax ReduceMean ReduceMin ReduceProd ReduceSum ReduceSumSquare
Relu Reshape Resize Round ScatterElements ScatterND Selu Shape Shrink Sigmoid Sign Sin Sinh
Size Slice Softmax Softplus Softsign SpaceToDepth Split Sqrt Squeeze Sub Sum Tan Tanh Tile
TopK Transpose Trilu Unsqueeze Upsample Where Xor
""".split())

#: Known not to parse without a plugin, with the reason shown to the user.
PLUGIN_ONLY = {"DeformConv": "deformable convolution needs a TensorRT plugin",
               "NonMaxSuppression": "not an image-network op", "Loop": "loops build slowly "
               "and are not needed by vsvsr models", "Scan": "not supported"}
RECURRENT_INPUTS = ("lr", "lr_prev", "state", "step")
RECURRENT_OUTPUTS = ("sr", "state_out")
MIN_OPSET, MAX_OPSET = 13, 19


@dataclass(kw_only=True, frozen=True)
class OnnxReport:
    """What the check found; ``problems`` empty means TensorRT-ready."""

    path: str
    opset: int
    ops: dict[str, int]
    descriptor: ModelDescriptor | None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _dims(value_info: Any) -> list[int | str]:
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


def check_onnx(path: str | Path, *, descriptor_required: bool = True) -> OnnxReport:
    """Check ``path``; never raises for a model problem, lists it in ``problems`` instead."""
    onnx = lazy_import("onnx", "the ONNX check")
    p = Path(path)
    if not p.is_file():
        raise ModelFileError(f"{p} does not exist")
    model = onnx.load(str(p))
    problems: list[str] = []
    try:
        onnx.checker.check_model(model)
    except Exception as exc:  # onnx.checker.ValidationError and protobuf errors
        problems.append(f"the ONNX checker rejects it: {exc}")
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    ops: dict[str, int] = {}
    for node in model.graph.node:
        ops[node.op_type] = ops.get(node.op_type, 0) + 1
        if node.domain not in ("", "ai.onnx"):
            problems.append(f"node {node.name or node.op_type!r} uses custom domain "
                            f"{node.domain!r}: TensorRT needs a plugin for it")
    for op in sorted(ops):
        if op in PLUGIN_ONLY:
            problems.append(f"operator {op} ({ops[op]}x): {PLUGIN_ONLY[op]}")
        elif op not in TRT_OPS:
            problems.append(f"operator {op} ({ops[op]}x) is not in TensorRT's ONNX parser")
    if not MIN_OPSET <= opset <= MAX_OPSET:
        problems.append(f"opset {opset} is outside {MIN_OPSET}-{MAX_OPSET}; re-export at opset 17")
    if "GridSample" in ops:
        if opset < 16:
            problems.append(f"GridSample needs opset >= 16, the model has {opset}")
        problems += _gridsample_rank_problems(onnx, model)
    descriptor = None
    meta = {e.key: e.value for e in model.metadata_props}
    if ONNX_METADATA_KEY in meta:
        try:
            descriptor = ModelDescriptor.from_json(meta[ONNX_METADATA_KEY], source=str(p))
        except ModelFileError as exc:
            problems.append(str(exc))
    elif descriptor_required:
        problems.append(f"no '{ONNX_METADATA_KEY}' metadata; export it with vsvsr")
    if descriptor is not None and descriptor.recurrent:
        problems += _recurrent_io_problems(onnx, model, descriptor)
    return OnnxReport(path=str(p), opset=opset, ops=ops, descriptor=descriptor, problems=problems)


def _gridsample_rank_problems(onnx: Any, model: Any) -> list[str]:
    inferred = onnx.shape_inference.infer_shapes(model)
    ranks = {v.name: len(v.type.tensor_type.shape.dim) for v in
             list(inferred.graph.value_info) + list(inferred.graph.input)}
    out = []
    for node in model.graph.node:
        if node.op_type == "GridSample":
            rank = ranks.get(node.input[0])
            if rank is not None and rank != 4:
                out.append(f"GridSample {node.name!r} is {rank}-D; TensorRT supports only 4-D")
    return out


def _recurrent_io_problems(onnx: Any, model: Any, d: ModelDescriptor) -> list[str]:
    init = {t.name for t in model.graph.initializer}
    ins = {v.name: v for v in model.graph.input if v.name not in init}
    outs = {v.name: v for v in model.graph.output}
    out = []
    if tuple(ins) != RECURRENT_INPUTS:
        out.append(f"inputs are {list(ins)}, expected {list(RECURRENT_INPUTS)} in that order")
    if tuple(outs) != RECURRENT_OUTPUTS:
        out.append(f"outputs are {list(outs)}, expected {list(RECURRENT_OUTPUTS)}")
    float_types = (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16)
    expect = {"lr": [1, 3], "lr_prev": [1, 3], "state": [1, d.state_channels], "step": [1, 1, 1, 1],
              "sr": [1, 3]}
    for name, head in expect.items():
        v = ins.get(name) or outs.get(name)
        if v is None:
            continue
        dims = _dims(v)
        if len(dims) != 4 or dims[:len(head)] != head:
            out.append(f"{name} has shape {dims}, expected {head + ['h', 'w'][:4 - len(head)]}")
        if v.type.tensor_type.elem_type not in float_types:
            out.append(f"{name} is not a float tensor")
    return out
