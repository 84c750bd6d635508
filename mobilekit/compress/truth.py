"""Ground-truth targets for fine-tuning a detector, when the training images carry boxes (YOLO or COCO labels).

Distillation alone teaches the compressed detector to copy the original, mistakes included; labelled boxes add the
task itself. Which candidates answer for which object is decided on the teacher's own predictions (its decoded
boxes act as learned anchors, whatever the head): a candidate is positive for the object its teacher box overlaps
most, when that overlap is at least ``MATCH_IOU`` or among the object's ``TOP_K`` best. Targets are then written in
each head's raw encoding (its ``encode``), so the student is trained on the very tensors it outputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mobilekit.contract import Contract
from mobilekit.heads.base import get_head
from mobilekit.postprocess import iou_matrix

MATCH_IOU = 0.5
TOP_K = 3  # every object gets at least its best-overlapping candidates, even where the teacher missed it
MIN_IOU = 0.05  # ... unless nothing of the teacher's comes near it


@dataclass
class DetectionTruth:
    """Labelled boxes per training image, in model-input pixels (xyxy), and their class ids."""

    boxes: list[np.ndarray]
    classes: list[np.ndarray]

    def mirrored(self, width: int) -> DetectionTruth:
        """The same objects in the horizontally flipped images."""
        flipped = []
        for b in self.boxes:
            f = np.asarray(b, np.float64).copy()
            f[:, [0, 2]] = width - f[:, [2, 0]]
            flipped.append(f)
        return DetectionTruth(flipped, list(self.classes))

    def __add__(self, other: DetectionTruth) -> DetectionTruth:
        return DetectionTruth(self.boxes + other.boxes, self.classes + other.classes)


@dataclass
class Targets:
    """Per image and candidate (``[B, N, ...]``, candidates on axis 1 whatever the model's layout)."""

    boxes: np.ndarray  # [B, N, 4] the matched object's box in the head's raw encoding
    positive: np.ndarray  # [B, N] 1 where a candidate answers for an object
    classes: np.ndarray  # [B, N, C'] one-hot class (C' includes the background column when the head has one)


def match(gt: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Index of the object each candidate answers for, -1 for none (see the module docstring)."""
    owner = np.full(len(candidates), -1, np.int64)
    if len(gt) == 0:
        return owner
    iou = iou_matrix(np.asarray(gt, np.float64), candidates)
    chosen = iou >= MATCH_IOU
    k = min(TOP_K, iou.shape[1])
    best = np.argpartition(-iou, k - 1, axis=1)[:, :k]
    rows = np.repeat(np.arange(len(gt)), k)
    chosen[rows, best.ravel()] |= iou[rows, best.ravel()] >= MIN_IOU
    taken = chosen.any(axis=0)
    owner[taken] = np.argmax(np.where(chosen, iou, -1.0), axis=0)[taken]
    return owner


def targets(teacher: dict[str, np.ndarray], truth: DetectionTruth, contract: Contract) -> Targets:
    """Targets for a batch of images from the teacher's raw outputs on them (keyed by role, batch first)."""
    head = get_head(contract.head.format)
    spec = contract.head
    n_images = len(truth.boxes)
    out_boxes, out_pos, out_cls = [], [], []
    shift = 1 if spec.background_class else 0  # class k sits in column k + 1 after a background column
    columns = spec.num_classes + shift
    for i in range(n_images):
        cands = head.candidates({role: t[i:i + 1] for role, t in teacher.items()}, contract)
        n = len(cands.boxes)
        owner = match(truth.boxes[i], cands.boxes)
        pos = owner >= 0
        boxes = np.zeros((n, 4), np.float32)
        if pos.any():
            boxes[pos] = head.encode(np.asarray(truth.boxes[i], np.float64)[owner[pos]], np.flatnonzero(pos),
                                     contract)
        onehot = np.zeros((n, columns), np.float32)
        onehot[np.flatnonzero(pos), np.asarray(truth.classes[i])[owner[pos]] + shift] = 1.0
        if spec.background_class:
            onehot[~pos, 0] = 1.0
        out_boxes.append(boxes)
        out_pos.append(pos.astype(np.float32))
        out_cls.append(onehot)
    return Targets(np.stack(out_boxes), np.stack(out_pos), np.stack(out_cls))
