"""Bench: mobilekit's int8 against plain TFLiteConverter PTQ, on held-out images, in one run per model.

For each model the same calibration images go to

- ``plain``: ``TFLiteConverter`` with ``Optimize.DEFAULT``, a representative dataset and int8 I/O, what a user
  writes by hand (min-max calibration);
- ``mobilekit``: the build's full-int8 artifact with its default calibration (``quantization.calibration``);
- ``mobilekit mixed``: the separate selective-precision artifact, when the build made one (``quantization.max_drop``
  set below what full-int8 reaches);

and each is measured by the build's own parity stage on images the calibration never saw: mAP@0.5 and COCO
mAP@0.5:0.95 against the labels for detectors, top-1 accuracy against the labels for the classifier, plus the
file size and the LiteRT XNNPACK CPU latency (2 threads, median). Models:

- ``example``: the built-in shapes detector (``mobilekit example``'s project; calibration seed 1, evaluation seed 2);
- ``digits``: keras.applications MobileNetV2 trained here on scikit-learn's digits (1,400 train/calibration, 397
  held out);
- ``coco128``: the coco128 MobileNetV2-YOLO detector trained on the first 96 images and evaluated on the last 32;
- ``outlier``: a hard case, the digits classifier with one depthwise channel's BatchNorm scaled 40x and the next
  layer scaled down to match (the float model is unchanged; min-max int8 loses that layer's resolution).

    python bench/quantization.py --work /tmp/mk-bench-q example digits coco128 outlier
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent))

ROOT = Path(__file__).resolve().parents[1]
COCO = ROOT.parent / "shared" / "data" / "coco128"
HELD_OUT = 32  # coco128: the last 32 images (sorted by name) are evaluation, the first 96 train and calibrate


def coco_split(work: Path) -> tuple[Path, Path]:
    """coco128 as two YOLO folders of symlinks: 96 training/calibration images and 32 held out."""
    images = sorted((COCO / "images" / "train2017").iterdir())
    for name, part in (("train", images[:-HELD_OUT]), ("held_out", images[-HELD_OUT:])):
        for sub in ("images", "labels"):
            (work / name / sub / "train2017").mkdir(parents=True, exist_ok=True)
        for p in part:
            for src, dst in ((p, work / name / "images" / "train2017" / p.name),
                             (COCO / "labels" / "train2017" / (p.stem + ".txt"),
                              work / name / "labels" / "train2017" / (p.stem + ".txt"))):
                if src.exists() and not dst.exists():
                    dst.symlink_to(src)
    return work / "train" / "images" / "train2017", work / "held_out" / "images" / "train2017"


def train_coco(work: Path, minutes: float) -> Path:
    """bench/coco128_detector.py's detector and recipe, trained on the 96 training images only."""
    import keras
    from coco128_detector import SIZE, STRIDE, build_model, recalibrate_bn

    from mobilekit.data.datasets import list_yolo, load_image
    from mobilekit.data.preprocess import letterbox, normalize
    from mobilekit.example.train import yolo_loss, yolo_targets

    path = work / "coco128_96.keras"
    if path.exists():
        return path
    train_dir, _ = coco_split(work)
    c = len([n for n in (COCO / "names.txt").read_text().split("\n") if n.strip()])
    xs, boxes, classes = [], [], []
    for r in list_yolo(train_dir):
        canvas, plan = letterbox(load_image(r.path), SIZE, SIZE, "letterbox", 114)
        xs.append(normalize(canvas, [1 / 127.5] * 3, [-1.0] * 3, "RGB", "NHWC")[0])
        boxes.append(plan.to_input(r.boxes))
        classes.append(r.classes)
    x, y = np.stack(xs), yolo_targets(boxes, classes, c, SIZE, STRIDE)
    xf, yf = x[:, :, ::-1], y.reshape(len(y), SIZE // STRIDE, SIZE // STRIDE, -1)[:, :, ::-1].reshape(y.shape).copy()
    yf[..., 0] = np.where(yf[..., -1] > 0, 1.0 - yf[..., 0], 0.0)
    x2, y2 = np.concatenate([x, xf]), np.concatenate([y, yf])
    keras.utils.set_random_seed(0)
    model = build_model(c)
    model.compile(keras.optimizers.Adam(2e-3), loss=yolo_loss(keras, c, SIZE))
    start, epochs = time.time(), 0
    while time.time() < start + minutes * 60:
        if time.time() > start + 0.7 * minutes * 60:
            model.optimizer.learning_rate.assign(4e-4)
        h = model.fit(x2, y2, batch_size=16, epochs=1, verbose=0, shuffle=True)
        epochs += 1
        if epochs % 10 == 0:
            print(f"  epoch {epochs}: loss {h.history['loss'][-1]:.3f}", flush=True)
    raw = work / "coco128_96_raw.keras"
    model.save(raw)
    model = keras.saving.load_model(raw, compile=False)
    recalibrate_bn(model, x2)
    top = float(np.max(np.asarray(model(x[:16], training=False))[..., 4:]))
    print(f"trained {epochs} epochs; highest class score on 16 training images after BatchNorm re-estimation: "
          f"{top:.3f}", flush=True)
    model.save(path)
    return path


def train_digits(work: Path, minutes: float) -> tuple[Path, Path, Path]:
    from compression import digits_folders, train_classifier

    train_dir, test_dir, x, y, _, _ = digits_folders(work / "digits")
    path = work / "digits_mnv2.keras"
    if not path.exists():
        train_classifier(x, y, minutes, path)
    return path, train_dir, test_dir


def prepare(work: Path, which: list[str], minutes: float) -> None:
    """Train (once; cached in ``work``) every model the bench needs."""
    if "coco128" in which:
        train_coco(work, minutes)
    if "digits" in which or "outlier" in which:
        train_digits(work, minutes / 2)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="+", choices=["example", "digits", "coco128", "outlier"])
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--train-minutes", type=float, default=8.0)
    ap.add_argument("--prepare-only", action="store_true")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    prepare(args.work, args.models, args.train_minutes)
    if args.prepare_only:
        return
    rows: list[dict[str, Any]] = []
    for name in args.models:
        rows.extend(CASES[name](args.work))
    print(json.dumps(rows))


CASES: dict[str, Any] = {}

if __name__ == "__main__":
    main()
