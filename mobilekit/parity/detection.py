"""Detection-level agreement (converted vs float) and mAP against ground truth: mAP@0.5 and COCO's mAP@0.5:0.95.

COCO's definition, which users compare exporters by: per class, every image's detections of that class (at most 100,
best first) are matched greedily to unmatched ground truth of that class at each IoU threshold 0.50, 0.55, .., 0.95;
AP is the 101-point interpolated precision over recall; mAP averages over thresholds and over the classes that have
ground truth. Area ranges and crowd regions are not used (the data sets here have neither). Cross-checked against
pycocotools on the same detections (tests/test_detector_truth.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mobilekit.parity.metrics import bootstrap_interval
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


@dataclass
class AgreementAcc:
    """Recall and precision of the converted model's detections against the float model's (same class, IoU 0.5),
    image by image; counts, so shards merge exactly."""

    matched: int = 0
    n_ref: int = 0
    n_conv: int = 0

    def add(self, ref: Detections, conv: Detections, iou: float = 0.5) -> None:
        self.matched += int(match(conv.boxes, conv.scores, conv.classes, ref.boxes, ref.classes, iou).sum())
        self.n_ref += len(ref)
        self.n_conv += len(conv)

    def merge(self, other: AgreementAcc) -> None:
        self.matched, self.n_ref, self.n_conv = (self.matched + other.matched, self.n_ref + other.n_ref,
                                                 self.n_conv + other.n_conv)

    def result(self) -> dict[str, float]:
        return {
            "recall": self.matched / self.n_ref if self.n_ref else 1.0,
            "precision": self.matched / self.n_conv if self.n_conv else (1.0 if self.n_ref == 0 else 0.0),
            "reference_detections": self.n_ref,
            "converted_detections": self.n_conv,
        }


def agreement(reference: list[Detections], converted: list[Detections], iou: float = 0.5) -> dict[str, float]:
    """Recall and precision of the converted model's detections against the float model's, same class, IoU 0.5."""
    acc = AgreementAcc()
    for ref, conv in zip(reference, converted, strict=True):
        acc.add(ref, conv, iou)
    return acc.result()


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
    # the first detection reaching each of the 101 recall points (recall never falls, so a binary search finds it)
    hit = np.searchsorted(recall, np.linspace(0, 1, 101), side="left")
    return float(np.sum(precision[hit[hit < recall.size]])) / 101


#: COCO's IoU thresholds of mAP@0.5:0.95, as pycocotools spells them (linspace: 0.6499999999999999, not 0.65)
COCO_IOUS = tuple(float(t) for t in np.linspace(0.5, 0.95, 10))
#: COCO's detections per image and class
COCO_MAX_DETS = 100


@dataclass
class APAcc:
    """mAP's evidence, image by image: per detection kept for a class (each image's best ``max_dets`` of it, best
    first), its class, score and whether it is a true positive at each IoU threshold; ground-truth counts per
    class. One compact record per detection, as COCO's own evaluation keeps, in image order: shards merged in
    image order give exactly the single-pass records, so the same AP."""

    num_classes: int
    ious: tuple[float, ...] = (0.5,)
    max_dets: int | None = None
    classes: list[np.ndarray] = field(default_factory=list)
    scores: list[np.ndarray] = field(default_factory=list)
    tp: list[np.ndarray] = field(default_factory=list)  # [K, len(ious)] bool per image
    n_gt: np.ndarray | None = None
    # which image each record came from, and each image's ground-truth count per class: what resampling the
    # images (drop_interval's bootstrap) needs
    image: list[np.ndarray] = field(default_factory=list)
    gt: list[np.ndarray] = field(default_factory=list)  # [images, num_classes] counts
    images: int = 0

    def add(self, det: Detections, gt_boxes: np.ndarray, gt_classes: np.ndarray) -> None:
        if self.n_gt is None:
            self.n_gt = np.zeros(self.num_classes, np.int64)
        counts = np.bincount(gt_classes.astype(np.int64), minlength=self.num_classes)[:self.num_classes]
        self.n_gt += counts
        self.gt.append(counts[None].astype(np.int32))
        order = np.argsort(-det.scores, kind="stable")
        for c in np.unique(det.classes).astype(np.int64):
            sel = order[det.classes[order] == c][:self.max_dets]
            g = gt_classes == c
            self.image.append(np.full(len(sel), self.images, np.int64))
            self.classes.append(np.full(len(sel), c, np.int64))
            self.scores.append(det.scores[sel])
            self.tp.append(np.stack([match(det.boxes[sel], det.scores[sel], det.classes[sel], gt_boxes[g],
                                           gt_classes[g], iou) for iou in self.ious], axis=1))
        self.images += 1

    def merge(self, other: APAcc) -> None:
        """``other`` holds the images that come after this one's; the records are compacted to one array each."""
        shifted = [i + self.images for i in other.image]
        for name, theirs in (("classes", other.classes), ("scores", other.scores), ("tp", other.tp),
                             ("image", shifted), ("gt", other.gt)):
            parts = getattr(self, name) + theirs
            setattr(self, name, [np.concatenate(parts)] if parts else [])
        self.images += other.images
        if other.n_gt is not None:
            self.n_gt = other.n_gt.copy() if self.n_gt is None else self.n_gt + other.n_gt

    def records(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Every record as one array each: class, score, true positive per IoU threshold, image."""
        return (np.concatenate(self.classes) if self.classes else np.zeros(0, np.int64),
                np.concatenate(self.scores) if self.scores else np.zeros(0),
                np.concatenate(self.tp) if self.tp else np.zeros((0, len(self.ious)), bool),
                np.concatenate(self.image) if self.image else np.zeros(0, np.int64))

    def result(self) -> float:
        """mAP averaged over the IoU thresholds and the classes that have ground truth, in percent (points)."""
        if self.n_gt is None:
            return float("nan")
        classes, scores, tp, _ = self.records()
        per_iou = []
        for t in range(len(self.ious)):
            aps = [average_precision(tp[classes == c, t], scores[classes == c], int(self.n_gt[c]))
                   for c in range(self.num_classes) if self.n_gt[c]]
            if aps:
                per_iou.append(np.mean(aps))
        return float(100 * np.mean(per_iou)) if per_iou else float("nan")


class _Weighted:
    """One accumulator's records sorted once per class (best score first), so that mAP with per-image weights (a
    bootstrap resample: how often each image was drawn) is a few cumulative sums per class."""

    def __init__(self, acc: APAcc) -> None:
        classes, scores, tp, image = acc.records()
        self.gt = np.concatenate(acc.gt) if acc.gt else np.zeros((0, acc.num_classes), np.int32)
        self.per_class = {}
        for c in np.nonzero(self.gt.sum(0))[0]:
            sel = np.nonzero(classes == c)[0]
            order = sel[np.argsort(-scores[sel], kind="stable")]
            self.per_class[int(c)] = (image[order], tp[order].astype(np.float64))

    def map(self, w: np.ndarray) -> float:
        """mAP in points with image ``i`` counted ``w[i]`` times (classes without ground truth left out)."""
        n_gt = w @ self.gt
        points = np.linspace(0, 1, 101)
        per_class = []
        for c, (image, tp) in self.per_class.items():
            if n_gt[c] == 0:
                continue
            wk = w[image].astype(np.float64)
            ctp = np.cumsum(tp * wk[:, None], axis=0)
            precision = ctp / np.maximum(np.cumsum(wk), 1e-12)[:, None]
            precision = np.maximum.accumulate(precision[::-1], axis=0)[::-1]
            recall = ctp / n_gt[c]
            aps = []
            for t in range(tp.shape[1]):
                hit = np.searchsorted(recall[:, t], points, side="left")
                aps.append(np.sum(precision[hit[hit < len(wk)], t]) / 101)
            per_class.append(aps)
        return float(100 * np.mean(per_class)) if per_class else float("nan")


def drop_interval(ref: APAcc, got: APAcc, level: float = 0.9, seed: int = 0) -> tuple[float, float] | None:
    """The ``level`` interval of the mAP drop (``ref`` minus ``got``, points) by a paired bootstrap over images:
    both models' evidence on the same resampled images. On a few dozen images a drop of a point can be noise: the
    interval says how small a drop these images can tell from none. None when the two saw different images."""
    if ref.images != got.images:
        return None
    a, b = _Weighted(ref), _Weighted(got)
    return bootstrap_interval(ref.images, lambda w: a.map(w) - b.map(w), level, seed)


def mean_ap(detections: list[Detections], gt_boxes: list[np.ndarray], gt_classes: list[np.ndarray],
            num_classes: int, ious: tuple[float, ...] = (0.5,), max_dets: int | None = None) -> float:
    """mAP averaged over the IoU thresholds ``ious`` and the classes that have ground truth, in percent (points);
    ``max_dets`` keeps each image's best detections of each class only (COCO: 100)."""
    acc = APAcc(num_classes, ious, max_dets)
    for det, gb, gc in zip(detections, gt_boxes, gt_classes, strict=True):
        acc.add(det, gb, gc)
    return acc.result()


def map50_acc(num_classes: int) -> APAcc:
    """The accumulator of :func:`map50`."""
    return APAcc(num_classes)


def map50_95_acc(num_classes: int) -> APAcc:
    """The accumulator of :func:`map50_95`."""
    return APAcc(num_classes, COCO_IOUS, COCO_MAX_DETS)


def map50(detections: list[Detections], gt_boxes: list[np.ndarray], gt_classes: list[np.ndarray],
          num_classes: int) -> float:
    """mAP@0.5 over the classes that have ground truth, in percent (points)."""
    return mean_ap(detections, gt_boxes, gt_classes, num_classes)


def map50_95(detections: list[Detections], gt_boxes: list[np.ndarray], gt_classes: list[np.ndarray],
             num_classes: int) -> float:
    """COCO's mAP@0.5:0.95 (10 IoU thresholds, 100 detections per image and class), in percent (points)."""
    return mean_ap(detections, gt_boxes, gt_classes, num_classes, COCO_IOUS, COCO_MAX_DETS)
