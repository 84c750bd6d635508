"""Reference post-processing: the truth the generated Kotlin and Swift code is tested against.

The algorithm, exactly (so it can be ported line by line)::

    for each candidate i: class = argmax_c scores[i, c] over the allowed classes (lowest c on ties),
        score = scores[i, class]; every class is allowed unless the caller gives a mask (the SDKs' category
        allow / deny lists: a denied class neither wins a candidate nor suppresses an allowed box in NMS)
    keep candidates with score >= score_threshold
    order them by score descending, ties by candidate index ascending (a stable sort)
    walk that order: accept a candidate unless its IoU with an accepted box of the same class
        (any class when class_agnostic) is > iou_threshold; stop at max_detections accepted
    map accepted boxes from model-input pixels back to the original image (letterbox undo), clipped

IoU is computed in float64: inter = max(0, min(x2) - max(x1)) * max(0, min(y2) - max(y1)),
union = area_a + area_b - inter, IoU = inter / union (0 when union <= 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mobilekit.contract import Contract
from mobilekit.data.preprocess import ResizePlan
from mobilekit.heads import get_head
from mobilekit.heads.base import Candidates


@dataclass
class Detections:
    boxes: np.ndarray  # [K, 4] xyxy, original-image pixels
    scores: np.ndarray  # [K]
    classes: np.ndarray  # [K] int

    def __len__(self) -> int:
        return int(self.scores.shape[0])


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of ``a`` [K, 4] with every box of ``b`` [N, 4] (xyxy) → [K, N]; degenerate boxes give 0."""
    ix = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    iy = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = ix * iy
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-12)


def iou_one_to_many(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    ix = np.maximum(0.0, np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]))
    iy = np.maximum(0.0, np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]))
    inter = ix * iy
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = area + areas - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def nms(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, iou_threshold: float, max_detections: int,
        class_agnostic: bool) -> np.ndarray:
    """Greedy NMS as specified in the module docstring; returns accepted indices in output order."""
    order = np.argsort(-scores, kind="stable")
    kept: list[int] = []
    for i in order:
        if len(kept) >= max_detections:
            break
        if kept:
            k = np.asarray(kept)
            if not class_agnostic:
                k = k[classes[k] == classes[i]]
            if k.size and np.any(iou_one_to_many(boxes[i], boxes[k]) > iou_threshold):
                continue
        kept.append(int(i))
    return np.asarray(kept, dtype=np.int64)


def detect(outputs: dict[str, np.ndarray], contract: Contract, plan: ResizePlan,
           allowed: np.ndarray | None = None) -> Detections:
    """Float outputs of one image (keyed by role) → final detections in original-image pixels.

    ``allowed``: a boolean mask over the classes; a class outside it is never chosen (nor kept by NMS).
    """
    cand = get_head(contract.head.format).candidates(outputs, contract)
    idx = select(cand, contract, allowed)
    scores = cand.scores[idx]
    classes = np.argmax(scores if allowed is None else np.where(np.asarray(allowed, bool)[None, :], scores, -np.inf),
                        axis=1)
    return Detections(plan.to_source(cand.boxes[idx]).reshape(-1, 4), scores[np.arange(len(idx)), classes],
                      classes.astype(np.int64))


def select(cand: Candidates, contract: Contract, allowed: np.ndarray | None = None) -> np.ndarray:
    """The candidates the post-processing keeps (threshold, then NMS), as indices in output order."""
    nms_spec = contract.nms
    assert nms_spec is not None, "detect() needs a detection contract"
    scores = cand.scores if allowed is None else np.where(np.asarray(allowed, bool)[None, :], cand.scores, -np.inf)
    classes = np.argmax(scores, axis=1)
    best = scores[np.arange(scores.shape[0]), classes]
    idx = np.nonzero(best >= nms_spec.score_threshold)[0]
    keep = nms(cand.boxes[idx], best[idx], classes[idx], nms_spec.iou_threshold, nms_spec.max_detections,
               nms_spec.class_agnostic)
    return idx[keep]


def classify(outputs: dict[str, np.ndarray], contract: Contract) -> list[tuple[int, float]]:
    """Top-k ``(class, probability)`` pairs, highest first, ties by lower class index."""
    probs = get_head("classifier").candidates(outputs, contract).scores[0]
    order = np.argsort(-probs, kind="stable")[: contract.head.top_k]
    return [(int(i), float(probs[i])) for i in order]


def vision_detections(confidence: np.ndarray, coordinates: np.ndarray, contract: Contract,
                      plan: ResizePlan) -> Detections:
    """What the app shows from Vision's NonMaximumSuppression outputs: the top label of each kept row, its
    confidence, its box (normalized centre x/y, width, height of the model input) in original-image pixels.

    Per-class NMS can keep one box under several classes; each such row carries the same confidence vector, so its
    top label repeats: the repeat is dropped (the generated SDK does the same), then ``max_detections`` applies.
    """
    inp = contract.input
    seen: set[bytes] = set()
    keep = []
    for i in range(len(confidence)):
        key = confidence[i].tobytes() + coordinates[i].tobytes()
        if key not in seen:
            seen.add(key)
            keep.append(i)
    keep = keep[: contract.nms.max_detections] if contract.nms else keep
    confidence, coordinates = confidence[keep].reshape(-1, confidence.shape[1]), coordinates[keep].reshape(-1, 4)
    c = coordinates.astype(np.float64) * np.array([inp.width, inp.height, inp.width, inp.height])
    xyxy = np.stack([c[:, 0] - c[:, 2] / 2, c[:, 1] - c[:, 3] / 2, c[:, 0] + c[:, 2] / 2, c[:, 1] + c[:, 3] / 2], 1)
    classes = np.argmax(confidence, axis=1) if len(confidence) else np.zeros(0, np.int64)
    scores = confidence.max(axis=1).astype(np.float64) if len(confidence) else np.zeros(0)
    return Detections(plan.to_source(xyxy).reshape(-1, 4), scores, classes.astype(np.int64))
