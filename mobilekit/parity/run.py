"""Measure parity: the float serving graph against each converted artifact, on the same real images.

Streamed: :func:`measure_shard` reduces one shard of images to a :class:`ParityAcc` (tensor metrics, detection
agreement, mAP or top-1 as accumulators, plus the report's bounded sample); shards merged in image order give the
same :class:`ParityReport` as one pass over every image, bit for bit, so memory does not grow with the image count
and it does not matter which worker ran which shard (:mod:`mobilekit.run`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mobilekit.contract import Contract
from mobilekit.data.preprocess import ResizePlan, normalize
from mobilekit.heads.base import activate
from mobilekit.kinds import Kind
from mobilekit.parity.detection import AgreementAcc, APAcc, drop_interval, map50_95_acc, map50_acc
from mobilekit.parity.metrics import TensorAcc
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


#: what the report keeps of each artifact's raw errors against the float model, per output role (the first images')
ERRORS_KEPT = 200_000
#: images whose float and int8 detections the report draws
DRAWN = 4


@dataclass
class Samples:
    """What the report draws besides the metrics, a bounded sample in image order: each artifact's raw errors
    against the float model (first kernel set, per role, the first :data:`ERRORS_KEPT` values), the float and int8
    predictions of the first :data:`DRAWN` images and those images' canvases and letterbox plans."""

    errors: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    reference: list[Any] = field(default_factory=list)
    converted: list[Any] = field(default_factory=list)
    canvases: list[np.ndarray] = field(default_factory=list)
    plans: list[ResizePlan] = field(default_factory=list)

    def merge(self, other: Samples) -> None:
        """``other`` holds the images after this one's: the sample is the single pass's, cut at the same sizes."""
        for kind, roles in other.errors.items():
            mine = self.errors.setdefault(kind, {})
            for role, values in roles.items():
                mine[role] = np.concatenate([mine.get(role, np.zeros(0)), values])[:ERRORS_KEPT]
        for name in ("reference", "converted", "canvases", "plans"):
            setattr(self, name, (getattr(self, name) + getattr(other, name))[:DRAWN])


@dataclass
class Top1Acc:
    """A classifier's top-1 agreement with the float model (near-ties aside) and top-1 accuracy, as counts."""

    n: int = 0
    decided: int = 0
    agree: int = 0
    agree_decided: int = 0
    correct: int = 0

    def add(self, ranked: list[tuple[int, float]], got: int, label: int | None) -> None:
        decided, agree = _decided(ranked), ranked[0][0] == got
        self.n += 1
        self.decided += decided
        self.agree += agree
        self.agree_decided += agree and decided
        self.correct += label is not None and got == label

    def merge(self, other: Top1Acc) -> None:
        for k in ("n", "decided", "agree", "agree_decided", "correct"):
            setattr(self, k, getattr(self, k) + getattr(other, k))

    def result(self, top1_float: float | None) -> dict[str, Any]:
        # mostly near-ties: every image counts
        agree, over = (self.agree, self.n) if 2 * self.decided < self.n else (self.agree_decided, self.decided)
        res: dict[str, Any] = {"top1_agreement": agree / over if over else float("nan"),
                               "top1_ties": self.n - self.decided}
        if top1_float is not None:
            res["top1"] = 100.0 * (self.correct / self.n)
            res["top1_drop"] = top1_float - res["top1"]
        return res


@dataclass
class ResolverAcc:
    """One artifact on one kernel set: per-role tensor metrics, detection agreement and mAP, or top-1."""

    tensors: dict[str, TensorAcc] = field(default_factory=dict)
    detection: AgreementAcc | None = None
    map50: APAcc | None = None
    map50_95: APAcc | None = None
    top1: Top1Acc | None = None

    def merge(self, other: ResolverAcc) -> None:
        for role, acc in other.tensors.items():
            self.tensors[role].merge(acc)
        for name in ("detection", "map50", "map50_95", "top1"):
            if (mine := getattr(self, name)) is not None:
                mine.merge(getattr(other, name))

    def result(self, report: ParityReport, floats: tuple[APAcc, APAcc] | None = None) -> dict[str, Any]:
        """The metrics; ``floats``: the float model's mAP@0.5 and mAP@0.5:0.95 evidence on the same images, for
        each drop's 90% bootstrap interval (``*_drop_interval``)."""
        res: dict[str, Any] = {"tensors": {r: acc.result() for r, acc in self.tensors.items()}}
        if self.detection is not None:
            res["detection"] = self.detection.result()
        if self.map50 is not None and self.map50_95 is not None:
            assert report.map50_float is not None and report.map50_95_float is not None
            res["map50"] = self.map50.result()
            res["map50_drop"] = report.map50_float - res["map50"]
            res["map50_95"] = self.map50_95.result()
            res["map50_95_drop"] = report.map50_95_float - res["map50_95"]
            if floats is not None:
                res["map50_drop_interval"] = drop_interval(floats[0], self.map50)
                res["map50_95_drop_interval"] = drop_interval(floats[1], self.map50_95)
        if self.top1 is not None:
            res.update(self.top1.result(report.top1_float))
        return res


@dataclass
class ParityAcc:
    """Parity over some images, reduced: what :func:`measure_shard` returns and shards merge into, in image order.
    Its size does not grow with the images but for mAP's one small record per detection."""

    images: int = 0
    float_map50: APAcc | None = None
    float_map50_95: APAcc | None = None
    float_correct: int | None = None  # a labelled classifier's correct float top-1 count
    artifacts: dict[str, dict[str, ResolverAcc]] = field(default_factory=dict)
    samples: Samples = field(default_factory=Samples)

    def merge(self, other: ParityAcc) -> ParityAcc:
        """Add ``other``, whose images come after these; returns self."""
        self.images += other.images
        for name in ("float_map50", "float_map50_95"):
            mine, theirs = getattr(self, name), getattr(other, name)
            if mine is None:
                setattr(self, name, theirs)
            elif theirs is not None:
                mine.merge(theirs)
        if other.float_correct is not None:
            self.float_correct = (self.float_correct or 0) + other.float_correct
        for kind, resolvers in other.artifacts.items():
            for resolver, acc in resolvers.items():
                if resolver in self.artifacts.setdefault(kind, {}):
                    self.artifacts[kind][resolver].merge(acc)
                else:  # the first shard, or a kernel set missing from the earlier ones (the build drops a kernel
                    # set that crashed on any shard: it is not measured on a subset of the images)
                    self.artifacts[kind][resolver] = acc
        self.samples.merge(other.samples)
        return self

    def report(self) -> ParityReport:
        """The finished metrics (``report/parity.json``)."""
        result = ParityReport(self.images)
        if self.float_map50 is not None and self.float_map50_95 is not None:
            result.map50_float, result.map50_95_float = self.float_map50.result(), self.float_map50_95.result()
        if self.float_correct is not None:
            result.top1_float = 100.0 * (self.float_correct / self.images)
        floats = ((self.float_map50, self.float_map50_95)
                  if self.float_map50 is not None and self.float_map50_95 is not None else None)
        for kind, resolvers in self.artifacts.items():
            result.artifacts[kind] = {"resolvers": {r: acc.result(result, floats) for r, acc in resolvers.items()}}
        return result


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


def _stream(contract: Contract, ref: list[dict[str, np.ndarray]], outs: list[dict[str, np.ndarray]],
            plans: list[ResizePlan], ground_truth: list[tuple[np.ndarray, np.ndarray]] | None,
            float_side: tuple[list[Detections], list[list[tuple[int, float]]]]
            ) -> tuple[ResolverAcc, list[Any], list[dict[str, np.ndarray]]]:
    """One artifact's outputs on one kernel set, image by image, into accumulators; its detections (or top-1
    classes) and the outputs the tensor metrics compared (none for the Vision pipeline)."""
    acc, compared = ResolverAcc(), []
    ref_det, ranked = float_side
    if "coordinates" in outs[0] and "coordinates" not in contract.roles:
        # the Vision pipeline returns final detections, not the raw tensors
        dets: list[Any] = [vision_detections(o["confidence"], o["coordinates"], contract, p)
                           for o, p in zip(outs, plans, strict=True)]
    else:
        acc.tensors = {r: TensorAcc() for r in contract.roles}
        compared = [_compared(contract, o) for o in outs]
        for r_out, got in zip(ref, compared, strict=True):
            for role, t in acc.tensors.items():
                t.add(r_out[role], got[role])
        dets = [detect(o, contract, p) for o, p in zip(outs, plans, strict=True)] \
            if contract.task == "detection" else [classify(o, contract)[0][0] for o in outs]
    if contract.task == "detection":
        acc.detection = AgreementAcc()
        for r_det, c_det in zip(ref_det, dets, strict=True):
            acc.detection.add(r_det, c_det)
        if ground_truth is not None:
            acc.map50, acc.map50_95 = map50_acc(contract.head.num_classes), map50_95_acc(contract.head.num_classes)
            for det, (boxes, classes) in zip(dets, ground_truth, strict=True):
                acc.map50.add(det, boxes, classes)
                acc.map50_95.add(det, boxes, classes)
    else:
        acc.top1 = Top1Acc()
        labels = [int(g[1][0]) for g in ground_truth] if ground_truth is not None else [None] * len(dets)
        for rank, got, label in zip(ranked, dets, labels, strict=True):
            acc.top1.add(rank, got, label)
    return acc, dets, compared


def sampled(contract: Contract, first: int) -> bool:
    """Whether a shard starting at image ``first`` can still add to the report's sample: the first :data:`DRAWN`
    images, and errors until every output role has :data:`ERRORS_KEPT` values."""
    per_image = min((int(np.prod(o.shape)) for o in contract.outputs), default=1)
    return first < max(DRAWN, -(-ERRORS_KEPT // max(per_image, 1)))


def _errors(contract: Contract, ref: list[dict[str, np.ndarray]], compared: list[dict[str, np.ndarray]]
            ) -> dict[str, np.ndarray]:
    """The first :data:`ERRORS_KEPT` raw errors per role against the float model, image by image."""
    errors = {}
    for role in contract.roles:
        parts, n = [], 0
        for r_out, got in zip(ref, compared, strict=True):
            if n >= ERRORS_KEPT:
                break
            parts.append((got[role].astype(np.float64) - r_out[role]).ravel())
            n += parts[-1].size
        errors[role] = np.concatenate(parts)[:ERRORS_KEPT] if parts else np.zeros(0)
    return errors


def measure_shard(contract: Contract, canvases: list[np.ndarray], plans: list[ResizePlan],
                  float_model: Runner, runners: dict[str, dict[str, Runner]],
                  ground_truth: list[tuple[np.ndarray, np.ndarray]] | None, sample: bool = True) -> ParityAcc:
    """Parity over one shard of images, reduced to accumulators (:meth:`ParityAcc.merge` them in image order).
    ``runners`` maps artifact kind → kernel set → canvas runner (dequantized outputs keyed by role); ``sample``:
    whether the report's sample may still need this shard (see :func:`sampled`)."""
    inp = contract.input
    raw = [float_model(normalize(c, inp.scale, inp.offset, inp.color, inp.layout)) for c in canvases]
    ref = [_compared(contract, o) for o in raw]
    acc = ParityAcc(len(canvases), samples=Samples(canvases=canvases[:DRAWN], plans=plans[:DRAWN]) if sample
                    else Samples())
    detection = contract.task == "detection"
    ref_det = [detect(o, contract, p) for o, p in zip(raw, plans, strict=True)] if detection else []
    ranked = [] if detection else [classify(o, contract) for o in raw]
    if detection and ground_truth is not None:
        acc.float_map50, acc.float_map50_95 = (map50_acc(contract.head.num_classes),
                                               map50_95_acc(contract.head.num_classes))
        for det, (boxes, classes) in zip(ref_det, ground_truth, strict=True):
            acc.float_map50.add(det, boxes, classes)
            acc.float_map50_95.add(det, boxes, classes)
    elif ground_truth is not None:
        acc.float_correct = sum(r[0][0] == int(g[1][0]) for r, g in zip(ranked, ground_truth, strict=True))
    for kind, by_resolver in runners.items():
        for resolver, run in by_resolver.items():
            outs = [run(c) for c in canvases]
            acc.artifacts.setdefault(kind, {})[resolver], dets, compared = _stream(
                contract, ref, outs, plans, ground_truth, (ref_det, ranked))
            if sample and kind not in acc.samples.errors and compared:
                acc.samples.errors[kind] = _errors(contract, ref, compared)
            if sample and kind == Kind.TFLITE_INT8 and not acc.samples.converted:
                acc.samples.reference = (ref_det or [r[0][0] for r in ranked])[:DRAWN]
                acc.samples.converted = dets[:DRAWN]
    return acc
