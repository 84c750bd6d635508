"""Bench: every raw head form through ``mobilekit build``: does a correct decode make fp16 and Core ML agree with
float, and what does the split do for int8?

    python bench/head_forms.py [--images 40]

A YOLO detector trained here on the shapes set (seconds) is re-headed into each form mobilekit decodes (the trained
boxes and scores, re-encoded: ``mobilekit/example/train.py``): YOLOv8's DFL bins, ``[box, obj, classes]`` with
decoded boxes, YOLOX raw, YOLOv5 raw, and RetinaNet's multi-level anchors (keras-cv's conventions; torchvision's
with one box and one class map per level, joined in the graph). Each is built twice exactly as a user would (a YAML,
the CLI): from its ``.keras`` file (mobilekit splits the single raw output by role: box channels and score channels
each get an int8 scale) and from a SavedModel export of the same model (a graph mobilekit cannot rewire: one output,
one scale, as the plain converter gives). The table: detection recall / precision against float of fp16 TFLite and
the Core ML emulator, and the int8 model's per-role cosine and detection recall, split vs one scale, on held-out
images.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from helpers import DFL, GRID, RETINA  # noqa: E402  (the forms' detection settings, as the tests use them)

FORMS = {"dfl": DFL, **GRID, **RETINA}
#: forms whose model already outputs boxes and class logits separately: no one-scale twin to compare with
SEPARATE = ("retinanet", "retinanet_levels")


def _build(model: Path, data: Path, labels: Path, detection: dict, images: int, out: Path) -> dict:
    cfg = {"model": str(model), "name": out.name, "task": "detection", "labels": str(labels),
           "input": {"normalization": {"scale": 1 / 255, "offset": 0.0}},
           "detection": {**detection, "score_threshold": 0.2, "max_detections": 20},
           "calibration": {"images": str(data / "calib" / "images"), "format": "yolo", "count": 40},
           "evaluation": {"images": str(data / "eval" / "images"), "format": "yolo"},
           "parity": {"images": images, "enforce": False}, "export": {"fp16": True}, "coreml": {"compression": []}}
    path = out.parent / f"{out.name}.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    res = subprocess.run([sys.executable, "-m", "mobilekit", "build", str(path), "--out", str(out), "--json"],
                         capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"{out.name}: {res.stdout.strip() or res.stderr[-400:]}")
    return json.loads((out / "report" / "parity.json").read_text())


def _one_scale_roles(bundle: Path, model, images: Path) -> dict[str, float]:
    """Per-role cosine of a one-output int8 bundle: its ``predictions`` cut at the box channels, against float."""
    import numpy as np

    from mobilekit.contract import Contract
    from mobilekit.data.datasets import load_image
    from mobilekit.data.preprocess import letterbox, normalize
    from mobilekit.emulate.litert import LiteRTRunner

    contract = Contract.load(bundle / "contract.json")
    art = contract.artifacts["tflite-int8"]
    runner = LiteRTRunner((bundle / art.path).read_bytes(), art, contract)
    box = 4 * contract.head.params.get("reg_max", 1)
    inp = contract.input
    got, ref = [], []
    for f in sorted((images / "images").glob("*.png"))[:40]:
        canvas, _ = letterbox(load_image(f), inp.height, inp.width, inp.resize, inp.pad_value)
        got.append(runner.run(canvas)["predictions"][0])
        ref.append(np.asarray(model(normalize(canvas, inp.scale, inp.offset, inp.color, inp.layout)))[0])
    g, r = np.concatenate(got), np.concatenate(ref)

    def cos(a, b):
        a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
        return round(float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b))), 4)

    return {"boxes": cos(r[:, :box], g[:, :box]), "scores": cos(r[:, box:], g[:, box:])}


def _row(parity: dict) -> dict:
    arts = parity["artifacts"]

    def det(kind: str, kernels: str) -> str:
        d = arts[kind]["resolvers"][kernels]["detection"]
        return f"{d['recall']:.3f} / {d['precision']:.3f}"

    int8 = arts["tflite-int8"]["resolvers"]["xnnpack"]
    return {"fp16": det("tflite-fp16", "xnnpack"), "coreml": det("coreml-fp16", "emulator"),
            "int8_cos": {r: round(m["cosine"], 4) for r, m in int8["tensors"].items()},
            "int8_recall": round(int8["detection"]["recall"], 3)}


def main() -> None:
    import keras
    from rich.console import Console
    from rich.table import Table

    from mobilekit.example import shapes, train

    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=40)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="head-forms-"))
    data = work / "data"
    shapes.write_yolo_dataset(data / "calib", shapes.make_images(60, seed=11))
    shapes.write_yolo_dataset(data / "eval", shapes.make_images(args.images, seed=12))
    labels = work / "labels.txt"
    labels.write_text("\n".join(shapes.LABELS) + "\n")
    trained = train.save(train.train_yolo(shapes.make_images(700, seed=0), epochs=8), work / "yolo.keras")
    table = Table(title=f"Head forms, {args.images} held-out shapes images: agreement with float (recall / precision)"
                        " and int8 per role")
    for col in ("form", "fp16 TFLite", "Core ML fp16", "int8 cosine, split", "int8 cosine, one scale",
                "int8 recall split / one scale"):
        table.add_column(col)
    for form, detection in FORMS.items():
        model = train.yolo_variant(keras.saving.load_model(trained, compile=False), form)
        model.save(work / f"{form}.keras")
        split = _row(_build(work / f"{form}.keras", data, labels, detection, args.images, work / f"{form}-split"))
        if form in SEPARATE:
            one = {"int8_cos": "n/a (separate outputs)", "int8_recall": "n/a"}
        else:
            model.export(str(work / f"{form}_savedmodel"), verbose=False)
            one = _row(_build(work / f"{form}_savedmodel", data, labels, detection, args.images, work / f"{form}-one"))
            one["int8_cos"] = _one_scale_roles(work / f"{form}-one", model, data / "eval")
        table.add_row(form, split["fp16"], split["coreml"], str(split["int8_cos"]), str(one["int8_cos"]),
                      f"{split['int8_recall']} / {one['int8_recall']}")
    Console(width=160).print(table)


if __name__ == "__main__":
    main()
