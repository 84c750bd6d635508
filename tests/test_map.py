"""mobilekit's mAP against pycocotools, the implementation users compare exporters with, on the same detections."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest

from mobilekit.parity.detection import map50, map50_95
from mobilekit.postprocess import Detections


def _scene(rng: np.random.Generator, classes: int, n_gt: int, n_det: int) -> tuple[Detections, np.ndarray, np.ndarray]:
    """One image: ground truth, and detections that are jittered copies of it (some close, some far) plus noise."""
    xy = rng.uniform(0, 400, (n_gt, 2))
    gt = np.concatenate([xy, xy + rng.uniform(8, 120, (n_gt, 2))], axis=1)
    gt_cls = rng.integers(0, classes, n_gt)
    src = rng.integers(0, n_gt, n_det)
    jitter = rng.normal(0, rng.choice([1.0, 6.0, 20.0], (n_det, 1)), (n_det, 4))
    boxes = gt[src] + jitter
    boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 1)
    cls = np.where(rng.uniform(size=n_det) < 0.85, gt_cls[src], rng.integers(0, classes, n_det))
    return Detections(boxes, rng.uniform(0.05, 1, n_det).round(3), cls), gt, gt_cls


def _coco(dets: list[Detections], gts: list[tuple[np.ndarray, np.ndarray]], classes: int) -> tuple[float, float]:
    pytest.importorskip("pycocotools")
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    def xywh(b: np.ndarray) -> list[float]:
        return [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])]

    images = [{"id": i, "width": 640, "height": 640} for i in range(len(gts))]
    anns = []
    for i, (boxes, cls) in enumerate(gts):
        for b, c in zip(boxes, cls, strict=True):
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": int(c), "bbox": xywh(b), "iscrowd": 0,
                         "area": float((b[2] - b[0]) * (b[3] - b[1]))})
    truth = COCO()
    truth.dataset = {"images": images, "annotations": anns, "categories": [{"id": c} for c in range(classes)]}
    with contextlib.redirect_stdout(io.StringIO()):
        truth.createIndex()
        results = truth.loadRes([{"image_id": i, "category_id": int(c), "bbox": xywh(b), "score": float(s)}
                                 for i, d in enumerate(dets) for b, c, s in zip(d.boxes, d.classes, d.scores,
                                                                                strict=True)])
        ev = COCOeval(truth, results, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return 100 * ev.stats[0], 100 * ev.stats[1]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_map_matches_pycocotools(seed):
    """mAP@0.5:0.95 and mAP@0.5 equal COCOeval's (area 'all', 100 detections per image and class) on random scenes:
    several classes, boxes of every overlap, wrong classes, tied scores, and an image with over 100 of one class."""
    rng = np.random.default_rng(seed)
    classes = 4
    scenes = [_scene(rng, classes, int(rng.integers(1, 12)), int(rng.integers(0, 30))) for _ in range(12)]
    scenes.append(_scene(rng, 1, 10, 150))  # 150 detections of class 0: COCO keeps the 100 best
    dets = [s[0] for s in scenes]
    gts = [(s[1], s[2]) for s in scenes]
    want_50_95, want_50 = _coco(dets, gts, classes)
    got_boxes, got_classes = [g[0] for g in gts], [g[1] for g in gts]
    assert map50_95(dets, got_boxes, got_classes, classes) == pytest.approx(want_50_95, abs=1e-6)
    assert 0 < want_50_95 < want_50
    # mobilekit's mAP@0.5 keeps every detection; COCO's 100 per image and class only bite on the crowded image
    crowded = dets[-1]
    best = np.argsort(-crowded.scores, kind="stable")[:100]
    capped = [*dets[:-1], Detections(crowded.boxes[best], crowded.scores[best], crowded.classes[best])]
    assert map50(capped, got_boxes, got_classes, classes) == pytest.approx(want_50, abs=1e-6)


def test_drop_interval_resamples_images_and_survives_sharding():
    """The bootstrap's weighted mAP with every image once is mAP itself; shards merged keep which image each record
    came from (the same interval as one pass); a model against itself has a zero interval; a perturbed model's
    interval holds its drop, and shrinks as images are added."""
    from mobilekit.parity.detection import _Weighted, drop_interval, map50_95_acc

    rng = np.random.default_rng(3)
    classes = 4
    scenes = [_scene(rng, classes, int(rng.integers(1, 12)), int(rng.integers(1, 30))) for _ in range(80)]

    def accs(n: int, jitter: float, shards: int = 1):
        parts = []
        for k in range(shards):
            ref, got = map50_95_acc(classes), map50_95_acc(classes)
            for det, gb, gc in scenes[k * n // shards:(k + 1) * n // shards]:
                ref.add(det, gb, gc)
                moved = Detections(det.boxes + np.random.default_rng(len(det.boxes)).normal(0, jitter,
                                                                                            det.boxes.shape),
                                   det.scores, det.classes)
                got.add(moved, gb, gc)
            parts.append((ref, got))
        ref, got = parts[0]
        for r, g in parts[1:]:
            ref.merge(r)
            got.merge(g)
        return ref, got

    ref, got = accs(80, 3.0)
    assert _Weighted(ref).map(np.ones(80)) == pytest.approx(ref.result(), abs=1e-9)
    assert drop_interval(ref, ref) == (0.0, 0.0)
    lo, hi = drop_interval(ref, got)
    assert lo < ref.result() - got.result() < hi
    assert drop_interval(*accs(80, 3.0, shards=3)) == (lo, hi)
    lo20, hi20 = drop_interval(*accs(20, 3.0))
    assert hi20 - lo20 > hi - lo
