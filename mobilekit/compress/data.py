"""The images compression trains and measures on: the calibration set (or ``compression.distill.images``) for
fine-tuning, the evaluation set (or the calibration set) for the task metric.

Classifier labels come from a folder-per-class layout (``images/<label>/*.jpg``, label names as in the labels file);
detector ground truth from YOLO or COCO annotations (used both to score the model and, on the training images, as
a fine-tuning loss beside distillation). Without them the stages still run: distillation needs no
labels, and the metric becomes agreement with the original model.
"""

from __future__ import annotations

import numpy as np

from mobilekit.compress.measure import EvalSet
from mobilekit.compress.truth import DetectionTruth
from mobilekit.config import Config, DataSettings
from mobilekit.contract import Contract
from mobilekit.data.datasets import ImageRecord, list_dataset, load_image
from mobilekit.data.preprocess import letterbox, normalize

Labels = np.ndarray | DetectionTruth | None  # class ids per image, or boxes per image, or nothing known


def _records(cfg: Config, ds: DataSettings, count: int) -> list[ImageRecord]:
    ann = cfg.resolve(ds.annotations) if ds.annotations else None
    return list_dataset(cfg.resolve(ds.images), ds.format, ann, count)


def class_labels(records: list[ImageRecord], contract: Contract) -> np.ndarray | None:
    """Each image's class id from its folder (``<label>/image.jpg``), or None when any folder is not a label."""
    index = {name: i for i, name in enumerate(contract.labels)}
    found = [index.get(r.path.parent.name) for r in records]
    return None if any(f is None for f in found) else np.asarray(found, np.int64)


def _canvases(records: list[ImageRecord], contract: Contract) -> tuple[list[np.ndarray], list]:
    inp = contract.input
    out = [letterbox(load_image(r.path), inp.height, inp.width, inp.resize, inp.pad_value) for r in records]
    return [c for c, _ in out], [p for _, p in out]


def _detection_truth(records: list[ImageRecord], plans: list) -> DetectionTruth | None:
    if not records or not all(r.labelled for r in records):
        return None
    empty = np.zeros((0, 4))
    return DetectionTruth([p.to_input(r.boxes if r.boxes is not None else empty) for r, p in zip(records, plans,
                                                                                                  strict=True)],
                          [np.asarray(r.classes if r.classes is not None else [], np.int64) for r in records])


def training_set(cfg: Config, contract: Contract) -> tuple[np.ndarray, Labels]:
    """Normalized training images and what is known of them: class ids (classifier), boxes (detector), or None."""
    ds = cfg.compression.distill.images or cfg.calibration
    records = _records(cfg, ds, ds.count)
    canvases, plans = _canvases(records, contract)
    inp = contract.input
    x = np.concatenate([normalize(c, inp.scale, inp.offset, inp.color, inp.layout) for c in canvases])
    if contract.task == "classification":
        return x, class_labels(records, contract)
    return x, _detection_truth(records, plans)


def evaluation_set(cfg: Config, contract: Contract) -> EvalSet:
    ds = cfg.evaluation or cfg.calibration
    records = _records(cfg, ds, max(cfg.parity.images, 32))
    canvases, plans = _canvases(records, contract)
    calib, _ = _canvases(_records(cfg, cfg.calibration, cfg.calibration.count), contract)
    detection = contract.task == "detection"
    labelled = detection and all(r.labelled for r in records)
    return EvalSet(canvases, plans,
                   [r.boxes for r in records] if labelled else None,
                   [r.classes for r in records] if labelled else None,
                   None if detection else class_labels(records, contract), calib)
