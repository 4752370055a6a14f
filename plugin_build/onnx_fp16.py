"""Convert a float32 ONNX model to float16 for TensorRT's strongly typed networks (TRT 11).

A strongly typed network runs every layer in the type the ONNX gives it, so an fp16 engine
needs an fp16 ONNX. The conversion is type-driven, not name-driven:

- every float tensor of the data path becomes fp16 (initializers, ``Constant`` values,
  ``Cast(to=FLOAT)``, graph inputs and outputs), except the graph inputs named in
  ``keep_fp32_io`` (``step``: a frame counter overflows fp16);
- inputs ONNX requires in fp32 stay fp32 (``Resize`` scales and roi), and so does the shape
  arithmetic that only feeds them;
- overflow-prone operators (:data:`FP32_OPS`: reductions, exponentials, normalizations) run in
  fp32 with casts around them;
- wherever a producer's type and a consumer's required type differ, a ``Cast`` is inserted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vsvsr.utils.atomic import atomic_write_bytes
from vsvsr.utils.lazy import lazy_import

#: Operators kept in fp32 (their intermediate values overflow or lose too much in fp16).
FP32_OPS = frozenset({"ReduceMean", "ReduceSum", "ReduceSumSquare", "ReduceL2", "ReduceProd",
                      "Pow", "Exp", "Log", "Softmax", "LogSoftmax", "LayerNormalization",
                      "InstanceNormalization", "GroupNormalization", "BatchNormalization",
                      "Sqrt", "Reciprocal", "Div", "CumSum", "Range", "Einsum",
                      # sampling positions: normalized coordinates in fp16 are 2^-11 apart near
                      # +-1, half a pixel at 1920 px, which would misalign every warped past
                      # frame; the whole grid arithmetic that feeds it stays fp32 with it
                      "GridSample"})
#: (op, input index) that ONNX defines as fp32 whatever the data type.
FP32_SLOTS = {("Resize", 1), ("Resize", 2), ("Upsample", 1)}
#: Operators that take any input type (so no cast is needed before them).
ANY_TYPE_OPS = frozenset({"Shape", "Size", "Cast"})


def convert_to_fp16(src: str | Path, dst: str | Path, *,
                    keep_fp32_io: tuple[str, ...] = ("step",)) -> Path:
    """Write the fp16 version of ``src`` to ``dst`` (atomically) and return ``dst``."""
    onnx = lazy_import("onnx", "the fp16 conversion for TensorRT 11")
    model = onnx.load(str(src))
    convert_model(model, keep_fp32_io=keep_fp32_io)
    onnx.checker.check_model(model)
    out = Path(dst)
    atomic_write_bytes(out, model.SerializeToString())
    return out


def convert_model(model: Any, *, keep_fp32_io: tuple[str, ...] = ()) -> Any:
    """Convert ``model`` in place (see the module docstring); returns it."""
    onnx = lazy_import("onnx", "the fp16 conversion for TensorRT 11")
    from onnx import TensorProto, helper, numpy_helper

    F32, F16 = TensorProto.FLOAT, TensorProto.FLOAT16
    g = model.graph
    inferred = onnx.shape_inference.infer_shapes(model)
    types: dict[str, int] = {}
    for v in list(inferred.graph.value_info) + list(g.input) + list(g.output):
        types[v.name] = v.type.tensor_type.elem_type
    for t in g.initializer:
        types[t.name] = t.data_type
    is_float = {n for n, t in types.items() if t == F32}

    consumers: dict[str, list[tuple[Any, int]]] = {}
    for node in g.node:
        for i, name in enumerate(node.input):
            if name:
                consumers.setdefault(name, []).append((node, i))
    graph_outputs = {o.name for o in g.output}

    # Which nodes compute in fp32: the overflow-prone ones, plus (to a fixed point) nodes
    # whose float outputs only feed fp32 slots (the shape arithmetic behind Resize scales).
    fp32_nodes = {id(n) for n in g.node if n.op_type in FP32_OPS}

    def needs_fp32(node: Any, i: int) -> bool:
        return id(node) in fp32_nodes or (node.op_type, i) in FP32_SLOTS

    def fine_in_fp32(node: Any, i: int) -> bool:
        return needs_fp32(node, i) or node.op_type in ANY_TYPE_OPS

    changed = True
    while changed:
        changed = False
        for node in g.node:
            if id(node) in fp32_nodes:
                continue
            outs = [o for o in node.output if o in is_float]
            if outs and all(o not in graph_outputs and consumers.get(o)
                            and all(fine_in_fp32(c, i) for c, i in consumers[o]) for o in outs):
                fp32_nodes.add(id(node))
                changed = True

    # The type each float tensor is produced in.
    produced: dict[str, int] = {}
    for v in g.input:
        if v.name in is_float:
            produced[v.name] = F32 if v.name in keep_fp32_io else F16
            if v.name not in keep_fp32_io:
                v.type.tensor_type.elem_type = F16
    for t in g.initializer:
        if t.name in is_float:
            uses = consumers.get(t.name, [])
            if uses and all(fine_in_fp32(c, i) for c, i in uses):
                produced[t.name] = F32
            else:
                t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t).astype("float16"),
                                                   t.name))
                produced[t.name] = F16
    for node in g.node:
        kind = F32 if id(node) in fp32_nodes else F16
        for o in node.output:
            if o in is_float:
                produced[o] = kind
        if kind == F16:
            _retype_node_to_fp16(node, helper, numpy_helper, TensorProto)

    # Casts wherever producer and consumer disagree.
    new_nodes: list[Any] = []
    made: dict[tuple[str, int], str] = {}
    for node in g.node:
        for i, name in enumerate(node.input):
            if name not in produced or node.op_type in ANY_TYPE_OPS:
                continue
            want = F32 if needs_fp32(node, i) else F16
            if produced[name] == want:
                continue
            cast = made.get((name, want))
            if cast is None:
                cast = f"{name}__as_{'fp32' if want == F32 else 'fp16'}"
                new_nodes.append(helper.make_node("Cast", [name], [cast], to=want,
                                                  name=f"{cast}_cast"))
                made[(name, want)] = cast
            node.input[i] = cast
        new_nodes.append(node)
    for out in g.output:
        if out.name in produced:
            want = F32 if out.name in keep_fp32_io else F16
            if produced[out.name] != want:
                raise ValueError(f"output {out.name} is produced in fp32 by an fp32-only op; "
                                 "add a Cast in the model or keep it in keep_fp32_io")
            out.type.tensor_type.elem_type = want
    del g.node[:]
    g.node.extend(_topological(new_nodes, {v.name for v in g.input} | {t.name for t in g.initializer}))
    del g.value_info[:]  # stale types; TensorRT and ONNX Runtime infer them again
    return model


def _retype_node_to_fp16(node: Any, helper: Any, numpy_helper: Any, TensorProto: Any) -> None:
    """Make a node that produces fp32 through an attribute produce fp16 instead.

    A ``ConstantOfShape`` without ``value`` outputs fp32 zeros (the ONNX default): it gets an
    explicit fp16 zero, or its output would be fp32 where the conversion recorded fp16.
    """
    if node.op_type == "ConstantOfShape" and not any(a.name == "value" for a in node.attribute):
        import numpy as np

        node.attribute.append(helper.make_attribute(
            "value", numpy_helper.from_array(np.zeros(1, np.float16), "value")))
        return
    for attr in node.attribute:
        if node.op_type == "Cast" and attr.name == "to" and attr.i == TensorProto.FLOAT:
            attr.i = TensorProto.FLOAT16
        elif node.op_type in ("Constant", "ConstantOfShape") and attr.name == "value" \
                and attr.t.data_type == TensorProto.FLOAT:
            arr = numpy_helper.to_array(attr.t).astype("float16")
            attr.t.CopyFrom(numpy_helper.from_array(arr, attr.t.name))


def _topological(nodes: list[Any], available: set[str]) -> list[Any]:
    """Order nodes so every input is produced before use (inserted casts came first anyway)."""
    have = set(available) | {""}
    pending = list(nodes)
    out: list[Any] = []
    while pending:
        rest = []
        for n in pending:
            if all(i in have for i in n.input):
                out.append(n)
                have.update(n.output)
            else:
                rest.append(n)
        if len(rest) == len(pending):
            raise ValueError("the graph has a cycle or an undefined input after conversion")
        pending = rest
    return out
