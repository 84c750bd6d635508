"""TFLite export: full-integer int8 (the NNAPI / CPU model) and fp16 with float I/O (the GPU delegate model).

Both convert the same frozen serving function. The int8 model is calibrated on the user's own images, quantized
per channel, and its I/O is int8, uint8 or float as configured; it is then *verified* full-integer
(:mod:`mobilekit.export.verify`) — a file is never named int8 unless it is.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import numpy as np

from mobilekit.contract import ArtifactSpec, TensorBinding
from mobilekit.errors import ConversionError
from mobilekit.models.serving import Serving


def _converter(serving: Serving):
    import tensorflow as tf

    conv = tf.lite.TFLiteConverter.from_concrete_functions([serving.fn])
    conv.experimental_new_converter = True
    return conv


def convert_int8(serving: Serving, calibration: Callable[[], Iterator[np.ndarray]], io_dtype: str,
                 method: str = "minmax") -> bytes:
    """Full-integer conversion; ``calibration`` yields float model inputs ``[1, H, W, C]``; ``method`` picks the
    activation ranges (:mod:`mobilekit.quantize.ranges`)."""
    from mobilekit.quantize.ptq import convert_int8 as ptq_int8

    return ptq_int8(serving, calibration, io_dtype, method)[0]


def convert_fp16(serving: Serving) -> bytes:
    import tensorflow as tf

    conv = _converter(serving)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.target_spec.supported_types = [tf.float16]
    return conv.convert()


def convert_float32(serving: Serving) -> bytes:
    return _converter(serving).convert()


def output_position(name: str) -> int:
    """Output ``Identity`` is the function's first output, ``Identity_<k>`` its k-th."""
    m = re.fullmatch(r"Identity(?:_(\d+))?", name)
    if not m:
        raise ConversionError(f"unexpected TFLite output tensor name '{name}'",
                              fix="report this model to mobilekit; output order cannot be proven")
    return int(m.group(1) or 0)


def bindings(model: bytes, serving: Serving, kind: str, path: str) -> ArtifactSpec:
    """Read back where each role landed in the converted file, with dtype and quantization."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=model)

    def bind(d: dict, role: str, pos: int) -> TensorBinding:
        scale, zp = d["quantization"]
        quantized = d["dtype"] in (np.int8, np.uint8, np.int16)
        return TensorBinding(role=role, position=pos, name=d["name"], dtype=np.dtype(d["dtype"]).name,
                             shape=[int(v) for v in d["shape"]], scale=float(scale) if quantized else None,
                             zero_point=int(zp) if quantized else None)

    ins = [bind(d, "image", i) for i, d in enumerate(it.get_input_details())]
    outs = []
    for pos, d in enumerate(it.get_output_details()):
        role = serving.roles[output_position(d["name"])]
        outs.append(bind(d, role, pos))
    return ArtifactSpec(kind=kind, path=path, inputs=ins, outputs=outs)
