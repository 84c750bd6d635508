"""A procedural "shapes" data set: circles, squares and triangles on textured backgrounds.

It lets ``mobilekit example`` and the tests train real (small) detectors and classifiers in seconds, on any
machine, with no download: the same pipeline that ships a user's model then runs on a model that really detects.
Images come in assorted sizes and aspect ratios so letterboxing is exercised, and are written as a YOLO-format
dataset (``images/`` + ``labels/``), the layout users bring.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

LABELS = ["circle", "square", "triangle"]
SIZES = [(96, 96), (120, 90), (90, 128), (160, 120), (128, 128)]  # (width, height)


@dataclass
class ShapeImage:
    pixels: np.ndarray  # uint8 [H, W, 3]
    boxes: np.ndarray  # [K, 4] xyxy pixels
    classes: np.ndarray  # [K]


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    base = rng.integers(0, 256, 3)
    other = rng.integers(0, 256, 3)
    t = np.linspace(0, 1, w)[None, :, None] if rng.random() < 0.5 else np.linspace(0, 1, h)[:, None, None]
    img = base * (1 - t) + other * t + rng.normal(0, 12, (h, w, 3))
    return np.broadcast_to(img, (h, w, 3)).copy()


def _draw(img: np.ndarray, cls: int, x0: int, y0: int, s: int, color: np.ndarray) -> None:
    h, w = img.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    if cls == 0:
        r = s / 2
        mask = (xx - x0 - r + 0.5) ** 2 + (yy - y0 - r + 0.5) ** 2 <= r * r
    elif cls == 1:
        mask = (xx >= x0) & (xx < x0 + s) & (yy >= y0) & (yy < y0 + s)
    else:
        # isosceles triangle, apex at top centre
        rel_y = (yy - y0) / max(s, 1)
        half = rel_y * s / 2
        cx = x0 + s / 2
        mask = (yy >= y0) & (yy < y0 + s) & (np.abs(xx + 0.5 - cx) <= half)
    img[mask] = color


def make_image(rng: np.random.Generator, max_objects: int = 3) -> ShapeImage:
    w, h = SIZES[rng.integers(len(SIZES))]
    img = _background(rng, h, w)
    boxes, classes = [], []
    for _ in range(rng.integers(1, max_objects + 1)):
        s = int(rng.integers(int(0.22 * min(w, h)), int(0.5 * min(w, h))))
        for _attempt in range(10):
            x0, y0 = int(rng.integers(0, w - s)), int(rng.integers(0, h - s))
            box = np.array([x0, y0, x0 + s, y0 + s], dtype=np.float64)
            if all(_overlap(box, b) < 0.1 for b in boxes):
                break
        else:
            continue
        cls = int(rng.integers(len(LABELS)))
        color = rng.integers(0, 256, 3)
        while np.abs(color - img[y0:y0 + s, x0:x0 + s].mean(axis=(0, 1))).sum() < 150:
            color = rng.integers(0, 256, 3)
        _draw(img, cls, x0, y0, s, color)
        boxes.append(box)
        classes.append(cls)
    pixels = np.clip(img, 0, 255).astype(np.uint8)
    return ShapeImage(pixels, np.asarray(boxes, np.float64).reshape(-1, 4), np.asarray(classes, np.int64))


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def make_images(n: int, seed: int, max_objects: int = 3) -> list[ShapeImage]:
    rng = np.random.default_rng(seed)
    return [make_image(rng, max_objects) for _ in range(n)]


def write_yolo_dataset(root: Path, images: list[ShapeImage]) -> Path:
    """Write ``root/images/*.png`` and ``root/labels/*.txt``; returns the images folder."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "labels").mkdir(parents=True, exist_ok=True)
    for i, im in enumerate(images):
        h, w = im.pixels.shape[:2]
        Image.fromarray(im.pixels).save(root / "images" / f"{i:05d}.png")
        rows = []
        for (x0, y0, x1, y1), c in zip(im.boxes, im.classes, strict=True):
            rows.append(f"{c} {(x0 + x1) / 2 / w:.6f} {(y0 + y1) / 2 / h:.6f} {(x1 - x0) / w:.6f} {(y1 - y0) / h:.6f}")
        (root / "labels" / f"{i:05d}.txt").write_text("\n".join(rows) + "\n")
    return root / "images"
