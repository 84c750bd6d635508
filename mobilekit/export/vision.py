"""The Vision-ready Core ML form of a detector: decoder + NonMaximumSuppression model in one pipeline.

``VNCoreMLRequest`` returns ``VNRecognizedObjectObservation``s only for a pipeline whose last model is a Core ML
``NonMaximumSuppression`` model fed ``confidence [N, C]`` (class probabilities) and ``coordinates [N, 4]``
(normalized centre x, centre y, width, height, relative to the model input), with an image input. The decoder here
is the head's decode written in TensorFlow ops so it compiles into the ML Program; parity runs the whole pipeline in
the emulator against the Python reference, so it cannot drift from :mod:`mobilekit.heads` unnoticed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mobilekit.config import CoreMLSettings
from mobilekit.contract import Contract
from mobilekit.errors import ConversionError
from mobilekit.heads import get_head
from mobilekit.models.serving import Serving

CONFIDENCE = "confidence"
COORDINATES = "coordinates"


def _decode_tf(outs: dict[str, Any], contract: Contract) -> tuple[Any, Any]:
    """TensorFlow twin of the heads' ``candidates``: normalized cxcywh boxes and class probabilities."""
    import tensorflow as tf

    head = contract.head
    decoder = get_head(head.format)
    if contract.task != "detection":
        raise ConversionError(f"the Vision form needs a detector; head '{head.format}' is not one")
    boxes, scores = decoder.decode_tf(outs, contract)  # the head's own decode, in TensorFlow ops
    if head.score_activation == "sigmoid":
        scores = tf.sigmoid(scores)
    elif head.score_activation == "softmax":
        scores = tf.nn.softmax(scores, axis=-1)
    if head.background_class:
        scores = scores[:, 1:]
    # Keep only each box's top class: Core ML's per-class NMS then suppresses exactly as the reference does
    # (per class, on each box's best class), instead of letting a box's runner-up class suppress other boxes.
    top = tf.cast(scores >= tf.reduce_max(scores, axis=1, keepdims=True), scores.dtype)
    return scores * top, boxes


def vision_function(serving: Serving, contract: Contract) -> Any:
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    def call(x):
        res = serving.fn(x)
        res = res if isinstance(res, (list, tuple)) else [res]
        return _decode_tf(dict(zip(serving.roles, res, strict=True)), contract)

    spec = tf.TensorSpec(serving.input_shape, tf.float32, name=serving.input_name)
    return convert_variables_to_constants_v2(tf.function(call).get_concrete_function(spec))


def _nms_model(contract: Contract, n: int, c: int) -> Any:
    import coremltools as ct
    from coremltools.proto import FeatureTypes_pb2, Model_pb2

    spec = Model_pb2.Model()
    spec.specificationVersion = 5
    f32 = FeatureTypes_pb2.ArrayFeatureType.FLOAT32
    for name, width in (("raw_confidence", c), ("raw_coordinates", 4)):
        feat = spec.description.input.add()
        feat.name = name
        feat.type.multiArrayType.shape.extend([n, width])
        feat.type.multiArrayType.dataType = f32
    for name, width in ((CONFIDENCE, c), (COORDINATES, 4)):
        feat = spec.description.output.add()
        feat.name = name
        feat.type.multiArrayType.shape.extend([n, width])
        feat.type.multiArrayType.dataType = f32
        rng = feat.type.multiArrayType.shapeRange.sizeRanges
        rng.add(lowerBound=0, upperBound=-1)
        rng.add(lowerBound=width, upperBound=width)
    for name, default in (("iouThreshold", contract.nms.iou_threshold),
                          ("confidenceThreshold", contract.nms.score_threshold)):
        feat = spec.description.input.add()
        feat.name = name
        feat.type.doubleType.MergeFromString(b"")
        feat.type.isOptional = True
        del default
    nms = spec.nonMaximumSuppression
    nms.confidenceInputFeatureName = "raw_confidence"
    nms.coordinatesInputFeatureName = "raw_coordinates"
    nms.confidenceOutputFeatureName = CONFIDENCE
    nms.coordinatesOutputFeatureName = COORDINATES
    nms.iouThresholdInputFeatureName = "iouThreshold"
    nms.confidenceThresholdInputFeatureName = "confidenceThreshold"
    nms.iouThreshold = contract.nms.iou_threshold
    nms.confidenceThreshold = contract.nms.score_threshold
    nms.pickTop.perClass = not contract.nms.class_agnostic
    nms.stringClassLabels.vector.extend(contract.labels)
    return ct.models.MLModel(spec, skip_model_load=True)


def convert_vision(serving: Serving, contract: Contract, settings: CoreMLSettings, target: str) -> Any:
    """Decoder ML Program (image input, the model's own scale/bias) + NMS model, as one pipeline package."""
    import coremltools as ct

    inp = contract.input
    fn = vision_function(serving, contract)
    detector = ct.convert(
        [fn], source="tensorflow", convert_to="mlprogram", minimum_deployment_target=getattr(ct.target, target),
        inputs=[ct.ImageType(name=serving.input_name, shape=tuple(serving.input_shape), scale=inp.scale[0],
                             bias=list(inp.offset), color_layout=getattr(ct.colorlayout, inp.color))],
        outputs=[ct.TensorType(name="Identity", dtype=np.float32), ct.TensorType(name="Identity_1", dtype=np.float32)],
        compute_precision=ct.precision.FLOAT16, compute_units=getattr(ct.ComputeUnit, settings.compute_units))
    spec = detector.get_spec()
    ct.utils.rename_feature(spec, "Identity", "raw_confidence", rename_inputs=False)
    ct.utils.rename_feature(spec, "Identity_1", "raw_coordinates", rename_inputs=False)
    detector = ct.models.MLModel(spec, weights_dir=detector.weights_dir)
    n = int(spec.description.output[0].type.multiArrayType.shape[0])
    c = int(spec.description.output[0].type.multiArrayType.shape[1])
    pipeline = ct.utils.make_pipeline(detector, _nms_model(contract, n, c),
                                      compute_units=getattr(ct.ComputeUnit, settings.compute_units))
    pipeline.short_description = f"{contract.name}: Vision-ready detector (decoder + NonMaximumSuppression)"
    pipeline.user_defined_metadata["labels"] = ",".join(contract.labels)
    return pipeline
