"""Measure parity: the float serving graph against each converted artifact, on the same real images."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mobilekit.contract import Contract
from mobilekit.data.preprocess import ResizePlan, normalize
from mobilekit.heads.base import activate
from mobilekit.kinds import Kind
from mobilekit.parity.detection import agreement, map50, map50_95
from mobilekit.parity.metrics import tensor_metrics
from mobilekit.postprocess import Detections, classify, detect, vision_detections

Runner = Callable[[np.ndarray], dict[str, np.ndarray]]
#: float log-probability gap between the top two classes below which an image's top-1 is a near-tie that numerical
#: noise decides (1%: fp16 rounding of a logit is 0.05% of it). Near-ties leave top-1 agreement only while they are
#: a minority: a model that decides (almost) nothing is measured on every image, never waved through.
TIE = 0.01


@dataclass
class ParityReport:
    """What parity measured (``report/parity.json``): per artifact kind and kernel set, the tensor metrics and the
    detection agreement (or top-1 agreement); later stages add the int8 drift, the error histograms, the fp16 watch
    and the gate's checks."""

    images: int
    artifacts: dict[str, Any] = field(default_factory=dict)  # kind -> {"resolvers": {kernels: metrics}}
    map50_float: float | None = None  # the float model's mAP@0.5, when the evaluation images are labelled
    map50_95_float: float | None = None  # and its COCO mAP@0.5:0.95
    top1_float: float | None = None  # a classifier's top-1 accuracy (%), when the images sit in class folders
    drift: dict[str, Any] = field(default_factory=dict)
    histograms: dict[str, Any] = field(default_factory=dict)
    fp16_watch: dict[str, Any] = field(default_factory=dict)
    checks: list[dict[str, Any]] = field(default_factory=list)
    #: kernel sets that aborted in their contained child: artifact, kernels, signal, image, op at fault
    kernel_crashes: list[dict[str, Any]] = field(default_factory=list)
    #: evaluation images that are also calibration images ({"images": k, "of": n}); None when held out
    evaluation_overlap: dict[str, int] | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {"images": self.images, "artifacts": self.artifacts, "drift": self.drift,
               "histograms": self.histograms, "fp16_watch": self.fp16_watch, "checks": self.checks,
               "kernel_crashes": self.kernel_crashes, "evaluation_overlap": self.evaluation_overlap}
        if self.top1_float is not None:
            out["top1_float"] = self.top1_float
        if self.map50_float is None:
            return out
        return {**out, "map50_float": self.map50_float, "map50_95_float": self.map50_95_float}


@dataclass
class Samples:
    """What the report draws besides the metrics: each artifact's raw errors against the float model (first kernel
    set, per role), and the float and int8 predictions of the first images."""

    errors: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    reference: list[Any] = field(default_factory=list)
    converted: list[Any] = field(default_factory=list)


def _decided(ranked: list[tuple[int, float]]) -> bool:
    """Whether the float model's top class wins by more than a near-tie (log-probability gap >= TIE)."""
    if len(ranked) < 2:
        return True
    return float(np.log(max(ranked[0][1], 1e-30)) - np.log(max(ranked[1][1], 1e-30))) >= TIE


def _compared(contract: Contract, outputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """What the tensor metrics compare: the outputs, or the probabilities when the classifier's final activation
    was cut out of the graph (its logits' cosine is not what the app sees)."""
    activation = contract.head.split.get("activation") if contract.task == "classification" else None
    return {r: activate(v, activation) for r, v in outputs.items()} if activation else outputs


def _top1(contract: Contract, ref: list[dict[str, np.ndarray]], outs: list[dict[str, np.ndarray]],
          res: dict[str, Any], result: ParityReport, ground_truth: list[tuple[np.ndarray, np.ndarray]] | None
          ) -> tuple[list[int], list[int]]:
    """A classifier's top-1 agreement with the float model (near-ties aside) into ``res``, and its top-1 accuracy
    against the labels when there are any; the float and converted top-1 classes."""
    ranked = [classify(o, contract) for o in ref]
    top_ref = [r[0][0] for r in ranked]
    top_got = [classify(o, contract)[0][0] for o in outs]
    decided = [_decided(r) for r in ranked]
    if 2 * sum(decided) < len(decided):  # mostly near-ties: every image counts
        decided = [True] * len(decided)
    res["top1_agreement"] = float(np.mean([a == b for a, b, d in zip(top_ref, top_got, decided, strict=True) if d]))
    res["top1_ties"] = len(decided) - sum(decided)
    if ground_truth is not None:
        labels = [int(g[1][0]) for g in ground_truth]
        result.top1_float = _accuracy(top_ref, labels)
        res["top1"] = _accuracy(top_got, labels)
        res["top1_drop"] = result.top1_float - res["top1"]
    return top_ref, top_got


def _accuracy(predicted: list[int], labels: list[int]) -> float:
    """Top-1 accuracy in percent."""
    return 100.0 * float(np.mean([p == y for p, y in zip(predicted, labels, strict=True)]))


def _stack(outs: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([o[k] for o in outs]) for k in outs[0]}


def measure(contract: Contract, canvases: list[np.ndarray], plans: list[ResizePlan],
            float_model: Runner, runners: dict[str, dict[str, Runner]],
            ground_truth: list[tuple[np.ndarray, np.ndarray]] | None, keep: Samples | None = None
            ) -> ParityReport:
    """``runners`` maps artifact kind → resolver → canvas runner (dequantized outputs keyed by role); ``keep``,
    when given, receives what the report draws."""
    inp = contract.input
    ref = [float_model(normalize(c, inp.scale, inp.offset, inp.color, inp.layout)) for c in canvases]
    result = ParityReport(len(canvases))
    detection = contract.task == "detection"
    ref_det: list[Detections] = [detect(o, contract, p) for o, p in zip(ref, plans, strict=True)] if detection \
        else []
    if detection and ground_truth is not None:
        gt = ([g[0] for g in ground_truth], [g[1] for g in ground_truth], contract.head.num_classes)
        result.map50_float = map50(ref_det, *gt)
        result.map50_95_float = map50_95(ref_det, *gt)
    ref_stack = _compared(contract, _stack(ref))
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
                got = _compared(contract, _stack(outs))
                res = {"tensors": {r: tensor_metrics(ref_stack[r], got[r]) for r in contract.roles}}
                if keep is not None and kind not in keep.errors:
                    keep.errors[kind] = {r: (got[r].astype(np.float64) - ref_stack[r]).ravel()[:200_000]
                                            for r in contract.roles}
                dets = [detect(o, contract, p) for o, p in zip(outs, plans, strict=True)] if detection else []
            if detection:
                res["detection"] = agreement(ref_det, dets)
                if ground_truth is not None:
                    res["map50"] = map50(dets, *gt)
                    res["map50_drop"] = result.map50_float - res["map50"]
                    res["map50_95"] = map50_95(dets, *gt)
                    res["map50_95_drop"] = result.map50_95_float - res["map50_95"]
            else:
                top_ref, dets = _top1(contract, ref, outs, res, result, ground_truth)  # type: ignore[assignment]
            art["resolvers"][resolver] = res
            if keep is not None and kind == Kind.TFLITE_INT8 and not keep.converted:
                keep.reference = (ref_det if detection else top_ref)[:4]
                keep.converted = dets[:4]
        result.artifacts[kind] = art
    return result
