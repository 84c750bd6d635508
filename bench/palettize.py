"""Bench: Core ML weight-compression recipes on a bundle's fp16 package, size against output fidelity.

A user compresses with ``coremltools.optimize.coreml.palettize_weights`` at one bit width for the whole model
(``palettize4`` / ``palettize6`` / ``palettize8`` below are exactly that, k-means per tensor), or with Apple's
grouped-channel tables (``palettize4_grouped``, iOS 18: only on a package converted for iOS 18, from a bundle
with ``coreml.deployment_target: iOS18``). ``palettize_mixed46`` is mobilekit's mixed-bit recipe. Each
variant runs in mobilekit's Core ML emulator on real images next to the fp16 package it came from; the table gives
its size and its output SNR and cosine against fp16 (the task metric per recipe is in bench/search.py's search).

    python bench/palettize.py --package BUNDLE/ios/Name.mlpackage --images DIR [--count 24]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

SPEC_VERSION = {"iOS16": 7, "iOS17": 8, "iOS18": 9}  # Core ML specification version of each deployment target
RECIPES = ["palettize8", "palettize6", "palettize_mixed46", "palettize4_grouped", "palettize4"]


def _feeds(model: object, images: Path, count: int, mean: float, std: float) -> tuple[str, list[np.ndarray]]:
    """The package's input name and ``count`` images resized to it, normalized as the model was trained."""
    from PIL import Image

    desc = model.get_spec().description.input[0]  # type: ignore[attr-defined]
    shape = [int(d) for d in desc.type.multiArrayType.shape]
    nhwc = shape[-1] == 3
    h, w = (shape[1], shape[2]) if nhwc else (shape[2], shape[3])
    files = sorted(p for p in images.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[:count]
    if not files:
        raise SystemExit(f"no images under {images}")
    feeds = []
    for f in files:
        x = (np.asarray(Image.open(f).convert("RGB").resize((w, h)), np.float32) - mean) / std
        feeds.append(x[None] if nhwc else x.transpose(2, 0, 1)[None])
    return desc.name, feeds


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--package", type=Path, required=True, help="a bundle's fp16 .mlpackage (ios/<Name>.mlpackage)")
    ap.add_argument("--images", type=Path, required=True)
    ap.add_argument("--count", type=int, default=24)
    ap.add_argument("--mean", type=float, default=127.5)
    ap.add_argument("--std", type=float, default=127.5)
    ap.add_argument("--recipes", nargs="+", default=RECIPES)
    args = ap.parse_args()

    import coremltools as ct
    from rich.console import Console
    from rich.table import Table

    from mobilekit.emulate.coreml import CoreMLEmulator
    from mobilekit.export import coreml
    from mobilekit.export.coreml_compress import RECIPES as REGISTERED
    from mobilekit.parity.metrics import tensor_metrics

    model = ct.models.MLModel(str(args.package), skip_model_load=True)
    name, feeds = _feeds(model, args.images, args.count, args.mean, args.std)
    fp16 = CoreMLEmulator(args.package)
    refs = [fp16.run({name: x}) for x in feeds]
    table = Table(title=f"Core ML recipes on {args.package.name}, {len(feeds)} images, against the fp16 package")
    outputs = list(refs[0])
    for col in ("recipe", "weights KiB", "vs fp16", *(f"{o}: SNR dB / min cosine" for o in outputs)):
        table.add_column(col, justify="left" if col == "recipe" else "right")
    base = coreml.weight_bytes(args.package)
    table.add_row("fp16", f"{base / 1024:.1f}", "100%", *("-" for _ in outputs))
    with tempfile.TemporaryDirectory() as tmp:
        for recipe in args.recipes:
            need = SPEC_VERSION[REGISTERED[recipe].min_target]
            if model.get_spec().specificationVersion < need:  # the package was converted for an older iOS
                table.add_row(recipe, "-", "-", *(f"needs {REGISTERED[recipe].min_target}" for _ in outputs))
                continue
            path = Path(tmp) / f"{recipe}.mlpackage"
            REGISTERED[recipe].apply(model).save(str(path))
            em = CoreMLEmulator(path)
            got = [em.run({name: x}) for x in feeds]
            cells = []
            for o in outputs:  # per image, then the mean SNR and the worst cosine over the images
                scores = [tensor_metrics(r[o], g[o]) for r, g in zip(refs, got, strict=True)]
                cells.append(f"{np.mean([s['snr_db'] for s in scores]):.1f} / {min(s['cosine'] for s in scores):.4f}")
            size = coreml.weight_bytes(path)
            table.add_row(recipe, f"{size / 1024:.1f}", f"{100 * size / base:.0f}%", *cells)
            print(f"{recipe} done", file=sys.stderr, flush=True)
    Console(width=max(120, Console().width)).print(table)


if __name__ == "__main__":
    main()
