"""``mobilekit predict``: one artifact of a bundle run on images, as the SDKs run it, its results in image pixels.

How a user checks a bundle by eye, and how a decode is checked from outside mobilekit: the artifact runs on
LiteRT's interpreter (TFLite) or the Core ML emulator, fed exactly as the SDKs feed it (letterbox, the contract's
normalization and quantization), and its outputs go through the contract's decode and NMS. ``candidates`` keeps
every candidate instead, before the score threshold and NMS, in the model's output order.

The JSON record of an image (a stable schema, documented in the README)::

    {"image": str, "artifact": kind, "detections" | "candidates": [
        {"box": [x1, y1, x2, y2], "class": k, "label": str, "score": s, "scores": [per class]}, ...]}
    {"image": str, "artifact": kind, "classes": [{"class": k, "label": str, "score": p}, ...]}   (classifiers)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from mobilekit.contract import Contract
from mobilekit.data.datasets import load_image
from mobilekit.data.preprocess import letterbox
from mobilekit.errors import ConfigError, OutputError
from mobilekit.heads import get_head
from mobilekit.kinds import Kind
from mobilekit.postprocess import classify, select


def runner(bundle: Path, contract: Contract, kind: str) -> Callable[[np.ndarray], dict[str, np.ndarray]]:
    """A letterboxed canvas → the artifact's float outputs by role."""
    if kind not in contract.artifacts:
        raise ConfigError(f"the bundle has no '{kind}' artifact", path=bundle,
                          fix=f"use --artifact with one of {', '.join(sorted(contract.artifacts))}")
    path = bundle / contract.artifacts[kind].path
    if not path.exists():
        raise OutputError(f"{contract.artifacts[kind].path} is missing from the bundle", path=bundle,
                          fix="rebuild the bundle, or run mobilekit verify to see what else is missing")
    if kind.startswith("tflite"):
        from mobilekit.emulate.litert import LiteRTRunner

        return LiteRTRunner(path.read_bytes(), contract.artifacts[kind], contract).run
    if kind == Kind.COREML_VISION:
        raise ConfigError("the Vision pipeline returns NMS-filtered detections, not the model's outputs",
                          path=bundle, fix="use --artifact coreml-fp16 (or a compressed Core ML variant)")
    from mobilekit.emulate.coreml import CoreMLEmulator
    from mobilekit.run.shards import coreml_runner

    return coreml_runner(CoreMLEmulator(path), contract, [], kind)


def predict(bundle: Path, images: list[Path], kind: str = Kind.TFLITE_INT8, candidates: bool = False
            ) -> Iterator[dict[str, Any]]:
    """One record per image (the schema above)."""
    contract = Contract.load(bundle / "contract.json")
    run = runner(bundle, contract, kind)
    inp = contract.input
    for image in images:
        canvas, plan = letterbox(load_image(image), inp.height, inp.width, inp.resize, inp.pad_value)
        outputs = run(canvas)
        record: dict[str, Any] = {"image": str(image), "artifact": kind}
        if contract.task == "classification":
            record["classes"] = [{"class": k, "label": contract.labels[k], "score": p}
                                 for k, p in classify(outputs, contract)]
            yield record
            continue
        cand = get_head(contract.head.format).candidates(outputs, contract)
        idx = np.arange(len(cand.boxes)) if candidates else select(cand, contract)
        boxes = plan.to_source(cand.boxes[idx]).reshape(-1, 4)
        record["candidates" if candidates else "detections"] = [
            {"box": [float(v) for v in b], "class": int(np.argmax(s)), "label": contract.labels[int(np.argmax(s))],
             "score": float(np.max(s)), "scores": [float(v) for v in s]}
            for b, s in zip(boxes, cand.scores[idx], strict=True)]
        yield record
