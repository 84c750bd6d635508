"""YOLO-style anchor-free heads: ``[1, N, 4 + C]`` (``yolo``) or ``[1, 4 + C, N]`` (``yolo_transposed``).

Boxes are already decoded by the model (YOLOv8-style export); mobilekit splits the final concatenation into
separate ``boxes`` and ``scores`` outputs before int8 conversion, so the head accepts both the split pair and the
original single ``predictions`` tensor (when the split was impossible).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mobilekit.errors import ModelError
from mobilekit.heads.base import BoxHead, Candidates, bind_two, class_scores, from_xyxy, register, to_xyxy, xy_first


@dataclass
class YoloHead(BoxHead):
    name: str
    transposed: bool

    @property
    def rank(self) -> int:
        return 1 if self.transposed else 0

    @property
    def channel_axis(self) -> int:
        return 1 if self.transposed else 2

    def bind(self, shapes: dict[str, list[int]], wanted: dict[str, str]) -> tuple[dict[str, str], int]:
        ax = self.channel_axis
        if len(shapes) == 1:
            name, shape = next(iter(shapes.items()))
            if len(shape) != 3 or shape[ax] <= 4:
                want = "[1, 4+C, N]" if self.transposed else "[1, N, 4+C]"
                raise ModelError(f"output '{name}' has shape {shape}; a '{self.name}' head expects {want}",
                                 fix="set detection.head to the model's format (yolo, yolo_transposed, ssd, decoded)")
            return {"predictions": name}, shape[ax] - 4
        roles = bind_two(shapes, wanted, ax, self.name)
        return roles, shapes[roles["scores"]][ax]

    def candidates(self, outputs: dict[str, np.ndarray], contract) -> Candidates:
        if "predictions" in outputs:
            p = outputs["predictions"][0]
            p = p.T if self.transposed else p
            boxes, scores = p[:, :4], p[:, 4:]
        else:
            boxes, scores = outputs["boxes"][0], outputs["scores"][0]
            if self.transposed:
                boxes, scores = boxes.T, scores.T
        head = contract.head
        return Candidates(to_xyxy(xy_first(np.asarray(boxes), head.box_order), head.box_format, head.box_units,
                                  contract.input), class_scores(np.asarray(scores), head))

    def encode(self, boxes: np.ndarray, index: np.ndarray, contract) -> np.ndarray:
        head = contract.head
        return xy_first(from_xyxy(boxes, head.box_format, head.box_units, contract.input), head.box_order)

    def read_tf(self, outs: dict[str, Any]) -> tuple[Any, Any]:
        import tensorflow as tf

        if "predictions" in outs:  # the concatenation could not be split: boxes are its first 4 channels
            p = outs["predictions"][0]
            p = tf.transpose(p) if self.transposed else p
            return p[:, :4], p[:, 4:]
        boxes, scores = outs["boxes"][0], outs["scores"][0]
        return (tf.transpose(boxes), tf.transpose(scores)) if self.transposed else (boxes, scores)


register(YoloHead("yolo", transposed=False))
register(YoloHead("yolo_transposed", transposed=True))
