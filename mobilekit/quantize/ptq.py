"""Post-training quantization in two steps the TFLite converter hides: calibrate, then quantize.

``TFLiteConverter.convert()`` calibrates (an absolute running min/max per activation, the only method TensorFlow
2.21's converter has) and quantizes in one call. Split, the calibrated float model (min/max stored on each tensor)
can be given better activation ranges (:mod:`mobilekit.quantize.ranges`) and quantized again and again with some
ops left in float (:mod:`mobilekit.quantize.selective`) without calibrating twice. With neither, the result is
byte for byte what ``convert()`` gives (a test).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import numpy as np

from mobilekit.errors import ConversionError
from mobilekit.models.serving import Serving


def _first_line(e: Exception) -> str:
    return str(e).strip().splitlines()[0][:200] if str(e).strip() else e.__class__.__name__


def calibrate(serving: Serving, calibration: Callable[[], Iterator[np.ndarray]]) -> bytes:
    """The float TFLite model with each activation's calibrated min/max written on its tensor."""
    import tensorflow as tf

    conv = tf.lite.TFLiteConverter.from_concrete_functions([serving.fn])
    conv.experimental_new_converter = True
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([x] for x in calibration())
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv._experimental_calibrate_only = True  # the converter's own split point (lite.py _quantize)
    try:
        return conv.convert()
    except Exception as e:
        raise ConversionError(f"int8 calibration failed: {_first_line(e)}",
                              fix="check that every op has an int8 TFLite kernel; see the delegate report") from None


def quantize(calibrated: bytes, io_dtype: str, float_nodes: Iterable[str] = ()) -> bytes:
    """Quantize a calibrated model as the converter does (per-channel weights, int8 activations, ``io_dtype``
    model I/O); ``float_nodes`` (op output tensor names) stay in float, with (de)quantize ops around them."""
    import tensorflow as tf
    from tensorflow.lite.python import convert

    io = getattr(tf, io_dtype)
    nodes = sorted(set(float_nodes))
    try:
        return convert.mlir_quantize(calibrated, fully_quantize=bool(nodes), input_data_type=io,
                                     output_data_type=io, denylisted_nodes=nodes or None)
    except Exception as e:
        raise ConversionError(f"int8 quantization failed: {_first_line(e)}",
                              fix="check that every op has an int8 TFLite kernel; see the delegate report") from None


def convert_int8(serving: Serving, calibration: Callable[[], Iterator[np.ndarray]], io_dtype: str,
                 method: str = "minmax") -> tuple[bytes, bytes]:
    """Full-integer conversion with ``method``'s activation ranges: the int8 model, and the calibrated model it
    was quantized from (for selective precision). ``calibration`` yields float model inputs ``[1, H, W, C]``."""
    from mobilekit.quantize.ranges import recalibrate

    calibrated = recalibrate(calibrate(serving, calibration), method, calibration(),
                             sum(1 for _ in calibration()))
    return quantize(calibrated, io_dtype), calibrated
