"""SSD-style heads: box deltas ``[1, N, 4]`` against generated anchors, and class scores ``[1, N, C(+1)]``.

Decoding (anchors ``cy, cx, h, w`` normalized; ``v`` the variances; deltas in ``delta_order``)::

    cy = ty * v0 * ha + cya      cx = tx * v1 * wa + cxa
    h  = exp(th * v2) * ha       w  = exp(tw * v3) * wa

TF Object Detection API's ``scale_factors`` (10, 10, 5, 5) are variances (0.1, 0.1, 0.2, 0.2).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from mobilekit.errors import ModelError
from mobilekit.heads.base import (
    Candidates,
    Head,
    bind_two,
    class_scores,
    flip,
    no_params,
    only_xy,
    register,
    score_alternatives,
)

if TYPE_CHECKING:
    from mobilekit.config import DetectionSettings
    from mobilekit.contract import Contract, HeadSpec
    from mobilekit.heads.base import Fail


def ssd_anchors(feature_maps: list[list[int]], min_scale: float, max_scale: float,
                aspect_ratios: list[float]) -> np.ndarray:
    """SSD anchors, ``[N, 4]`` as normalized ``cy, cx, h, w``.

    Order: level, then row, then column, then aspect ratio (the order the head's reshape flattens to). Level ``k`` of
    ``L`` has scale ``min + (max - min) * k / (L - 1)``; ratio ``r`` gives ``h = s / sqrt(r)``, ``w = s * sqrt(r)``.
    """
    levels = len(feature_maps)
    out = []
    for k, (fh, fw) in enumerate(feature_maps):
        s = min_scale if levels == 1 else min_scale + (max_scale - min_scale) * k / (levels - 1)
        for y in range(fh):
            for x in range(fw):
                for r in aspect_ratios:
                    out.append([(y + 0.5) / fh, (x + 0.5) / fw, s / np.sqrt(r), s * np.sqrt(r)])
    return np.asarray(out, dtype=np.float32).reshape(-1, 4)


def encode_deltas(boxes: np.ndarray, anchors: np.ndarray, variances: list[float]) -> np.ndarray:
    """Normalized xyxy boxes against their anchors (``cy, cx, h, w``) → deltas ``ty, tx, th, tw`` (the inverse of
    the decoding above)."""
    b, a, v = np.asarray(boxes, np.float64), anchors, variances
    h = np.maximum(b[:, 3] - b[:, 1], 1e-6)
    w = np.maximum(b[:, 2] - b[:, 0], 1e-6)
    return np.stack([((b[:, 1] + b[:, 3]) / 2 - a[:, 0]) / (v[0] * a[:, 2]),
                     ((b[:, 0] + b[:, 2]) / 2 - a[:, 1]) / (v[1] * a[:, 3]),
                     np.log(h / a[:, 2]) / v[2], np.log(w / a[:, 3]) / v[3]], axis=1)


class SsdHead(Head):
    name = "ssd"
    channel_axis = 2
    rank = 2

    def validate(self, det: DetectionSettings, fail: Fail) -> None:
        no_params(self.name, det, fail)
        only_xy(det, fail, "detection.anchors.delta_order (yxhw or xywh)")
        if not det.anchors.feature_maps:
            fail("detection.anchors.feature_maps", "an SSD head needs its anchor grids",
                 "list the feature map sizes, e.g. [[12, 12], [6, 6]]")

    def alternatives(self, det: DetectionSettings) -> list[dict[str, Any]]:
        return [{"anchors.delta_order": flip(det.anchors.delta_order, "yxhw", "xywh")}, *score_alternatives(det)]

    def complete(self, spec: HeadSpec, det: DetectionSettings) -> None:
        """The anchors (generated once, here), their settings (the SDKs regenerate them), variances and delta order;
        decoded boxes are normalized ``cx, cy, w, h``."""
        a = det.anchors
        anchors = ssd_anchors(a.feature_maps, a.min_scale, a.max_scale, a.aspect_ratios)
        spec.params = {"anchors": [[float(v) for v in row] for row in anchors],
                       "anchor_settings": {"feature_maps": [list(fm) for fm in a.feature_maps],
                                           "min_scale": a.min_scale, "max_scale": a.max_scale,
                                           "aspect_ratios": list(a.aspect_ratios)},
                       "variances": list(a.variances), "delta_order": a.delta_order}
        spec.box_format, spec.box_units = "cxcywh", "normalized"

    def bind(self, shapes: dict[str, list[int]], wanted: dict[str, str]) -> tuple[dict[str, str], int]:
        roles = bind_two(shapes, wanted, 2, self.name)
        return roles, shapes[roles["scores"]][2]

    def candidates(self, outputs: dict[str, np.ndarray], contract) -> Candidates:
        head = contract.head
        anchors = np.asarray(head.params["anchors"], dtype=np.float64)
        deltas = outputs["boxes"][0].astype(np.float64)
        if deltas.shape[0] != anchors.shape[0]:
            raise ModelError(f"the model predicts {deltas.shape[0]} boxes but the anchor settings generate "
                             f"{anchors.shape[0]}", fix="match detection.anchors (feature_maps, aspect_ratios) to "
                             "the model's head")
        if head.params["delta_order"] == "xywh":
            deltas = deltas[:, [1, 0, 3, 2]]
        v = head.params["variances"]
        cy = deltas[:, 0] * v[0] * anchors[:, 2] + anchors[:, 0]
        cx = deltas[:, 1] * v[1] * anchors[:, 3] + anchors[:, 1]
        h = np.exp(deltas[:, 2] * v[2]) * anchors[:, 2]
        w = np.exp(deltas[:, 3] * v[3]) * anchors[:, 3]
        inp = contract.input
        boxes = np.stack([(cx - w / 2) * inp.width, (cy - h / 2) * inp.height,
                          (cx + w / 2) * inp.width, (cy + h / 2) * inp.height], axis=1)
        return Candidates(boxes, class_scores(outputs["scores"][0], head))

    def encode(self, boxes: np.ndarray, index: np.ndarray, contract) -> np.ndarray:
        head, inp = contract.head, contract.input
        b = np.asarray(boxes, np.float64) / np.array([inp.width, inp.height, inp.width, inp.height])
        p = head.params
        deltas = encode_deltas(b, np.asarray(p["anchors"], dtype=np.float64)[index], p["variances"])
        return deltas[:, [1, 0, 3, 2]] if head.params["delta_order"] == "xywh" else deltas

    def decode_tf(self, outs: dict[str, Any], contract: Contract) -> tuple[Any, Any]:
        import tensorflow as tf

        head = contract.head
        anchors = tf.constant(np.asarray(head.params["anchors"], np.float32))
        d = outs["boxes"][0]
        if head.params["delta_order"] == "xywh":
            d = tf.gather(d, [1, 0, 3, 2], axis=1)
        v = head.params["variances"]
        cy = d[:, 0] * v[0] * anchors[:, 2] + anchors[:, 0]
        cx = d[:, 1] * v[1] * anchors[:, 3] + anchors[:, 1]
        h = tf.exp(d[:, 2] * v[2]) * anchors[:, 2]
        w = tf.exp(d[:, 3] * v[3]) * anchors[:, 3]
        return tf.stack([cx, cy, w, h], axis=1), outs["scores"][0]


register(SsdHead())
