"""The built-in example project: a shapes data set, a detector trained on it, and its ``mobilekit.yaml``.

Made once in a work directory and reused, so ``mobilekit example`` costs the training only the first time.
"""

from __future__ import annotations

from pathlib import Path

from mobilekit.example import shapes, train

CONFIG = """\
# mobilekit.yaml for the built-in shapes detector (YOLO-style head, boxes + scores concatenated)
model: model/shapes_yolo.keras
name: ShapesDetector
task: detection
labels: labels.txt
input:
  normalization: {{scale: 0.00392156862745098, offset: 0.0}}
  resize: letterbox
  pad_value: 114
detection:
  head: yolo
  box_format: cxcywh
  box_units: pixels
  score_threshold: 0.25
  iou_threshold: 0.45
  max_detections: 20
calibration:
  images: data/calibration/images
  format: yolo
  count: {calibration}
evaluation:
  images: data/evaluation/images
  format: yolo
  count: 64
parity:
  images: 64
  # this detector has 0.1 M parameters: 6-bit palettized, it loses 0-2.2 mAP@0.5 points on these 64 images
  # depending on the CPU it trained on (measured); release models are larger and lose less, keep 2 there
  max_map50_drop: 4.0
"""


def make_example(workdir: Path, train_images: int = 1200, epochs: int = 12, calibration: int = 100) -> Path:
    """Create (or reuse) the example project; returns the config path."""
    workdir.mkdir(parents=True, exist_ok=True)
    cfg = workdir / "mobilekit.yaml"
    model = workdir / "model" / "shapes_yolo.keras"
    if not (workdir / "data" / "calibration" / "images").is_dir():
        shapes.write_yolo_dataset(workdir / "data" / "calibration", shapes.make_images(calibration, seed=1))
        shapes.write_yolo_dataset(workdir / "data" / "evaluation", shapes.make_images(64, seed=2))
    if not model.is_file():
        m = train.train_yolo(shapes.make_images(train_images, seed=0), epochs=epochs)
        train.save(m, model)
    (workdir / "labels.txt").write_text("\n".join(shapes.LABELS) + "\n")
    cfg.write_text(CONFIG.format(calibration=calibration))
    return cfg
