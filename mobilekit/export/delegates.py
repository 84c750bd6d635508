"""Which ops each Android delegate takes, and which fall back to the CPU.

GPU: TensorFlow's own GPU-compatibility analyzer (the check the GPU delegate's ``IsSupported`` performs), run on
the exact file. NNAPI: the documented support table below, by Android API level. NNAPI is deprecated from
Android 15 (API 35); LiteRT recommends the GPU delegate or a vendor NPU accelerator instead, so the report says
so and the generated SDK never picks NNAPI silently.
"""

from __future__ import annotations

import re
from typing import Any

#: TFLite builtin op → first Android API level whose NNAPI has the matching ANEURALNETWORKS_* operation
#: (the "Available since API level" of each operation in the Android NDK NeuralNetworks reference). Signed int8
#: tensors (TENSOR_QUANT8_ASYMM_SIGNED) need NNAPI 1.3, i.e. API 30, whatever the op.
NNAPI_MIN_API: dict[str, int] = {
    "ADD": 27, "AVERAGE_POOL_2D": 27, "CONCATENATION": 27, "CONV_2D": 27, "DEPTHWISE_CONV_2D": 27,
    "DEPTH_TO_SPACE": 27, "DEQUANTIZE": 27, "FLOOR": 27, "FULLY_CONNECTED": 27, "L2_NORMALIZATION": 27,
    "LOGISTIC": 27, "MAX_POOL_2D": 27, "MUL": 27, "RELU": 27, "RELU_N1_TO_1": 27, "RELU6": 27, "RESHAPE": 27,
    "RESIZE_BILINEAR": 27, "SOFTMAX": 27, "SPACE_TO_DEPTH": 27, "TANH": 27,
    "BATCH_TO_SPACE_ND": 28, "DIV": 28, "MEAN": 28, "PAD": 28, "SPACE_TO_BATCH_ND": 28, "SQUEEZE": 28,
    "STRIDED_SLICE": 28, "SUB": 28, "TRANSPOSE": 28,
    "ABS": 29, "ARG_MAX": 29, "ARG_MIN": 29, "CAST": 29, "EQUAL": 29, "EXP": 29, "EXPAND_DIMS": 29,
    "GATHER": 29, "GREATER": 29, "GREATER_EQUAL": 29, "LESS": 29, "LESS_EQUAL": 29, "LOG": 29,
    "LOG_SOFTMAX": 29, "MAXIMUM": 29, "MINIMUM": 29, "NEG": 29, "NOT_EQUAL": 29, "PADV2": 29, "POW": 29,
    "PRELU": 29, "QUANTIZE": 29, "REDUCE_MAX": 29, "REDUCE_MIN": 29, "REDUCE_PROD": 29,
    "RESIZE_NEAREST_NEIGHBOR": 29, "RSQRT": 29, "SELECT": 29, "SELECT_V2": 29, "SIN": 29, "SLICE": 29,
    "SPLIT": 29, "SPLIT_V": 29, "SQRT": 29, "SUM": 29, "TILE": 29, "TOPK_V2": 29, "TRANSPOSE_CONV": 29,
    "LEAKY_RELU": 29,
    "ELU": 30, "FILL": 30, "HARD_SWISH": 30, "RANK": 30,
    "PACK": 31,
}
NNAPI_INT8_MIN_API = 30

#: Builtin ops the LiteRT GPU delegate has an operation parser for (its model builder). TensorFlow 2.21's analyzer
#: passes ops the delegate cannot run (NON_MAX_SUPPRESSION_V4, TOPK_V2 were seen passing), so an op outside this
#: set is reported as a CPU fallback even when the analyzer is silent.
GPU_OPS = frozenset("""
ABS ADD ADD_N AVERAGE_POOL_2D BATCH_MATMUL CAST CONCATENATION CONV_2D COS CUMSUM DENSIFY DEPTHWISE_CONV_2D
DEPTH_TO_SPACE DEQUANTIZE DIV ELU EQUAL EXP FLOOR FLOOR_DIV FLOOR_MOD FULLY_CONNECTED GATHER GREATER
GREATER_EQUAL HARD_SWISH LEAKY_RELU LESS LESS_EQUAL LOG LOGICAL_AND LOGISTIC MAXIMUM MAX_POOL_2D MEAN MINIMUM
MIRROR_PAD MUL NEG NOT_EQUAL ONE_HOT PACK PAD PADV2 POW PRELU QUANTIZE REDUCE_MAX REDUCE_MIN REDUCE_PROD RELU
RELU6 RELU_N1_TO_1 RESHAPE RESIZE_BILINEAR RESIZE_NEAREST_NEIGHBOR RSQRT SELECT_V2 SIGN SIN SLICE SOFTMAX
SPACE_TO_DEPTH SPLIT SPLIT_V SQRT SQUARE SQUARED_DIFFERENCE SQUEEZE STRIDED_SLICE SUB SUM TANH TILE TRANSPOSE
TRANSPOSE_CONV
""".split())  # noqa: SIM905 - a word list reads better than 80 quoted names
NNAPI_DEPRECATED_API = 35

_OP_LINE = re.compile(r"Op#(\d+)\s+([A-Z0-9_]+)")


def gpu_report(model: bytes) -> dict[str, Any]:
    """TensorFlow's GPU compatibility analyzer on the file, cross-checked against the delegate's op list."""
    from tensorflow.lite.python import analyzer_wrapper

    text = analyzer_wrapper._pywrap_analyzer_wrapper.ModelAnalyzer(model, False, True)
    rejected = []
    current: tuple[int, str] | None = None
    for line in text.splitlines():
        m = _OP_LINE.search(line)
        if m and "GPU COMPATIBILITY WARNING" not in line:
            current = (int(m.group(1)), m.group(2))
        elif line.startswith("GPU COMPATIBILITY WARNING:") and current is not None:
            rejected.append({"op": current[1], "index": current[0],
                             "reason": line.split(":", 1)[1].strip()})
        if m and m.group(2) not in GPU_OPS and all(r["index"] != int(m.group(1)) for r in rejected):
            rejected.append({"op": m.group(2), "index": int(m.group(1)),
                             "reason": "no GPU delegate kernel for this op"})
    return {"compatible": not rejected, "cpu_fallback": rejected,
            "note": "TensorFlow's analyzer; a compatible model can still fail at run time on some GPUs, so the "
                    "generated SDK falls back to the CPU when the delegate does not apply."}


def nnapi_report(op_counts: dict[str, int], integer: bool) -> dict[str, Any]:
    """Per op, the first API level NNAPI takes it; the model's minimum level; what falls back to the CPU."""
    ops = []
    unsupported = []
    for op, count in sorted(op_counts.items()):
        level = NNAPI_MIN_API.get(op)
        if integer and level is not None:
            level = max(level, NNAPI_INT8_MIN_API)
        ops.append({"op": op, "count": count, "min_api": level})
        if level is None:
            unsupported.append(op)
    levels = [o["min_api"] for o in ops if o["min_api"] is not None]
    return {
        "ops": ops,
        "min_api_all_ops": max(levels) if levels and not unsupported else None,
        "cpu_fallback_always": unsupported,
        "deprecated_from_api": NNAPI_DEPRECATED_API,
        "note": "NNAPI is deprecated from Android 15 (API 35); prefer the GPU delegate or a vendor NPU delegate "
                "there. Signed int8 models need NNAPI 1.3 (API 30). Ops below their level run on the CPU, "
                "splitting the graph.",
    }


def delegate_report(model: bytes, op_counts: dict[str, int], integer: bool) -> dict[str, Any]:
    return {"gpu": gpu_report(model), "nnapi": nnapi_report(op_counts, integer)}
