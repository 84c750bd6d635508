"""Detection-level agreement (converted vs float) and mAP against ground truth: mAP@0.5 and COCO's mAP@0.5:0.95.

COCO's definition, which users compare exporters by: per class, every image's detections of that class (at most 100,
best first) are matched greedily to unmatched ground truth of that class at each IoU threshold 0.50, 0.55, .., 0.95;
AP is the 101-point interpolated precision over recall; mAP averages over thresholds and over the classes that have
ground truth. Area ranges and crowd regions are not used (the data sets here have neither). Cross-checked against
pycocotools on the same detections (tests/test_detector_truth.py).
"""

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


#: COCO's IoU thresholds of mAP@0.5:0.95, as pycocotools spells them (linspace: 0.6499999999999999, not 0.65)
COCO_IOUS = tuple(float(t) for t in np.linspace(0.5, 0.95, 10))
#: COCO's detections per image and class
COCO_MAX_DETS = 100


def mean_ap(detections: list[Detections], gt_boxes: list[np.ndarray], gt_classes: list[np.ndarray],
            num_classes: int, ious: tuple[float, ...] = (0.5,), max_dets: int | None = None) -> float:
    """mAP averaged over the IoU thresholds ``ious`` and the classes that have ground truth, in percent (points);
    ``max_dets`` keeps each image's best detections of each class only (COCO: 100)."""
    per_iou = []
    for iou in ious:
        aps = []
        for c in range(num_classes):
            tps, scores, n_gt = [], [], 0
            for det, gb, gc in zip(detections, gt_boxes, gt_classes, strict=True):
                order = np.argsort(-det.scores, kind="stable")
                sel = order[det.classes[order] == c][:max_dets]
                g = gc == c
                n_gt += int(g.sum())
                tps.append(match(det.boxes[sel], det.scores[sel], det.classes[sel], gb[g], gc[g], iou))
                scores.append(det.scores[sel])
            if n_gt:
                aps.append(average_precision(np.concatenate(tps), np.concatenate(scores), n_gt))
        if aps:
            per_iou.append(np.mean(aps))
    return float(100 * np.mean(per_iou)) if per_iou else float("nan")


def map50(detections: list[Detections], gt_boxes: list[np.ndarray], gt_classes: list[np.ndarray],
          num_classes: int) -> float:
    """mAP@0.5 over the classes that have ground truth, in percent (points)."""
    return mean_ap(detections, gt_boxes, gt_classes, num_classes)


def map50_95(detections: list[Detections], gt_boxes: list[np.ndarray], gt_classes: list[np.ndarray],
             num_classes: int) -> float:
    """COCO's mAP@0.5:0.95 (10 IoU thresholds, 100 detections per image and class), in percent (points)."""
    return mean_ap(detections, gt_boxes, gt_classes, num_classes, COCO_IOUS, COCO_MAX_DETS)
