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
- ``coco128-cv``: the same detector cross-fitted on its 96 training images (each half calibrates, selects float ops
  and QAT-trains for the other half, which it never sees; 192 evaluations with mirrors), each drop with its 90%
  paired-bootstrap interval: the held-out 32 cannot measure int8 (the float model scores about 0 on them);
  ``coco128-cv-new`` adds only the variants added since (the evidence of a run is kept in the work folder);
- ``outlier``: a hard case, the digits classifier with one depthwise channel's BatchNorm scaled 40x and the next
  layer scaled down to match (the float model is unchanged; min-max int8 loses that layer's resolution).

    python bench/quantization.py --work /tmp/mk-bench-q example digits coco128 outlier
    python bench/quantization.py --work /tmp/mk-bench-q coco128-cv     # about 25 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import re
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
    if {"coco128", "coco128-train", "coco128-cv"} & set(which):
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
    from mobilekit.config_file import parse_config

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

    cv_table([r for r in rows if "drop" in r])
    rows = [r for r in rows if "drop" not in r]
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


def cv_table(rows: list[dict[str, Any]]) -> None:
    """The cross-fitted rows: each variant's drop with its 90% bootstrap interval, size and CPU latency."""
    from rich.console import Console
    from rich.table import Table

    if not rows:
        return
    t = Table(title=f"coco128 detector, cross-fitted ({rows[0]['images']} evaluations, none seen by calibration): "
                    f"float mAP@0.5:0.95 {rows[0]['float']:.2f}")
    for col in ("variant", "int8 size", "CPU ms (2 threads)", "vs plain", "mAP@0.5:0.95 drop", "90% interval",
                "time to make"):
        t.add_column(col)
    base = rows[0]["ms"]
    for r in rows:
        t.add_row(r["variant"], f"{r['bytes'] / 1e3:.0f} kB", f"{r['ms']:.2f}", f"{r['ms'] / base - 1:+.0%}",
                  f"{r['drop']:+.2f}", f"[{r['lo']:+.2f}, {r['hi']:+.2f}]", f"{r['seconds']:.0f} s")
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
    "mobilekit + equalization + bias correction": mobilekit_int8(equalize=True, bias_correction=True),
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


FOLDS = 2  # coco128 cross-fitting: the 96 training images in two interleaved halves


def coco_folds(work: Path) -> list[Path]:
    """The 96 training images in ``FOLDS`` interleaved parts (by name: 0, 2, 4, ... and 1, 3, 5, ...), YOLO folders
    of symlinks."""
    train_dir, _ = coco_split(work)
    images = sorted(train_dir.iterdir())
    out = []
    for k in range(FOLDS):
        root = work / f"fold{k}"
        for sub in ("images", "labels"):
            (root / sub / "train2017").mkdir(parents=True, exist_ok=True)
        for p in images[k::FOLDS]:
            label = COCO / "labels" / "train2017" / (p.stem + ".txt")
            for src, dst in ((p.resolve(), root / "images" / "train2017" / p.name),
                             (label, root / "labels" / "train2017" / label.name)):
                if src.exists() and not dst.exists():
                    dst.symlink_to(src)
        out.append(root / "images" / "train2017")
    return out


class Held:
    """One fold's evaluation images (each also mirrored: the detector was trained on both), letterboxed, with their
    boxes; per image, the float model's mAP@0.5:0.95 evidence."""

    def __init__(self, st: Any, images: Path) -> None:
        from mobilekit.data.datasets import list_yolo, load_image
        from mobilekit.data.preprocess import letterbox

        inp = st.contract.input
        self.st, self.items = st, []
        for r in list_yolo(images):
            img = load_image(r.path)
            w = img.shape[1]
            mirrored = np.stack([w - r.boxes[:, 2], r.boxes[:, 1], w - r.boxes[:, 0], r.boxes[:, 3]], 1)
            for pixels, boxes in ((img, r.boxes), (img[:, ::-1].copy(), mirrored)):
                canvas, plan = letterbox(pixels, inp.height, inp.width, inp.resize, inp.pad_value)
                self.items.append((canvas, plan, boxes, r.classes))
        self.float = self.evidence(self._float_outputs())

    def _float_outputs(self) -> list[dict[str, np.ndarray]]:
        from mobilekit.data.preprocess import normalize

        inp = self.st.contract.input
        return [self.st.serving.run(normalize(c, inp.scale, inp.offset, inp.color, inp.layout))
                for c, *_ in self.items]

    def evidence(self, outputs: list[dict[str, np.ndarray]]) -> list[Any]:
        from mobilekit.parity.detection import map50_95_acc
        from mobilekit.postprocess import detect

        out = []
        for o, (_, plan, boxes, classes) in zip(outputs, self.items, strict=True):
            acc = map50_95_acc(self.st.contract.head.num_classes)
            acc.add(detect(o, self.st.contract, plan), boxes, classes)
            out.append(acc)
        return out

    def of(self, kind: str, model: bytes) -> tuple[list[Any], float]:
        """A TFLite model's per-image evidence (XNNPACK kernels) and its median 2-thread CPU latency."""
        from mobilekit.emulate.litert import LiteRTRunner

        r = LiteRTRunner(model, self.st.contract.artifacts[kind], self.st.contract, "xnnpack", threads=2)
        evidence = self.evidence([r.run(c) for c, *_ in self.items])
        return evidence, float(np.median([r.latency_ms(self.items[0][0], runs=20, warmup=3) for _ in range(5)]))


def pooled(accs: list[Any]) -> Any:
    """Per-image mAP@0.5:0.95 evidence as one accumulator, in image order (what parity's shards merge into)."""
    from mobilekit.parity.detection import map50_95_acc

    out = map50_95_acc(accs[0].num_classes)
    for acc in accs:
        out.merge(acc)
    return out


def drop_with_interval(ref: list[Any], got: list[Any]) -> tuple[float, float, float]:
    """The drop (reference minus model, points) and its 90% interval, by the paired bootstrap the build's parity
    report uses (``mobilekit.parity.detection.drop_interval``): how much of a drop these images tell from noise."""
    from mobilekit.parity.detection import drop_interval

    a, b = pooled(ref), pooled(got)
    interval = drop_interval(a, b)
    assert interval is not None
    return a.result() - b.result(), *interval


def coco_cross_fit_case(work: Path, only: str | None = None) -> list[dict[str, Any]]:
    """The coco128 detector with calibration and evaluation kept apart by cross-fitting: each half of its 96
    training images calibrates (and drives selective precision and QAT) for the other half, which it never sees;
    every image is evaluated once, mirrored too, so 192 evaluations pool into one mAP@0.5:0.95 per variant.

    Why not the 32 held-out images: trained from scratch on 96 images (no pretrained weights can be fetched here) the
    detector does not generalize (held-out float mAP about 0), so a held-out drop is 0 whatever int8 does. Why the
    training images are fair here: what is measured is how far int8 moves the float model's detections, and none of
    the quantization's choices (ranges, rounding, float ops, QAT) ever saw the images they are measured on."""
    import tempfile

    from mobilekit import pipeline
    from mobilekit.config_file import parse_config

    model = train_coco(work, COCO_EPOCHS)
    folds = coco_folds(work)
    names = [n for n in (COCO / "names.txt").read_text().split("\n") if n.strip()]
    (work / "coco_labels.txt").write_text("\n".join(names) + "\n")
    ref: list[Any] = []
    got: dict[str, dict[str, Any]] = {}
    kept = work / "coco_cv_evidence.pkl"
    # ``only`` adds variants to an earlier run's evidence (the same folds and float model: the same reference)
    earlier = pickle.loads(kept.read_bytes())[1] if only and kept.exists() else {}
    for k, calib in enumerate(folds):
        held = folds[(k + 1) % FOLDS]
        cfg = parse_config({
            "model": str(model), "name": "Coco128Detector", "task": "detection",
            "labels": str(work / "coco_labels.txt"),
            "input": {"normalization": {"mean": [127.5] * 3, "std": [127.5] * 3}},
            "detection": {"head": "yolo", "score_threshold": 0.05, "iou_threshold": 0.5, "max_detections": 100},
            "calibration": {"images": str(calib), "format": "yolo", "count": 48},
            "parity": {"enforce": False}, "coreml": {"enabled": False},
            "compression": {"distill": {"epochs": 20, "label_weight": 0.5}},
            "quantization": {"qat_on_demand": True}}, work / "coco_cv.yaml")
        st = pipeline.BuildState(cfg, work / "unused", Path(tempfile.mkdtemp(prefix="mk-bench-q-")),
                                 lambda s: None, False, False)
        pipeline.load(st)
        pipeline.read_calibration(st)
        ev = Held(st, held)
        ref += ev.float
        for label, kind, seconds, m, note in _cv_models(st, only):
            evidence, ms = ev.of(kind, m)
            row = got.setdefault(label, {"evidence": [], "ms": [], "bytes": [], "seconds": 0.0, "notes": []})
            row["evidence"].append(evidence)
            row["ms"].append(ms)
            row["bytes"].append(len(m))
            row["seconds"] += seconds
            row["notes"].append(note)
        print(f"  coco128 fold {k}: done", flush=True)
    got = {**earlier, **got}
    kept.write_bytes(pickle.dumps((ref, got)))  # the tables can be redone from it
    return cv_rows(ref, got)


def cv_rows(ref: list[Any], got: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The cross-fitted table's rows: each variant pooled over the folds, its drop with its interval."""
    rows = []
    for label, r in got.items():
        if len(r["evidence"]) < FOLDS:  # a variant that one fold did not make
            print(f"  {label}: made in {len(r['evidence'])} of {FOLDS} folds, left out", flush=True)
            continue
        drop, lo, hi = drop_with_interval(ref, [e for part in r["evidence"] for e in part])
        note = "; ".join(n for n in r["notes"] if n)
        rows.append({"model": "coco128 cross-fitted", "variant": label + (f" ({note})" if note else ""),
                     "bytes": float(np.mean(r["bytes"])), "ms": float(np.mean(r["ms"])), "seconds": r["seconds"],
                     "drop": drop, "lo": lo, "hi": hi, "float": pooled(ref).result(), "images": len(ref)})
    return rows


def coco_cv_table(work: Path) -> list[dict[str, Any]]:
    """The cross-fitted table again from the evidence its last run kept (no model is run)."""
    ref, got = pickle.loads((work / "coco_cv_evidence.pkl").read_bytes())
    return cv_rows(ref, got)


#: the QAT recipes the cross-fitted case measures: the build's defaults (compression.distill), and a gentle one (a
#: tenth of the learning rate, the float model's outputs as the only target)
QAT_RECIPES = {"mobilekit QAT (20 epochs, lr 1e-3, labels 0.5)": {"epochs": 20, "learning_rate": 1e-3,
                                                                   "label_weight": 0.5},
               "mobilekit QAT (30 epochs, lr 1e-4, distillation only)": {"epochs": 30, "learning_rate": 1e-4,
                                                                         "label_weight": 0.0}}


def _cv_models(st: Any, only: str | None) -> Any:
    """Each variant's int8 model for one fold: (label, artifact kind, seconds to make, model, note); ``only``: the
    variants whose label matches this regular expression."""
    import dataclasses

    from mobilekit import pipeline
    from mobilekit.export import tflite

    for label, make in VARIANTS.items():
        if only and not re.search(only, label):
            continue
        start = time.time()
        m = make(st)
        st.add("tflite-int8", tflite.bindings(m, st.int8_serving, "tflite-int8", "x.tflite"))
        yield label, "tflite-int8", time.time() - start, m, ""
    start = time.time()
    st.models = {"tflite-int8": mobilekit_int8()(st)}
    st.cfg.quantization.max_drop = 0.2
    pipeline.select_precision(st)
    mixed = st.models.get("tflite-int8-mixed", st.models["tflite-int8"])  # full-int8 when it met the bar already
    if not only or re.search(only, "mobilekit mixed"):
        yield ("mobilekit mixed, max_drop 0.2", "tflite-int8-mixed" if "tflite-int8-mixed" in st.models
               else "tflite-int8", time.time() - start, mixed, f"{len(st.selection.float_ops)} float ops")
    distill = st.cfg.compression.distill
    for label, recipe in QAT_RECIPES.items():
        if only and not re.search(only, label):
            continue
        start = time.time()
        st.cfg.compression = dataclasses.replace(st.cfg.compression, distill=dataclasses.replace(distill, **recipe))
        st.models.pop("tflite-int8-qat", None)
        pipeline.qat_on_demand(st)  # QAT runs even when selective precision met its bar: it is measured beside it
        if "tflite-int8-qat" in st.models:
            yield label, "tflite-int8-qat", time.time() - start, st.models["tflite-int8-qat"], ""


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
                         "coco128-cv": coco_cross_fit_case,
                         # the cross-fitted case, only the variants added since its last run (its evidence is kept)
                         "coco128-cv-new": lambda work: coco_cross_fit_case(work, only=r"equalization \+ bias|1e-4"),
                         "coco128-cv-table": coco_cv_table,
                         "outlier": outlier_case}

if __name__ == "__main__":
    main()
