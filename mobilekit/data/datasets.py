"""Find images (and their boxes, when labelled) in a plain folder, a YOLO dataset or a COCO json.

Listing is sorted and truncated deterministically, so two builds calibrate on the same images in the same order.
Ground-truth boxes are returned in original-image pixels, ``xyxy``; class ids index the contract's labels.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from mobilekit.errors import DataError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff"}


@dataclass
class ImageRecord:
    path: Path
    boxes: np.ndarray | None = None  # [K, 4] xyxy, original pixels
    classes: np.ndarray | None = None  # [K] int
    labelled: bool = field(default=False)


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def list_folder(folder: Path) -> list[ImageRecord]:
    if not folder.exists():
        raise DataError("image folder not found", path=folder, fix="point calibration.images at a folder of images")
    if not folder.is_dir():
        raise DataError("is a file, not a folder", path=folder, fix="point calibration.images at a folder of images")
    files = _image_files(folder)
    if not files:
        anything = any(p.is_file() for p in folder.rglob("*"))
        what = "holds no image files (.jpg, .png, ...)" if anything else "is empty"
        raise DataError(f"image folder {what}", path=folder, fix="add representative images from your app's camera")
    return [ImageRecord(p) for p in files]


def _yolo_label_path(image: Path) -> Path:
    parts = list(image.parts)
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            break
    return Path(*parts).with_suffix(".txt")


def list_yolo(folder: Path) -> list[ImageRecord]:
    """YOLO (darknet) layout: ``images/.../x.jpg`` with ``labels/.../x.txt`` of ``cls cx cy w h`` (normalised)."""
    records = list_folder(folder)
    for rec in records:
        label = _yolo_label_path(rec.path)
        rec.labelled = True  # an image without a label file is a background image, by YOLO convention
        rows: list[list[float]] = []
        if label.is_file():
            for n, line in enumerate(label.read_text().splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    vals = [float(v) for v in line.split()]
                except ValueError:
                    raise DataError(f"line {n} is not 'class cx cy w h'", path=label,
                                    fix="fix or remove the line") from None
                if len(vals) < 5:
                    raise DataError(f"line {n} has {len(vals)} numbers, expected 5", path=label,
                                    fix="write 'class cx cy w h' per object")
                rows.append(vals[:5])
        arr = np.asarray(rows, dtype=np.float64).reshape(-1, 5)
        w, h = image_size(rec.path)
        cx, cy, bw, bh = arr[:, 1] * w, arr[:, 2] * h, arr[:, 3] * w, arr[:, 4] * h
        rec.boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
        rec.classes = arr[:, 0].astype(np.int64)
    return records


def list_coco(folder: Path, annotations: Path) -> list[ImageRecord]:
    """COCO instances json; category ids are mapped to 0..C-1 in ascending id order (the usual contiguous map)."""
    if not annotations.is_file():
        raise DataError("COCO annotations file not found", path=annotations, fix="name your instances_*.json")
    try:
        data = json.loads(annotations.read_text(encoding="utf-8"))
        cats = sorted(c["id"] for c in data["categories"])
        images = {im["id"]: im for im in data["images"]}
        anns = data.get("annotations", [])
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as e:
        raise DataError(f"not a COCO instances json ({e.__class__.__name__})", path=annotations,
                        fix="export the dataset in COCO format with images, annotations and categories") from None
    cat_index = {cid: i for i, cid in enumerate(cats)}
    per_image: dict[int, list] = {i: [] for i in images}
    for a in anns:
        if a.get("iscrowd", 0):
            continue
        per_image.setdefault(a["image_id"], []).append(a)
    records = []
    for img_id in sorted(images, key=lambda i: images[i]["file_name"]):
        path = folder / images[img_id]["file_name"]
        rows = per_image.get(img_id, [])
        boxes = np.asarray([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]]
                            for a in rows], dtype=np.float64).reshape(-1, 4)
        classes = np.asarray([cat_index[a["category_id"]] for a in rows], dtype=np.int64)
        records.append(ImageRecord(path, boxes, classes, labelled=True))
    if not records:
        raise DataError("COCO json lists no images", path=annotations, fix="check the 'images' section")
    missing = [r.path for r in records if not r.path.is_file()]
    if missing:
        raise DataError(f"{len(missing)} image(s) named in the json are missing, e.g. {missing[0].name}",
                        path=folder, fix="point images at the folder holding the COCO file_names")
    return records


def list_dataset(folder: Path, fmt: str, annotations: Path | None, count: int) -> list[ImageRecord]:
    lister = {
        "folder": lambda: list_folder(folder),
        "yolo": lambda: list_yolo(folder),
        "coco": lambda: list_coco(folder, annotations or Path("")),
    }[fmt]
    return lister()[:count]


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) as displayed, from the header and EXIF orientation only (no pixel decoding)."""
    try:
        with Image.open(path) as im:
            w, h = im.size
            rotated = im.getexif().get(0x0112) in (5, 6, 7, 8)  # orientations that swap width and height
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise DataError(f"cannot decode image ({e.__class__.__name__})", path=path,
                        fix="remove the file or replace it with a valid image") from None
    return (h, w) if rotated else (w, h)


def load_image(path: Path) -> np.ndarray:
    """Decode to ``uint8 [H, W, 3]`` RGB, honouring EXIF orientation (phones rotate by EXIF, not by pixels)."""
    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                # Composite on white, as a phone's image decoder shows a transparent PNG; dropping alpha would
                # expose whatever colour the encoder left under transparent pixels.
                im = im.convert("RGBA")
                bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
                im = Image.alpha_composite(bg, im)
            arr = np.asarray(im.convert("RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise DataError(f"cannot decode image ({e.__class__.__name__})", path=path,
                        fix="remove the file or replace it with a valid image") from None
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise DataError("image has no pixels", path=path, fix="remove the file")
    return arr
