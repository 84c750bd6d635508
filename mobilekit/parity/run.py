"""Measure parity: the float serving graph against each converted artifact, on the same real images."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from mobilekit.contract import Contract
from mobilekit.data.preprocess import ResizePlan, normalize
from mobilekit.kinds import Kind
from mobilekit.parity.detection import agreement, map50
from mobilekit.parity.metrics import tensor_metrics
from mobilekit.postprocess import Detections, classify, detect, vision_detections

Runner = Callable[[np.ndarray], dict[str, np.ndarray]]


def _stack(outs: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([o[k] for o in outs]) for k in outs[0]}


def measure(contract: Contract, canvases: list[np.ndarray], plans: list[ResizePlan],
            float_model: Runner, runners: dict[str, dict[str, Runner]],
            ground_truth: list[tuple[np.ndarray, np.ndarray]] | None, keep: dict[str, Any] | None = None
            ) -> dict[str, Any]:
    """``runners`` maps artifact kind → resolver → canvas runner (dequantized outputs keyed by role).

    ``keep``, when given, receives what the report draws: per artifact (first resolver) and role the raw errors
    against the float model, and the float and int8 predictions of the first images.
    """
    inp = contract.input
    ref = [float_model(normalize(c, inp.scale, inp.offset, inp.color, inp.layout)) for c in canvases]
    result: dict[str, Any] = {"images": len(canvases), "artifacts": {}}
    detection = contract.task == "detection"
    ref_det: list[Detections] = [detect(o, contract, p) for o, p in zip(ref, plans, strict=True)] if detection \
        else []
    if detection and ground_truth is not None:
        result["map50_float"] = map50(ref_det, [g[0] for g in ground_truth], [g[1] for g in ground_truth],
                                      contract.head.num_classes)
    ref_stack = _stack(ref)
    for kind, by_resolver in runners.items():
        art: dict[str, Any] = {"resolvers": {}}
        for resolver, run in by_resolver.items():
            outs = [run(c) for c in canvases]
            vision = "coordinates" in outs[0] and "coordinates" not in contract.roles
            if vision:  # the Vision pipeline returns final detections, not the raw tensors
                res: dict[str, Any] = {"tensors": {}}
                dets = [vision_detections(o["confidence"], o["coordinates"], contract, p)
                        for o, p in zip(outs, plans, strict=True)]
            else:
                got = _stack(outs)
                res = {"tensors": {r: tensor_metrics(ref_stack[r], got[r]) for r in contract.roles}}
                if keep is not None and kind not in keep.setdefault("errors", {}):
                    keep["errors"][kind] = {r: (got[r].astype(np.float64) - ref_stack[r]).ravel()[:200_000]
                                            for r in contract.roles}
                dets = [detect(o, contract, p) for o, p in zip(outs, plans, strict=True)] if detection else []
            if detection:
                res["detection"] = agreement(ref_det, dets)
                if ground_truth is not None:
                    m = map50(dets, [g[0] for g in ground_truth], [g[1] for g in ground_truth],
                              contract.head.num_classes)
                    res["map50"] = m
                    res["map50_drop"] = result["map50_float"] - m
            else:
                top_ref = [classify(o, contract)[0][0] for o in ref]
                top_got = [classify(o, contract)[0][0] for o in outs]
                dets = top_got  # type: ignore[assignment]
                res["top1_agreement"] = float(np.mean([a == b for a, b in zip(top_ref, top_got, strict=True)]))
            art["resolvers"][resolver] = res
            if keep is not None and kind == Kind.TFLITE_INT8 and "converted" not in keep:
                keep["reference"] = (ref_det if detection else top_ref)[:4]
                keep["converted"] = dets[:4]
        result["artifacts"][kind] = art
    return result
