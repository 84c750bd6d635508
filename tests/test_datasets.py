"""The three dataset layouts yield the same images and boxes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mobilekit.data.datasets import list_dataset, load_image
from mobilekit.errors import DataError


def test_coco_json_matches_yolo_labels(shapes_dataset, tmp_path):
    yolo = list_dataset(shapes_dataset, "yolo", None, 10)
    images, anns = [], []
    for i, rec in enumerate(yolo):
        h, w = load_image(rec.path).shape[:2]
        images.append({"id": 100 + i, "file_name": rec.path.name, "width": w, "height": h})
        for box, cls in zip(rec.boxes, rec.classes, strict=True):
            x0, y0, x1, y1 = box.tolist()
            # sparse COCO-style category ids (1, 3, 7) must map to contiguous 0, 1, 2
            anns.append({"id": len(anns), "image_id": 100 + i, "category_id": [1, 3, 7][cls],
                         "bbox": [x0, y0, x1 - x0, y1 - y0], "iscrowd": 0})
    ann_file = tmp_path / "instances.json"
    ann_file.write_text(json.dumps({"images": images, "annotations": anns,
                                    "categories": [{"id": k, "name": str(k)} for k in (7, 1, 3)]}))
    coco = list_dataset(shapes_dataset, "coco", ann_file, 10)
    assert [r.path for r in coco] == [r.path for r in yolo]
    for a, b in zip(coco, yolo, strict=True):
        assert np.allclose(a.boxes, b.boxes, atol=1e-3) and a.classes.tolist() == b.classes.tolist()


def test_bad_coco_json(tmp_path, shapes_dataset):
    bad = tmp_path / "x.json"
    bad.write_text("{not json")
    with pytest.raises(DataError, match="not a COCO"):
        list_dataset(shapes_dataset, "coco", bad, 5)
    missing = tmp_path / "y.json"
    missing.write_text(json.dumps({"images": [{"id": 1, "file_name": "gone.jpg"}], "annotations": [],
                                   "categories": []}))
    with pytest.raises(DataError, match="missing"):
        list_dataset(shapes_dataset, "coco", missing, 5)


def test_yolo_background_image_without_label_file(tmp_path):
    from PIL import Image

    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    Image.new("RGB", (20, 10)).save(tmp_path / "images" / "bg.png")
    rec = list_dataset(tmp_path / "images", "yolo", None, 5)[0]
    assert rec.labelled and rec.boxes.shape == (0, 4)
