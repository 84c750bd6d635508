"""Prove a TFLite file is what its name says.

Popular exporters ship dynamic-range models (int8 weights, float activations) under an "int8" name; on NNAPI
or an integer-only NPU those fall back to the CPU or fail. A full-integer model has no float tensor on any
compute op; the only float tensors allowed are the model's I/O when float I/O was asked for, joined to the
integer core by exactly one QUANTIZE (input side) or DEQUANTIZE (output side).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mobilekit.errors import ConversionError

FLOATS = (np.float32, np.float16, np.float64)


@dataclass
class IntegerReport:
    ops: int
    float_ops: list[str] = field(default_factory=list)
    per_channel_weights: int = 0
    per_tensor_weights: int = 0
    op_counts: dict[str, int] = field(default_factory=dict)

    @property
    def full_integer(self) -> bool:
        return not self.float_ops


def inspect_integer(model: bytes, float_io: bool) -> IntegerReport:
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=model)
    inputs = {d["index"] for d in it.get_input_details()}
    outputs = {d["index"] for d in it.get_output_details()}
    tensors = {d["index"]: d for d in it.get_tensor_details()}
    ops = it._get_ops_details()
    rep = IntegerReport(ops=len(ops))
    for op in ops:
        name = op["op_name"]
        rep.op_counts[name] = rep.op_counts.get(name, 0) + 1
        ins = [i for i in op["inputs"] if i >= 0]
        outs = list(op["outputs"])
        floaty = [t for t in ins + outs if t in tensors and tensors[t]["dtype"] in FLOATS]
        edge_ok = float_io and (
            (name == "QUANTIZE" and set(floaty) <= inputs) or (name == "DEQUANTIZE" and set(floaty) <= outputs))
        if floaty and not edge_ok:
            rep.float_ops.append(f"{name}#{op['index']}")
        if name in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV") and len(ins) > 1:
            w = tensors.get(ins[1])
            if w is not None and w["dtype"] == np.int8:
                n_scales = len(w["quantization_parameters"]["scales"])
                if n_scales > 1:
                    rep.per_channel_weights += 1
                else:
                    rep.per_tensor_weights += 1
    return rep


def require_full_integer(model: bytes, float_io: bool, path: str) -> IntegerReport:
    rep = inspect_integer(model, float_io)
    if not rep.full_integer:
        shown = ", ".join(rep.float_ops[:5]) + (" ..." if len(rep.float_ops) > 5 else "")
        raise ConversionError(f"the converted model is not full-integer: {len(rep.float_ops)} op(s) compute in "
                              f"float ({shown})", path=path,
                              fix="replace those ops with int8-capable ones, or exclude them from the int8 build")
    return rep
