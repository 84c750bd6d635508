"""A keras.applications classifier with a final softmax (random weights): int8 probability cosine to the float
model, mobilekit (softmax cut out of the int8 graph) side by side with the plain TFLite converter (softmax inside).

    python bench/softmax_cut.py [--arch MobileNetV3Small] [--size 96] [--images 32]

Calibration and evaluation use the coco128 photos (``../shared/data/coco128``), split in two halves.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
COCO = ROOT.parent / "shared" / "data" / "coco128" / "images" / "train2017"
TIE = 0.01  # as mobilekit.parity.run.TIE: a log-probability gap


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-30))


def plain_int8(model, calib: np.ndarray, evals: np.ndarray) -> tuple[float, float, int]:
    """The plain converter, softmax inside: probability cosine and top-1 agreement with the float model."""
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    fn = convert_variables_to_constants_v2(tf.function(lambda x: model(x, training=False)).get_concrete_function(
        tf.TensorSpec((1, *calib.shape[1:]), tf.float32)))
    conv = tf.lite.TFLiteConverter.from_concrete_functions([fn])
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([x[None]] for x in calib)
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = conv.inference_output_type = tf.int8
    interp = Interpreter(model_content=conv.convert())
    interp.allocate_tensors()
    i, o = interp.get_input_details()[0], interp.get_output_details()[0]
    (si, zi), (so, zo) = i["quantization"], o["quantization"]
    got, want = [], []
    for x in evals:
        q = np.clip(np.round(x / si) + zi, -128, 127).astype(np.int8)[None]
        interp.set_tensor(i["index"], q)
        interp.invoke()
        got.append((interp.get_tensor(o["index"]).astype(np.float32) - zo) * so)
        want.append(np.asarray(model(x[None])))
    got, want = np.concatenate(got), np.concatenate(want)
    top2 = np.log(np.maximum(np.sort(want, axis=1)[:, -2:], 1e-30))
    decided = top2[:, 1] - top2[:, 0] >= TIE  # mobilekit's rule: float near-ties decide nothing...
    if 2 * decided.sum() < len(decided):  # ...unless they are the majority: then every image counts
        decided[:] = True
    agree = (got.argmax(1) == want.argmax(1))[decided]
    return _cosine(got, want), float(agree.mean()), int((~decided).sum())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="MobileNetV3Small")
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--images", type=int, default=32)
    args = ap.parse_args()
    import keras

    from mobilekit.data.datasets import load_image
    from mobilekit.data.preprocess import letterbox

    keras.utils.set_random_seed(0)
    model = getattr(keras.applications, args.arch)(weights=None, input_shape=(args.size, args.size, 3))
    work = Path(tempfile.mkdtemp(prefix="softmax-cut-"))
    model.save(work / "model.keras")
    photos = sorted(COCO.glob("*.jpg"))
    (work / "labels.txt").write_text("\n".join(f"c{i}" for i in range(model.output.shape[-1])) + "\n")
    half = len(photos) // 2
    for name, part in (("calib", photos[:half]), ("eval", photos[half:half + args.images])):
        (work / name).mkdir()
        for p in part:
            (work / name / p.name).symlink_to(p)
    cfg = {"model": "model.keras", "task": "classification", "labels": "labels.txt",
           "input": {"normalization": {"scale": 1.0, "offset": 0.0}},  # keras.applications rescale inside
           "calibration": {"images": "calib", "count": half}, "evaluation": {"images": "eval"},
           "parity": {"images": args.images, "enforce": False}, "coreml": {"enabled": False},
           "export": {"fp16": False}}
    (work / "mobilekit.yaml").write_text(yaml.safe_dump(cfg))
    res = subprocess.run([sys.executable, "-m", "mobilekit", "build", str(work / "mobilekit.yaml"), "--out",
                          str(work / "bundle"), "--json"], capture_output=True, text=True)
    out = json.loads(res.stdout)
    parity = json.loads((work / "bundle" / "report" / "parity.json").read_text()) if out.get("ok") else None

    def canvases(folder: str) -> np.ndarray:
        return np.stack([letterbox(load_image(p), args.size, args.size, "letterbox", 114)[0]
                         for p in sorted((work / folder).iterdir())]).astype(np.float32)

    rows = [("plain TFLite converter (softmax in int8)", *plain_int8(model, canvases("calib"), canvases("eval")))]
    if parity:
        for kernels, r in parity["artifacts"]["tflite-int8"]["resolvers"].items():
            rows.append((f"mobilekit, softmax cut ({kernels})", r["tensors"]["scores"]["cosine"],
                         r["top1_agreement"], r["top1_ties"]))
    else:
        rows.append((f"mobilekit: exit {out.get('exit_code')}: {out.get('error')}", float("nan"), float("nan"), 0))
    print(f"{args.arch} {args.size}x{args.size}, random weights, {args.images} coco128 photos (held out)")
    print(f"{'int8 model':48} {'probability cosine':>18} {'top-1 agreement':>16} {'near-ties':>10}")
    for name, cos, top1, ties in rows:
        print(f"{name:48} {cos:18.4f} {top1:16.3f} {ties:10d}")


if __name__ == "__main__":
    main()
