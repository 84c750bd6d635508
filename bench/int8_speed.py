"""int8 against fp16 and float32 on LiteRT XNNPACK (2 threads), before and after the XNNPACK activation rewrite.

    python bench/int8_speed.py [--arch MobileNetV3Small ...] [--size 224] [--raw-only | --no-raw]

Each model is built as a user builds it: saved as ``.keras``, ``mobilekit init`` writes the YAML (calibration on
one half of coco128; the bench then points ``evaluation:`` at the other half, turns Core ML off and the parity gate
to report-only, as random weights decide top-1 by noise), ``mobilekit build --json`` twice: with
``quantization.xnnpack_rewrite: off`` (the int8 model "before") and with the default (``measured``: the build
converts both graphs and keeps the faster). fp16 and float32 keep the original graph, so the rewrite does not change
them. Beside them, the plain ``tf.lite.TFLiteConverter`` int8 model (``from_keras_model``, 32 calibration photos,
default settings). Every model file is timed here, interleaved over five rounds, the lowest median kept (LiteRT
XNNPACK, 2 threads): the builds' own single figures move with whatever else the machine runs.

Models: keras.applications MobileNetV2, MobileNetV3Small, MobileNetV3Large, EfficientNetB0 (``weights=None``: no
download), an MTCNN O-Net-shaped PReLU net (48x48, the face-detection stage the issue measured) and mtcnn's own
trained O-Net from PyPI (a subclassed network, weights in the wheel, ``init --import`` a registration module as a user
does). keras.applications
without weights have degenerate activations: glorot-initialized convolutions with BatchNormalization at identity
shrink them about tenfold per block, so deep MobileNetV3 hard-swish inputs span 1e-6 where a trained net's span
units. Each is therefore built twice: ``raw`` (as ``weights=None`` gives it) and ``bn`` (the same random weights,
each BatchNormalization's statistics set from 16 calibration photos in one training-mode pass, which gives the
activation ranges a trained net has; still no download).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
COCO = ROOT.parent / "shared" / "data" / "coco128" / "images" / "train2017"
ARCHS = ["MobileNetV2", "MobileNetV3Small", "MobileNetV3Large", "EfficientNetB0", "PReLU-ONet", "mtcnn-ONet"]
#: 48x48 face-stage nets
SMALL = {"PReLU-ONet": 48, "mtcnn-ONet": 48}
#: the module a user writes so a saved model holding mtcnn's network class loads (``mobilekit init --import``)
MTCNN_MODULE = ("import keras\nfrom mtcnn.network.onet import ONet\n\n"
                "keras.saving.register_keras_serializable('mtcnn')(ONet)\n")


def _photos(size: int, n: int = 16) -> np.ndarray:
    from PIL import Image

    paths = sorted(COCO.glob("*.jpg"))[:n]
    return np.stack([np.asarray(Image.open(p).convert("RGB").resize((size, size)), np.float32) for p in paths])


def _onet(keras: Any) -> Any:
    """MTCNN's O-Net layout (conv-PReLU-pool x3, conv-PReLU, dense-PReLU), as a face / not-face classifier with
    per-channel PReLU slopes spread over 0.05..0.6 (random, as trained nets' are)."""
    layers = keras.layers
    inp = keras.Input((48, 48, 3))
    x = layers.Rescaling(1 / 127.5, offset=-1)(inp)
    for filters, pool in ((32, 3), (64, 3), (64, 2)):
        x = layers.Conv2D(filters, 3)(x)
        x = layers.PReLU(shared_axes=[1, 2], alpha_initializer=keras.initializers.RandomUniform(0.05, 0.6))(x)
        x = layers.MaxPooling2D(pool, 2, padding="same")(x)
    x = layers.PReLU(shared_axes=[1, 2], alpha_initializer=keras.initializers.RandomUniform(0.05, 0.6))(
        layers.Conv2D(128, 2)(x))
    x = layers.PReLU(alpha_initializer=keras.initializers.RandomUniform(0.05, 0.6))(
        layers.Dense(256)(layers.Flatten()(x)))
    return keras.Model(inp, layers.Dense(2, activation="softmax")(x), name="onet")


def _mtcnn_onet(keras: Any) -> Any:
    """mtcnn's trained O-Net (PyPI, weights in the wheel; a subclassed network with five PReLUs) as a face /
    not-face classifier, with mtcnn's own input normalization, (x - 127.5) / 128, in front."""
    from mtcnn.network.onet import ONet
    from mtcnn.utils.tensorflow import load_weights

    keras.saving.register_keras_serializable("mtcnn")(ONet)
    onet = ONet()
    onet.build()
    onet.set_weights(load_weights("onet.lz4"))
    inp = keras.Input((48, 48, 3))
    return keras.Model(inp, onet(keras.layers.Rescaling(1 / 128, offset=-127.5 / 128)(inp))[2], name="mtcnn_onet")


def _model(arch: str, size: int, variant: str) -> Any:
    import keras

    keras.utils.set_random_seed(0)
    if arch == "PReLU-ONet":
        return _onet(keras)
    if arch == "mtcnn-ONet":
        return _mtcnn_onet(keras)
    model = getattr(keras.applications, arch)(weights=None, input_shape=(size, size, 3))
    if variant == "bn":
        norms = [x for x in model.layers if isinstance(x, keras.layers.BatchNormalization)]
        for n in norms:
            n.momentum = 0.0  # one training-mode pass: the moving statistics become these photos' statistics
        model(_photos(size), training=True)
        for n in norms:
            n.momentum = 0.99
    return model


def _halves(work: Path) -> None:
    photos = sorted(COCO.glob("*.jpg"))
    half = len(photos) // 2
    for name, part in (("calib", photos[:half]), ("eval", photos[half:])):
        (work / name).mkdir()
        for p in part:
            (work / name / p.name).symlink_to(p)


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-m", "mobilekit", *args], cwd=cwd, capture_output=True, text=True,
                          env=env)


def _init(model: Any, work: Path) -> str | None:
    """``mobilekit init`` as a user runs it, then the user's edits: the error line, or None."""
    model.save(work / "model.keras")
    _halves(work)
    imports = []
    if model.name == "mtcnn_onet":
        (work / "mtcnn_keras.py").write_text(MTCNN_MODULE)
        imports = ["--import", "mtcnn_keras"]
    init = _cli("init", "model.keras", "--images", "calib", *imports, cwd=work)
    if init.returncode != 0:
        return (init.stderr.strip().splitlines() or ["init failed"])[-1]
    cfg = yaml.safe_load((work / "mobilekit.yaml").read_text())
    cfg["calibration"]["count"] = 32
    cfg.update(evaluation={"images": "eval"}, parity={"images": 16, "enforce": False}, coreml={"enabled": False},
               export={"float32": True})
    (work / "mobilekit.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return None


def _build(work: Path, out: str, rewrite: str) -> dict[str, Any]:
    """``mobilekit build --json`` with ``quantization.xnnpack_rewrite: rewrite``; the manifest."""
    cfg = yaml.safe_load((work / "mobilekit.yaml").read_text())
    cfg["quantization"] = {**(cfg.get("quantization") or {}), "xnnpack_rewrite": rewrite}
    (work / f"{out}.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    done = _cli("build", f"{out}.yaml", "--out", out, "--json", cwd=work)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    if not lines or not json.loads(lines[-1]).get("ok"):
        return {"error": json.loads(lines[-1]).get("error") if lines else done.stderr[-300:]}
    return json.loads(lines[-1])["manifest"]


def _plain_int8(model: Any, size: int) -> bytes:
    """The plain converter's int8 model (what a user gets from the TensorFlow docs)."""
    import tensorflow as tf

    photos = _photos(size, 32)
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([p[None]] for p in photos)
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return conv.convert()


def _timed(models: dict[str, bytes], threads: int = 2) -> dict[str, float]:
    """Each model's median ``invoke`` time (LiteRT XNNPACK), interleaved over five rounds, the lowest kept."""
    from mobilekit.emulate.litert import interleaved_latency_ms

    return interleaved_latency_ms(models, 5, threads)


def _row(arch: str, variant: str, size: int) -> dict[str, Any]:
    size = SMALL.get(arch, size)
    model = _model(arch, size, variant)
    with tempfile.TemporaryDirectory(prefix="int8-speed-") as tmp:
        work = Path(tmp)
        error = _init(model, work)
        before, m = ({"error": error}, {"error": error}) if error else (_build(work, "off", "off"),
                                                                         _build(work, "out", "measured"))
        if "error" in m or "error" in before:
            return {"arch": arch, "variant": variant, "error": m.get("error") or before.get("error")}
        files = {kind: (work / "out" / f"android/{_name(m)}_{kind}.tflite").read_bytes()
                 for kind in ("float32", "fp16", "int8")}
        files["int8_before"] = (work / "off" / f"android/{_name(m)}_int8.tflite").read_bytes()
    files["plain_int8"] = _plain_int8(model, size)
    ms = _timed(files)
    one = _timed({k: files[k] for k in ("float32", "int8")}, threads=1)  # needs one free core, not two
    rw = m.get("xnnpack_rewrite") or {}
    mem = m.get("memory", {}).get("tflite-int8", {}).get("kernels", {}).get("xnnpack", {})
    return {"arch": arch, "variant": variant, **ms, "one_thread": one, "load": os.getloadavg()[0],
            "kept": rw.get("kept", "no rewrite needed"),
            "build_ms": m["latency_ms"], "rewrite": rw,
            "outside": (m.get("outside_xnnpack") or {}).get("tflite-int8", {}),
            "outside_before": (before.get("outside_xnnpack") or {}).get("tflite-int8", {}),
            "outside_ms": (m.get("op_profile") or {}).get("tflite-int8", {}).get("outside_xnnpack_ms"),
            "memory_mb": mem.get("peak_bytes", 0) / 2**20, "cosine": m["parity"]["worst"].get("cosine"),
            "cosine_before": before["parity"]["worst"].get("cosine")}


def _name(manifest: dict[str, Any]) -> str:
    """The bundle's file stem (the int8 artifact's file name less ``_int8.tflite``)."""
    path = next(a["path"] for a in manifest["artifacts"] if a["kind"] == "tflite-int8")
    return path.removeprefix("android/").removesuffix("_int8.tflite")


def _fmt(v: float | None) -> str:
    return "" if v is None else f"{v:.2f}"


def _table(rows: list[dict[str, Any]]) -> Any:
    from rich.table import Table

    t = Table(title="int8 vs fp16 vs float32, LiteRT XNNPACK, 2 threads, median ms (fp16/float32 keep the original "
                    "graph: the rewrite does not change them); load: the machine's 1-minute load average (2 cores) "
                    "when the row was timed")
    for col in ("model", "weights", "float32", "fp16", "int8 before rewrite", "int8 after (build kept)",
                "plain converter int8", "float32 / int8", "int8 < fp16", "outside XNNPACK before", "outside XNNPACK "
                "after", "int8 peak MiB", "int8 cosine before / after", "1 thread: float32 / int8", "load"):
        t.add_column(col, overflow="fold")
    for r in rows:
        if "error" in r:
            t.add_row(r["arch"], r["variant"], f"[red]{r['error']}[/]")
            continue
        outside = ", ".join(f"{k} x{v}" for k, v in r["outside"].items()) or "none"
        if r["outside"] and r["outside_ms"]:
            outside += f" ({r['outside_ms']:.2f} ms, 1 thread)"
        t.add_row(r["arch"], r["variant"], _fmt(r["float32"]), _fmt(r["fp16"]), _fmt(r["int8_before"]),
                  f"{_fmt(r['int8'])} ({r['kept']})", _fmt(r["plain_int8"]), f"{r['float32'] / r['int8']:.2f}x",
                  "yes" if r["int8"] < r["fp16"] else "no",
                  ", ".join(f"{k} x{v}" for k, v in r["outside_before"].items()) or "none", outside,
                  f"{r['memory_mb']:.1f}", f"{_fmt(r['cosine_before'])} / {_fmt(r['cosine'])}",
                  f"{_fmt(r['one_thread']['float32'])} / {_fmt(r['one_thread']['int8'])}", f"{r['load']:.1f}")
    return t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", nargs="*", default=ARCHS)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--variants", nargs="*", default=["raw", "bn"], choices=["raw", "bn"])
    ap.add_argument("--json", type=Path, default=None, help="Also write the rows as JSON here.")
    args = ap.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from rich.console import Console

    rows = []
    for arch in args.arch:
        for variant in (["raw"] if arch in SMALL else args.variants):  # no BatchNormalization in the O-Nets
            rows.append(_row(arch, variant, args.size))
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    Console(width=200).print(_table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
