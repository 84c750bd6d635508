"""Per-op CPU time of a TFLite model on LiteRT, and whether XNNPACK ran the op.

LiteRT's op profiler is not reachable from Python (its Interpreter has no profiler hook; ``benchmark_model`` ships
in no pip package), so each op is cut out into a one-op model (its tensors and constant buffers only) and timed
alone on the same interpreter with its default XNNPACK delegate. Measured, the one-op times add up to the whole
model's time within a few microseconds on small models; on large ones the sum is a little above (each one-op model
pays its own invoke overhead), which the report states beside the whole-model figure.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from mobilekit.emulate.litert import delegated_ops, median_invoke_ms

_DTYPES = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 7: "int16", 9: "int8"}


def op_counts(ops: dict[str, int]) -> str:
    """``{"PRELU": 8, "TANH": 1}`` → ``"PRELU x8, TANH x1"``: how the console and the manifest name ops (here, in
    a module free of TensorFlow: the CLI's process names them after the worker's build)."""
    return ", ".join(f"{op} x{n}" for op, n in ops.items())


@dataclass
class OpTime:
    index: int
    op: str
    dtype: str  # the op's first output's element type: what precision it computes in
    ms: float
    xnnpack: bool


def _constant(model: Any, tensor: Any) -> bool:
    data = model.buffers[tensor.buffer].data if tensor.buffer else None
    return data is not None and len(data) > 0


def _load_time_constants(model: Any) -> dict[int, np.ndarray]:
    """Tensors computed from constants only (an fp16 weight's DEQUANTIZE), as the float32 bytes the runtime makes
    of them once at load: a one-op model gets them as constants, as its op sees them in place."""
    from ai_edge_litert.tools.flatbuffer_utils import opcode_to_name

    sub, out = model.subgraphs[0], {}
    for op in sub.operators:
        ins = [t for t in op.inputs if t >= 0]
        if opcode_to_name(model, op.opcodeIndex) == "DEQUANTIZE" and ins and all(
                _constant(model, sub.tensors[t]) for t in ins):
            src = sub.tensors[ins[0]]
            if src.type == 1:  # float16
                data = np.frombuffer(bytes(model.buffers[src.buffer].data), np.float16).astype(np.float32)
                out[int(op.outputs[0])] = np.frombuffer(data.tobytes(), np.uint8)
    return out


def _one_op(model: Any, index: int, constants: dict[int, np.ndarray]) -> bytes:
    """The model reduced to operator ``index``: its tensors, their constant buffers, its op codes."""
    from ai_edge_litert.tools import flatbuffer_utils

    sub = model.subgraphs[0]
    op = sub.operators[index]
    used = sorted({int(t) for t in [*op.inputs, *op.outputs] if t >= 0})
    remap = {t: i for i, t in enumerate(used)}
    one, part = copy.copy(model), copy.copy(sub)
    buffers = [model.buffers[0]]
    part.tensors = []
    for t in used:
        tensor = copy.copy(sub.tensors[t])
        if _constant(model, tensor) or t in constants:
            buf = model.buffers[tensor.buffer]
            if t in constants:
                buf = copy.copy(model.buffers[0])
                buf.data = constants[t]
            buffers.append(buf)
            tensor.buffer = len(buffers) - 1
        else:
            tensor.buffer = 0
        part.tensors.append(tensor)
    cut = copy.copy(op)
    cut.inputs = [remap[int(t)] if t >= 0 else -1 for t in op.inputs]
    cut.outputs = [remap[int(t)] for t in op.outputs]
    part.operators = [cut]
    part.inputs = [remap[int(t)] for t in op.inputs if t >= 0 and part.tensors[remap[int(t)]].buffer == 0]
    part.outputs = list(cut.outputs)
    one.subgraphs, one.buffers, one.signatureDefs, one.metadata, one.metadataBuffer = [part], buffers, [], [], []
    return bytes(flatbuffer_utils.convert_object_to_bytearray(one))


def _time(model: bytes, runs: int) -> float:
    """Median one-thread time; an op XNNPACK cannot run alone (it fuses it into a neighbour) is timed on the
    built-in kernels instead, an upper bound of what it costs in place."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    try:
        return _timed(Interpreter(model_content=model, num_threads=1), runs)
    except RuntimeError:
        kind = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        return _timed(Interpreter(model_content=model, num_threads=1, experimental_op_resolver_type=kind), runs)


def _timed(it: Any, runs: int) -> float:
    return median_invoke_ms(it, runs, 3, (-1.0, 1.0))


def op_profile(model: bytes, runs: int = 20) -> list[OpTime]:
    """Every op of the main graph: its one-thread CPU time alone and whether XNNPACK takes it."""
    from ai_edge_litert.tools import flatbuffer_utils
    from ai_edge_litert.tools.flatbuffer_utils import opcode_to_name

    obj = flatbuffer_utils.convert_bytearray_to_object(bytearray(model))
    sub = obj.subgraphs[0]
    on_xnnpack = delegated_ops(model)
    constants = _load_time_constants(obj)
    out = []
    for k, op in enumerate(sub.operators):
        name = opcode_to_name(obj, op.opcodeIndex)
        first = sub.tensors[op.outputs[0]] if len(op.outputs) else None
        runtime = [t for t in op.inputs if t >= 0 and not _constant(obj, sub.tensors[t]) and t not in constants]
        # an op of constants only (an fp16 weight's DEQUANTIZE) runs once when the model loads, not per frame
        ms = _time(_one_op(obj, k, constants), runs) if runtime else 0.0
        out.append(OpTime(k, name, _DTYPES.get(first.type, str(first.type)) if first is not None else "", ms,
                          k in on_xnnpack))
    return out


def profile(model: bytes, runs: int = 20) -> dict[str, Any]:
    """Per-op times summarized beside the whole model's time, both on one thread."""
    return summarize(op_profile(model, runs), _time(model, runs))


def summarize(times: list[OpTime], whole_ms: float | None, top: int = 8) -> dict[str, Any]:
    """What the manifest and the report keep: totals, the time outside XNNPACK by op, the slowest op kinds."""
    kinds: dict[tuple[str, str, bool], list[float]] = {}
    for t in times:
        kinds.setdefault((t.op, t.dtype, t.xnnpack), []).append(t.ms)
    rows = sorted(({"op": op, "dtype": dt, "xnnpack": x, "count": len(v), "ms": sum(v)}
                   for (op, dt, x), v in kinds.items()), key=lambda r: -r["ms"])
    outside = [r for r in rows if not r["xnnpack"]]
    return {"ops": len(times), "sum_ms": sum(t.ms for t in times), "whole_ms": whole_ms,
            "outside_xnnpack_ms": sum(r["ms"] for r in outside), "outside_xnnpack": outside,
            "slowest": rows[:top], "per_op": [asdict(t) for t in times]}
