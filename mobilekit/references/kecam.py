"""keras_cv_attention_models' ``DecodePredictions``: the decode layer the zoo saves inside each detector (YOLOX,
YOLOv7/YOLOR, YOLOv8, EfficientDet), run without its NMS (any mode but ``global`` / ``per_class`` returns every
decoded candidate). Its boxes are ``[top, left, bottom, right]`` normalized; its scores are the best class's score
(times objectness where the model has one).

``settings`` reads the layer's config into mobilekit's head settings, the conventions the zoo uses: y-first boxes,
objectness last, ``[h, w]`` YOLOR anchors cell by cell, ``tlbr`` DFL sides, EfficientDet's cells spacing.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mobilekit.references.base import Finder, Reference, register

#: YOLOR's anchors as the zoo lists them ([h, w] pixels) for pyramid levels 3-5 (YOLOv7, YOLOR-CSP)
YOLOR_P5 = [[[16.0, 12.0], [36.0, 19.0], [28.0, 40.0]], [[75.0, 36.0], [55.0, 76.0], [146.0, 72.0]],
            [[110.0, 142.0], [243.0, 192.0], [401.0, 459.0]]]


#: YOLOv8's bins per side in the zoo (``regression_len`` 64)
REG_MAX = 16


def _yolor_anchors(levels: list[int]) -> list[list[list[float]]] | None:
    """YOLOR's ``[h, w]`` pixel anchors for these pyramid levels, as the zoo itself gives them (its
    ``get_yolor_anchors(is_for_training=True)`` ratios times the strides); P5 when the zoo cannot be asked."""
    try:
        from keras_cv_attention_models.coco.anchors_func import get_yolor_anchors
    except ImportError:
        return YOLOR_P5 if levels == [3, 4, 5] else None
    ratios, _ = get_yolor_anchors((640, 640), levels, is_for_training=True)
    ratios = np.asarray(ratios, np.float64)
    if len(ratios) != len(levels):
        return None
    return [[[float(v) * 2 ** lv for v in a] for a in level] for level, lv in zip(ratios, levels, strict=True)]


def _layer(model: Any) -> Any:
    for layer in getattr(model, "layers", []):
        if type(layer).__name__ == "DecodePredictions" and type(layer).__module__.startswith(
                "keras_cv_attention_models"):
            if layer.anchors_mode == "yolov8" and layer.regression_len == 4:
                # the layer's get_config leaves regression_len out, so a YOLOv8 loaded from its file decodes its
                # first 4 bins as EfficientDet deltas: the zoo's own models are built with 4 x 16
                layer.regression_len = 4 * REG_MAX
            return layer
    return None


def find(model: Any) -> Reference | None:
    layer = _layer(model)
    if layer is None:
        return None

    def decode(outputs: list[np.ndarray], size: tuple[int, int], **_: Any) -> tuple[np.ndarray, np.ndarray]:
        saved = dict(layer.nms_kwargs)
        try:
            boxes, _labels, scores = layer(np.asarray(outputs[0], np.float32), input_shape=tuple(size), mode="all")[0]
        finally:
            layer.nms_kwargs = saved
        h, w = size
        b = np.asarray(boxes, np.float64) * [h, w, h, w]
        return b[:, [1, 0, 3, 2]], np.asarray(scores, np.float64)

    return decode


def settings(model: Any) -> dict[str, Any] | None:
    """The ``detection`` settings the layer's config implies (head, params, conventions)."""
    layer = _layer(model)
    if layer is None:
        return None
    levels = list(range(min(layer.pyramid_levels), max(layer.pyramid_levels) + 1))
    strides = [2 ** lv for lv in levels]
    mode = layer.anchors_mode
    scores = "sigmoid" if getattr(layer, "use_sigmoid_on_score", False) else "none"  # "none": applied in the model
    if mode == "anchor_free":
        return {"head": "grid", "box_order": "yx", "score_activation": scores,
                "params": {"box": "yolox", "objectness": "last", "strides": strides}}
    if mode == "yolor":
        anchors = _yolor_anchors(levels)
        if anchors is None:
            return None
        return {"head": "grid", "box_order": "yx", "score_activation": scores,
                "params": {"box": "anchors", "objectness": "last", "strides": strides, "order": "cell_first",
                           "anchors": anchors, "anchor_order": "hw", "activated": ["boxes"]}}
    if mode == "yolov8":
        return {"head": "dfl", "score_activation": scores,
                "params": {"strides": strides, "reg_max": int(layer.regression_len) // 4, "sides": "tlbr"}}
    ratios = [list(r) if isinstance(r, (list, tuple)) else float(r) for r in layer.aspect_ratios]
    return {"head": "retinanet", "score_activation": scores,
            "params": {"strides": strides, "anchor_scale": float(layer.anchor_scale), "octaves": int(layer.num_scales),
                       "aspect_ratios": ratios, "ratio": "w/h", "order": "scale_first", "offset": 0.5,
                       "deltas": "yxhw", "variances": [1.0, 1.0, 1.0, 1.0], "spacing": "cells"}}


register(Finder("keras_cv_attention_models DecodePredictions", find, settings))
