"""Full-integer verification and the delegate report, on real converter output."""

from __future__ import annotations

import numpy as np
import pytest

from mobilekit.errors import ConversionError
from mobilekit.export.delegates import delegate_report, nnapi_report
from mobilekit.export.verify import inspect_integer, require_full_integer


def _fn(model, shape):
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    return convert_variables_to_constants_v2(
        tf.function(lambda x: model(x, training=False)).get_concrete_function(tf.TensorSpec(shape, tf.float32)))


@pytest.fixture(scope="module")
def small_fn():
    import keras

    inp = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(8, 3, activation="relu")(inp)
    out = keras.layers.Dense(4)(keras.layers.GlobalAveragePooling2D()(x))
    return _fn(keras.Model(inp, out), [1, 16, 16, 3])


def test_dynamic_range_model_is_rejected_as_int8(small_fn):
    """The trap: int8 weights with float activations, which popular exporters name 'int8'."""
    import tensorflow as tf

    conv = tf.lite.TFLiteConverter.from_concrete_functions([small_fn])
    conv.optimizations = [tf.lite.Optimize.DEFAULT]  # no representative data: dynamic range
    model = conv.convert()
    rep = inspect_integer(model, float_io=True)
    assert not rep.full_integer and any(op.startswith("CONV_2D") or op.startswith("FULLY") for op in rep.float_ops)
    with pytest.raises(ConversionError) as e:
        require_full_integer(model, True, "android/m_int8.tflite")
    assert "not full-integer" in e.value.one_line() and "m_int8.tflite" in e.value.one_line()


def test_full_integer_model_passes_with_per_channel_weights(small_fn):
    import tensorflow as tf

    conv = tf.lite.TFLiteConverter.from_concrete_functions([small_fn])
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([np.random.default_rng(i).random((1, 16, 16, 3), np.float32)]
                                           for i in range(8))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = conv.inference_output_type = tf.int8
    model = conv.convert()
    rep = require_full_integer(model, False, "m.tflite")
    assert rep.full_integer and rep.per_channel_weights >= 1
    report = delegate_report(model, rep.op_counts, integer=True)
    assert report["gpu"]["compatible"]
    assert report["nnapi"]["min_api_all_ops"] == 30  # signed int8 needs NNAPI 1.3
    assert report["nnapi"]["deprecated_from_api"] == 35


def test_gpu_report_names_ops_that_fall_back():
    import keras
    import tensorflow as tf

    inp = keras.Input((8,))
    out = keras.layers.Lambda(lambda t: tf.math.top_k(t, 3).values)(inp)
    fn = _fn(keras.Model(inp, out), [1, 8])
    model = tf.lite.TFLiteConverter.from_concrete_functions([fn]).convert()
    report = delegate_report(model, inspect_integer(model, True).op_counts, integer=False)
    assert not report["gpu"]["compatible"]
    assert [r["op"] for r in report["gpu"]["cpu_fallback"]] == ["TOPK_V2"]
    assert report["nnapi"]["ops"] == [{"op": "TOPK_V2", "count": 1, "min_api": 29}]


def test_nnapi_levels_for_float_models():
    rep = nnapi_report({"CONV_2D": 3, "HARD_SWISH": 1, "TRANSPOSE": 1}, integer=False)
    levels = {o["op"]: o["min_api"] for o in rep["ops"]}
    assert levels == {"CONV_2D": 27, "HARD_SWISH": 30, "TRANSPOSE": 28} and rep["min_api_all_ops"] == 30
