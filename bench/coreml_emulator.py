"""Bench: Core ML package sizes per compression recipe, parity per variant, and the emulator's throughput.

A 320x320 MobileNetV2 (alpha 1.0, weights=None: nothing is downloaded) YOLO-style detector is converted to an fp16
ML Program and compressed with every iOS 16 recipe; each variant runs in mobilekit's Core ML emulator on 64 coco128
photographs and is compared with TensorFlow's float inference of the same serving function. Prints:

- weight bytes per variant and the ratio to fp32 weights        (target: 4-bit palettized <= 0.14)
- cosine / SNR of boxes and scores per variant against float
- emulator vs TensorFlow images/s on the same 64 images         (target: emulator no worse than 3x slower)

    python bench/coreml_emulator.py [--model trained.keras]

Parity of an untrained network says little (its scores saturate), so ``--model`` takes a trained YOLO-style
``.keras`` detector (bench/coco128_detector.py leaves one in its work dir) for the parity columns; sizes and
throughput are always measured on the 320x320 MobileNetV2.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TQDM_DISABLE", "1")

ROOT = Path(__file__).resolve().parents[1]
COCO = ROOT.parent / "shared" / "data" / "coco128" / "images" / "train2017"
SIZE = 320
IMAGES = 64


def _prepare(model_path: Path, work: Path, tag: str):
    from mobilekit.config_file import parse_config
    from mobilekit.data.datasets import list_folder, load_image
    from mobilekit.data.preprocess import letterbox, normalize
    from mobilekit.derive import derive_contract, plan
    from mobilekit.models.loader import load_model
    from mobilekit.models.serving import build_serving

    cfg = parse_config({"model": str(model_path), "calibration": {"images": str(COCO)},
                        "input": {"normalization": {"mean": [127.5] * 3, "std": [127.5] * 3}}}, work / f"{tag}.yaml")
    loaded = load_model(model_path)
    serving = build_serving(loaded, plan(cfg, loaded))
    contract = derive_contract(cfg, serving.input_shape, serving.input_name, serving.outputs, serving.num_classes,
                               serving.split)
    size = serving.input_shape[1]
    inputs = []
    for rec in list_folder(COCO)[:IMAGES]:
        canvas, _ = letterbox(load_image(rec.path), size, size, "letterbox", 114)
        inputs.append(normalize(canvas, contract.input.scale, contract.input.offset, "RGB", "NHWC"))
    return serving, contract, inputs


def main() -> None:
    import argparse

    import keras

    from mobilekit.config import CoreMLSettings
    from mobilekit.emulate.coreml import CoreMLEmulator
    from mobilekit.example.train import yolo_head
    from mobilekit.export import coreml
    from mobilekit.parity.metrics import tensor_metrics

    ap = argparse.ArgumentParser()
    ap.add_argument("--model", type=Path, default=None, help="a trained detector for the parity columns")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mk-coreml-bench-"))
    keras.utils.set_random_seed(0)
    inp = keras.Input((SIZE, SIZE, 3), name="image")
    backbone = keras.applications.MobileNetV2(input_tensor=inp, alpha=1.0, include_top=False, weights=None)
    model = keras.Model(inp, yolo_head(keras, backbone.output, 80, SIZE, 32), name="mnv2_320_yolo")
    model.save(work / "model.keras")
    serving, contract, inputs = _prepare(work / "model.keras", work, "speed")
    serving.run(inputs[0])
    start = time.perf_counter()
    ref = [serving.run(x) for x in inputs]
    tf_s = time.perf_counter() - start

    settings = CoreMLSettings(compression=["palettize8", "palettize6", "palettize4", "linear8"])

    def variants_of(serving, contract, tag):
        base = coreml.convert(serving, contract, settings)
        out = {"fp16": coreml.save(base, work / tag / "fp16.mlpackage")}
        for recipe in settings.compression:
            out[recipe] = coreml.save(coreml.compress(base, recipe, contract, settings),
                                      work / tag / f"{recipe}.mlpackage")
        return out

    fp32_path = coreml.save(coreml.convert(serving, contract, settings, fp32=True), work / "fp32.mlpackage")
    fp32_bytes = coreml.weight_bytes(fp32_path)
    speed_variants = variants_of(serving, contract, "speed")
    tf_rate = IMAGES / tf_s
    if args.model:
        p_serving, p_contract, p_inputs = _prepare(args.model, work, "parity")
        p_variants = variants_of(p_serving, p_contract, "parity")
        p_ref = [p_serving.run(x) for x in p_inputs]
        parity_note = f"parity on {args.model.name}"
    else:
        p_serving, p_inputs, p_variants, p_ref = serving, inputs, speed_variants, ref
        parity_note = "parity on the untrained network (pass --model for a meaningful one)"

    print(f"\nMobileNetV2(alpha 1.0)-YOLO {SIZE}x{SIZE}, {model.count_params():,} parameters, {IMAGES} coco128 "
          f"images; {parity_note}")
    print(f"  {'variant':<11} {'weights':>10} {'/fp32':>7}  {'boxes cos / SNR':>20}  {'scores cos / SNR':>20}  "
          f"{'emulator img/s':>14}")
    print(f"  {'fp32':<11} {fp32_bytes / 1e6:>8.2f}MB {1.0:>7.3f}")
    rates: dict[str, float] = {}
    for name, path in speed_variants.items():
        em = CoreMLEmulator(path)
        for mode, watch in (("no watch", None), ("fp16 watch", [])):
            em.run({"image": inputs[0]}, watch)
            start = time.perf_counter()
            for x in inputs:
                em.run({"image": x}, watch)
            rates[f"{name} {mode}"] = IMAGES / (time.perf_counter() - start)
        if name == "fp16":
            start = time.perf_counter()
            for x in inputs[:8]:
                em.run({"image": x}, eager=True)
            rates["fp16 op-by-op"] = 8 / (time.perf_counter() - start)
        rate = rates[f"{name} no watch"]
        pem = CoreMLEmulator(p_variants[name])
        outs = [pem.run({"image": x}) for x in p_inputs]
        cells = []
        for role in ("boxes", "scores"):
            m = tensor_metrics(np.concatenate([r[role] for r in p_ref]), np.concatenate([o[role] for o in outs]))
            cells.append(f"{m['cosine']:.4f} / {m['snr_db']:5.1f} dB")
        wb = coreml.weight_bytes(path)
        print(f"  {name:<11} {wb / 1e6:>8.2f}MB {wb / fp32_bytes:>7.3f}  {cells[0]:>20}  {cells[1]:>20}  {rate:>14.1f}")
    print(f"  TensorFlow float: {tf_rate:.1f} img/s (the same 64 images, one at a time)")
    for mode in ("fp16 no watch", "fp16 fp16 watch", "fp16 op-by-op"):
        print(f"  emulator {mode:<16} {rates[mode]:6.1f} img/s = {tf_rate / rates[mode]:.2f}x slower (target <= 3x)")


if __name__ == "__main__":
    main()
