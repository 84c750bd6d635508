"""keras-cv's detectors decode with their own code: ``YOLOV8Detector.decode_predictions`` (DFL bins to distances,
anchor points, ``dist2bbox``) and ``RetinaNet.decode_predictions`` (its anchor generator, ``_decode_deltas_to_boxes``
with the box variance), each followed by NMS. The reference runs the same functions and stops before the NMS."""

from __future__ import annotations

from typing import Any

import numpy as np

from mobilekit.references.base import Finder, Reference, register


def _kind(model: Any) -> str | None:
    name, module = type(model).__name__, type(model).__module__
    if not module.startswith("keras_cv"):
        return None
    return name if name in ("YOLOV8Detector", "RetinaNet") else None


def _by_name(model: Any, outputs: list[np.ndarray]) -> dict[str, np.ndarray]:
    return dict(zip([str(n) for n in model.output_names], outputs, strict=True))


def find(model: Any) -> Reference | None:
    kind = _kind(model)
    if kind is None:
        return None
    from keras import ops

    def yolov8(outputs: list[np.ndarray], size: tuple[int, int], **_: Any) -> tuple[np.ndarray, np.ndarray]:
        from keras_cv.src.models.object_detection.yolo_v8.yolo_v8_detector import (
            decode_regression_to_boxes,
            dist2bbox,
            get_anchors,
        )

        out = _by_name(model, outputs)
        dist = decode_regression_to_boxes(ops.convert_to_tensor(out["box"]))
        points, strides = get_anchors(image_shape=(*size, 3))
        boxes = dist2bbox(dist, points) * ops.expand_dims(strides, -1)
        return np.asarray(boxes, np.float64)[0], np.asarray(out["class"], np.float64)[0]

    def retinanet(outputs: list[np.ndarray], size: tuple[int, int], **_: Any) -> tuple[np.ndarray, np.ndarray]:
        from keras_cv.src.bounding_box.converters import _decode_deltas_to_boxes
        from keras_cv.src.models.object_detection.retinanet.retinanet import BOX_VARIANCE

        out = _by_name(model, outputs)
        shape = (*size, 3)
        anchors = model.anchor_generator(image_shape=shape)
        anchors = ops.concatenate(list(anchors.values()), axis=0)
        boxes = _decode_deltas_to_boxes(anchors=anchors, boxes_delta=ops.convert_to_tensor(out["box"]),
                                        anchor_format=model.anchor_generator.bounding_box_format, box_format="xyxy",
                                        variance=BOX_VARIANCE, image_shape=shape)
        logits = np.asarray(out["classification"], np.float64)[0]
        return np.asarray(boxes, np.float64)[0], 1.0 / (1.0 + np.exp(-logits))  # its decoder's from_logits

    return yolov8 if kind == "YOLOV8Detector" else retinanet


def settings(model: Any) -> dict[str, Any] | None:
    return None  # init reads keras-cv's anchor generator itself (heads.retinanet: RetinaNetHead.carried)


register(Finder("keras-cv decode_predictions", find, settings))
