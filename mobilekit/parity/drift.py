"""Which layer's int8 output drifts from float: TensorFlow Lite's quantization debugger, per quantized tensor.

The debugger runs the float and the quantized graph side by side on real images and reports, per quantized op
output, the error against the float value; ``rmse / scale`` (the error in units of that tensor's int8 step) makes
layers comparable. Healthy int8 stays well under one step; the first layer above the bar is where the drift
starts, and what the console names when the parity gate fails.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from mobilekit.models.serving import Serving

#: rmse / scale above this (in int8 steps) is where drift is said to start
DRIFT_STEPS = 1.0


def layer_drift(serving: Serving, calibration: Callable[[], Iterator[np.ndarray]], samples: int = 8,
                calibrated: bytes | None = None) -> dict[str, Any]:
    """Per quantized tensor, in graph order: name, op, rmse/scale and max abs error; and the first drifting one.
    ``calibrated`` (:func:`mobilekit.quantize.ptq.calibrate`, with the build's activation ranges) makes the
    debugger measure the int8 model the build ships rather than the converter's min-max one."""
    import tensorflow as tf
    from tensorflow.lite.python import convert

    conv = tf.lite.TFLiteConverter.from_concrete_functions([serving.fn])
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([x] for x in calibration())
    # the debug model: the shipped ranges, a NumericVerify op after each quantized op (what the debugger reads)
    debug = convert.mlir_quantize(calibrated, enable_numeric_verify=True) if calibrated is not None else None

    def debug_data():
        for i, x in enumerate(calibration()):
            if i >= samples:
                return
            yield [x]

    try:
        debugger = tf.lite.experimental.QuantizationDebugger(
            quant_debug_model_content=debug, debug_dataset=debug_data) if debug is not None else \
            tf.lite.experimental.QuantizationDebugger(converter=conv, debug_dataset=debug_data)
        debugger.run()
    except Exception as e:  # the report must not fail the build; say why the plot is missing
        return {"layers": [], "drift_start": None, "error": f"{e.__class__.__name__}: {str(e)[:200]}"}
    buf = io.StringIO()
    debugger.layer_statistics_dump(buf)  # CSV: op, tensor, errors and the tensor's int8 scale, in graph order
    layers = []
    for row in csv.DictReader(io.StringIO(buf.getvalue())):
        scale = float(row["scale"] or 0.0)
        rmse = float(np.sqrt(float(row["mean_squared_error"])))
        layers.append({"op": row["op_name"], "tensor": row["tensor_name"].split(";")[0],
                       "node": row["tensor_name"],  # the full fused name, which the quantizer's denylist matches
                       "rmse": rmse,
                       "max_abs_error": float(row["max_abs_error"]), "scale": scale,
                       "rmse_steps": rmse / scale if scale > 0 else 0.0})
    start = next((la["tensor"] for la in layers if la["rmse_steps"] > DRIFT_STEPS), None)
    worst = max(layers, key=lambda la: la["rmse_steps"])["tensor"] if layers else None
    return {"layers": layers, "drift_start": start, "worst": worst, "bar_steps": DRIFT_STEPS}
