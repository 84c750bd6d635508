"""Bench: per-role int8 cosine of a single-output detector, split by mobilekit vs the raw converter's one scale.

    python bench/split_roles.py [--images 32]

Two single-output heads, each converted to full-integer TFLite twice on the same calibration images:
- a YOLOX-style head (``tests/catalogue.py``: per level ``[box, cls, obj]`` on channels, reshaped to anchors, levels
  concatenated along the anchor axis, a float32 linear Activation last; 320 px, 79 classes + objectness, seeded
  weights), on held-out halves of coco128: the per-level split, on value ranges of an untrained net;
- mobilekit's YOLO fixture trained on the shapes set (decoded pixel boxes next to sigmoid scores, one level), on
  shapes images it never saw: the value ranges of a trained detector;
- **raw**: the TFLite converter on the model as it is: one output, one int8 scale for boxes and scores;
- **split**: mobilekit's split (``models/split.py``): one int8 output per role, each with its own scale.
Each runs on LiteRT (XNNPACK) on the evaluation half; the table gives each role's cosine and SNR against the float
model, next to the float model's own noise floor (the same photos shifted by one grey level).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
COCO = ROOT.parent / "shared" / "data" / "coco128" / "images" / "train2017"
sys.path.insert(0, str(ROOT / "tests"))

import catalogue  # noqa: E402


def _photos(size: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    from PIL import Image

    files = sorted(COCO.glob("*.jpg"))
    imgs = [np.asarray(Image.open(f).convert("RGB").resize((size, size)), np.float32)[None] for f in files]
    return imgs[: len(imgs) // 2], imgs[len(imgs) // 2:]


def _int8(model, calib: list[np.ndarray]) -> bytes:
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    fn = convert_variables_to_constants_v2(tf.function(lambda x: model(x, training=False)).get_concrete_function(
        tf.TensorSpec([1, *model.inputs[0].shape[1:]], tf.float32)))  # frozen, batch 1: as mobilekit serves
    conv = tf.lite.TFLiteConverter.from_concrete_functions([fn])
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([x / 255.0] for x in calib)
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.float32  # the comparison is about the outputs' scales
    conv.inference_output_type = tf.int8
    return conv.convert()


def _run(model: bytes, images: list[np.ndarray]) -> list[list[np.ndarray]]:
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=model)
    it.allocate_tensors()
    inp, outs = it.get_input_details()[0], it.get_output_details()
    results = []
    for x in images:
        it.set_tensor(inp["index"], x / 255.0)
        it.invoke()
        got = []
        for o in sorted(outs, key=lambda o: int(o["shape"][-1] != 4)):  # boxes (4 channels) first
            scale, zero = o["quantization"]
            got.append((it.get_tensor(o["index"]).astype(np.float32) - zero) * scale)
        results.append(got)
    return results


def _metrics(ref: np.ndarray, got: np.ndarray) -> tuple[float, float]:
    a, b = ref.ravel().astype(np.float64), got.ravel().astype(np.float64)
    cos = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-30))
    snr = float(10 * np.log10((a @ a) / max(((a - b) ** 2).sum(), 1e-30)))
    return cos, snr


def main() -> None:
    import keras
    from rich.console import Console
    from rich.table import Table

    from mobilekit.models.split import split_concat

    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=32)
    args = ap.parse_args()
    calib, evaluation = _photos(320)
    calib, evaluation = calib[: args.images], evaluation[: args.images]
    table = Table(title=f"int8 per role vs float, {len(evaluation)} held-out images each (LiteRT XNNPACK)")
    for col in ("head", "role", "range (float)", "raw: one scale", "split: own scale", "float noise floor (±1 grey)"):
        table.add_column(col)
    from PIL import Image

    from mobilekit.example import shapes, train

    held_out = [np.asarray(Image.fromarray(s.pixels).resize((train.SIZE, train.SIZE)), np.float32)[None]
                for s in shapes.make_images(2 * args.images, seed=7)]
    heads = (("YOLOX-style (3 levels, untrained)", lambda: catalogue.yolox_head(classes=79, size=320),
              calib, evaluation),
             ("YOLO fixture (trained)", lambda: train.train_yolo(shapes.make_images(700, seed=0), epochs=8),
              held_out[: args.images], held_out[args.images:]))
    for name, build, calib, evaluation in heads:
        keras.utils.set_random_seed(0)
        model = build()
        split, info = split_concat(model, keras, 2)
        assert split is not None, info
        ref = [np.asarray(model(x / 255.0)) for x in evaluation]
        shifted = [np.asarray(model(np.clip(x + 1, 0, 255) / 255.0)) for x in evaluation]
        raw = [o[0] for o in _run(_int8(model, calib), evaluation)]
        parts = _run(_int8(split, calib), evaluation)  # boxes, then scores
        for r, (role, sl) in enumerate((("boxes", slice(0, 4)), ("scores", slice(4, None)))):
            f = np.concatenate([y[..., sl] for y in ref])
            cells = [_metrics(f, np.concatenate([y[..., sl] for y in raw])),
                     _metrics(f, np.concatenate([p[r] for p in parts])),
                     _metrics(f, np.concatenate([y[..., sl] for y in shifted]))]
            table.add_row(name, role, f"{f.min():.3g} .. {f.max():.3g}",
                          *[f"cos {c:.4f}, {s:.1f} dB" for c, s in cells])
    Console(width=150).print(table)


if __name__ == "__main__":
    main()
