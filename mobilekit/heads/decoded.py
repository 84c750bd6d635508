"""Already-decoded heads: a boxes output ``[1, N, 4]`` and a scores output ``[1, N, C]``."""

from __future__ import annotations

import numpy as np

from mobilekit.heads.base import BoxHead, Candidates, bind_two, class_scores, from_xyxy, register, to_xyxy, xy_first


class DecodedHead(BoxHead):
    name = "decoded"
    rank = 3

    def listed(self, shapes: dict[str, list[int]]) -> int:
        """Two outputs: 'decoded' says it plainly (yolo and yolo_transposed bind a pair too, and decode alike)."""
        return -1 if len(shapes) == 2 else self.rank

    def bind(self, shapes: dict[str, list[int]], wanted: dict[str, str]) -> tuple[dict[str, str], int]:
        roles = bind_two(shapes, wanted, 2, self.name)
        return roles, shapes[roles["scores"]][2]

    def candidates(self, outputs: dict[str, np.ndarray], contract) -> Candidates:
        head = contract.head
        boxes = xy_first(np.asarray(outputs["boxes"][0]), head.box_order)
        return Candidates(to_xyxy(boxes, head.box_format, head.box_units, contract.input),
                          class_scores(outputs["scores"][0], head))

    def encode(self, boxes: np.ndarray, index: np.ndarray, contract) -> np.ndarray:
        head = contract.head
        return xy_first(from_xyxy(boxes, head.box_format, head.box_units, contract.input), head.box_order)


register(DecodedHead())
