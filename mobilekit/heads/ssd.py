"""SSD-style heads: box deltas ``[1, N, 4]`` against generated anchors, and class scores ``[1, N, C(+1)]``.

Decoding (anchors ``cy, cx, h, w`` normalized; ``v`` the variances; deltas in ``delta_order``)::

    cy = ty * v0 * ha + cya      cx = tx * v1 * wa + cxa
    h  = exp(th * v2) * ha       w  = exp(tw * v3) * wa

TF Object Detection API's ``scale_factors`` (10, 10, 5, 5) are variances (0.1, 0.1, 0.2, 0.2).
"""

from __future__ import annotations

import numpy as np

from mobilekit.errors import ModelError
from mobilekit.heads.base import Candidates, bind_two, class_scores, register


def encode_deltas(boxes: np.ndarray, anchors: np.ndarray, variances: list[float]) -> np.ndarray:
    """Normalized xyxy boxes against their anchors (``cy, cx, h, w``) → deltas ``ty, tx, th, tw`` (the inverse of
    the decoding above)."""
    b, a, v = np.asarray(boxes, np.float64), anchors, variances
    h = np.maximum(b[:, 3] - b[:, 1], 1e-6)
    w = np.maximum(b[:, 2] - b[:, 0], 1e-6)
    return np.stack([((b[:, 1] + b[:, 3]) / 2 - a[:, 0]) / (v[0] * a[:, 2]),
                     ((b[:, 0] + b[:, 2]) / 2 - a[:, 1]) / (v[1] * a[:, 3]),
                     np.log(h / a[:, 2]) / v[2], np.log(w / a[:, 3]) / v[3]], axis=1)


class SsdHead:
    name = "ssd"

    def bind(self, shapes: dict[str, list[int]], wanted: dict[str, str]) -> tuple[dict[str, str], int]:
        roles = bind_two(shapes, wanted, 2, self.name)
        return roles, shapes[roles["scores"]][2]

    def candidates(self, outputs: dict[str, np.ndarray], contract) -> Candidates:
        head = contract.head
        anchors = np.asarray(head.anchors, dtype=np.float64)
        deltas = outputs["boxes"][0].astype(np.float64)
        if deltas.shape[0] != anchors.shape[0]:
            raise ModelError(f"the model predicts {deltas.shape[0]} boxes but the anchor settings generate "
                             f"{anchors.shape[0]}", fix="match detection.anchors (feature_maps, aspect_ratios) to "
                             "the model's head")
        if head.delta_order == "xywh":
            deltas = deltas[:, [1, 0, 3, 2]]
        v = head.variances
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
        deltas = encode_deltas(b, np.asarray(head.anchors, dtype=np.float64)[index], head.variances)
        return deltas[:, [1, 0, 3, 2]] if head.delta_order == "xywh" else deltas


register(SsdHead())
