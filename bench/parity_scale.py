"""Bench: streaming parity at scale — peak memory and wall time over 500 / 2,000 / 5,000 images, one worker or
two, local processes or Ray; the metrics must be identical whatever ran them.

The model is a 320x320 YOLO-style detector (keras.applications MobileNetV2 alpha 0.35, built without weights; three
levels at strides 8/16/32 → 2,100 anchors x (4 + 80 classes), YOLO's prior on the class bias), the images are
coco128 augmented (flips, scales, brightness, contrast: each image differs) with their labels carried along, so
parity measures mAP as well. Each run is a fresh process running the build's stages up to parity (LiteRT int8 on
XNNPACK and on the reference kernels, fp16 on XNNPACK); its peak RSS is the largest of that process and its
workers. Side by side: what the pre-streaming parity held in memory (every output of every artifact, stacked).

    python bench/parity_scale.py --work /tmp/mk-scale --images 500 2000 5000 --workers 1 2 [--ray local]
    (--ray-images, default 2,000, must be one of --images for the local/Ray comparison)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
COCO = ROOT.parent / "shared" / "data" / "coco128"
SIZE, CLASSES = 320, 80


def build_detector(path: Path) -> Path:
    """The 320x320 three-level YOLO-style detector, no weights but YOLO's class-bias prior (p = 0.01)."""
    if path.exists():
        return path
    import keras

    keras.utils.set_random_seed(0)
    inp = keras.Input((SIZE, SIZE, 3), name="image")
    backbone = keras.applications.MobileNetV2(input_tensor=inp, alpha=0.35, include_top=False, weights=None)
    levels = [backbone.get_layer(n).output for n in ("block_6_expand_relu", "block_13_expand_relu", "out_relu")]
    heads = [_level(keras, f, s) for f, s in zip(levels, (8, 16, 32), strict=True)]
    model = keras.Model(inp, keras.layers.Concatenate(axis=1, name="predictions")(heads), name="yolo320")
    model.save(path)
    return path


def _level(keras: Any, features: Any, stride: int) -> Any:
    """One level's ``[1, n, 4 + C]``: decoded cx, cy, w, h in input pixels and sigmoid class scores."""
    grid = SIZE // stride
    n = grid * grid
    x = keras.layers.Conv2D(64, 1, activation="relu", name=f"neck{stride}")(features)
    xy = keras.layers.Reshape((n, 2))(keras.layers.Conv2D(2, 1, activation="sigmoid", name=f"xy{stride}")(x))
    wh = keras.layers.Reshape((n, 2))(keras.layers.Conv2D(2, 1, activation="sigmoid", name=f"wh{stride}")(x))
    prior = keras.initializers.Constant(-np.log(99.0))  # YOLO's class prior: p = 0.01
    cls = keras.layers.Reshape((n, CLASSES))(keras.layers.Conv2D(CLASSES, 1, activation="sigmoid",
                                                                 bias_initializer=prior, name=f"cls{stride}")(x))
    gy, gx = np.mgrid[0:grid, 0:grid]
    offsets = ((np.stack([gx, gy], -1).reshape(1, n, 2) - 0.5) * stride).astype("float32")
    xy = keras.ops.add(keras.ops.multiply(xy, 2.0 * stride), offsets)
    wh = keras.layers.Rescaling(float(SIZE))(wh)
    return keras.layers.Concatenate(axis=-1, name=f"level{stride}")([xy, wh, cls])


def augmented(work: Path, count: int) -> Path:
    """``count`` coco128 images, each a distinct augmentation (flip, scale, brightness, contrast), YOLO labels."""
    from PIL import Image, ImageEnhance

    folder = work / f"images_{count}"
    if (folder / "labels" / "train2017").is_dir() and len(list((folder / "images" / "train2017").iterdir())) == count:
        return folder / "images" / "train2017"
    images = sorted((COCO / "images" / "train2017").iterdir())
    rng = np.random.default_rng(0)
    for sub in ("images", "labels"):
        (folder / sub / "train2017").mkdir(parents=True, exist_ok=True)
    for i in range(count):
        src = images[i % len(images)]
        img = Image.open(src).convert("RGB")
        scale = rng.uniform(0.5, 1.0)
        img = img.resize((max(32, int(img.width * scale)), max(32, int(img.height * scale))))
        img = ImageEnhance.Brightness(img).enhance(rng.uniform(0.7, 1.3))
        img = ImageEnhance.Contrast(img).enhance(rng.uniform(0.7, 1.3))
        flip = bool(rng.integers(2))
        if flip:
            img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        img.save(folder / "images" / "train2017" / f"{i:05d}.jpg", quality=90)
        label = COCO / "labels" / "train2017" / f"{src.stem}.txt"
        rows = [r.split() for r in label.read_text().splitlines() if r.strip()] if label.exists() else []
        (folder / "labels" / "train2017" / f"{i:05d}.txt").write_text("".join(
            f"{r[0]} {1 - float(r[1]) if flip else float(r[1]):.6f} {r[2]} {r[3]} {r[4]}\n" for r in rows))
    return folder / "images" / "train2017"


def config(work: Path, images: Path, count: int) -> dict[str, Any]:
    names = [n for n in (COCO / "names.txt").read_text().split("\n") if n.strip()]
    (work / "labels.txt").write_text("\n".join(names) + "\n")
    return {"model": str(build_detector(work / "yolo320.keras")), "name": "Yolo320", "task": "detection",
            "labels": str(work / "labels.txt"),
            "input": {"normalization": {"mean": [127.5] * 3, "std": [127.5] * 3}},
            "detection": {"head": "yolo", "score_threshold": 0.25, "iou_threshold": 0.5, "max_detections": 100},
            "calibration": {"images": str(COCO / "images" / "train2017"), "format": "yolo", "count": 32},
            "evaluation": {"images": str(images), "format": "yolo"},
            "parity": {"images": count, "enforce": False}, "coreml": {"enabled": False}}


def child(cfg_path: Path, workers: int, ray: str | None) -> None:
    """One run in this fresh process: the stages up to parity; prints one JSON line."""
    import tempfile

    import yaml

    from mobilekit import pipeline
    from mobilekit.config_file import parse_config

    cfg = parse_config(yaml.safe_load(cfg_path.read_text()), cfg_path)
    with tempfile.TemporaryDirectory() as staging:
        st = pipeline.BuildState(cfg, cfg_path.parent / "unused", Path(staging), lambda s: None, False, False,
                                 workers=workers, ray=ray)
        pipeline.run_stages(st, before="parity")
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        start = time.monotonic()
        pipeline.measure_parity(st)
        seconds = time.monotonic() - start
    parity = json.dumps(st.parity.to_dict(), sort_keys=True, default=str)
    rss = max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    stacked = sum(int(np.prod(o.shape)) * 4 for o in st.contract.outputs) * cfg.parity.images * (len(st.models) + 1)
    print(json.dumps({"seconds": seconds, "peak_rss_mb": rss / 1024, "rss_before_parity_mb": before / 1024,
                      "metrics_sha": hashlib.sha256(parity.encode()).hexdigest()[:16],
                      "map50_float": st.parity.map50_float, "stacked_outputs_mb": stacked / 2**20,
                      "int8": st.parity.artifacts["tflite-int8"]["resolvers"]["xnnpack"]["tensors"]}))


def run(work: Path, count: int, workers: int, ray: str | None) -> dict[str, Any]:
    import yaml

    cfg_path = work / f"parity_{count}.yaml"
    cfg_path.write_text(yaml.safe_dump(config(work, augmented(work, count), count)))
    cmd = [sys.executable, __file__, "--child", str(cfg_path), "--workers", str(workers)]
    if ray:
        cmd += ["--ray", ray]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode:
        raise SystemExit(f"run {count} images / {workers} workers failed:\n{out.stderr[-3000:]}")
    row = json.loads(out.stdout.strip().splitlines()[-1])
    return {"images": count, "workers": workers, "engine": f"Ray ({ray})" if ray else "local", **row}


def table(rows: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title="Streaming parity, 320x320 YOLO-style detector (int8 XNNPACK + reference kernels, fp16)")
    for col in ("images", "workers", "engine", "parity wall time", "s / 1k images", "peak RSS",
                "held before streaming", "float mAP@0.5", "int8 SNR (boxes / scores)", "metrics digest"):
        t.add_column(col)
    for r in rows:
        snr = " / ".join(f"{v['snr_db']:.2f}" for v in r["int8"].values())
        t.add_row(f"{r['images']:,}", str(r["workers"]), r["engine"], f"{r['seconds']:.0f} s",
                  f"{1000 * r['seconds'] / r['images']:.1f}", f"{r['peak_rss_mb']:,.0f} MB",
                  f"+{r['stacked_outputs_mb']:,.0f} MB", f"{r['map50_float']:.3f}", snr, r["metrics_sha"])
    Console(width=220).print(t)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", type=Path)
    ap.add_argument("--images", type=int, nargs="+", default=[500, 2000, 5000])
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--ray", default=None, help="also run --ray-images on Ray at this address ('local')")
    ap.add_argument("--ray-images", type=int, default=2000)
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args.child, args.workers[0], args.ray)
    args.work.mkdir(parents=True, exist_ok=True)
    rows = []
    for count in args.images:
        for w in args.workers:
            rows.append(run(args.work, count, w, None))
            print(json.dumps(rows[-1]), flush=True)
    if args.ray:  # the same images and workers as a local run: the digests must match
        rows.append(run(args.work, args.ray_images, max(args.workers), args.ray))
    (args.work / "rows.json").write_text(json.dumps(rows))
    table(rows)


if __name__ == "__main__":
    main()
