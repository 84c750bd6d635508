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
COCO_EPOCHS = 120  # the coco128 detector's training length (about 15 minutes on 2 quiet cores)
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


def train_coco(work: Path, epochs: int) -> Path:
    """bench/coco128_detector.py's detector and recipe, trained on the 96 training images only (a fixed number of
    epochs, not minutes: the model does not depend on how busy the machine is)."""
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
    raw = work / "coco128_96_raw.keras"
    if not raw.exists():
        keras.utils.set_random_seed(0)
        model = build_model(c)
        model.compile(keras.optimizers.Adam(2e-3), loss=yolo_loss(keras, c, SIZE))
        _fit(model, x2, y2, epochs, lambda e: 4e-4 if e > 0.7 * epochs else None)
        model.save(raw)
    model = keras.saving.load_model(raw, compile=False)
    # 96 images in batches of 16 teach a MobileNetV2 to lean on batch statistics: scores near 1 in training mode,
    # near 0 with the moving ones even once re-estimated. Fine-tuning with BatchNorm frozen (inference mode)
    # makes the model the one that ships
    recalibrate_bn(model, x2)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
    model.compile(keras.optimizers.Adam(4e-4), loss=yolo_loss(keras, c, SIZE))
    _fit(model, x2, y2, epochs // 4, lambda e: None)
    top = float(np.max(np.asarray(model(x[:16], training=False))[..., 4:]))
    print(f"trained {epochs} + {epochs // 4} epochs (BatchNorm frozen); highest class score on 16 training images: "
          f"{top:.3f}", flush=True)
    model.save(path)
    return path


def _fit(model: Any, x: np.ndarray, y: np.ndarray, epochs: int, rate: Any) -> None:
    """``epochs`` epochs of batch 16, the learning rate set by ``rate(epoch)`` when it says one."""
    for epoch in range(1, epochs + 1):
        if (lr := rate(epoch)) is not None:
            model.optimizer.learning_rate.assign(lr)
        h = model.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=True)
        if epoch % 10 == 0:
            print(f"  epoch {epoch}: loss {h.history['loss'][-1]:.3f}", flush=True)


def train_digits(work: Path, minutes: float) -> tuple[Path, Path, Path]:
    from compression import digits_folders, train_classifier

    train_dir, test_dir, x, y, _, _ = digits_folders(work / "digits")
    path = work / "digits_mnv2.keras"
    if not path.exists():
        train_classifier(x, y, minutes, path)
    return path, train_dir, test_dir


def prepare(work: Path, which: list[str], epochs: int) -> None:
    """Train (once; cached in ``work``) every model the bench needs."""
    if "coco128" in which or "coco128-train" in which:
        train_coco(work, epochs)
    if "digits" in which or "outlier" in which:
        train_digits(work, 4.0)


def plain_ptq(st: Any) -> bytes:
    """What a user writes by hand: TFLiteConverter, Optimize.DEFAULT, the same calibration images, int8 I/O."""
    import tensorflow as tf

    conv = tf.lite.TFLiteConverter.from_concrete_functions([st.int8_serving.fn])
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([x] for x in st.calibration_inputs())
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = conv.inference_output_type = getattr(tf, st.cfg.export.int8_io)
    return conv.convert()


def mobilekit_int8(**switches: Any) -> Any:
    """The build's int8 stages with ``quantization`` switches set (calibration method, equalize, ...)."""
    from mobilekit import pipeline

    def run(st: Any) -> bytes:
        q = st.cfg.quantization
        saved = dict(vars(q))
        vars(q).update(switches)
        st.int8_serving = st.serving
        try:
            if q.equalize or q.bias_correction or q.adaround:
                pipeline.prepare_int8_weights(st)
            pipeline.export_int8(st)
        finally:
            vars(q).update(saved)
        return st.models["tflite-int8"]

    return run


def measure(st: Any, models: dict[str, bytes]) -> dict[str, dict[str, Any]]:
    """Parity (the build's own stage, on the evaluation images), size and 2-thread CPU latency of each model."""
    from mobilekit import pipeline
    from mobilekit.emulate.litert import LiteRTRunner
    from mobilekit.export import tflite

    st.models, st.kernel_crashes = dict(models), []
    for kind, m in models.items():
        st.add(kind, tflite.bindings(m, st.int8_serving, kind, f"{kind}.tflite"))
    pipeline.measure_parity(st)
    runners = {k: LiteRTRunner(m, st.contract.artifacts[k], st.contract, "xnnpack", threads=2)
               for k, m in models.items()}
    lat: dict[str, list[float]] = {k: [] for k in models}
    for _ in range(5):  # alternating rounds: the machine's state is shared fairly
        for k, r in runners.items():
            lat[k].append(r.latency_ms(st.samples.canvases[0], runs=20, warmup=3))
    out = {}
    for k, m in models.items():
        res = st.parity.artifacts[k]["resolvers"]
        out[k] = {"bytes": len(m), "ms": float(np.median(lat[k])), "xnnpack": res["xnnpack"],
                  "reference": res.get("reference")}
    return out


def run_case(name: str, config: dict[str, Any], work: Path, variants: dict[str, Any],
             max_drop: float | None = None) -> list[dict[str, Any]]:
    """Every variant of one model measured in one process, on the same images; the mixed artifact when asked."""
    import tempfile

    from mobilekit import pipeline
    from mobilekit.config import parse_config

    cfg = parse_config(config, work / f"{name}.yaml")
    st = pipeline.BuildState(cfg, work / "unused", Path(tempfile.mkdtemp(prefix="mk-bench-q-")), lambda s: None,
                             False, False)
    pipeline.load(st)
    pipeline.read_calibration(st)
    rows = []
    for label, make in variants.items():
        start = time.time()
        model = make(st)
        seconds = time.time() - start
        models = {"tflite-int8": model}
        if label == "mobilekit" and max_drop is not None:
            st.cfg.quantization.max_drop = max_drop
            st.models = {"tflite-int8": model}
            pipeline.select_precision(st)
            st.cfg.quantization.max_drop = None
            if "tflite-int8-mixed" in st.models:
                models["tflite-int8-mixed"] = st.models["tflite-int8-mixed"]
        got = measure(st, models)
        for kind, m in got.items():
            label_k = label if kind == "tflite-int8" else f"{label} mixed ({len(st.selection.float_ops)} float ops)"
            rows.append({"model": name, "variant": label_k, "seconds": seconds, **m,
                         "float": {"map50": st.parity.map50_float, "map50_95": st.parity.map50_95_float,
                                   "top1": st.parity.top1_float}})
        print(f"  {name}: {label} done in {seconds:.0f} s", flush=True)
    return rows


def _metric(r: dict[str, Any], resolver: str = "xnnpack") -> str:
    res = r[resolver]
    if res is None:
        return "-"
    if "map50_95" in res:
        return f"{res['map50_drop']:+.2f} / {res['map50_95_drop']:+.2f}"
    if "top1" in res:
        return f"{res['top1_drop']:+.2f}"
    return f"agree {100 * res['top1_agreement']:.1f}%"


def table(rows: list[dict[str, Any]]) -> None:
    """One table per model: each variant's size, CPU latency and metric drop (XNNPACK and reference kernels)."""
    from rich.console import Console
    from rich.table import Table

    for model in dict.fromkeys(r["model"] for r in rows):
        mine = [r for r in rows if r["model"] == model]
        f = mine[0]["float"]
        what = (f"float mAP@0.5 {f['map50']:.2f}, mAP@0.5:0.95 {f['map50_95']:.2f}; drops: mAP@0.5 / mAP@0.5:0.95"
                if f["map50"] is not None else f"float top-1 {f['top1']:.2f}%; drops: top-1 points"
                if f["top1"] is not None else "top-1 agreement with float")
        t = Table(title=f"{model}: {what}" + ("" if "NOT held out" in model else " (held-out images)"))
        for col in ("variant", "int8 size", "CPU ms (2 threads)", "vs plain", "drop, XNNPACK", "drop, reference",
                    "output SNR", "time to make"):
            t.add_column(col)
        base = mine[0]["ms"]
        for r in mine:
            snr = ", ".join(f"{k} {v['snr_db']:.1f} dB" for k, v in r["xnnpack"]["tensors"].items())
            t.add_row(r["variant"], f"{r['bytes'] / 1e3:.0f} kB", f"{r['ms']:.2f}", f"{r['ms'] / base - 1:+.0%}",
                      _metric(r), _metric(r, "reference"), snr, f"{r['seconds']:.0f} s")
        Console(width=200).print(t)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="+", choices=list(CASES))
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--coco-epochs", type=int, default=COCO_EPOCHS)
    ap.add_argument("--prepare-only", action="store_true")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    prepare(args.work, args.models, args.coco_epochs)
    if args.prepare_only:
        return
    rows: list[dict[str, Any]] = []
    for name in args.models:
        rows.extend(CASES[name](args.work))
        (args.work / "rows.json").write_text(json.dumps(rows, default=float))
    table(rows)


VARIANTS = {
    "plain TFLiteConverter": plain_ptq,
    "mobilekit": mobilekit_int8(),  # the defaults: MSE activation ranges
    "mobilekit minmax": mobilekit_int8(calibration="minmax"),
    "mobilekit percentile": mobilekit_int8(calibration="percentile"),
    "mobilekit + bias correction": mobilekit_int8(bias_correction=True),
    "mobilekit + equalization": mobilekit_int8(equalize=True),
    "mobilekit + AdaRound": mobilekit_int8(adaround=True),
}


def example_case(work: Path) -> list[dict[str, Any]]:
    from mobilekit.example.project import make_example

    cfg_path = make_example(work / "example")
    import yaml

    cfg = yaml.safe_load(cfg_path.read_text())
    cfg = {**cfg, "model": str(work / "example" / cfg["model"]), "labels": str(work / "example" / cfg["labels"]),
           "calibration": {**cfg["calibration"], "images": str(work / "example" / cfg["calibration"]["images"])},
           "evaluation": {**cfg["evaluation"], "images": str(work / "example" / cfg["evaluation"]["images"])},
           "parity": {**cfg["parity"], "enforce": False}, "coreml": {"enabled": False}}
    return run_case("example (shapes detector)", cfg, work, VARIANTS, max_drop=0.0)


def digits_case(work: Path) -> list[dict[str, Any]]:
    model, train_dir, test_dir = train_digits(work, 4.0)
    (work / "digits_labels.txt").write_text("\n".join(str(i) for i in range(10)) + "\n")
    cfg = {"model": str(model), "name": "Digits", "task": "classification", "labels": str(work / "digits_labels.txt"),
           "input": {"normalization": {"mean": [127.5] * 3, "std": [127.5] * 3}},
           "calibration": {"images": str(train_dir), "count": 200},
           "evaluation": {"images": str(test_dir), "count": 397},
           "parity": {"images": 397, "enforce": False}, "coreml": {"enabled": False}}
    return run_case("digits (keras.applications MobileNetV2)", cfg, work, VARIANTS, max_drop=0.0)


def coco_case(work: Path, on_training_images: bool = False) -> list[dict[str, Any]]:
    """The coco128 detector on its 32 held-out images; or, ``on_training_images``, on the 96 it was trained and
    calibrated on (a MobileNetV2 trained from scratch on 96 images does not generalize: held-out mAP is near 0, so
    only the training images can show what int8 costs in mAP; parity warns that they overlap calibration)."""
    model = train_coco(work, COCO_EPOCHS)
    train_dir, held_out = coco_split(work)
    if on_training_images:
        held_out = train_dir
    names = [n for n in (COCO / "names.txt").read_text().split("\n") if n.strip()]
    (work / "coco_labels.txt").write_text("\n".join(names) + "\n")
    cfg = {"model": str(model), "name": "Coco128Detector", "task": "detection", "labels": str(work / "coco_labels.txt"),
           "input": {"normalization": {"mean": [127.5] * 3, "std": [127.5] * 3}},
           "detection": {"head": "yolo", "score_threshold": 0.05, "iou_threshold": 0.5, "max_detections": 100},
           "calibration": {"images": str(train_dir), "format": "yolo", "count": 96},
           "evaluation": {"images": str(held_out), "format": "yolo", "count": 96},
           "parity": {"images": 96, "enforce": False}, "coreml": {"enabled": False}}
    title = ("coco128 detector on its 96 training images (NOT held out)" if on_training_images
             else "coco128 detector (96 train / 32 held out)")
    return run_case(title, cfg, work, VARIANTS, max_drop=0.0)


def outlier_case(work: Path) -> list[dict[str, Any]]:
    """The hard case: a small classifier trained on digits, then given an outlier channel (float unchanged)."""
    from compression import digits_folders

    from mobilekit.example.hard import outlier_classifier

    train_dir, test_dir, x, y, _, _ = digits_folders(work / "digits")
    path = work / "outlier_digits.keras"
    if not path.exists():
        outlier_classifier(96, classes=10, factor=100.0, train=(x.astype(np.float32) / 127.5 - 1.0, y),
                           epochs=12).save(path)
    (work / "digits_labels.txt").write_text("\n".join(str(i) for i in range(10)) + "\n")
    cfg = {"model": str(path), "name": "OutlierDigits", "task": "classification",
           "labels": str(work / "digits_labels.txt"),
           "input": {"normalization": {"mean": [127.5] * 3, "std": [127.5] * 3}},
           "calibration": {"images": str(train_dir), "count": 200},
           "evaluation": {"images": str(test_dir), "count": 397},
           "parity": {"images": 397, "enforce": False}, "coreml": {"enabled": False}}
    return run_case("hard case: outlier channel (x100) in a digits classifier", cfg, work, VARIANTS, max_drop=0.0)


CASES: dict[str, Any] = {"example": example_case, "digits": digits_case, "coco128": coco_case,
                         "coco128-train": lambda work: coco_case(work, on_training_images=True),
                         "outlier": outlier_case}

if __name__ == "__main__":
    main()
