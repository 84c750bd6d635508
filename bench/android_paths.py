"""Bench: the Android SDK's runtime paths on LiteRT's real runtime, side by side with the Interpreter API a user
would otherwise write by hand.

    python bench/android_paths.py [--bundle DIR ...] [--runs 50]

The generated Kotlin module runs LiteRT 2.x's ``CompiledModel`` (NPU, GPU, CPU) and falls back to the CPU-only
``Interpreter``. Neither a phone nor a GPU is here, so this measures what can be measured on this machine, on the
same C++ runtime the Kotlin API wraps (``ai_edge_litert``): per bundle and model (int8; fp16, the GPU path's model,
here on the CPU), the median latency of ``CompiledModel`` on the CPU against the ``Interpreter`` with XNNPACK, and
how far their outputs are apart (int8 steps, or the largest float difference). Without ``--bundle``, bundles are
built with the CLI, as a user would, from keras.applications models built without weights (no download) and
calibrated on the shared coco128 images.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
COCO = ROOT.parent / "shared" / "data" / "coco128"

#: keras.applications models built without weights: a depthwise-separable net and a residual one
MODELS = {"MobileNetV2": ("MobileNetV2", 224), "ResNet50": ("ResNet50", 224)}


def _bundle(name: str, work: Path) -> Path:
    """A bundle of keras.applications ``name`` through ``mobilekit build`` (random weights: latency, not accuracy)."""
    import tensorflow as tf

    cls, size = MODELS[name]
    model = getattr(tf.keras.applications, cls)(weights=None, input_shape=(size, size, 3), classes=10)
    path = work / f"{name}.keras"
    model.save(path)
    labels = work / "labels.txt"
    labels.write_text("\n".join(f"class{k}" for k in range(10)) + "\n")
    cfg = {"model": str(path), "name": name, "task": "classification", "labels": str(labels),
           "input": {"normalization": {"scale": 1 / 127.5, "offset": -1.0}},
           "calibration": {"images": str(COCO), "count": 16}, "coreml": {"enabled": False},
           "parity": {"images": 4, "enforce": False}}
    (work / f"{name}.yaml").write_text(yaml.safe_dump(cfg))
    out = work / f"{name}-bundle"
    subprocess.run([sys.executable, "-m", "mobilekit", "build", str(work / f"{name}.yaml"), "--out", str(out)],
                   check=True, stdout=subprocess.DEVNULL)
    return out


def _median_ms(fn, runs: int) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return float(np.median(times))


def _compare(path: Path, runs: int) -> dict:
    """CompiledModel (CPU) vs Interpreter (XNNPACK), 2 threads each, on one .tflite: latency and output difference."""
    from ai_edge_litert.compiled_model import CompiledModel
    from ai_edge_litert.interpreter import Interpreter
    from ai_edge_litert.options import CpuOptions, Options

    it = Interpreter(model_path=str(path), num_threads=2)
    it.allocate_tensors()
    inp, outs = it.get_input_details()[0], it.get_output_details()
    rng = np.random.default_rng(0)
    x = rng.integers(-128, 128, inp["shape"]).astype(inp["dtype"]) if inp["dtype"] != np.float32 else \
        rng.uniform(-1, 1, inp["shape"]).astype(np.float32)

    def interpreter() -> None:
        it.set_tensor(inp["index"], x)
        it.invoke()

    # the SDK passes CpuOptions(numThreads) too: both runtimes get this machine's 2 cores
    model = CompiledModel.from_file(str(path), options=Options(cpu_options=CpuOptions(num_threads=2)))
    ins, bufs = model.create_input_buffers(0), model.create_output_buffers(0)

    def compiled() -> None:
        ins[0].write(x.view(np.int8) if x.dtype != np.float32 else x)
        model.run_by_index(0, ins, bufs)

    row = {"interpreter": _median_ms(interpreter, runs), "compiled": _median_ms(compiled, runs)}
    diffs = []
    for o, b in zip(outs, bufs, strict=True):
        n = int(np.prod(o["shape"]))
        ref = it.get_tensor(o["index"]).reshape(-1)
        got = b.read(n, np.int8).view(o["dtype"]) if o["dtype"] != np.float32 else b.read(n, np.float32)
        diffs.append(float(np.abs(got.astype(np.float64) - ref.astype(np.float64)).max()))
    row["diff"] = max(diffs)
    row["unit"] = "float" if outs[0]["dtype"] == np.float32 else "steps"
    return row


def main() -> None:
    from rich.console import Console
    from rich.table import Table

    ap = argparse.ArgumentParser()
    ap.add_argument("--bundle", type=Path, action="append", default=[])
    ap.add_argument("--runs", type=int, default=50)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bundles = args.bundle or [_bundle(name, Path(tmp)) for name in MODELS]
        table = Table(title="Android SDK paths on LiteRT's runtime (this CPU, 1 image, median ms)")
        for col in ("bundle", "model", "Interpreter + XNNPACK (hand-written)", "CompiledModel CPU (SDK default)",
                    "largest output difference"):
            table.add_column(col)
        for bundle in bundles:
            for path in sorted((bundle / "android").glob("*.tflite")):
                r = _compare(path, args.runs)
                table.add_row(bundle.name, path.name, f"{r['interpreter']:.2f}", f"{r['compiled']:.2f}",
                              f"{r['diff']:.3g} {r['unit']}")
        Console(width=150).print(table)


if __name__ == "__main__":
    main()
