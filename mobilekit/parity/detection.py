"""Detection-level agreement (converted vs float) and mAP@0.5 against ground truth."""

from __future__ import annotations

import numpy as np

from mobilekit.postprocess import Detections, iou_one_to_many


def match(pred_boxes: np.ndarray, pred_scores: np.ndarray, pred_classes: np.ndarray, gt_boxes: np.ndarray,
          gt_classes: np.ndarray, iou: float = 0.5) -> np.ndarray:
    """Greedy matching in score order; returns a true-positive flag per prediction (same class, IoU >= iou)."""
    tp = np.zeros(len(pred_scores), dtype=bool)
    used = np.zeros(len(gt_classes), dtype=bool)
    for i in np.argsort(-pred_scores, kind="stable"):
        cand = np.nonzero((gt_classes == pred_classes[i]) & ~used)[0]
        if cand.size == 0:
            continue
        ious = iou_one_to_many(pred_boxes[i], gt_boxes[cand])
        j = int(np.argmax(ious))
        if ious[j] >= iou:
            tp[i] = True
            used[cand[j]] = True
    return tp


def agreement(reference: list[Detections], converted: list[Detections], iou: float = 0.5) -> dict[str, float]:
    """Recall and precision of the converted model's detections against the float model's, same class, IoU 0.5."""
    matched = n_ref = n_conv = 0
    for ref, conv in zip(reference, converted, strict=True):
        tp = match(conv.boxes, conv.scores, conv.classes, ref.boxes, ref.classes, iou)
        matched += int(tp.sum())
        n_ref += len(ref)
        n_conv += len(conv)
    return {
        "recall": matched / n_ref if n_ref else 1.0,
        "precision": matched / n_conv if n_conv else (1.0 if n_ref == 0 else 0.0),
        "reference_detections": n_ref,
        "converted_detections": n_conv,
    }


def average_precision(tp: np.ndarray, scores: np.ndarray, n_gt: int) -> float:
    """COCO-style 101-point interpolated AP."""
    if n_gt == 0:
        return float("nan")
    order = np.argsort(-scores, kind="stable")
    tp = tp[order].astype(np.float64)
    ctp = np.cumsum(tp)
    recall = ctp / n_gt
    precision = ctp / np.arange(1, len(tp) + 1)
    precision = np.maximum.accumulate(precision[::-1])[::-1] if precision.size else precision
    ap = 0.0
    for r in np.linspace(0, 1, 101):
        hit = np.nonzero(recall >= r)[0]
        ap += precision[hit[0]] if hit.size else 0.0
    return ap / 101


def map50(detections: list[Detections], gt_boxes: list[np.ndarray], gt_classes: list[np.ndarray],
          num_classes: int) -> float:
    """mAP@0.5 over the classes that have ground truth, in percent (points)."""
    aps = []
    for c in range(num_classes):
        tps, scores, n_gt = [], [], 0
        for det, gb, gc in zip(detections, gt_boxes, gt_classes, strict=True):
            sel = det.classes == c
            g = gc == c
            n_gt += int(g.sum())
            tps.append(match(det.boxes[sel], det.scores[sel], det.classes[sel], gb[g], gc[g]))
            scores.append(det.scores[sel])
        if n_gt:
            aps.append(average_precision(np.concatenate(tps), np.concatenate(scores), n_gt))
    return float(100 * np.mean(aps)) if aps else float("nan")
